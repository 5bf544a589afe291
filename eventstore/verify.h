#pragma once

// Full verification of an event log from its bytes (DESIGN.md section 9):
// canonical decoding, seq continuity, chain links, stored hashes, the Merkle
// tree (recomputed and compared with every stored node), every stored
// checkpoint's signature and root, and optionally an auditor's saved
// checkpoint. One streaming pass; memory is O(log n).
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
  // Called now and then with (records verified, records in the log).
  std::function<void(std::uint64_t done, std::uint64_t total)> progress;
};

struct VerifyReport {
  std::uint64_t size = 0;  // records verified
  Hash256 root{};          // recomputed root
  std::uint64_t checkpoints_verified = 0;
  std::uint64_t nodes_verified = 0;
  std::string origin;
  std::string verifier_key;
  bool auditor_checkpoint_verified = false;
  // On failure: the first bad seq and the error (DataLoss, with a stable reason).
  std::uint64_t first_bad_seq = 0;
  Status status;
};

// Verifies the whole log. The report's status is OK or DataLoss naming the
// first bad seq; other codes mean the log could not be read at all.
VerifyReport VerifyLog(LogStore& log, const VerifyOptions& options);

}  // namespace via::eventstore
