// WorkPool (server/work_pool.h): per-key limit, round-robin across keys, the
// bounded queue that refuses the flooding key's jobs, urgent jobs, shutdown.

#include "server/work_pool.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "server/thread_priority.h"

using namespace via;
using namespace via::server;

namespace {

using namespace std::chrono_literals;

// A gate that jobs wait on until the test opens it, and a record of what ran.
class Gate {
 public:
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

class Log {
 public:
  void Add(std::string what) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.push_back(std::move(what));
    cv_.notify_all();
  }
  // Waits (at most 10 s) until `n` entries exist and returns them.
  std::vector<std::string> WaitFor(std::size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return entries_.size() >= n; });
    return entries_;
  }
  std::vector<std::string> Now() {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> entries_;
};

WorkPool::Options Opts(int workers, std::size_t per_key, std::size_t queued) {
  WorkPool::Options o;
  o.name = "test";
  o.workers = workers;
  o.per_key_limit = per_key;
  o.max_queued = queued;
  o.busy_reason = "test_busy";
  return o;
}

// A job that logs "<name>" when it runs and "refused <name>: <reason>" when
// it is refused.
WorkPool::Job Logged(Log& log, std::string name, Gate* gate = nullptr) {
  return WorkPool::Job{
      [&log, name, gate] {
        log.Add(name);
        if (gate) gate->Wait();
      },
      [&log, name](const Status& s) { log.Add("refused " + name + ": " + s.reason()); }};
}

// Waits until the pool runs `n` jobs.
void WaitRunning(WorkPool& pool, std::size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (pool.stats().running != n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  REQUIRE(pool.stats().running == n);
}

}  // namespace

TEST_CASE("work pool runs at most the per-key limit of one key's jobs at once", "[server]") {
  Gate gate;
  Log log;
  WorkPool pool(Opts(4, 2, 100));
  for (int i = 0; i < 6; ++i)
    REQUIRE(pool.Submit("a", Logged(log, "a" + std::to_string(i), &gate)).ok());
  WaitRunning(pool, 2);
  std::this_thread::sleep_for(50ms);  // a third would have started by now
  CHECK(pool.stats().running == 2);
  CHECK(pool.stats().queued == 4);
  // Another key gets one of the free workers at once.
  REQUIRE(pool.Submit("b", Logged(log, "b")).ok());
  auto ran = log.WaitFor(3);
  CHECK(std::count(ran.begin(), ran.end(), "b") == 1);
  gate.Open();
  CHECK(log.WaitFor(7).size() == 7);
}

TEST_CASE("work pool serves keys round-robin, not in arrival order", "[server]") {
  Gate gate;
  Log log;
  WorkPool pool(Opts(1, 1, 100));
  REQUIRE(pool.Submit("x", Logged(log, "x", &gate)).ok());  // holds the only worker
  WaitRunning(pool, 1);
  for (int i = 0; i < 3; ++i) REQUIRE(pool.Submit("a", Logged(log, "a" + std::to_string(i))).ok());
  REQUIRE(pool.Submit("b", Logged(log, "b0")).ok());
  REQUIRE(pool.Submit("b", Logged(log, "b1")).ok());
  gate.Open();
  CHECK(log.WaitFor(6) == std::vector<std::string>{"x", "a0", "b0", "a1", "b1", "a2"});
}

TEST_CASE("work pool: a full queue refuses the flooding key's newest job, not another key's",
          "[server]") {
  Gate gate;
  Log log;
  WorkPool pool(Opts(1, 1, 3));
  REQUIRE(pool.Submit("x", Logged(log, "x", &gate)).ok());
  WaitRunning(pool, 1);
  for (int i = 0; i < 3; ++i) REQUIRE(pool.Submit("a", Logged(log, "a" + std::to_string(i))).ok());
  // The queue is full: a's own next job is refused at once.
  Status full = pool.Submit("a", Logged(log, "a3"));
  CHECK(full.code() == StatusCode::kUnavailable);
  CHECK(full.reason() == "test_busy");
  // b's job takes the place of a's newest, which is refused.
  REQUIRE(pool.Submit("b", Logged(log, "b0")).ok());
  CHECK(log.Now() == std::vector<std::string>{"x", "refused a2: test_busy"});
  // a has two more waiting than c: c's job takes a's newest place too.
  REQUIRE(pool.Submit("c", Logged(log, "c0")).ok());
  // Now a, b and c have one each: nobody has two more than d, so d is refused.
  CHECK(pool.Submit("d", Logged(log, "d0")).reason() == "test_busy");
  gate.Open();
  CHECK(log.WaitFor(6) == std::vector<std::string>{"x", "refused a2: test_busy",
                                                   "refused a1: test_busy", "a0", "b0", "c0"});
}

