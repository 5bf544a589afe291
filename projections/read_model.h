#pragma once

// The read model: current state in state/projections.db, one row per add-on,
// generation, live name, binding, snapshot, release, claim and delivery, kept
// by folding new log records with domain::Apply. Invariants:
//   - the cursor (last applied seq and that record's chain hash) and the rows
//     it describes are written in one transaction; a reader sees the model
//     before or after a catch-up or rebuild, never half of it;
//   - a catch-up applies each record to the rows it touches (domain::KeysOf):
//     it loads those rows into a partial State, applies there and writes back
//     what changed, so its cost does not grow with the number of add-ons;
//   - a missing, damaged, older-version or foreign read model (its cursor's
//     hash is not the log's hash at that seq) is rebuilt from the log, so
//     deleting the file loses nothing;
//   - Digest() hashes the canonical form of the whole state loaded from the
//     rows, so it equals the digest of an in-memory replay of the same records.
// Not thread-safe; one per thread. Several processes may catch up at once:
// the write transaction re-checks the cursor.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "domain/crash.h"
#include "domain/state.h"
#include "domain/status.h"
#include "eventstore/log_store.h"
#include "storage/sqlite_db.h"

namespace via::projections {

class ReadModel {
 public:
  // Opens (creating if needed) the read model at `path`. In a directory that
  // cannot be written it opens the model read-only (CatchUp then says
  // home_not_writable when the model is behind).
  static Result<std::unique_ptr<ReadModel>> Open(const std::string& path);
  ~ReadModel();

  // Applies every record after the cursor, up to the log's head, in one
  // write transaction with the cursor; rebuilds from scratch inside that same
  // transaction when the cursor does not name a record of this log. Returns
  // the number of records applied (0 when already current: then no write
  // lock is taken).
  Result<std::uint64_t> CatchUp(eventstore::LogStore& log);

  // Drops everything and refolds the whole log, in one transaction.
  Status Rebuild(eventstore::LogStore& log);

  // Rows a catch-up or rebuild holds in memory before writing them out and
  // forgetting them (default 16384): bounds its memory whatever the log's
  // length. Any value of at least 1 gives the same model.
  void set_slice_rows(std::size_t rows) { slice_rows_ = rows < 1 ? 1 : rows; }

  // Test-only crash points (domain/crash.h): projection.before_commit,
  // projection.rebuild, catchup.between_reads.
  void set_crash_points(CrashPoints crash) { crash_ = std::move(crash); }

  // Starts a read transaction: the reads below see one state of the model
  // until it is destroyed (answers that combine rows take one).
  Result<sql::ReadTransaction> BeginRead() { return sql::ReadTransaction::Begin(*db_); }

  // The cursor: seq and chain hash of the last applied record (zero when
  // nothing is applied). A command that decides on the model appends
  // expecting exactly this head.
  Result<eventstore::Head> CursorHead();
  Result<std::uint64_t> Cursor();

  // The parts of the state that `keys` name (domain::StateKeys), plus the
  // log's identity and token count, as a partial State whose seq is the
  // cursor: what a decision or an answer reads, by indexed lookups only.
  // Read in one snapshot.
  Result<State> LoadSlice(const StateKeys& keys);

  // One add-on by live name or id (no replay).
  Result<std::optional<AddonState>> FindAddon(const std::string& name_or_id);
  // Every add-on ever created under `name` (its original name), oldest first.
  Result<std::vector<AddonState>> AddonsNamed(const std::string& name);

  // Streams add-ons ordered by stored name (live ones, or all with `all`),
  // each with its bindings, in one snapshot; stops when `visit` returns false.
  Status ScanAddons(bool all,
                    const std::function<bool(const AddonState&, const std::vector<BindingKey>&)>&
                        visit);

  // The whole state as stored, read in one snapshot (audits and tests).
  Result<State> Load();
  // SHA-256 of CanonicalForm(Load()).
  Result<Hash256> Digest();

  // Rows the row-level reads of this connection stepped since it opened:
  // what a test counts to show a read is bounded (no timing).
  std::uint64_t rows_read() const;

  // The row-level reads and writes of one connection (read_model.cc).
  class Rows;

 private:
  ReadModel(std::unique_ptr<sql::Db> db, std::string path);
  Status EnsureSchema();
  Result<std::uint64_t> Advance(eventstore::LogStore& log, bool rebuild);

  std::unique_ptr<sql::Db> db_;
  std::string path_;
  bool read_only_ = false;  // the home cannot be written: no catch-up
  CrashPoints crash_;
  std::size_t slice_rows_ = 16384;
  std::unique_ptr<Rows> rows_;  // prepared statements
};

// Folds records 1..until (0: all) in memory, as `audit replay` does; calls
// `visit` (when set) with each record after it is folded.
Result<State> Replay(eventstore::LogStore& log, std::uint64_t until,
                     const std::function<void(const Record&)>& visit = nullptr);

// The read model compared with a replay of the log at one log size.
struct ModelComparison {
  std::uint64_t size = 0;     // the model's cursor, the size both describe
  State replayed;             // records 1..size folded in memory
  Hash256 replay_digest{};
  std::optional<Hash256> model_digest;  // nullopt: the model is unreadable
  bool matches() const { return model_digest == replay_digest; }
};
// Opens the read model at `path` (catching it up first when `catch_up`),
// reads its cursor and digest in one snapshot, and replays the log up to that
// cursor: the two describe the same log size whatever other processes append
// meanwhile, so a difference means the model is wrong.
Result<ModelComparison> CompareWithLog(const std::string& path, eventstore::LogStore& log,
                                       bool catch_up);

// SHA-256 of the canonical form.
Hash256 StateDigest(const State& state);

}  // namespace via::projections
