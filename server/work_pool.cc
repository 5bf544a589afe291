#include "server/work_pool.h"

#include <pthread.h>

#include <algorithm>
#include <exception>
#include <optional>
#include <utility>

#include "server/thread_priority.h"

namespace via::server {

namespace {

void NameThread(std::thread& t, const std::string& pool, std::size_t slot) {
  // Linux limits thread names to 15 characters.
  const std::string name = ("via-" + pool + "-" + std::to_string(slot)).substr(0, 15);
  pthread_setname_np(t.native_handle(), name.c_str());
}

}  // namespace

WorkPool::WorkPool(Options options) : options_(std::move(options)) {
  const std::size_t n = static_cast<std::size_t>(std::max(1, options_.workers));
  const int nice = CurrentThreadNice();
  std::lock_guard<std::mutex> lock(mu_);  // workers read workers_ when they retire
  workers_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    workers_.emplace_back([this, i, nice] { WorkerLoop(i, nice); });
    NameThread(workers_.back(), options_.name, i);
  }
}

WorkPool::~WorkPool() {
  Shutdown(Unavailable("shutting_down", "the server is shutting down; retry"));
}

void WorkPool::MaybeRingLocked(const std::string& key, KeyState& state) {
  if (!state.in_ring && !state.waiting.empty() &&
      state.running < std::max<std::size_t>(1, options_.per_key_limit)) {
    ring_.push_back(key);
    state.in_ring = true;
    wake_.notify_one();
  }
}

Status WorkPool::Submit(std::string_view key_view, Job job, bool urgent) {
  std::optional<Job> evicted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Unavailable("shutting_down", "the server is shutting down; retry");
    std::string key(key_view);
    if (urgent && urgent_keys_.insert(key).second) {
      urgent_.emplace_back(std::move(key), std::move(job));
      wake_.notify_one();
      return Status::Ok();
    }
    if (waiting_ >= options_.max_queued) {
      auto mine = keys_.find(key);
      const std::size_t own = mine == keys_.end() ? 0 : mine->second.waiting.size();
      KeyState* longest = nullptr;
      for (auto& [k, state] : keys_) {
        if (longest == nullptr || state.waiting.size() > longest->waiting.size()) longest = &state;
      }
      if (longest == nullptr || longest->waiting.size() < own + 2) {
        return Unavailable(options_.busy_reason, "the " + options_.name + " queue is full (" +
                                                     std::to_string(options_.max_queued) +
                                                     " waiting); retry");
      }
      // The key stays on the ring with fewer jobs; a worker skips it if none is left.
      evicted = std::move(longest->waiting.back());
      longest->waiting.pop_back();
      --waiting_;
    }
    KeyState& state = keys_[key];
    state.waiting.push_back(std::move(job));
    ++waiting_;
    MaybeRingLocked(key, state);
  }
  if (evicted && evicted->refuse) {
    evicted->refuse(Unavailable(options_.busy_reason,
                                "the " + options_.name +
                                    " queue is full and this add-on has the most requests "
                                    "waiting; retry"));
  }
  return Status::Ok();
}

void WorkPool::WorkerLoop(std::size_t slot, int nice) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !urgent_.empty() || !ring_.empty(); });
    if (urgent_.empty() && ring_.empty()) return;  // stopping and nothing left
    std::string key;
    Job job;
    const bool urgent = !urgent_.empty();
    if (urgent) {
      key = std::move(urgent_.front().first);
      job = std::move(urgent_.front().second);
      urgent_.pop_front();
    } else {
      key = std::move(ring_.front());
      ring_.pop_front();
      auto it = keys_.find(key);
      if (it == keys_.end()) continue;
      KeyState& state = it->second;
      state.in_ring = false;
      if (state.waiting.empty()) {  // its jobs were evicted
        if (state.running == 0) keys_.erase(it);
        continue;
      }
      job = std::move(state.waiting.front());
      state.waiting.pop_front();
      --waiting_;
      ++state.running;
      MaybeRingLocked(key, state);  // its next job goes to the back of the ring
    }
    ++running_;
    lock.unlock();
    try {
      if (job.run) job.run();
    } catch (const std::exception& e) {
      if (options_.error_log)
        options_.error_log("via serve: " + options_.name + " job failed: " + e.what());
    } catch (...) {
      if (options_.error_log) options_.error_log("via serve: " + options_.name + " job failed");
    }
    job = Job{};  // destroy its captures outside the lock
    const bool lowered =
        options_.restore_priority && CurrentThreadNice() != nice && !SetCurrentThreadNice(nice);
    lock.lock();
    --running_;
    if (urgent) {
      urgent_keys_.erase(key);
    } else {
      auto it = keys_.find(key);
      if (it != keys_.end()) {
        KeyState& state = it->second;
        --state.running;
        MaybeRingLocked(key, state);
        if (state.waiting.empty() && state.running == 0 && !state.in_ring) keys_.erase(it);
      }
    }
    if (lowered && !stopping_ && slot < workers_.size()) {
      // This thread keeps its lowered priority: a new one takes its slot.
      for (std::thread& t : retired_) t.join();  // earlier ones have returned
      retired_.clear();
      retired_.push_back(std::move(workers_[slot]));
      workers_[slot] = std::thread([this, slot, nice] { WorkerLoop(slot, nice); });
      NameThread(workers_[slot], options_.name, slot);
      return;
    }
  }
}

void WorkPool::Shutdown(const Status& reason) {
  std::vector<Job> refused;
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    for (std::thread& t : retired_) workers.push_back(std::move(t));
    retired_.clear();
    for (auto& [key, state] : keys_) {
      for (Job& job : state.waiting) refused.push_back(std::move(job));
      state.waiting.clear();
    }
    for (auto& [key, job] : urgent_) refused.push_back(std::move(job));
    urgent_.clear();
    urgent_keys_.clear();
    ring_.clear();
    waiting_ = 0;
    for (std::thread& t : workers_) workers.push_back(std::move(t));
    workers_.clear();
    wake_.notify_all();
  }
  for (Job& job : refused) {
    if (job.refuse) job.refuse(reason);
  }
  for (std::thread& t : workers) t.join();
}

WorkPool::Stats WorkPool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Stats{waiting_ + urgent_.size(), running_, workers_.size()};
}

}  // namespace via::server
