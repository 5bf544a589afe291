#pragma once

// Full verification of an event log from its bytes (DESIGN.md section 9):
// canonical decoding, seq continuity, chain links, stored hashes, the Merkle
// tree (recomputed and compared with every stored node), every stored
// checkpoint's authenticity, size and root, the command-id column, and
// optionally an auditor's saved checkpoint. Memory is O(log n) per thread.
//
// Authenticity: in a format-2 log every note's Ed25519 signature is checked.
// In a format-3 log each note carries the SHA-256 of the note before it, so
// the newest note's signature binds every older note's bytes: one signature
// is checked and the rest is hashing, whatever the number of checkpoints.
// The report on a damaged log is still the one of a pass that checks every
// signature (docs/event-log-format.md section 9 says how).
//
// The pass is defined record by record in seq order (docs/event-log-format.md
// section 9) and stops at the first failure. It may run on several threads,
// each checking a consecutive range of records on its own read-only connection
// and starting from the state that the rows just before its range store (their
// chain hash and perfect-subtree hashes). Those rows belong to the earlier
// ranges, which check them, so a range's result counts only when every earlier
// range passed, and the report (first bad seq, reason, counts) is the one a
// single thread would produce.
//
// A checkpoint whose root equals the recomputed root at its size is consistent
// with every other such checkpoint by construction (they are roots of prefixes
// of one recomputed tree), which is what "consistency of each checkpoint with
// the next" demands.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "domain/status.h"
#include "eventstore/checkpoint.h"
#include "eventstore/log_store.h"

namespace via::eventstore {

struct VerifyOptions {
  // Verifier key the auditor trusts. When empty, the key recorded in the
  // log's LogInitialized event is used (trust on first use).
  std::string pinned_key;
  // A checkpoint note the auditor saved earlier; its signature and its
  // consistency with today's log are checked.
  std::string auditor_checkpoint;
  // Called now and then with (records verified, records in the log), always
  // on the thread that called VerifyLog.
  std::function<void(std::uint64_t done, std::uint64_t total)> progress;
  // At most this many threads check the log at once, each on a range of at
  // least `parallel_min_records` records; 0 means one per CPU (up to 16), 1
  // keeps the whole pass on the calling thread.
  int threads = 0;
  std::uint64_t parallel_min_records = 1 << 15;
};

struct VerifyReport {
  std::uint64_t size = 0;  // records verified
  Hash256 root{};          // recomputed root
  // Stored notes found authentic and matching the recomputed tree: by their
  // own signature, or (format 3) by their bytes being bound into the newest
  // note through the chain of links.
  std::uint64_t checkpoints_verified = 0;
  // Of those, how many had their Ed25519 signature checked: all of them in a
  // format-2 log, the newest in a format-3 log.
  std::uint64_t signatures_verified = 0;
  std::uint64_t nodes_verified = 0;
  std::string origin;
  std::string verifier_key;
  bool auditor_checkpoint_verified = false;
  // On failure: the first bad seq and the error (DataLoss, with a stable reason).
  std::uint64_t first_bad_seq = 0;
  Status status;
};

// Verifies the whole log. The report's status is OK or DataLoss naming the
// first bad seq; other codes mean the log could not be read at all. Uses
// `log` on the calling thread and LogStore::OpenReader connections on the
// others; when those cannot be opened, the calling thread does all the work.
VerifyReport VerifyLog(LogStore& log, const VerifyOptions& options);

}  // namespace via::eventstore
