#pragma once

// A fixed set of worker threads that runs blocking work (SQL, file opens, log
// appends) away from the HTTP I/O threads, fairly across keys (add-on ids):
//
// - per-key limit: at most Options::per_key_limit jobs of one key run at once,
//   so one key can never hold every worker;
// - fairness: keys with a job waiting are served round-robin, one job per
//   turn, so a key's backlog delays another key's job by at most one turn of
//   each other key, never by the whole backlog;
// - bounded queue: at most Options::max_queued jobs wait in all. When it is
//   full, a new job takes the place of the newest waiting job of the key with
//   the most waiting jobs, if that key has at least two more waiting than the
//   new job's key (that job is refused); otherwise the new job is refused. So a
//   key that floods the queue loses its own jobs, not another key's;
// - an urgent job does not count against its key's limit or the queue bound
//   and runs before the round-robin; a key has at most one urgent job waiting
//   or running, further ones of that key are queued as normal jobs. (The SQL
//   proxy marks a request of the stream that holds its database's write lock,
//   so that the lock holder can always finish while other requests of its key
//   wait for that lock.)
//
// Every job is either run (Job::run on a worker thread) or refused
// (Job::refuse, with the reason), exactly once, unless Submit() returned an
// error, in which case neither is called.
//
// Thread-safety: all methods may be called from any thread, also from inside
// a job. Refusals run on the thread that caused them (Submit, Shutdown),
// outside the pool's lock.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "domain/status.h"

namespace via::server {

class WorkPool {
 public:
  struct Options {
    std::string name = "work";               // thread names: "via-<name>-N"
    int workers = 4;                         // at least 1
    std::size_t per_key_limit = 2;           // at least 1
    std::size_t max_queued = 1024;           // waiting jobs over all keys
    std::string busy_reason = "queue_full";  // reason of refusals for a full queue
    // A job that threw (a bug: jobs answer their own errors), one line.
    std::function<void(const std::string&)> error_log;
    // After each job, a worker whose CPU priority the job lowered (see
    // thread_priority.h) restores it, or, when the system refuses, is
    // replaced by a new thread at the pool's priority.
    bool restore_priority = false;
  };
  struct Job {
    std::function<void()> run;
    std::function<void(const Status&)> refuse;
  };
  struct Stats {
    std::size_t queued = 0;  // waiting, urgent ones included
    std::size_t running = 0;
    std::size_t workers = 0;
  };

  // Starts the workers.
  explicit WorkPool(Options options);
  // Shutdown() with Unavailable "shutting_down".
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Queues `job` under `key`. Errors: Unavailable(Options::busy_reason) when
  // the queue is full and the job cannot take another key's place;
  // Unavailable "shutting_down" after Shutdown(). May refuse another key's
  // waiting job (see above) before it returns.
  Status Submit(std::string_view key, Job job, bool urgent = false);

  // Refuses every waiting job with `reason`, waits for the running ones and
  // stops the workers. Idempotent. Must not be called from inside a job.
  void Shutdown(const Status& reason);

  Stats stats() const;

 private:
  struct KeyState {
    std::deque<Job> waiting;
    std::size_t running = 0;
    bool in_ring = false;  // listed in ring_
  };

  // Runs jobs on worker `slot`; `nice` is the pool's thread priority.
  void WorkerLoop(std::size_t slot, int nice);
  // Puts `key` on the ring when it has a waiting job and room to run one.
  void MaybeRingLocked(const std::string& key, KeyState& state);

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::unordered_map<std::string, KeyState> keys_;
  std::deque<std::string> ring_;  // keys to serve next, round-robin
  std::deque<std::pair<std::string, Job>> urgent_;
  std::unordered_set<std::string> urgent_keys_;  // with an urgent job waiting or running
  std::size_t waiting_ = 0;  // normal jobs waiting (the bounded ones)
  std::size_t running_ = 0;
  std::vector<std::thread> workers_;
  std::vector<std::thread> retired_;  // replaced workers, joined later
};

}  // namespace via::server
