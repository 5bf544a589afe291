#pragma once

// The SQLite provider: reacts to add-on events by doing the file work and
// appending the completion events (DESIGN.md section 5, two-phase side
// effects). The intent (AddonCreated, RepairRequested) is in the log before
// any file is touched; the completion (StorageProvisioned/ProvisioningFailed,
// StorageRepaired) is appended with a command id derived from the intent, so a
// retry or a second process finishing the same work appends nothing twice.
//
// Work on one add-on's files is serialized across processes by an exclusive
// flock on addons/<id>/.lock.

#include <filesystem>
#include <string>
#include <vector>

#include "domain/crash.h"
#include "domain/readiness.h"
#include "domain/state.h"
#include "eventstore/event_log.h"
#include "eventstore/home.h"
#include "providers/provider.h"
#include "providers/registry.h"
#include "providers/sqlite/storage.h"

namespace via::providers::sqlite {

inline constexpr const char* kName = "sqlite";
// Its storage layout (paths built by eventstore/filenames.h):
// addons/<id>/data.sqlite, snapshots/<id>/<snapshot>.sqlite.
inline constexpr const char* kDatabaseFileName = "data.sqlite";
inline constexpr const char* kSnapshotExtension = "sqlite";

std::filesystem::path DatabasePath(const eventstore::Home& home, const std::string& addon_id);
std::filesystem::path SnapshotFile(const eventstore::Home& home, const std::string& addon_id,
                                   const std::string& snapshot_id);

// Probes an add-on's database file for real (the O(1) probe of storage.h:
// read-only open, header, schema), without needing the log.
StorageFact ProbeAddonStorage(const eventstore::Home& home, const std::string& addon_id,
                              std::string* detail = nullptr);

// Adds the SQLite provider to `registry`. Test-only faults come from
// Environment::test_faults at provision.before_file, provision.after_file
// and snapshot.before_file (providers/provider.h TestFaults).
void Register(Registry& registry);

class SqliteProvider final : public Provider {
 public:
  // `options.log` may be null for an instance that only probes and
  // describes; the methods that append need it.
  explicit SqliteProvider(Environment options) : options_(std::move(options)) {}

  std::string Name() const override { return kName; }
  StorageWords Words() const override {
    return {"database file", "the file holds SQLite data"};
  }
  bool ProxiesSql() const override { return true; }
  // Probes the add-on's database file for real (see ProbeAddonStorage).
  StorageFact Probe(const std::string& addon_id, std::string* detail) const override;
  StorageFact ProbeStorage(const std::string& addon_id, std::string* detail = nullptr) const {
    return Probe(addon_id, detail);
  }
  std::string StorageLocation(const std::string& addon_id) const override {
    return DatabasePath(addon_id).string();
  }
  std::filesystem::path SnapshotPath(const std::string& addon_id,
                                     const std::string& snapshot_id) const override {
    return SnapshotFile(options_.home, addon_id, snapshot_id);
  }
  // The proxy's URL and token: apps reach SQLite through via serve.
  Result<DescriptorFields> Describe(const DescriptorInput& in) const override {
    return DescriptorFields{in.proxy_url, in.proxy_token};
  }

  std::filesystem::path DatabasePath(const std::string& addon_id) const {
    return sqlite::DatabasePath(options_.home, addon_id);
  }

  // Creates the database of an add-on whose AddonCreated is in the log and
  // appends StorageProvisioned or ProvisioningFailed. Idempotent.
  Status Provision(const std::string& addon_id) override;

  // Takes the snapshot whose SnapshotRequested is in the log: online backup
  // into snapshots/<addon>/<id>.sqlite (temp file, SHA-256 and fsync side by
  // side, rename, fsync of the folder), then SnapshotTaken (unverified), or
  // SnapshotFailed with the reason. Returns the SnapshotTaken it appended, or
  // the failure as an error.
  Result<SnapshotTaken> Snapshot(const std::string& addon_id, const std::string& snapshot_id,
                                 const PhaseProgress& progress = nullptr) override;

