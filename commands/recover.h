#pragma once

// `via recover` (DESIGN.md section 9): rebuilds the read model when it differs
// from a replay, finishes or fails every intent left without its completion
// by a crash, and compares provider storage with metadata. Files are never
// deleted, except snapshot temp files that no event trusts. Running it twice
// changes nothing the second time.

#include <string>
#include <vector>

#include "commands/context.h"
#include "domain/bytes.h"

namespace via::commands {

struct RecoverItem {
  std::string kind;      // provisioning | snapshot | restore | repair | storage | orphan | temp_file
  std::string addon_id;
  std::string subject;   // snapshot id, path, ...
  std::string action;    // finished | failed | removed | reported | would_finish | would_fail ...
  std::string detail;
};

struct RecoverReport {
  bool dry_run = false;
  Hash256 replay_digest{};
  Hash256 read_model_digest{};  // before any rebuild
  bool read_model_rebuilt = false;
  // --dry-run only: records the read model has yet to catch up with, when it
  // matches a replay up to its cursor (not a finding: every command catches
  // up first; a real run does so and reports 0).
  std::uint64_t read_model_behind = 0;
  std::vector<RecoverItem> intents;  // dangling intents and what was done
  std::vector<RecoverItem> storage;  // storage findings (reported, never deleted)
  bool changed = false;              // anything appended, rebuilt or removed
};

Result<RecoverReport> Recover(const Context& ctx, bool dry_run);

}  // namespace via::commands
