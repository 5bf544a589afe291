// `via addon snapshot | snapshots | restore | check`: two-phase file work of
// the provider, answered from this command's own events.

#include "commands/addon.h"

#include <algorithm>

#include "commands/session.h"
#include "domain/decide.h"
#include "providers/sqlite/storage.h"

namespace via::commands {
namespace {

std::function<void(std::uint64_t, std::uint64_t)> PagesProgress(const Context& ctx,
                                                                const std::string& what) {
  if (!ctx.progress) return nullptr;
  auto progress = ctx.progress;
  return [progress, what](std::uint64_t done, std::uint64_t total) { progress(what, done, total); };
}

// Requests and takes one snapshot of a live add-on.
Result<SnapshotState> TakeOne(const Context& ctx, Session& session, const std::string& addon,
                              const std::string& label, const std::string& step = "1") {
  const std::string snapshot_id = ctx.ids->NewId("sn_");
  VIA_ASSIGN_OR_RETURN(Decided decided,
                       DecideAndAppend(
                           ctx, session, AddonKeys(addon),
                           [&](const State& s) {
                             return DecideSnapshot(s, addon, snapshot_id, label);
                           },
                           nullptr, step));
  const auto& requested = std::get<SnapshotRequested>(decided.events.front());
  if (decided.replayed) {
    // A retry of the same --command-id: the first run's snapshot, as it is
    // now (finished, or still requested when that run died: via recover).
    StateKeys keys = AddonKeys(requested.addon_id);
    keys.snapshots.insert(requested.snapshot_id);
    VIA_ASSIGN_OR_RETURN(auto now, session.Slice(keys));
    return now.first.snapshots.at(requested.snapshot_id);
  }
  VIA_ASSIGN_OR_RETURN(SnapshotTaken taken,
                       session.Provider(ctx).Snapshot(requested.addon_id, snapshot_id,
                                                      PagesProgress(ctx, "snapshot " + snapshot_id)));
  // The answer is this command's own request and completion, folded.
  State after = decided.After();
  Record completion;
  completion.seq = decided.appended.last_seq + 1;
  completion.event = taken;
  Apply(after, completion);
  return after.snapshots.at(snapshot_id);
}

}  // namespace

Result<SnapshotState> SnapshotAddon(const Context& ctx, const std::string& addon,
                                    const std::string& label) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  return TakeOne(ctx, session, addon, label);
}

Result<CheckResult> CheckAddon(const Context& ctx, const std::string& addon) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(AddonKeys(addon)));
  VIA_ASSIGN_OR_RETURN(std::string id, DecideCheck(slice.first, addon));
  const AddonState& a = *slice.first.FindById(id);
  VIA_ASSIGN_OR_RETURN(auto outcome, session.Provider(ctx).Check(id));
  CheckResult result{id, a.name, outcome.event, outcome.seq, ""};
  if (!outcome.event.ok) {
    AddonState after = a;
    after.check_seq = outcome.seq;
    after.check_ok = false;
    after.check_detail = outcome.event.detail;
    ReadinessInput in;
    in.requested = addon;
    in.addon = &after;
    in.storage = StorageFact::kOk;
    result.remediation = Evaluate(in).remediation;
  }
  return result;
}

Result<std::vector<SnapshotState>> ListSnapshots(const Context& ctx, const std::string& addon) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  VIA_ASSIGN_OR_RETURN(Session session, Session::OpenForReading(ctx));
  VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(AddonKeys(addon), [&](const State& s) {
    StateKeys keys;
    if (const AddonState* a = s.FindAddon(addon)) keys.snapshots_of.insert(a->id);
    return keys;
  }));
  const AddonState* a = slice.first.FindAddon(addon);
  if (a == nullptr) {
    return NotFound("addon_not_found", "no add-on named " + addon)
        .WithRemediation("via addon list --all");
  }
  std::vector<SnapshotState> out;
  for (const auto& [id, snap] : slice.first.snapshots) {
    if (snap.addon_id == a->id) out.push_back(snap);
  }
  std::sort(out.begin(), out.end(), [](const SnapshotState& x, const SnapshotState& y) {
    return x.requested_seq < y.requested_seq;
  });
  return out;
}

Result<RestoreResult> RestoreAddon(const Context& ctx, const std::string& addon,
                                   const std::string& snapshot_id) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  StateKeys keys = AddonKeys(addon);
  keys.snapshots.insert(snapshot_id);
  VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(keys));
  VIA_RETURN_IF_ERROR(CheckRestore(slice.first, addon, snapshot_id));
  const AddonState& a = *slice.first.FindAddon(addon);
  const SnapshotState& snap = slice.first.snapshots.at(snapshot_id);
  // The file must be exactly what the log says was taken.
  auto digest = providers::sqlite::DigestFile(ctx.home.snapshot_file(a.id, snapshot_id));
  if (!digest.ok()) {
    return DataLoss("snapshot_file_missing", "snapshot file of " + snapshot_id +
                                                 " cannot be read: " + digest.status().message());
  }
  if (Bytes(digest->sha256.begin(), digest->sha256.end()) != snap.sha256 ||
      digest->bytes != snap.bytes) {
    Status refused = DataLoss("snapshot_hash_mismatch",
                              "snapshot file of " + snapshot_id +
                                  " does not match the SHA-256 recorded in the log; refusing to "
                                  "restore it")
                         .WithOwner("operator");
    // The next command to paste: the newest other snapshot that still
    // matches its record, when there is one.
    VIA_ASSIGN_OR_RETURN(auto all, session.Slice(AddonKeys(a.id), [&](const State&) {
      StateKeys more;
      more.snapshots_of.insert(a.id);
      return more;
    }));
    const SnapshotState* best = nullptr;
    for (const auto& [sid, other] : all.first.snapshots) {
      if (sid == snapshot_id || other.addon_id != a.id || other.deleted ||
          other.status != SnapshotStatus::kTaken) {
        continue;
      }
      if (best != nullptr && best->requested_seq > other.requested_seq) continue;
      auto d = providers::sqlite::DigestFile(ctx.home.snapshot_file(a.id, sid));
      if (d.ok() && Bytes(d->sha256.begin(), d->sha256.end()) == other.sha256) best = &other;
    }
    if (best != nullptr) {
      refused = refused.WithRemediation("via addon restore " + a.name + " --snapshot " + best->id);
    }
    return refused;
  }
  // The undo: a safety snapshot of the current data.
  const std::string id = a.id;
  VIA_ASSIGN_OR_RETURN(SnapshotState safety,
                       TakeOne(ctx, session, id, "safety before restore of " + snapshot_id,
                               "safety"));
  StateKeys restore_keys = AddonKeys(id);
  restore_keys.snapshots.insert(snapshot_id);
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, restore_keys, [&](const State& s) -> Result<std::vector<Event>> {
    VIA_RETURN_IF_ERROR(CheckRestore(s, id, snapshot_id));
    return std::vector<Event>{RestoreRequested{id, snapshot_id, safety.id}};
  }, nullptr, "restore"));
  if (decided.replayed) {
    // A retry of the same --command-id: that restore was requested already;
    // never write the snapshot over newer content again.
    const auto& requested = std::get<RestoreRequested>(decided.events.front());
    return RestoreResult{id, requested.snapshot_id, requested.safety_snapshot_id};
  }
  VIA_RETURN_IF_ERROR(session.Provider(ctx).Restore(id, snapshot_id, safety.id,
                                                    PagesProgress(ctx, "restore " + snapshot_id)));
  return RestoreResult{id, snapshot_id, safety.id};
}

}  // namespace via::commands
