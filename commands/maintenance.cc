#include "commands/maintenance.h"

#include <algorithm>

#include "commands/addon.h"
#include "commands/nodes.h"
#include "commands/session.h"
#include "domain/snapshots.h"

namespace via::commands {

Result<MaintenanceReport> MaintainSnapshots(const Context& ctx, const MaintenanceOptions& options) {
  MaintenanceReport report;
  // The add-ons and their snapshots, from one read.
  std::vector<AddonState> addons;
  // Several nodes: each does the file work of the add-ons placed on it (and
  // of those placed on none), never another node's.
  VIA_ASSIGN_OR_RETURN(std::optional<std::string> home_node, HomeNode(ctx.home));
  VIA_RETURN_IF_ERROR(ListAddons(ctx, /*all=*/false, [&](const AddonSummary& summary) {
    if (!summary.addon.node.empty() && summary.addon.node != home_node.value_or("")) return true;
    addons.push_back(summary.addon);
    return true;
  }));
  VIA_ASSIGN_OR_RETURN(Session session, Session::OpenForReading(ctx));
  StateKeys keys;
  for (const AddonState& a : addons) {
    keys.addons.insert(a.id);
    keys.snapshots_of.insert(a.id);
  }
  VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(keys));
  State state = std::move(slice.first);
  const std::int64_t now = ctx.clock->NowMs();
  auto failed = [&](const std::string& what, const Status& status) {
    report.errors.push_back(what + ": " + status.ToString() + " " + status.message());
  };

  for (const AddonState& a : addons) {
    const AddonState* current = state.FindById(a.id);
    if (current == nullptr) continue;
    if (options.schedule && SnapshotDue(state, *current, now)) {
      auto snap = SnapshotAddon(ctx, a.id, "scheduled");
      if (snap.ok()) {
        report.done.push_back("snapshot " + snap->id + " of " + a.id + " (scheduled)");
      } else {
        failed("scheduled snapshot of " + a.id, snap.status());
      }
    }
    if (options.prune && !PlanPrune(state, a.id).empty()) {
      auto pruned = PruneSnapshots(ctx, a.id, /*dry_run=*/false);
      if (pruned.ok()) {
        report.done.push_back("pruned " + std::to_string(pruned->deleted.size()) +
                              " snapshots of " + a.id);
      } else {
        failed("prune of " + a.id, pruned.status());
      }
    }
  }

  if (options.verify && options.max_verifications > 0) {
    if (!report.done.empty()) {
      // What the jobs above appended (new snapshots, deletions), read again.
      VIA_ASSIGN_OR_RETURN(Session again, Session::OpenForReading(ctx));
      VIA_ASSIGN_OR_RETURN(auto fresh, again.Slice(keys));
      state = std::move(fresh.first);
    }
    std::vector<const SnapshotState*> unverified;
    for (const auto& [id, snap] : state.snapshots) {
      if (snap.status == SnapshotStatus::kTaken && !snap.deleted &&
          snap.verification == SnapshotVerification::kUnverified) {
        unverified.push_back(&snap);
      }
    }
    std::sort(unverified.begin(), unverified.end(), [](const SnapshotState* x, const SnapshotState* y) {
      return x->requested_seq < y->requested_seq;
    });
    std::size_t count = 0;
    for (const SnapshotState* snap : unverified) {
      if (count++ >= options.max_verifications) break;
      auto verified = VerifySnapshots(ctx, snap->addon_id, snap->id);
      if (!verified.ok()) {
        failed("verify " + snap->id, verified.status());
        continue;
      }
      for (const SnapshotState& v : *verified) {
        report.done.push_back("verified " + v.id + ": " + SnapshotVerificationName(v.verification) +
                              (v.verification == SnapshotVerification::kFailed
                                   ? " (" + v.verify_detail + ")"
                                   : ""));
      }
    }
  }
  return report;
}

}  // namespace via::commands
