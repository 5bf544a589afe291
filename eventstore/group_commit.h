#pragma once

// Group commit: many threads submit appends to one GroupCommitter, which
// writes them to the log in batches, one transaction per batch
// (LogStore::AppendBatch). While a batch is being committed, the requests
// that arrive wait and go together in the next one, so N concurrent
// submitters pay for about one commit (one fsync, one round trip pair on
// PostgreSQL) per batch instead of one each. Every append keeps its own
// rows, command id and signed note: a log written in batches is the log the
// same appends would have written one after the other
// (docs/event-log-format.md section 3).
//
// No thread of its own: the first submitter to find no batch in flight
// commits the waiting requests (its own first among them) and the others
// wait for its answer; the next batch is committed by one of its waiters.
// A thread running at a lower priority than the one that made the
// committer (a higher nice value: via serve's background passes) leaves
// the commit to a waiter of normal priority when there is one, so requests
// of normal priority do not wait for a batch committed at low priority.
// Thread-safe. The LogStore is this committer's alone while it lives (it is
// one connection; callers read through another).

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>

#include "eventstore/log_store.h"

namespace via::eventstore {

class GroupCommitter {
 public:
  // At most this many appends per batch; more wait for the next one.
  static constexpr std::size_t kMaxBatch = 64;

  // `store` and `signer.key` must outlive the committer.
  GroupCommitter(LogStore& store, Signer signer);
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Appends `request` in the next batch and returns its own result, as
  // LogStore::AppendBatch gives it (Append's answers and errors). Blocks
  // until that batch has committed or failed.
  Result<AppendResult> Submit(const AppendRequest& request);

  // Batches committed (or failed) so far, and appends submitted.
  std::uint64_t batches() const;
  std::uint64_t submitted() const;

 private:
  struct Waiter {
    const AppendRequest* request = nullptr;
    std::optional<Result<AppendResult>> result;
    bool background = false;  // submitted by a thread of lower priority
  };
  // Whether a waiter of normal priority is queued (under mu_).
  bool ForegroundWaiting() const;

  LogStore& store_;
  const Signer signer_;
  mutable std::mutex mu_;
  std::condition_variable answered_;
  std::deque<Waiter*> queue_;  // waiting for a batch, in arrival order
  bool in_flight_ = false;     // a batch is being committed
  std::uint64_t batches_ = 0;
  std::uint64_t submitted_ = 0;
  int nice_ = 0;  // the making thread's nice value
};

}  // namespace via::eventstore
