#include "eventstore/group_commit.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace via::eventstore {

namespace {

// The calling thread's nice value (Linux: each thread has its own).
int ThreadNice() {
  return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
}

}  // namespace

GroupCommitter::GroupCommitter(LogStore& store, Signer signer)
    : store_(store), signer_(std::move(signer)), nice_(ThreadNice()) {}

bool GroupCommitter::ForegroundWaiting() const {
  return std::any_of(queue_.begin(), queue_.end(), [](const Waiter* w) { return !w->background; });
}

Result<AppendResult> GroupCommitter::Submit(const AppendRequest& request) {
  Waiter self;
  self.request = &request;
  self.background = ThreadNice() > nice_;
  std::unique_lock lock(mu_);
  ++submitted_;
  queue_.push_back(&self);
  while (true) {
    // Answered by another thread's batch, or this thread's turn to commit
    // one: no batch in flight and this request still waiting (for a
    // background thread: and no waiter of normal priority to commit it,
    // who wakes as well and takes this request along).
    answered_.wait(lock, [&] {
      return self.result.has_value() ||
             (!in_flight_ && !(self.background && ForegroundWaiting()));
    });
    if (self.result) return std::move(*self.result);

    // The oldest waiting requests (this one among them unless kMaxBatch
    // arrived before it; then it commits the next batch too).
    in_flight_ = true;
    std::vector<Waiter*> batch;
    while (!queue_.empty() && batch.size() < kMaxBatch) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();

    std::vector<Result<AppendResult>> results;
    try {
      std::vector<AppendRequest> requests;
      requests.reserve(batch.size());
      for (const Waiter* waiter : batch) requests.push_back(*waiter->request);
      results = store_.AppendBatch(requests, signer_);
    } catch (...) {
      // (bad_alloc, say) Every other waiter of the batch is answered and the
      // next batch may start, so no submitter waits for ever; this one
      // leaves the queue before its Waiter goes out of scope.
      lock.lock();
      for (Waiter* waiter : batch) {
        if (waiter != &self) waiter->result.emplace(Internal("the batch failed in its committer"));
      }
      std::erase(queue_, &self);
      in_flight_ = false;
      answered_.notify_all();
      throw;
    }

    lock.lock();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (i < results.size()) {
        batch[i]->result.emplace(std::move(results[i]));
      } else {
        batch[i]->result.emplace(Internal("the batch gave no answer for this append"));
      }
    }
    in_flight_ = false;
    ++batches_;
    answered_.notify_all();
  }
}

std::uint64_t GroupCommitter::batches() const {
  std::lock_guard lock(mu_);
  return batches_;
}

std::uint64_t GroupCommitter::submitted() const {
  std::lock_guard lock(mu_);
  return submitted_;
}

}  // namespace via::eventstore
