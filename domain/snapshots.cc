#include "domain/snapshots.h"

#include <algorithm>
#include <set>

namespace via {
namespace {

constexpr std::int64_t kDayMs = 24LL * 60 * 60 * 1000;

// Days since 1970-01-01 (a Thursday), UTC; floor for times before it.
std::int64_t DayOf(std::int64_t ms) { return ms >= 0 ? ms / kDayMs : (ms - kDayMs + 1) / kDayMs; }
// Weeks starting on Monday: day 0 was a Thursday, so Monday 1969-12-29 is day -3.
std::int64_t WeekOf(std::int64_t ms) {
  std::int64_t d = DayOf(ms) + 3;
  return d >= 0 ? d / 7 : (d - 6) / 7;
}

// The add-on's usable snapshots, newest first.
std::vector<const SnapshotState*> UsableNewestFirst(const State& state, const std::string& addon_id) {
  std::vector<const SnapshotState*> out;
  for (const auto& [id, snap] : state.snapshots) {
    if (snap.addon_id == addon_id && IsUsableSnapshot(snap)) out.push_back(&snap);
  }
  std::sort(out.begin(), out.end(), [](const SnapshotState* a, const SnapshotState* b) {
    return a->requested_seq > b->requested_seq;
  });
  return out;
}

}  // namespace

bool IsSafetySnapshot(const SnapshotState& snap) {
  return snap.label.rfind(kSafetyLabelPrefix, 0) == 0;
}

bool IsUsableSnapshot(const SnapshotState& snap) {
  return snap.status == SnapshotStatus::kTaken && !snap.deleted &&
         snap.verification != SnapshotVerification::kFailed;
}

std::vector<const SnapshotState*> RepairCandidates(const State& state, const std::string& addon_id) {
  std::vector<const SnapshotState*> out = UsableNewestFirst(state, addon_id);
  std::stable_partition(out.begin(), out.end(), [](const SnapshotState* s) {
    return s->verification == SnapshotVerification::kVerified;
  });
  return out;
}

const SnapshotState* NewestVerified(const State& state, const std::string& addon_id) {
  for (const SnapshotState* snap : UsableNewestFirst(state, addon_id)) {
    if (snap->verification == SnapshotVerification::kVerified) return snap;
  }
  return nullptr;
}

Result<std::vector<Event>> DecideDeleteSnapshot(const State& state, const std::string& snapshot_id,
                                                bool force, const std::string& reason) {
  auto it = state.snapshots.find(snapshot_id);
  if (it == state.snapshots.end()) {
    return NotFound("snapshot_not_found", "no snapshot " + snapshot_id);
  }
  const SnapshotState& snap = it->second;
  if (snap.deleted) {
    return FailedPrecondition("snapshot_deleted", "snapshot " + snapshot_id + " is already deleted")
        .WithOwner("operator");  // nothing left to delete
  }
  const AddonState* addon = state.FindById(snap.addon_id);
  if (snap.status == SnapshotStatus::kRequested ||
      (addon != nullptr && (addon->restoring_snapshot == snapshot_id ||
                            addon->restore_safety_snapshot == snapshot_id))) {
    return FailedPrecondition("snapshot_in_use",
                              "snapshot " + snapshot_id + " is being taken or restored")
        .WithRemediation("via recover");
  }
  if (!force) {
    const SnapshotState* newest = NewestVerified(state, snap.addon_id);
    if (newest != nullptr && newest->id == snapshot_id) {
      return FailedPrecondition("newest_verified_snapshot",
                                "snapshot " + snapshot_id + " is the newest verified snapshot of " +
                                    snap.addon_id + ": a repair would restore it")
          .WithRemediation("via addon snapshot delete " + snapshot_id + " --force");
    }
  }
  return std::vector<Event>{SnapshotDeleted{snap.addon_id, snapshot_id, reason}};
}

Result<std::vector<Event>> DecidePolicy(const State& state, const std::string& addon,
                                        const SnapshotPolicy& policy) {
  const AddonState* a = state.FindAddon(addon);
  if (a == nullptr) {
    return NotFound("addon_not_found", "no add-on named " + addon)
        .WithRemediation("via addon list --all");
  }
  if (a->phase == AddonPhase::kDestroyed) {
    return FailedPrecondition("addon_destroyed", "add-on " + a->id + " is destroyed");
  }
  if (policy.every_seconds != 0 && policy.keep_last == 0 && policy.keep_daily == 0 &&
      policy.keep_weekly == 0) {
    return InvalidArgument("policy_keeps_nothing",
                           "a schedule (--every) needs a retention rule (--keep-last, "
                           "--keep-daily or --keep-weekly), or its snapshots would pile up")
        .WithOwner("operator");
  }
  return std::vector<Event>{SnapshotPolicySet{a->id, policy.keep_last, policy.keep_daily,
                                              policy.keep_weekly, policy.every_seconds}};
}

std::vector<std::string> PlanPrune(const State& state, const std::string& addon_id) {
  const AddonState* addon = state.FindById(addon_id);
  if (addon == nullptr) return {};
  if (addon->keep_last == 0 && addon->keep_daily == 0 && addon->keep_weekly == 0) return {};
  std::vector<const SnapshotState*> usable = UsableNewestFirst(state, addon_id);
  std::set<std::string> keep;
  for (std::size_t i = 0; i < usable.size() && i < addon->keep_last; ++i) keep.insert(usable[i]->id);
  std::set<std::int64_t> days, weeks;
  for (const SnapshotState* snap : usable) {  // newest first: the first of each period is kept
    std::int64_t day = DayOf(snap->requested_at_ms);
    if (!days.count(day) && days.size() < addon->keep_daily) {
      days.insert(day);
      keep.insert(snap->id);
    }
    std::int64_t week = WeekOf(snap->requested_at_ms);
    if (!weeks.count(week) && weeks.size() < addon->keep_weekly) {
      weeks.insert(week);
      keep.insert(snap->id);
    }
  }
  if (const SnapshotState* newest = NewestVerified(state, addon_id)) keep.insert(newest->id);
  std::vector<const SnapshotState*> doomed;
  for (const auto& [id, snap] : state.snapshots) {
    if (snap.addon_id != addon_id || snap.deleted || snap.status != SnapshotStatus::kTaken) continue;
    if (addon->restoring_snapshot == id || addon->restore_safety_snapshot == id) continue;
    if (!keep.count(id)) doomed.push_back(&snap);
  }
  std::sort(doomed.begin(), doomed.end(), [](const SnapshotState* a, const SnapshotState* b) {
    return a->requested_seq < b->requested_seq;
  });
  std::vector<std::string> out;
  for (const SnapshotState* snap : doomed) out.push_back(snap->id);
  return out;
}

bool SnapshotDue(const State& state, const AddonState& addon, std::int64_t now_ms) {
  if (addon.snapshot_every_s == 0 || addon.phase != AddonPhase::kActive) return false;
  if (!addon.pending_snapshot.empty() || !addon.restoring_snapshot.empty()) return false;
  std::int64_t newest = -1;
  for (const auto& [id, snap] : state.snapshots) {
    if (snap.addon_id == addon.id && snap.status != SnapshotStatus::kFailed) {
      newest = std::max(newest, snap.requested_at_ms);
    }
  }
  return newest < 0 || now_ms - newest >= static_cast<std::int64_t>(addon.snapshot_every_s) * 1000;
}

}  // namespace via
