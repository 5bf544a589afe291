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

#include "domain/readiness.h"
#include "domain/state.h"
#include "eventstore/event_log.h"
#include "eventstore/home.h"
#include "providers/sqlite/storage.h"

namespace via::providers::sqlite {

struct ProviderOptions {
  eventstore::Home home;
  std::string actor;
  Clock* clock = nullptr;
  // Test-only fault injection: "provision_fail" (fail before any file is
  // written) or "provision_fail_after_create" (fail after the file holds
  // SQLite bytes). Empty in production.
  std::string test_fault;
};

struct RepairOutcome {
  std::vector<std::string> actions;  // StorageRepaired actions appended, in order
  std::string warning;               // e.g. "recreated empty: no verified snapshot"
};

// Probes an add-on's database file for real (read-only open, quick_check),
// without needing the log.
StorageFact ProbeAddonStorage(const eventstore::Home& home, const std::string& addon_id,
                              std::string* detail = nullptr);

class SqliteProvider {
 public:
  SqliteProvider(ProviderOptions options, eventstore::EventLog& log)
      : options_(std::move(options)), log_(log) {}

  // Probes the add-on's database file for real (read-only, quick_check).
  StorageFact ProbeStorage(const std::string& addon_id, std::string* detail = nullptr) const;

  std::filesystem::path DatabasePath(const std::string& addon_id) const {
    return options_.home.addon_db(addon_id);
  }

  // Creates the database of an add-on whose AddonCreated is in the log and
  // appends StorageProvisioned or ProvisioningFailed. Idempotent.
  Status Provision(const std::string& addon_id);

  // Repairs missing or corrupt storage (or adopts the intact file of a failed
  // record): appends RepairRequested, moves a corrupt file aside (never
  // deleting bytes), restores the newest verified snapshot or recreates an
  // empty database, then appends StorageRepaired. `state` must be current.
  Result<RepairOutcome> Repair(const State& state, const std::string& addon_id);

 private:
  Status AppendCompletion(const std::string& command_id, std::vector<Event> events);

  ProviderOptions options_;
  eventstore::EventLog& log_;
};

}  // namespace via::providers::sqlite