TEST_CASE("work pool runs urgent jobs past the key's limit and the round-robin", "[server]") {
  Gate gate;
  Log log;
  WorkPool pool(Opts(2, 1, 100));
  REQUIRE(pool.Submit("a", Logged(log, "a0", &gate)).ok());
  REQUIRE(pool.Submit("a", Logged(log, "a1")).ok());
  WaitRunning(pool, 1);
  REQUIRE(pool.Submit("a", Logged(log, "urgent"), /*urgent=*/true).ok());
  auto ran = log.WaitFor(2);
  CHECK(ran == std::vector<std::string>{"a0", "urgent"});  // a1 still waits for a0
  gate.Open();
  CHECK(log.WaitFor(3).size() == 3);
}

TEST_CASE("work pool: a key's second urgent job waits like any other", "[server]") {
  Gate gate, urgent_gate;
  Log log;
  WorkPool pool(Opts(3, 1, 100));
  REQUIRE(pool.Submit("a", Logged(log, "a0", &gate)).ok());
  WaitRunning(pool, 1);
  REQUIRE(pool.Submit("a", Logged(log, "urgent", &urgent_gate), /*urgent=*/true).ok());
  WaitRunning(pool, 2);
  REQUIRE(pool.Submit("a", Logged(log, "second urgent"), /*urgent=*/true).ok());
  std::this_thread::sleep_for(50ms);  // a free worker would have taken it by now
  CHECK(log.Now() == std::vector<std::string>{"a0", "urgent"});
  CHECK(pool.stats().queued == 1);
  gate.Open();
  urgent_gate.Open();
  CHECK(log.WaitFor(3).size() == 3);
}

TEST_CASE("work pool shutdown refuses waiting jobs and lets running ones finish", "[server]") {
  Gate gate;
  Log log;
  auto pool = std::make_unique<WorkPool>(Opts(1, 1, 100));
  REQUIRE(pool->Submit("a", Logged(log, "a0", &gate)).ok());
  WaitRunning(*pool, 1);
  REQUIRE(pool->Submit("a", Logged(log, "a1")).ok());
  std::thread opener([&] {
    std::this_thread::sleep_for(50ms);
    gate.Open();
  });
  pool->Shutdown(Unavailable("shutting_down", "bye"));
  opener.join();
  CHECK(log.Now() == std::vector<std::string>{"a0", "refused a1: shutting_down"});
  CHECK(pool->Submit("a", Logged(log, "late")).reason() == "shutting_down");
  pool.reset();
  CHECK(log.Now().size() == 2);
}

TEST_CASE("work pool: a job that lowered its thread's priority does not pass it on", "[server]") {
  WorkPool::Options o = Opts(1, 1, 100);
  o.restore_priority = true;
  WorkPool pool(o);
  const int base = CurrentThreadNice();
  std::atomic<int> lowered{-100}, next{-100};
  Log log;
  REQUIRE(pool.Submit("a", WorkPool::Job{[&] {
                                           SetCurrentThreadNice(std::min(19, base + 5));
                                           lowered = CurrentThreadNice();
                                           log.Add("lowered");
                                         },
                                         nullptr})
              .ok());
  REQUIRE(pool.Submit("a", WorkPool::Job{[&] {
                                           next = CurrentThreadNice();
                                           log.Add("next");
                                         },
                                         nullptr})
              .ok());
  REQUIRE(log.WaitFor(2).size() == 2);
  CHECK(lowered.load() == std::min(19, base + 5));
  CHECK(next.load() == base);  // restored, or a new thread at the pool's priority
  CHECK(pool.stats().workers == 1);
}