  // Verifies a taken snapshot (SHA-256 against SnapshotTaken, integrity_check)
  // and appends SnapshotVerified with the outcome; returns that event. A
  // damaged file is a result (ok false), not an error. Under the add-on's
  // lock, so that no delete removes the file meanwhile.
  Result<SnapshotVerified> Verify(const std::string& addon_id, const std::string& snapshot_id,
                                  const PhaseProgress& progress = nullptr) override;
  // The check of Verify without the append: the event the caller records
  // itself (several in one append). Errors as Verify.
  Result<SnapshotVerified> CheckSnapshot(const std::string& addon_id,
                                         const std::string& snapshot_id,
                                         const PhaseProgress& progress = nullptr) override;

  // Removes the file of a snapshot whose SnapshotDeleted is in the log (and
  // fsyncs its folder). Idempotent: a file already gone is fine.
  Status RemoveSnapshotFile(const std::string& addon_id, const std::string& snapshot_id) override;

  // The file work of `addon create --from-file | --from-snapshot`, done
  // before the add-on is in the log: builds addons/<id>/data.sqlite from
  // `source` (ImportDatabase: an operator's file is checked with
  // integrity_check; `source_verified` says the caller matched a verified
  // snapshot's SHA-256). The caller then appends AddonCreated with its
  // completions in one append, or removes the folder (DiscardImport). A
  // crash in between leaves a folder that no event trusts (`via recover`
  // reports it).
  Status StageImport(const std::string& addon_id, const std::filesystem::path& source,
                     bool source_verified, const PhaseProgress& progress = nullptr) override;
  // Removes the folder of an import that never reached the log.
  void DiscardImport(const std::string& addon_id) override;

  // The full check of an add-on's live database (integrity_check, while apps
  // keep writing), recorded as StorageChecked (under `command_id` when not
  // empty); returns that event and its seq (CheckOutcome::replayed: see
  // providers/provider.h).
  Result<CheckOutcome> Check(const std::string& addon_id,
                             const std::string& command_id = "") override;

  // Restores the snapshot whose RestoreRequested is in the log into the live
  // database through SQLite (readers never see a torn file), then
  // SnapshotRestored, or RestoreFailed with the reason.
  // `verified`: the caller matched the file's SHA-256 to a snapshot that
  // passed verification, so no integrity_check runs; otherwise the snapshot
  // is checked before the live database is touched.
  Status Restore(const std::string& addon_id, const std::string& snapshot_id,
                 const std::string& safety_snapshot_id, bool verified = false,
                 const PhaseProgress& progress = nullptr) override;

  // Recovery of a snapshot intent left without completion by a crash: a final
  // snapshot file (renamed into place only once durable) is recorded
  // (SnapshotTaken, unverified);
  // otherwise SnapshotFailed, and a leftover temp file (which no event
  // trusts) is removed. Returns true when the snapshot was kept.
  Result<bool> FinishSnapshot(const std::string& addon_id, const std::string& snapshot_id) override;

  // Recovery of a repair intent left without completion: records storage that
  // now probes ok (StorageRepaired "verified_after_crash"), else repairs again.
  Result<RepairOutcome> FinishRepair(const State& state, const std::string& addon_id) override;

  // Repairs missing or corrupt storage (or adopts the intact file of a failed
  // record): appends RepairRequested, moves a corrupt file aside (never
  // deleting bytes), restores the newest verified snapshot or recreates an
  // empty database, then appends StorageRepaired. Reads the add-on's
  // current state under its lock.
  // Installing an empty database where data existed (a corrupt file, or a
  // missing one that had snapshots, none of which verifies) is refused with
  // FailedPrecondition "repair_needs_allow_empty" unless `allow_empty`.
  Result<RepairOutcome> Repair(const std::string& addon_id, bool allow_empty = false) override;

 private:
  Status AppendCompletion(const std::string& command_id, std::vector<Event> events);
  // CheckSnapshot with the add-on's lock already held.
  Result<SnapshotVerified> CheckSnapshotLocked(const std::string& addon_id,
                                               const std::string& snapshot_id,
                                               const PhaseProgress& progress);

  eventstore::EventLog& log();
  // The test fault to inject at `point` (Environment::test_faults), else Ok.
  Status Fault(std::string_view point);

  Environment options_;
};

}  // namespace via::providers::sqlite
