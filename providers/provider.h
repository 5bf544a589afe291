#pragma once

// The provider contract (DESIGN.md sections 2 and 5): what every kind of
// managed resource (SQLite files, PostgreSQL databases, later queues or
// caches) does for the add-ons that name it in AddonCreated::provider.
//
// Two-phase rule. Every side effect has an intent event in the log before a
// provider touches anything (AddonCreated, SnapshotRequested,
// RestoreRequested, RepairRequested, GenerationRotated, GenerationRevoked,
// AddonDestroyed); the provider does the work and appends the completion
// (StorageProvisioned/ProvisioningFailed, SnapshotTaken/SnapshotFailed,
// SnapshotRestored/RestoreFailed, StorageRepaired) with a command id derived
// from the intent, so that a retry, a second process or `via recover` finishing
// the same work appends nothing twice. Work that has no completion event
// (creating a generation's role, revoking it, retiring storage) is idempotent
// and may run again at any time: `via recover` re-applies it from the log.
//
// A provider owns its storage layout (addons/<id>/… and
// snapshots/<id>/<snapshot>.<ext> under the home, or objects on a server) and
// the words its blockers use. domain/ names no provider; commands/ and
// server/ reach a provider through the Registry (registry.h) that cli/ builds.
//
// See docs/providers.md for how to add one.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "domain/crash.h"
#include "domain/events.h"
#include "domain/ids.h"
#include "domain/readiness.h"
#include "domain/state.h"
#include "domain/status.h"
#include "eventstore/event_log.h"
#include "eventstore/home.h"
#include "storage/file.h"

namespace via::providers {

// Long work reports (phase, done, total); may be null.
using PhaseProgress =
    std::function<void(const char* phase, std::uint64_t done, std::uint64_t total)>;

// Test-only fault injection (DESIGN.md section 2: test hooks are objects
// injected by tests). A provider asks it at named points of its work, as it
// asks CrashPoints; an error is the failure to inject there (the provider
// treats it as the failure of that step: a ProvisioningFailed or
// SnapshotFailed with its message). Production leaves Environment::test_faults
// null; the CLI of a build with test hooks builds one from $VIA_TEST_FAULT
// (providers/sqlite/fault_vfs.h). Points:
//   provision.before_file   Provision, before any storage is written
//   provision.after_file    Provision, after the storage was created
//   snapshot.before_file    Snapshot, before the snapshot file is written
class TestFaults {
 public:
  virtual ~TestFaults() = default;
  virtual Status At(std::string_view point) = 0;
};

// What a provider instance works with. `log` is where completions are
// appended; null for an instance that only probes and describes (via serve's
// descriptor path, readiness reports).
struct Environment {
  eventstore::Home home;
  std::string actor;
  Clock* clock = nullptr;
  eventstore::EventLog* log = nullptr;
  // Test-only fault injection, null in production (TestFaults above). Not
  // owned: the caller keeps it alive as long as the provider.
  TestFaults* test_faults = nullptr;
  // Test-only named crash points (domain/crash.h).
  CrashPoints crash;
};

struct RepairOutcome {
  std::vector<std::string> actions;  // StorageRepaired actions appended, in order
  std::string warning;               // e.g. "recreated empty: no verified snapshot"
  std::string restored_from;         // the snapshot restored, when one was
};

struct CheckOutcome {
  StorageChecked event;
  std::uint64_t seq = 0;
  // A record under the given command id was already in the log: nothing was
  // appended and `event` is this run's check, not the recorded one (the
  // caller reads that).
  bool replayed = false;
};

// The words a provider's storage goes by in readiness reasons and
// remediations (domain/readiness.h ReadinessInput).
struct StorageWords {
  std::string noun;       // "database file" (SQLite), "database" (PostgreSQL)
  std::string data_note;  // why a failed record with data keeps its name
};

// What the descriptor of one generation carries besides the binding, add-on
// id, generation, app and release (DESIGN.md section 8).
struct DescriptorInput {
  std::string addon_id;
  std::uint32_t generation = 0;
  Hash256 credential{};      // DeriveCredential(credentials.key, id, generation, salt)
  std::string proxy_url;     // via serve's public URL
  std::string proxy_token;   // the proxy's auth_token for that credential
};
struct DescriptorFields {
  std::string url;
  std::string auth_token;  // "" when the url carries the credential
};

// The preconditions of checking, verifying or exporting a snapshot, the same
// for every provider: the snapshot belongs to `addon_id` in `state` (NotFound
// "snapshot_not_found"), was taken (FailedPrecondition "snapshot_not_taken")
// and not deleted ("snapshot_deleted"). Returns it, pointing into `state`.
Result<const SnapshotState*> TakenSnapshot(const State& state, const std::string& addon_id,
                                           const std::string& snapshot_id);

class Provider {
 public:
  virtual ~Provider() = default;

  // The name in AddonCreated::provider and on the command line.
  virtual std::string Name() const = 0;
  virtual StorageWords Words() const = 0;
  // Whether via serve's SQL proxy serves this provider's add-ons (SQLite);
  // otherwise apps connect to the url of their descriptor.
  virtual bool ProxiesSql() const = 0;

  // Readiness: probes the add-on's storage for real, at the same cost on an
  // empty and a large database; never changes anything. `detail` may name
  // files or servers (for operators, not apps).
  virtual StorageFact Probe(const std::string& addon_id, std::string* detail) const = 0;
  // Where the add-on's storage lives, for reports (`via recover`).
  virtual std::string StorageLocation(const std::string& addon_id) const = 0;
  // The file of one snapshot (the provider picks the extension).
  virtual std::filesystem::path SnapshotPath(const std::string& addon_id,
                                             const std::string& snapshot_id) const = 0;

