#pragma once

// Decisions about an add-on's snapshots after they are taken: which one to
// restore in a repair, deletion, retention policy and pruning (DESIGN.md
// section 5: a snapshot is usable once durable and hashed, verified later).
// Pure functions of the folded State.

#include <cstdint>
#include <string>
#include <vector>

#include "domain/state.h"
#include "domain/status.h"

namespace via {

// The label prefix of the snapshot `restore` takes of the current data first.
inline constexpr const char* kSafetyLabelPrefix = "safety before restore of ";

// A safety snapshot (taken by `restore` as its undo).
bool IsSafetySnapshot(const SnapshotState& snap);

// Taken, not deleted, and not found damaged by a verification.
bool IsUsableSnapshot(const SnapshotState& snap);

// The add-on's usable snapshots in the order a repair tries them: the
// verified ones newest first, then the unverified ones newest first.
std::vector<const SnapshotState*> RepairCandidates(const State& state, const std::string& addon_id);

// The newest verified, not deleted snapshot of the add-on, or null.
const SnapshotState* NewestVerified(const State& state, const std::string& addon_id);

// SnapshotDeleted for `snapshot_id` with `reason`. Refuses a snapshot that is
// not known (NotFound "snapshot_not_found"), already deleted
// ("snapshot_deleted"), still being taken or in use by a restore
// ("snapshot_in_use"), and the newest verified snapshot of its add-on without
// `force` ("newest_verified_snapshot").
Result<std::vector<Event>> DecideDeleteSnapshot(const State& state, const std::string& snapshot_id,
                                                bool force, const std::string& reason);

struct SnapshotPolicy {
  std::uint32_t keep_last = 0;
  std::uint32_t keep_daily = 0;
  std::uint32_t keep_weekly = 0;
  std::uint32_t every_seconds = 0;
};

// SnapshotPolicySet for a live add-on. A schedule without any keep rule is
// refused ("policy_keeps_nothing"): scheduled snapshots would pile up.
Result<std::vector<Event>> DecidePolicy(const State& state, const std::string& addon,
                                        const SnapshotPolicy& policy);

// What the retention policy of `addon_id` removes at `now_ms`, oldest first.
// Kept: the newest keep_last usable snapshots; the newest one of each of the
// keep_daily most recent UTC days that have one; the newest one of each of
// the keep_weekly most recent weeks (Monday to Sunday, UTC) that have one;
// always the newest verified snapshot. Safety snapshots count like any other.
// Snapshots found damaged by a verification are removed. Snapshots in flight
// (requested, or in use by a restore) are never touched. An add-on without a
// policy (all keep rules zero) loses nothing.
std::vector<std::string> PlanPrune(const State& state, const std::string& addon_id);

// Whether the schedule of the add-on (SnapshotPolicySet.every_seconds) wants a
// new snapshot at `now_ms`: it has one, and its newest snapshot (taken or
// being taken) is at least that old.
bool SnapshotDue(const State& state, const AddonState& addon, std::int64_t now_ms);

}  // namespace via
