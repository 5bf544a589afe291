#pragma once

// The read model: current state in state/projections.db, kept by folding new
// log records with domain::Apply. Invariants:
//   - the cursor (last applied seq and that record's chain hash) and the rows
//     it describes are written in one transaction;
//   - a missing, damaged or foreign read model (its cursor's hash is not the
//     log's hash at that seq) is rebuilt from the log, so deleting the file
//     loses nothing;
//   - Digest() hashes the canonical form of the state loaded from the rows, so
//     it equals the digest of an in-memory replay of the same records.
// Not thread-safe; one per thread. Several processes may catch up at once:
// the write transaction re-checks the cursor.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "domain/crash.h"
#include "domain/state.h"
#include "domain/status.h"
#include "eventstore/log_store.h"
#include "eventstore/sqlite_db.h"

namespace via::projections {

class ReadModel {
 public:
  // Opens (creating if needed) the read model at `path`.
  static Result<std::unique_ptr<ReadModel>> Open(const std::string& path);

  // Applies every record after the cursor. Rebuilds from scratch when the
  // cursor does not match the log. Returns the number of records applied.
  Result<std::uint64_t> CatchUp(eventstore::LogStore& log);

  // Drops everything and refolds the whole log.
  Status Rebuild(eventstore::LogStore& log);

  // Test-only: crash point "projection.before_commit" (domain/crash.h).
  void set_crash_points(CrashPoints crash) { crash_ = std::move(crash); }

  // Seq of the last applied record.
  Result<std::uint64_t> Cursor();

  // One add-on by live name or id, read from its row (no replay).
  Result<std::optional<AddonState>> FindAddon(const std::string& name_or_id);
  // The add-on bound to (app, binding), if any.
  Result<std::optional<std::string>> BindingTarget(const std::string& app,
                                                   const std::string& binding);

  // Every binding that points at `addon_id`, as (app, binding).
  Result<std::vector<BindingKey>> BindingsOf(const std::string& addon_id);

  // The whole state as stored.
  Result<State> Load();
  // SHA-256 of CanonicalForm(Load()).
  Result<Hash256> Digest();

 private:
  explicit ReadModel(std::unique_ptr<sql::Db> db, std::string path)
      : db_(std::move(db)), path_(std::move(path)) {}
  Status EnsureSchema();
  Status Store(const State& before, const State& after, std::uint64_t seq, const Hash256& hash);

  std::unique_ptr<sql::Db> db_;
  std::string path_;
  CrashPoints crash_;
};

// Folds records 1..until (0: all) in memory, as `audit replay` does.
Result<State> Replay(eventstore::LogStore& log, std::uint64_t until);

// SHA-256 of the canonical form.
Hash256 StateDigest(const State& state);

}  // namespace via::projections
