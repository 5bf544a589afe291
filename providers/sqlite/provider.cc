#include "providers/sqlite/provider.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include "domain/reasons.h"
#include "domain/snapshots.h"
#include "eventstore/file_lock.h"
#include "eventstore/filenames.h"
#include "projections/read_model.h"
#include "storage/file.h"

namespace via::providers::sqlite {
namespace fs = std::filesystem;

namespace {

// An exclusive lock on addons/<id>/.lock: work on one add-on's files, one
// process at a time.
Result<eventstore::FileLock> LockAddon(const eventstore::Home& home, const std::string& addon_id) {
  std::error_code ec;
  fs::create_directories(home.addon_dir(addon_id), ec);
  return eventstore::FileLock::Exclusive(eventstore::AddonLockFile(home, addon_id));
}

StorageFact FactOf(StorageHealth health) {
  switch (health) {
    case StorageHealth::kOk: return StorageFact::kOk;
    case StorageHealth::kMissing: return StorageFact::kMissing;
    case StorageHealth::kUnreadable: return StorageFact::kUnreadable;
    case StorageHealth::kCorrupt: return StorageFact::kCorrupt;
  }
  return StorageFact::kUnreadable;
}

// The current state of one add-on and its snapshots: the read model caught
// up to the log's head, read in one snapshot (no other add-on is loaded).
Result<State> Current(const eventstore::Home& home, eventstore::EventLog& log,
                      const std::string& addon_id) {
  VIA_ASSIGN_OR_RETURN(auto model, projections::ReadModel::Open(home.state_db().string()));
  VIA_RETURN_IF_ERROR(model->CatchUp(log.store()).status());
  StateKeys keys;
  keys.addons.insert(addon_id);
  keys.snapshots_of.insert(addon_id);
  return model->LoadSlice(keys);
}

}  // namespace

fs::path DatabasePath(const eventstore::Home& home, const std::string& addon_id) {
  return eventstore::AddonFile(home, addon_id, kDatabaseFileName);
}

fs::path SnapshotFile(const eventstore::Home& home, const std::string& addon_id,
                      const std::string& snapshot_id) {
  return eventstore::SnapshotFile(home, addon_id, snapshot_id, kSnapshotExtension);
}

void Register(Registry& registry) {
  registry.Add(kName, [](const Environment& env) -> std::unique_ptr<Provider> {
    return std::make_unique<SqliteProvider>(env);
  });
}

Status SqliteProvider::Fault(std::string_view point) {
  return options_.test_faults != nullptr ? options_.test_faults->At(point) : Status::Ok();
}

eventstore::EventLog& SqliteProvider::log() {
  // Only the methods that append reach here; an instance made for probing
  // (no log) never calls them.
  if (options_.log == nullptr) std::abort();
  return *options_.log;
}

StorageFact ProbeAddonStorage(const eventstore::Home& home, const std::string& addon_id,
                              std::string* detail) {
  sqlite::Probe probe = ProbeDatabase(DatabasePath(home, addon_id));
  if (detail) *detail = probe.detail;
  return FactOf(probe.health);
}

StorageFact SqliteProvider::Probe(const std::string& addon_id, std::string* detail) const {
  return ProbeAddonStorage(options_.home, addon_id, detail);
}

Status SqliteProvider::AppendCompletion(const std::string& command_id, std::vector<Event> events) {
  eventstore::AppendRequest request;
  request.actor = options_.actor;
  request.command_id = command_id;
  request.recorded_at_ms = options_.clock ? options_.clock->NowMs() : 0;
  request.events = std::move(events);
  return log().Append(request).status();
}

Status SqliteProvider::Provision(const std::string& addon_id) {
  VIA_ASSIGN_OR_RETURN(eventstore::FileLock lock, LockAddon(options_.home, addon_id));
  VIA_ASSIGN_OR_RETURN(State state, Current(options_.home, log(), addon_id));
  const AddonState* addon = state.FindById(addon_id);
  if (addon == nullptr) return NotFound("addon_not_found", "no add-on " + addon_id);
  if (addon->phase != AddonPhase::kProvisioning) return Status::Ok();  // someone finished it

  const std::string command_id = eventstore::ProvisionCommandId(addon_id);
  fs::path db = DatabasePath(addon_id);
  if (Status injected = Fault("provision.before_file"); !injected.ok()) {
    return AppendCompletion(command_id, {ProvisioningFailed{addon_id, injected.message(), false}});
  }
  options_.crash.At("provision.before_file");
  Status created = CreateDatabase(db);
  options_.crash.At("provision.after_file");
  if (!created.ok() && created.code() == StatusCode::kAlreadyExists &&
      ProbeDatabase(db).health == StorageHealth::kOk) {
    created = Status::Ok();  // an earlier attempt made it and crashed before the event
  }
  if (Status injected = Fault("provision.after_file"); !injected.ok()) created = injected;
  if (!created.ok()) {
    return AppendCompletion(command_id,
                            {ProvisioningFailed{addon_id, created.message(), HoldsSqliteBytes(db)}});
  }
  return AppendCompletion(command_id, {StorageProvisioned{addon_id}});
}

Result<SnapshotTaken> SqliteProvider::Snapshot(const std::string& addon_id,
                                               const std::string& snapshot_id,
                                               const PhaseProgress& progress) {
  VIA_ASSIGN_OR_RETURN(eventstore::FileLock lock, LockAddon(options_.home, addon_id));
  std::error_code ec;
  fs::create_directories(options_.home.snapshot_dir(addon_id), ec);
  fs::path dest = SnapshotPath(addon_id, snapshot_id);
  const std::string command_id = eventstore::SnapshotCommandId(snapshot_id);
  options_.crash.At("snapshot.before_file");
  Status armed = Fault("snapshot.before_file");  // test-only; Ok in production
  Progress tracked = [&](std::uint64_t done, std::uint64_t total) {
    if (done * 2 >= total && done < total) options_.crash.At("snapshot.during_file");
  };
  auto digest = armed.ok() ? TakeSnapshot(DatabasePath(addon_id), dest, tracked, progress)
                           : Result<FileDigest>(armed);
  options_.crash.At("snapshot.after_file");
  if (!digest.ok()) {
    VIA_RETURN_IF_ERROR(AppendCompletion(
        command_id, {SnapshotFailed{addon_id, snapshot_id, digest.status().message()}}));
    Status failed = digest.status().WithContext("snapshot " + snapshot_id);
    if (failed.reason() != reason::kDiskFull) return failed;
    return failed.WithRemediation("free space where " + options_.home.root.string() +
                                  " lives, then take the snapshot again (docs/operations.md)");
  }
  SnapshotTaken taken{addon_id, snapshot_id, Bytes(digest->sha256.begin(), digest->sha256.end()),
                      digest->bytes, digest->page_count};
  VIA_RETURN_IF_ERROR(AppendCompletion(command_id, {taken}));
  return taken;
}

Result<SnapshotVerified> SqliteProvider::Verify(const std::string& addon_id,
                                                const std::string& snapshot_id,
                                                const PhaseProgress& progress) {
  // Under the add-on's lock from the check to the append: no delete removes
  // the file (or records its deletion) in between.
  VIA_ASSIGN_OR_RETURN(eventstore::FileLock lock, LockAddon(options_.home, addon_id));
  VIA_ASSIGN_OR_RETURN(SnapshotVerified verified, CheckSnapshotLocked(addon_id, snapshot_id, progress));
  eventstore::AppendRequest request;
  request.actor = options_.actor;
  request.recorded_at_ms = options_.clock ? options_.clock->NowMs() : 0;
  request.events = {verified};
  VIA_RETURN_IF_ERROR(log().Append(request).status());
  return verified;
}

Result<SnapshotVerified> SqliteProvider::CheckSnapshot(const std::string& addon_id,
                                                       const std::string& snapshot_id,
                                                       const PhaseProgress& progress) {
  VIA_ASSIGN_OR_RETURN(eventstore::FileLock lock, LockAddon(options_.home, addon_id));
  return CheckSnapshotLocked(addon_id, snapshot_id, progress);
}

Result<SnapshotVerified> SqliteProvider::CheckSnapshotLocked(const std::string& addon_id,
                                                             const std::string& snapshot_id,
                                                             const PhaseProgress& progress) {
  VIA_ASSIGN_OR_RETURN(State state, Current(options_.home, log(), addon_id));  // under the lock
  VIA_ASSIGN_OR_RETURN(const SnapshotState* found, TakenSnapshot(state, addon_id, snapshot_id));
  const SnapshotState& snap = *found;
  options_.crash.At("verify.before_check");
  VIA_ASSIGN_OR_RETURN(SnapshotCheck check,
                       VerifySnapshot(SnapshotPath(addon_id, snapshot_id),
                                      snap.sha256, snap.bytes, progress));
  options_.crash.At("verify.after_check");
  return SnapshotVerified{addon_id, snapshot_id, check.ok, "sha256+integrity_check", check.detail};
}

Status SqliteProvider::RemoveSnapshotFile(const std::string& addon_id,
                                          const std::string& snapshot_id) {
  VIA_ASSIGN_OR_RETURN(eventstore::FileLock lock, LockAddon(options_.home, addon_id));
  fs::path file = SnapshotPath(addon_id, snapshot_id);
  options_.crash.At("delete.before_file");
  VIA_RETURN_IF_ERROR(fileio::Remove(file));
  options_.crash.At("delete.after_file");
  // The folder's entry is gone for good only once the folder is synced (best
  // effort: the file is gone either way).
  (void)fileio::SyncParentDirectory(file);
  return Status::Ok();
}

Status SqliteProvider::StageImport(const std::string& addon_id, const fs::path& source,
                                   bool source_verified, const PhaseProgress& progress) {
  VIA_ASSIGN_OR_RETURN(eventstore::FileLock lock, LockAddon(options_.home, addon_id));
  options_.crash.At("import.before_file");
  Status imported = ImportDatabase(source, DatabasePath(addon_id), source_verified, progress);
  options_.crash.At("import.after_file");
  return imported;
}

void SqliteProvider::DiscardImport(const std::string& addon_id) {
  std::error_code ec;
  fs::remove_all(options_.home.addon_dir(addon_id), ec);
}

Result<CheckOutcome> SqliteProvider::Check(const std::string& addon_id,
                                           const std::string& command_id) {
  // Under the add-on's lock: no repair moves the file away meanwhile.
  VIA_ASSIGN_OR_RETURN(eventstore::FileLock lock, LockAddon(options_.home, addon_id));
  sqlite::Probe probe = CheckDatabase(DatabasePath(addon_id));
  CheckOutcome out;
  out.event = StorageChecked{addon_id, probe.health == StorageHealth::kOk, "integrity_check",
                             probe.detail};
  eventstore::AppendRequest request;
  request.actor = options_.actor;
  request.recorded_at_ms = options_.clock ? options_.clock->NowMs() : 0;
  request.events = {out.event};
  request.command_id = command_id;
  VIA_ASSIGN_OR_RETURN(eventstore::AppendResult appended, log().Append(request));
  out.seq = appended.last_seq;
  out.replayed = appended.replayed;
  return out;
}

Status SqliteProvider::Restore(const std::string& addon_id, const std::string& snapshot_id,
                               const std::string& safety_snapshot_id, bool verified,
                               const PhaseProgress& progress) {
  VIA_ASSIGN_OR_RETURN(eventstore::FileLock lock, LockAddon(options_.home, addon_id));
  const std::string command_id =
      eventstore::RestoreCommandId(addon_id, snapshot_id, safety_snapshot_id);
  options_.crash.At("restore.before_file");
  Progress tracked = [&](std::uint64_t done, std::uint64_t total) {
    if (done * 2 >= total && done < total) options_.crash.At("restore.during_file");
  };
  Status restored = RestoreInto(SnapshotPath(addon_id, snapshot_id),
                                DatabasePath(addon_id), tracked, verified, progress);
  options_.crash.At("restore.after_file");
  if (!restored.ok()) {
    VIA_RETURN_IF_ERROR(AppendCompletion(
        command_id, {RestoreFailed{addon_id, snapshot_id, restored.message()}}));
    return restored.WithContext("restore " + snapshot_id);
  }
  return AppendCompletion(command_id,
                          {SnapshotRestored{addon_id, snapshot_id, safety_snapshot_id}});
}

Result<bool> SqliteProvider::FinishSnapshot(const std::string& addon_id,
                                            const std::string& snapshot_id) {
  VIA_ASSIGN_OR_RETURN(eventstore::FileLock lock, LockAddon(options_.home, addon_id));
  fs::path dest = SnapshotPath(addon_id, snapshot_id);
  const fs::path temp = fileio::TempPathFor(dest);
  std::error_code ec;
  fs::remove(temp, ec);  // never trusted by any event
  const std::string command_id = eventstore::SnapshotCommandId(snapshot_id);
  if (fs::exists(dest, ec) && ProbeDatabase(dest).health == StorageHealth::kOk) {
    VIA_ASSIGN_OR_RETURN(FileDigest digest, DigestFile(dest));
    VIA_RETURN_IF_ERROR(AppendCompletion(
        command_id, {SnapshotTaken{addon_id, snapshot_id,
                                   Bytes(digest.sha256.begin(), digest.sha256.end()),
                                   digest.bytes, digest.page_count}}));
    return true;
  }
  VIA_RETURN_IF_ERROR(AppendCompletion(
      command_id, {SnapshotFailed{addon_id, snapshot_id,
                                  "interrupted by a crash before the file was complete"}}));
  return false;
}

Result<RepairOutcome> SqliteProvider::FinishRepair(const State& state,
                                                   const std::string& addon_id) {
  // The probe reads header and schema only: storage that a full check found
  // damaged is checked in full again before it is called repaired (the crash
  // may have come before the damaged file was put aside).
  const AddonState* addon = state.FindById(addon_id);
  const bool was_damaged = addon != nullptr && addon->checked_corrupt();
  bool intact = ProbeStorage(addon_id) == StorageFact::kOk;
  if (intact && was_damaged) {
    intact = CheckDatabase(DatabasePath(addon_id)).health == StorageHealth::kOk;
  }
  if (intact) {
    VIA_ASSIGN_OR_RETURN(eventstore::FileLock lock, LockAddon(options_.home, addon_id));
    VIA_RETURN_IF_ERROR(AppendCompletion(
        eventstore::RepairFinishCommandId(addon_id, state.seq),
        {StorageRepaired{addon_id, "verified_after_crash", "",
                         was_damaged ? "storage passed the full check" : "storage passed the probe"}}));
    return RepairOutcome{{"verified_after_crash"}, "", ""};
  }
  // The intent is only appended once the empty-database question was settled
  // (a verified snapshot, nothing to lose, or --allow-empty): finishing it
  // carries out that decision.
  return Repair(addon_id, /*allow_empty=*/true);
}

Result<RepairOutcome> SqliteProvider::Repair(const std::string& addon_id, bool allow_empty) {
  VIA_ASSIGN_OR_RETURN(eventstore::FileLock lock, LockAddon(options_.home, addon_id));
  VIA_ASSIGN_OR_RETURN(State state, Current(options_.home, log(), addon_id));  // under the lock
  const AddonState* addon = state.FindById(addon_id);
  if (addon == nullptr) return NotFound("addon_not_found", "no add-on " + addon_id);
  if (addon->phase == AddonPhase::kDestroyed) {
    return FailedPrecondition("addon_destroyed", "add-on " + addon_id + " is destroyed");
  }
  RepairOutcome outcome;
  fs::path db = DatabasePath(addon_id);
  sqlite::Probe probe = ProbeDatabase(db);
  if (probe.health == StorageHealth::kOk &&
      (addon->checked_corrupt() || addon->phase == AddonPhase::kFailed)) {
    // The probe reads header and schema only: before keeping a file that a
    // full check found damaged, or adopting a failed record's file, check it
    // all.
    probe = CheckDatabase(db);
  }
  if (probe.health == StorageHealth::kOk && addon->phase != AddonPhase::kFailed) return outcome;
  if (probe.health == StorageHealth::kUnreadable) {
    return FailedPrecondition("storage_unreadable",
                              "cannot repair " + db.string() + ": " + probe.detail +
                                  " (fix permissions or the disk first)")
        .WithOwner("platform");
  }

  // The snapshot to restore, chosen before anything is written, so that
  // whether the repair installs an empty database is known, and refused, up
  // front: the newest verified snapshot whose file still matches its
  // recorded hash, else the newest unverified one that passes the check now;
  // never one whose verification failed or that was deleted.
  std::vector<const SnapshotState*> snapshots = RepairCandidates(state, addon_id);
  const SnapshotState* source = nullptr;
  if (probe.health != StorageHealth::kOk) {
    for (const SnapshotState* snap : snapshots) {
      fs::path file = SnapshotPath(addon_id, snap->id);
      auto digest = DigestFile(file);
      if (!digest.ok() || Bytes(digest->sha256.begin(), digest->sha256.end()) != snap->sha256) {
        continue;
      }
      if (snap->verification != SnapshotVerification::kVerified) {
        auto check = VerifySnapshot(file, snap->sha256, snap->bytes);
        if (!check.ok() || !check->ok) continue;
      }
      source = snap;
      break;
    }
    const bool had_data = probe.health == StorageHealth::kCorrupt || !snapshots.empty();
    if (source == nullptr && had_data && !allow_empty) {
      const std::string what = probe.health == StorageHealth::kCorrupt
                                   ? "the database file is corrupt"
                                   : "the database file is missing";
      const std::string snaps = snapshots.empty()
                                    ? "there is no snapshot"
                                    : "none of its " + std::to_string(snapshots.size()) +
                                          " usable snapshots passes its checks";
      return FailedPrecondition("repair_needs_allow_empty",
                                what + " and " + snaps +
                                    ": repairing installs an EMPTY database (a corrupt file is "
                                    "moved aside, never deleted); pass --allow-empty to accept")
          .WithRemediation("via addon ensure sqlite " + addon->name + " --app " + addon->app +
                           " --repair --allow-empty")
          .WithOwner("operator");
    }
  }

  // Intent first, keyed by the log position so that a retry appends nothing twice.
  const std::string command_id = eventstore::RepairCommandId(addon_id, state.seq);
  std::string action = probe.health == StorageHealth::kOk      ? "adopted_existing"
                       : probe.health == StorageHealth::kCorrupt ? "quarantined_corrupt"
                                                                 : "recreate";
  VIA_RETURN_IF_ERROR(AppendCompletion(command_id, {RepairRequested{addon_id, action}}));
  options_.crash.At("repair.before_file");

  std::vector<Event> done;
  if (probe.health == StorageHealth::kOk) {
    // A failed record whose file is intact: adopt the file as it is.
    done.push_back(StorageRepaired{addon_id, "adopted_existing", "", "file passed integrity_check"});
    outcome.actions.push_back("adopted_existing");
  } else {
    if (probe.health == StorageHealth::kCorrupt) {
      std::string suffix = std::to_string(state.seq);
      VIA_ASSIGN_OR_RETURN(fs::path moved, Quarantine(db, suffix));
      done.push_back(StorageRepaired{addon_id, "quarantined_corrupt", "", moved.string()});
      outcome.actions.push_back("quarantined_corrupt");
    }
    if (source != nullptr) {
      VIA_RETURN_IF_ERROR(CreateDatabase(db));
      VIA_RETURN_IF_ERROR(RestoreInto(SnapshotPath(addon_id, source->id), db,
                                      nullptr, /*verified=*/true));
      done.push_back(StorageRepaired{addon_id, "restored_from_snapshot", source->id, ""});
      outcome.actions.push_back("restored_from_snapshot");
      outcome.restored_from = source->id;
    } else {
      Status created = CreateDatabase(db);
      if (!created.ok()) return created.WithContext("recreate " + db.string());
      done.push_back(StorageRepaired{addon_id, "recreated_empty", "", ""});
      outcome.actions.push_back("recreated_empty");
      outcome.warning = "recreated an empty database: no verified snapshot of " + addon_id;
    }
  }
  options_.crash.At("repair.after_file");
  VIA_RETURN_IF_ERROR(
      AppendCompletion(eventstore::RepairDoneCommandId(addon_id, state.seq), std::move(done)));
  return outcome;
}

}  // namespace via::providers::sqlite
