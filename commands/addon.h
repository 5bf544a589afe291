#pragma once

// Handlers for `via addon ...` (DESIGN.md sections 6 and 7). Each loads the
// current state from the read model, decides with the pure domain functions,
// appends expecting the head it decided on (retrying when another process got
// there first), runs the provider, and returns a value for cli/ to render.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "commands/context.h"
#include "domain/readiness.h"
#include "domain/snapshots.h"
#include "domain/state.h"

namespace via::commands {

// The §7 report: add-on, binding, layers, blocker, owner, reason, remediation.
struct ReadinessReport {
  std::optional<AddonState> addon;
  std::string app;      // binding checked ("" when none)
  std::string binding;
  Readiness readiness;
  std::string warning;  // "" when none
  std::uint64_t log_size = 0;
  Hash256 log_root{};
  // `ensure` only.
  bool is_ensure = false;
  bool created = false;
  bool already_exists = false;
  bool changed = false;
  bool compatible = true;
  // `bind` / `unbind`: `changed` is part of the answer too.
  bool is_binding_change = false;
  // `ensure` only: why it refused to change anything (ok when it did not);
  // the readiness fields still describe the add-on and binding as they are.
  Status refusal;
  // `ensure --repair` only: the snapshot the storage was restored from.
  std::string restored_from;
  // Several nodes: the add-on's node when it is another than this home's;
  // its storage was then judged from the log, not probed (its files are
  // there). "" when this home probed it.
  std::string storage_node;
};

struct CreateRequest {
  std::string name;
  std::string provider = "sqlite";
  std::string app;
  std::string binding;  // optional: no binding is attached without one
  // `--node`: the node that owns it (default: the home's node, if any; see
  // commands/nodes.h PlacementNode).
  std::string node = {};
};

// `create` only: the data of the new add-on (at most one of the two).
struct CreateSource {
  std::string from_file;      // an existing SQLite database, checked first
  std::string from_snapshot;  // any snapshot id, a destroyed add-on's too
};

// Creates and provisions. Errors per DecideCreate; the report says whether the
// new add-on is usable (a provider failure leaves provisioning_failed).
Result<ReadinessReport> CreateAddon(const Context& ctx, const CreateRequest& request,
                                    const CreateSource& source = {});

Result<ReadinessReport> BindAddon(const Context& ctx, const std::string& addon,
                                  const std::string& app, const std::string& binding);
Result<ReadinessReport> UnbindAddon(const Context& ctx, const std::string& addon,
                                    const std::string& app, const std::string& binding);

// Idempotent create-or-check, binding a missing binding (when one is named);
// with `repair`, repairs storage, installing an empty database where data
// existed only with `allow_empty`. Never steals a binding that points at
// another add-on. A refusal comes back in the report (`refusal`), beside the
// full readiness of what is there.
Result<ReadinessReport> EnsureAddon(const Context& ctx, const CreateRequest& request, bool repair,
                                    bool allow_empty = false);

// Readiness of one add-on by live name or id. NotFound (with the report in
// `not_found_report`) is not an error here: the report says addon_not_found.
Result<ReadinessReport> AddonStatus(const Context& ctx, const std::string& addon);

struct AddonSummary {
  AddonState addon;
  std::vector<BindingKey> bindings;
  // The answer `addon status` gives for it (the binding it checks, its
  // readiness, storage probed), when ListAddons was asked for readiness.
  std::optional<ReadinessReport> report;
};
// Streams live add-ons (every record with `all`) ordered by stored name, with
// their bindings, from one snapshot; stops when `visit` returns false. Memory
// does not grow with the number of add-ons. With `readiness`, each comes with
// the readiness `addon status` reports, read from the same snapshot (a few
// indexed lookups and the provider's probe per add-on).
Status ListAddons(const Context& ctx, bool all,
                  const std::function<bool(const AddonSummary&)>& visit,
                  bool readiness = false);

struct Incarnation {
  AddonState addon;
  std::vector<Record> records;
};
// Every add-on ever created under `name`, oldest first, with its records.
Result<std::vector<Incarnation>> AddonHistory(const Context& ctx, const std::string& name);

struct DestroyResult {
  std::string addon_id;
  std::string tombstone_name;
  std::uint64_t seq = 0;
};
// `force`: destroy even when the latest release of an app claims it.
Result<DestroyResult> DestroyAddon(const Context& ctx, const std::string& addon,
                                   bool force = false);

// The full check of an add-on's live storage (`via addon check`), recorded as
// StorageChecked. A check that finds damage is a result (ok = false), not an
// error; status then reports storage_corrupt until a repair or restore.
struct CheckResult {
  std::string addon_id;
  std::string name;
  StorageChecked checked;
  std::uint64_t seq = 0;  // of the StorageChecked record
  std::string remediation;  // when damage was found
};
Result<CheckResult> CheckAddon(const Context& ctx, const std::string& addon);

// Two-phase snapshot (SnapshotRequested, file work, SnapshotTaken/Failed).
Result<SnapshotState> SnapshotAddon(const Context& ctx, const std::string& addon,
                                    const std::string& label);

// Snapshots of an add-on (live name or id, destroyed ones included), oldest first.
Result<std::vector<SnapshotState>> ListSnapshots(const Context& ctx, const std::string& addon);

struct RestoreResult {
  std::string addon_id;
  std::string snapshot_id;
  std::string safety_snapshot_id;  // restore this to undo
};
// Verifies the snapshot file against its event (DataLoss when it differs or is
// missing), takes a safety snapshot, then restores through SQLite.
Result<RestoreResult> RestoreAddon(const Context& ctx, const std::string& addon,
                                   const std::string& snapshot_id);

// `snapshots verify`: verifies `snapshot_id` (any state but deleted), or
// without it every taken snapshot of the add-on not verified yet, each
// recorded as SnapshotVerified; returns the snapshots as they are after.
Result<std::vector<SnapshotState>> VerifySnapshots(const Context& ctx, const std::string& addon,
                                                   const std::string& snapshot_id);

// `snapshot delete`: SnapshotDeleted ("operator"), then the file is removed.
// Refuses the newest verified snapshot of its add-on without `force`.
Result<SnapshotState> DeleteSnapshot(const Context& ctx, const std::string& snapshot_id,
                                     bool force);

// `snapshots policy`: SnapshotPolicySet; returns the add-on after.
Result<AddonState> SetSnapshotPolicy(const Context& ctx, const std::string& addon,
                                     const SnapshotPolicy& policy);

struct PruneResult {
  std::string addon_id;
  bool dry_run = false;
  std::vector<SnapshotState> deleted;  // (with --dry-run: would be)
  std::vector<SnapshotState> kept;
};
// `snapshots prune`: applies the retention policy (PlanPrune): SnapshotDeleted
// ("retention") for each, in one append, then the files are removed.
Result<PruneResult> PruneSnapshots(const Context& ctx, const std::string& addon, bool dry_run);

struct ExportResult {
  std::string snapshot_id;
  std::string addon_id;
  std::string path;
  Bytes sha256;
  std::uint64_t bytes = 0;
};
// `snapshot export`: copies the snapshot file to `to` (a new file), checking
// that the bytes are the ones recorded (DataLoss "snapshot_hash_mismatch").
Result<ExportResult> ExportSnapshot(const Context& ctx, const std::string& snapshot_id,
                                    const std::string& to);

struct GenerationResult {
  std::string addon_id;
  std::uint32_t generation = 0;
  std::vector<std::uint32_t> active;   // after the change
  std::vector<std::string> served_to;  // releases that were served a revoked generation
};
Result<GenerationResult> RotateCredentials(const Context& ctx, const std::string& addon);
Result<GenerationResult> RevokeCredentials(const Context& ctx, const std::string& addon,
                                           std::uint32_t generation, bool force);

struct ReleaseResult {
  ReleaseState release;
  std::vector<std::string> warnings;  // claims not usable now
};
Result<ReleaseResult> CreateRelease(const Context& ctx, const std::string& app,
                                    const std::string& release_id);
Result<std::vector<ReleaseState>> ListReleases(const Context& ctx, const std::string& app);

}  // namespace via::commands
