#pragma once

// Handlers for `via init` and `via audit ...` (DESIGN.md section 9). They
// return values; rendering belongs to cli/.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "commands/context.h"
#include "domain/events.h"
#include "domain/state.h"
#include "eventstore/verify.h"

namespace via::commands {

struct InitResult {
  bool created = false;  // false: the home already had a log
  std::string home;
  std::string log;  // the SQLite file of the log, or its PostgreSQL URL
  std::string log_id;
  std::string origin;
  std::string verifier_key;
  std::uint64_t size = 0;
};
Result<InitResult> Init(const Context& ctx);

// Verifies the whole log; the report's status says whether it passed.
Result<eventstore::VerifyReport> AuditVerify(const Context& ctx,
                                             const eventstore::VerifyOptions& options);

struct LogEntry {
  std::uint64_t seq = 0;
  Hash256 hash{};
  Bytes bytes;  // canonical record bytes
  Record record;
  // The name each add-on this record is about was created with, by id (the
  // event's add-on and a release's claims), as the records before it say.
  std::map<std::string, std::string> addon_names;
};

struct LogFilter {
  std::string addon;  // add-on id, or a name: every incarnation of it
  std::string app;
  std::uint64_t since = 0;  // seq >= since
  std::uint64_t limit = 0;  // 0: no limit
};

// The add-ons an event names: its own and, for a release, each claim's.
std::vector<std::string> MentionedAddonIds(const Event& event);

// Streams matching records in seq order. A record that does not decode stops
// the scan with DataLoss naming its seq. Scans from seq 1 whatever the filter,
// to learn add-on names.
Status AuditLog(const Context& ctx, const LogFilter& filter,
                const std::function<void(const LogEntry&)>& visit);

// The newest signed checkpoint note.
Result<std::string> AuditCheckpoint(const Context& ctx);
// The checkpoint verifier key.
Result<std::string> AuditKey(const Context& ctx);

struct InclusionProof {
  std::uint64_t leaf_index = 0;
  std::uint64_t tree_size = 0;
  Hash256 leaf_hash{};
  Hash256 root{};
  std::vector<Hash256> proof;
  std::string checkpoint;  // signed note for tree_size
};
Result<InclusionProof> ProveInclusion(const Context& ctx, std::uint64_t seq);

struct ConsistencyProof {
  std::uint64_t size1 = 0;
  std::uint64_t size2 = 0;
  Hash256 root1{};
  Hash256 root2{};
  std::vector<Hash256> proof;
  std::string checkpoint;  // signed note for size2
};
Result<ConsistencyProof> ProveConsistency(const Context& ctx, std::uint64_t old_size);

struct ReplayResult {
  State state;
  Hash256 digest{};
  // For a full replay: the incremental read model's digest after catching up
  // (equal to `digest` unless the read model is wrong).
  std::optional<Hash256> read_model_digest;
};
// Folds records 1..until (0: all) in memory.
Result<ReplayResult> AuditReplay(const Context& ctx, std::uint64_t until);

}  // namespace via::commands