  // Creates the storage of an add-on whose AddonCreated is in the log and
  // appends StorageProvisioned or ProvisioningFailed. Idempotent.
  virtual Status Provision(const std::string& addon_id) = 0;

  // Takes the snapshot whose SnapshotRequested is in the log (durable and
  // hashed before SnapshotTaken), or appends SnapshotFailed.
  virtual Result<SnapshotTaken> Snapshot(const std::string& addon_id,
                                         const std::string& snapshot_id,
                                         const PhaseProgress& progress = nullptr) = 0;
  // Verifies a taken snapshot and appends SnapshotVerified (a damaged file
  // is a result, not an error).
  virtual Result<SnapshotVerified> Verify(const std::string& addon_id,
                                          const std::string& snapshot_id,
                                          const PhaseProgress& progress = nullptr) = 0;
  // The check of Verify without the append: the event the caller records
  // itself (several in one append, under its --command-id). Errors as Verify.
  virtual Result<SnapshotVerified> CheckSnapshot(const std::string& addon_id,
                                                 const std::string& snapshot_id,
                                                 const PhaseProgress& progress = nullptr) = 0;
  // `via addon snapshot export`: copies a taken snapshot to `dest` (a new
  // file), checking on the way that its bytes hash to `expected_sha256`
  // (DataLoss "snapshot_hash_mismatch", and no `dest`, otherwise). The default
  // copies SnapshotPath() with fileio::CopyVerified (storage/file.h): a
  // temporary file beside `dest`, fsync, rename, fsync of the folder. A
  // provider whose snapshots are not one file overrides it.
  virtual Result<fileio::Digest> ExportSnapshot(const std::string& addon_id,
                                                const std::string& snapshot_id,
                                                const std::filesystem::path& dest,
                                                ByteView expected_sha256,
                                                const PhaseProgress& progress = nullptr);
  // Removes the file of a snapshot whose SnapshotDeleted is in the log.
  virtual Status RemoveSnapshotFile(const std::string& addon_id,
                                    const std::string& snapshot_id) = 0;
  // Restores the snapshot whose RestoreRequested is in the log, then
  // SnapshotRestored or RestoreFailed. Apps never see torn storage.
  virtual Status Restore(const std::string& addon_id, const std::string& snapshot_id,
                         const std::string& safety_snapshot_id, bool verified = false,
                         const PhaseProgress& progress = nullptr) = 0;
  // `via recover` of a SnapshotRequested without completion: keeps a durable
  // final file (SnapshotTaken) or closes it (SnapshotFailed). True when kept.
  virtual Result<bool> FinishSnapshot(const std::string& addon_id,
                                      const std::string& snapshot_id) = 0;
  // Repairs missing or corrupt storage (RepairRequested, then
  // StorageRepaired): newest verified snapshot, else empty only with
  // `allow_empty` where data existed (FailedPrecondition
  // "repair_needs_allow_empty").
  virtual Result<RepairOutcome> Repair(const std::string& addon_id, bool allow_empty = false) = 0;
  // `via recover` of a RepairRequested without completion.
  virtual Result<RepairOutcome> FinishRepair(const State& state, const std::string& addon_id) = 0;
  // The full check of live storage, recorded as StorageChecked (under
  // `command_id` when not empty).
  virtual Result<CheckOutcome> Check(const std::string& addon_id,
                                     const std::string& command_id = "") = 0;

  // `addon create --from-file | --from-snapshot`: stages storage from a file
  // before AddonCreated is appended. Providers without it refuse with
  // FailedPrecondition "import_not_supported".
  virtual Status StageImport(const std::string& addon_id, const std::filesystem::path& source,
                             bool source_verified, const PhaseProgress& progress = nullptr) {
    (void)addon_id, (void)source, (void)source_verified, (void)progress;
    return FailedPrecondition("import_not_supported",
                              "provider " + Name() + " cannot create an add-on from a file");
  }
  virtual void DiscardImport(const std::string& addon_id) { (void)addon_id; }

  // Credentials, after GenerationRotated / GenerationRevoked are in the log.
  // EnsureGeneration makes the generation's credential usable (a login role,
  // …; the credential is derived from keys/credentials.key and the salt of
  // its GenerationRotated, never stored) and is idempotent; RevokeGeneration
  // refuses it at once, open sessions included. For a proxied provider the
  // proxy does both from the log: no-ops.
  virtual Status EnsureGeneration(const std::string& addon_id, std::uint32_t generation) {
    (void)addon_id, (void)generation;
    return Status::Ok();
  }
  virtual Status RevokeGeneration(const std::string& addon_id, std::uint32_t generation) {
    (void)addon_id, (void)generation;
    return Status::Ok();
  }
  // After AddonDestroyed: what happens to the storage is the provider's
  // documented choice (SQLite keeps the file). Idempotent.
  virtual Status Retire(const std::string& addon_id) {
    (void)addon_id;
    return Status::Ok();
  }
  // `via provider add NAME --admin-url URL --password-file FILE`: checks
  // that the server answers and accepts the secret, keeps both under
  // keys/providers/ (0600), and returns the event to append (no secret:
  // its fingerprint). Providers without a server refuse with
  // FailedPrecondition "provider_not_configurable".
  virtual Result<ProviderConfigured> Configure(const std::string& admin_url,
                                               const std::string& secret) {
    (void)admin_url, (void)secret;
    return FailedPrecondition("provider_not_configurable",
                              "provider " + Name() + " has no server to register");
  }
  // The descriptor's url and auth_token for one generation.
  virtual Result<DescriptorFields> Describe(const DescriptorInput& in) const = 0;
};

}  // namespace via::providers
