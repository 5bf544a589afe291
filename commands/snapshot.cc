// `via addon snapshot | snapshots | restore | check`, and the lifecycle of
// snapshots after they are taken (verify, delete, policy, prune, export):
// file work of the provider, answered from this command's own events.

#include "commands/addon.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>

#include "commands/nodes.h"
#include "commands/session.h"
#include "eventstore/filenames.h"
#include "domain/decide.h"
#include "domain/names.h"
#include "domain/reasons.h"
#include "domain/snapshots.h"
#include "storage/file.h"

namespace via::commands {
namespace {

// The provider's progress by phase, as "WHAT PHASE" lines for the CLI.
providers::PhaseProgress PhaseSink(const Context& ctx, const std::string& what) {
  if (!ctx.progress) return nullptr;
  auto progress = ctx.progress;
  return [progress, what](const char* phase, std::uint64_t done, std::uint64_t total) {
    progress(what + " " + phase, done, total);
  };
}

// One snapshot by id with its add-on and the add-on's other snapshots (for
// "the newest verified one"), in one read.
Result<std::pair<State, eventstore::Head>> SnapshotSlice(Session& session,
                                                         const std::string& snapshot_id) {
  StateKeys keys;
  keys.snapshots.insert(snapshot_id);
  return session.Slice(keys, [&](const State& s) {
    StateKeys more;
    if (auto it = s.snapshots.find(snapshot_id); it != s.snapshots.end()) {
      more.addons.insert(it->second.addon_id);
      more.snapshots_of.insert(it->second.addon_id);
    }
    return more;
  });
}

// File work kept on the owner's home (snapshot delete, prune, export): on
// another node's home, FailedPrecondition "owner_elsewhere" before anything
// is appended, naming the node and the command to run on its home.
Status RequireOwnerFor(const Context& ctx, Session& session, const std::string& addon_id,
                       const std::string& command) {
  Status owned = session.RequireOwner(ctx, addon_id);
  if (owned.reason() != reason::kOwnerElsewhere) return owned;
  VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(AddonKeys(addon_id)));
  const AddonState* a = slice.first.FindAddon(addon_id);
  const std::string node = a != nullptr ? a->node : "";
  return FailedPrecondition(reason::kOwnerElsewhere,
                            owned.message() + "; `" + command +
                                "` runs only there (run it with --home of node " + node + ")")
      .WithRemediation(command);
}

Status RequireSnapshotId(const std::string& snapshot_id) {
  if (snapshot_id.empty() || snapshot_id.size() > 128 ||
      snapshot_id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
          std::string::npos) {
    return InvalidArgument("invalid_snapshot_id", "not a snapshot id: '" + snapshot_id + "'");
  }
  return Status::Ok();
}

// Requests and takes one snapshot of a live add-on.
// Several nodes: the add-on's files are on its owner. Appends the intent
// under OwnerWorkCommandId (the owner's `via serve` takes the snapshot and
// appends the completion) and waits up to ctx.owner_timeout_ms for it.
Result<SnapshotState> AskOwnerForSnapshot(const Context& ctx, Session& session,
                                          const std::string& addon, const std::string& label,
                                          const std::string& snapshot_id_new) {
  Context asking = ctx;
  // Under the operator's --command-id when there is one, so that running the
  // command again answers with the first run's snapshot (replayed below).
  asking.command_id = OwnerWorkCommandId(ctx.command_id.empty() ? snapshot_id_new : ctx.command_id);
  VIA_ASSIGN_OR_RETURN(Decided decided,
                       DecideAndAppend(asking, session, AddonKeys(addon), [&](const State& s) {
                         return DecideSnapshot(s, addon, snapshot_id_new, label);
                       }));
  const auto& requested = std::get<SnapshotRequested>(decided.events.front());
  const std::string snapshot_id = requested.snapshot_id;  // the first run's on a replay
  const std::string node = decided.state.FindById(requested.addon_id)->node;
  std::optional<SnapshotState> done;
  VIA_RETURN_IF_ERROR(AwaitOwner(
      ctx, node, "snapshot " + snapshot_id + " of " + requested.addon_id,
      "via addon snapshots " + requested.addon_id, [&](Session& now) -> Result<bool> {
        StateKeys keys;
        keys.snapshots.insert(snapshot_id);
        VIA_ASSIGN_OR_RETURN(auto slice, now.Slice(keys));
        const SnapshotState& snap = slice.first.snapshots.at(snapshot_id);
        if (snap.status == SnapshotStatus::kFailed) {
          return Internal("node " + node + " could not take snapshot " + snapshot_id + ": " +
                          snap.failure_reason)
              .WithContext("snapshot " + snapshot_id);
        }
        if (snap.status == SnapshotStatus::kTaken) done = snap;
        return done.has_value();
      }));
  return *done;
}

Result<SnapshotState> TakeOne(const Context& ctx, Session& session, const std::string& addon,
                              const std::string& label, const std::string& step = "1") {
  const std::string snapshot_id = ctx.ids->NewId("sn_");
  // Before the intent: a snapshot of another node's add-on is that node's.
  Status owned = session.RequireOwner(ctx, addon);
  if (owned.reason() == reason::kOwnerElsewhere) {
    return AskOwnerForSnapshot(ctx, session, addon, label, snapshot_id);
  }
  VIA_RETURN_IF_ERROR(owned);
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
  VIA_ASSIGN_OR_RETURN(auto provider, session.OwnedProvider(ctx, requested.addon_id));
  VIA_ASSIGN_OR_RETURN(SnapshotTaken taken,
                       provider->Snapshot(requested.addon_id, snapshot_id,
                                                      PhaseSink(ctx, "snapshot " + snapshot_id)));
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
  const std::string command_id = StepCommandId(ctx, "check");
  // A retry of the same --command-id answers with the recorded check.
  VIA_ASSIGN_OR_RETURN(auto previous, FindCommandRecords(session.store(), command_id));
  std::optional<StorageChecked> recorded;
  std::uint64_t seq = 0;
  std::string id;
  if (previous && !previous->records.empty()) {
    if (const auto* e = std::get_if<StorageChecked>(&previous->records.back().event)) {
      recorded = *e;
      seq = previous->records.back().seq;
      id = e->addon_id;
    }
  }
  if (!recorded) {
    VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(AddonKeys(addon)));
    VIA_ASSIGN_OR_RETURN(id, DecideCheck(slice.first, addon));
    Status owned = session.RequireOwner(ctx, id);
    if (owned.reason() == reason::kOwnerElsewhere) {
      // Another node's add-on: that node checks it (owner work) and records
      // StorageChecked under the outcome's command id; the answer is that
      // record, read as a retry of it would.
      const AddonState* a = slice.first.FindById(id);
      VIA_ASSIGN_OR_RETURN(OwnerWorkOutcome asked,
                           AskOwner(ctx, session, id, a->node, "check", "",
                                    "via addon status " + a->name));
      VIA_RETURN_IF_ERROR(OwnerWorkError(asked.finished));
      Context recorded_by_owner = ctx;
      recorded_by_owner.command_id = asked.done_command_id;
      return CheckAddon(recorded_by_owner, id);
    }
    VIA_RETURN_IF_ERROR(owned);
    VIA_ASSIGN_OR_RETURN(auto provider, session.OwnedProvider(ctx, id));
    VIA_ASSIGN_OR_RETURN(auto outcome, provider->Check(id, command_id));
    if (outcome.replayed) {
      // A racing retry recorded its check first: that one is the answer.
      VIA_ASSIGN_OR_RETURN(previous, FindCommandRecords(session.store(), command_id));
      if (!previous || previous->records.empty() ||
          !std::holds_alternative<StorageChecked>(previous->records.back().event)) {
        return Internal("check: command " + command_id + " holds no StorageChecked");
      }
      outcome.event = std::get<StorageChecked>(previous->records.back().event);
      outcome.seq = previous->records.back().seq;
    }
    recorded = outcome.event;
    seq = outcome.seq;
  }
  VIA_ASSIGN_OR_RETURN(auto now, session.Slice(AddonKeys(id)));
  const AddonState* a = now.first.FindById(id);
  if (a == nullptr) return Internal("check: add-on " + id + " vanished");
  CheckResult result{id, a->name, *recorded, seq, ""};
  if (!recorded->ok) {
    AddonState after = *a;
    after.check_seq = seq;
    after.check_ok = false;
    after.check_detail = recorded->detail;
    ReadinessInput in;
    in.requested = addon;
    in.addon = &after;
    in.storage = StorageFact::kOk;
    ctx.providers->Describe(a->provider, in, ProviderEnvironment(ctx, nullptr));
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

// A refused restore's next command: the newest other snapshot of the add-on
// that is not known bad and whose file still matches its record, when there
// is one (else no command: the operator decides).
Result<RestoreResult> WithOtherSnapshot(Session& session, const providers::Provider& provider,
                                        const AddonState& a, const std::string& snapshot_id,
                                        Status refused) {
  VIA_ASSIGN_OR_RETURN(auto all, session.Slice(AddonKeys(a.id), [&](const State&) {
    StateKeys more;
    more.snapshots_of.insert(a.id);
    return more;
  }));
  const SnapshotState* best = nullptr;
  for (const auto& [sid, other] : all.first.snapshots) {
    if (sid == snapshot_id || other.addon_id != a.id || other.deleted ||
        other.status != SnapshotStatus::kTaken ||
        other.verification == SnapshotVerification::kFailed) {
      continue;
    }
    if (best != nullptr && best->requested_seq > other.requested_seq) continue;
    auto d = fileio::DigestFile(provider.SnapshotPath(a.id, sid));
    if (d.ok() && Bytes(d->sha256.begin(), d->sha256.end()) == other.sha256) best = &other;
  }
  if (best != nullptr) {
    refused = refused.WithRemediation("via addon restore " + a.name + " --snapshot " + best->id);
  }
  return refused;
}

namespace {

// Several nodes: a restore of an add-on placed on another node. The safety
// snapshot and the restore are requested in one append under
// OwnerWorkCommandId (the owner's `via serve` takes the safety snapshot,
// checks the snapshot as a local restore does, restores, and appends
// SnapshotRestored or RestoreFailed); this command waits up to
// ctx.owner_timeout_ms for that completion. A snapshot known to have failed
// verification is refused here, before anything is appended.
Result<RestoreResult> AskOwnerForRestore(const Context& ctx, Session& session,
                                         const AddonState& a, const SnapshotState& snap) {
  if (snap.verification == SnapshotVerification::kFailed) {
    return DataLoss("snapshot_verification_failed",
                    "snapshot " + snap.id + " failed verification (" + snap.verify_detail +
                        "); refusing to restore it")
        .WithOwner("operator");
  }
  const std::string id = a.id;
  const std::string snapshot_id = snap.id;
  const std::string safety_id = ctx.ids->NewId("sn_");
  // Under --command-id a retry finds the first run's request (and waits for
  // its completion) instead of asking again.
  Context asking = ctx;
  asking.command_id = OwnerWorkCommandId(ctx.command_id.empty() ? safety_id : ctx.command_id);
  StateKeys keys = AddonKeys(id);
  keys.snapshots.insert(snapshot_id);
  VIA_ASSIGN_OR_RETURN(
      Decided decided,
      DecideAndAppend(asking, session, keys, [&](const State& s) -> Result<std::vector<Event>> {
        VIA_RETURN_IF_ERROR(CheckRestore(s, id, snapshot_id));
        VIA_ASSIGN_OR_RETURN(std::vector<Event> events,
                             DecideSnapshot(s, id, safety_id, kSafetyLabelPrefix + snapshot_id));
        events.push_back(RestoreRequested{id, snapshot_id, safety_id});
        return events;
      }, nullptr, "restore"));
  RestoreRequested requested;
  for (const Event& e : decided.events) {
    if (const auto* r = std::get_if<RestoreRequested>(&e)) requested = *r;
  }
  if (requested.addon_id.empty()) return Internal("restore: no RestoreRequested among its records");
  const std::string completion = eventstore::RestoreCommandId(
      requested.addon_id, requested.snapshot_id, requested.safety_snapshot_id);
  Status failed;
  VIA_RETURN_IF_ERROR(AwaitOwner(
      ctx, a.node, "restore " + requested.snapshot_id + " of " + id, "via addon history " + a.name,
      [&](Session& now) -> Result<bool> {
        VIA_ASSIGN_OR_RETURN(auto records, FindCommandRecords(now.store(), completion));
        if (!records) return false;
        for (const Record& record : records->records) {
          if (const auto* e = std::get_if<RestoreFailed>(&record.event)) {
            failed = RemoteRestoreFailure(a.node, requested.snapshot_id, e->reason);
          }
        }
        return true;
      }));
  VIA_RETURN_IF_ERROR(failed);
  return RestoreResult{id, requested.snapshot_id, requested.safety_snapshot_id};
}

}  // namespace

Result<RestoreResult> RestoreAddon(const Context& ctx, const std::string& addon,
                                   const std::string& snapshot_id) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  StateKeys keys = AddonKeys(addon);
  keys.snapshots.insert(snapshot_id);
  VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(keys));
  VIA_RETURN_IF_ERROR(CheckRestore(slice.first, addon, snapshot_id));
  const AddonState& a = *slice.first.FindAddon(addon);
  SnapshotState snap = slice.first.snapshots.at(snapshot_id);
  const std::string id = a.id;
  // Another node's add-on: that node restores it.
  Status owned = session.RequireOwner(ctx, id);
  if (owned.reason() == reason::kOwnerElsewhere) {
    return AskOwnerForRestore(ctx, session, a, snap);
  }
  VIA_RETURN_IF_ERROR(owned);
  // Verified before the live database is touched: a snapshot never verified
  // is verified now (and the outcome recorded); one that failed is refused.
  VIA_ASSIGN_OR_RETURN(auto provider, session.OwnedProvider(ctx, id));
  if (snap.verification == SnapshotVerification::kUnverified) {
    VIA_ASSIGN_OR_RETURN(SnapshotVerified verified,
                         provider->Verify(id, snapshot_id,
                                                      PhaseSink(ctx, "verify " + snapshot_id)));
    snap.verification = verified.ok ? SnapshotVerification::kVerified : SnapshotVerification::kFailed;
    snap.verify_detail = verified.detail;
  }
  if (snap.verification == SnapshotVerification::kFailed) {
    return WithOtherSnapshot(session, *provider, a, snapshot_id,
                             DataLoss("snapshot_verification_failed",
                                      "snapshot " + snapshot_id + " failed verification (" +
                                          snap.verify_detail + "); refusing to restore it")
                                 .WithOwner("operator"));
  }
  // The file must be exactly what was taken and verified.
  auto digest = fileio::DigestFile(provider->SnapshotPath(id, snapshot_id),
                                              PhaseSink(ctx, "restore " + snapshot_id));
  if (!digest.ok()) {
    return WithOtherSnapshot(session, *provider, a, snapshot_id,
                             DataLoss("snapshot_file_missing",
                                      "snapshot file of " + snapshot_id +
                                          " cannot be read: " + digest.status().message())
                                 .WithOwner("operator"));
  }
  if (Bytes(digest->sha256.begin(), digest->sha256.end()) != snap.sha256 ||
      digest->bytes != snap.bytes) {
    Status refused = DataLoss("snapshot_hash_mismatch",
                              "snapshot file of " + snapshot_id +
                                  " does not match the SHA-256 recorded in the log; refusing to "
                                  "restore it")
                         .WithOwner("operator");
    return WithOtherSnapshot(session, *provider, a, snapshot_id, refused);
  }
  // The undo: a safety snapshot of the current data.
  VIA_ASSIGN_OR_RETURN(SnapshotState safety,
                       TakeOne(ctx, session, id, kSafetyLabelPrefix + snapshot_id, "safety"));
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
  VIA_RETURN_IF_ERROR(provider->Restore(id, snapshot_id, safety.id, /*verified=*/true,
                                        PhaseSink(ctx, "restore " + snapshot_id)));
  return RestoreResult{id, snapshot_id, safety.id};
}

namespace {

// What a verify command answers: each snapshot its SnapshotVerified records
// name, as those records left it (a replayed retry: as the first run left it,
// whatever was verified since).
std::vector<SnapshotState> VerifiedBy(const Context& ctx, const Decided& decided) {
  const State after = decided.After();
  std::vector<SnapshotState> out;
  for (std::size_t i = 0; i < decided.events.size(); ++i) {
    const auto* e = std::get_if<SnapshotVerified>(&decided.events[i]);
    if (e == nullptr) continue;
    auto it = after.snapshots.find(e->snapshot_id);
    if (it == after.snapshots.end()) continue;
    SnapshotState snap = it->second;
    snap.verification = e->ok ? SnapshotVerification::kVerified : SnapshotVerification::kFailed;
    snap.verify_detail = e->detail;
    snap.verified_at_ms = i < decided.records.size() ? decided.records[i].recorded_at_ms
                                                     : ctx.clock->NowMs();
    out.push_back(std::move(snap));
  }
  return out;
}

}  // namespace

Result<std::vector<SnapshotState>> VerifySnapshots(const Context& ctx, const std::string& addon,
                                                   const std::string& snapshot_id) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  if (!snapshot_id.empty()) VIA_RETURN_IF_ERROR(RequireSnapshotId(snapshot_id));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  auto more = [&](const State& s) {
    StateKeys keys;
    if (const AddonState* a = s.FindAddon(addon)) keys.snapshots_of.insert(a->id);
    return keys;
  };
  // A retry of the same --command-id: the first run's outcomes; no file is
  // read again and nothing is appended.
  VIA_ASSIGN_OR_RETURN(auto replayed, FindReplay(ctx, session, AddonKeys(addon), more, "verify"));
  if (replayed) return VerifiedBy(ctx, *replayed);
  VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(AddonKeys(addon), more));
  const AddonState* a = slice.first.FindAddon(addon);
  if (a == nullptr) {
    return NotFound("addon_not_found", "no add-on named " + addon)
        .WithRemediation("via addon list --all");
  }
  std::vector<SnapshotState> targets;
  if (!snapshot_id.empty()) {
    auto it = slice.first.snapshots.find(snapshot_id);
    if (it == slice.first.snapshots.end() || it->second.addon_id != a->id) {
      return NotFound("snapshot_not_found", "no snapshot " + snapshot_id + " of " + a->name)
          .WithRemediation("via addon snapshots " + a->name);
    }
    targets.push_back(it->second);
  } else {
    for (const auto& [sid, snap] : slice.first.snapshots) {
      if (snap.addon_id == a->id && snap.status == SnapshotStatus::kTaken && !snap.deleted &&
          snap.verification == SnapshotVerification::kUnverified) {
        targets.push_back(snap);
      }
    }
    std::sort(targets.begin(), targets.end(), [](const SnapshotState& x, const SnapshotState& y) {
      return x.requested_seq < y.requested_seq;
    });
  }
  const std::string id = a->id;
  if (targets.empty()) return std::vector<SnapshotState>{};
  Status owned = session.RequireOwner(ctx, id);
  if (owned.reason() == reason::kOwnerElsewhere) {
    // Another node's add-on: that node verifies (owner work) and records
    // the outcomes under the outcome's command id; the answer is those
    // records, read as a retry of it would.
    VIA_ASSIGN_OR_RETURN(OwnerWorkOutcome asked,
                         AskOwner(ctx, session, id, a->node, "verify", snapshot_id,
                                  "via addon snapshots " + a->name));
    VIA_RETURN_IF_ERROR(OwnerWorkError(asked.finished));
    Context recorded_by_owner = ctx;
    recorded_by_owner.command_id = asked.done_command_id;
    VIA_ASSIGN_OR_RETURN(Session now, Session::OpenForReading(ctx));
    VIA_ASSIGN_OR_RETURN(auto outcomes,
                         FindReplay(recorded_by_owner, now, AddonKeys(id), more, "verify"));
    if (!outcomes) return std::vector<SnapshotState>{};
    return VerifiedBy(recorded_by_owner, *outcomes);
  }
  VIA_RETURN_IF_ERROR(owned);
  // The files first (the long part, no lock on the log held), then every
  // outcome in one append: a retry finds them all under its id, or none.
  std::vector<SnapshotVerified> checked;
  VIA_ASSIGN_OR_RETURN(auto provider, session.OwnedProvider(ctx, id));
  for (const SnapshotState& snap : targets) {
    VIA_ASSIGN_OR_RETURN(SnapshotVerified verified,
                         provider->CheckSnapshot(id, snap.id, PhaseSink(ctx, "verify " + snap.id)));
    checked.push_back(std::move(verified));
  }
  if (checked.empty()) return std::vector<SnapshotState>{};
  StateKeys keys = AddonKeys(id);
  keys.snapshots_of.insert(id);
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, keys, [&](const State& s) -> Result<std::vector<Event>> {
    // A snapshot deleted since its check has no outcome to record.
    std::vector<Event> events;
    for (const SnapshotVerified& v : checked) {
      auto it = s.snapshots.find(v.snapshot_id);
      if (it != s.snapshots.end() && it->second.status == SnapshotStatus::kTaken &&
          !it->second.deleted) {
        events.push_back(v);
      }
    }
    return events;
  }, nullptr, "verify"));
  return VerifiedBy(ctx, decided);
}

Result<SnapshotState> DeleteSnapshot(const Context& ctx, const std::string& snapshot_id,
                                     bool force) {
  VIA_RETURN_IF_ERROR(RequireSnapshotId(snapshot_id));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  StateKeys keys;
  keys.snapshots.insert(snapshot_id);
  auto more = [&](const State& s) {
    StateKeys extra;
    if (auto it = s.snapshots.find(snapshot_id); it != s.snapshots.end()) {
      extra.addons.insert(it->second.addon_id);
      extra.snapshots_of.insert(it->second.addon_id);
    }
    return extra;
  };
  {
    // Deleting removes the owner's file: refused on another node's home
    // before the event is appended.
    VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(keys));
    auto it = slice.first.snapshots.find(snapshot_id);
    if (it != slice.first.snapshots.end()) {
      VIA_RETURN_IF_ERROR(RequireOwnerFor(ctx, session, it->second.addon_id,
                                          "via addon snapshot delete " + snapshot_id +
                                              (force ? " --force" : "")));
    }
  }
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, keys, [&](const State& s) {
                         return DecideDeleteSnapshot(s, snapshot_id, force, "operator");
                       }, more));
  SnapshotState snap = decided.After().snapshots.at(snapshot_id);
  // After the event: a crash here leaves a file that `via recover` removes.
  ctx.crash.At("delete.after_event");
  VIA_ASSIGN_OR_RETURN(auto provider, session.OwnedProvider(ctx, snap.addon_id));
  VIA_RETURN_IF_ERROR(provider->RemoveSnapshotFile(snap.addon_id, snapshot_id));
  return snap;
}

Result<AddonState> SetSnapshotPolicy(const Context& ctx, const std::string& addon,
                                     const SnapshotPolicy& policy) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, AddonKeys(addon), [&](const State& s) {
                         return DecidePolicy(s, addon, policy);
                       }));
  const State after = decided.After();
  const AddonState* a = after.FindAddon(addon);
  if (a == nullptr) return NotFound("addon_not_found", "no add-on named " + addon);
  AddonState out = *a;
  // A replayed retry: the policy the first run set, whatever was set since.
  for (const Event& e : decided.events) {
    if (const auto* set = std::get_if<SnapshotPolicySet>(&e)) {
      out.keep_last = set->keep_last;
      out.keep_daily = set->keep_daily;
      out.keep_weekly = set->keep_weekly;
      out.snapshot_every_s = set->every_seconds;
    }
  }
  return out;
}

Result<PruneResult> PruneSnapshots(const Context& ctx, const std::string& addon, bool dry_run) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  auto more = [&](const State& s) {
    StateKeys keys;
    if (const AddonState* a = s.FindAddon(addon)) keys.snapshots_of.insert(a->id);
    return keys;
  };
  PruneResult result;
  result.dry_run = dry_run;
  State state;
  // The snapshots this command deletes: those its records name (a replayed
  // retry of the same --command-id: the first run's), or the plan of a dry run.
  std::vector<std::string> doomed;
  if (dry_run) {
    VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(AddonKeys(addon), more));
    state = std::move(slice.first);
  } else {
    // Pruning removes the owner's files: refused on another node's home
    // before anything is appended (a dry run only reads the log).
    VIA_RETURN_IF_ERROR(
        RequireOwnerFor(ctx, session, addon, "via addon snapshots prune " + addon));
    VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, AddonKeys(addon), [&](const State& s) -> Result<std::vector<Event>> {
      const AddonState* a = s.FindAddon(addon);
      if (a == nullptr) return std::vector<Event>{};
      std::vector<Event> events;
      for (const std::string& sid : PlanPrune(s, a->id)) {
        events.push_back(SnapshotDeleted{a->id, sid, "retention"});
      }
      return events;
    }, more));
    state = decided.state;
    for (const Event& e : decided.events) {
      if (const auto* gone = std::get_if<SnapshotDeleted>(&e)) doomed.push_back(gone->snapshot_id);
    }
  }
  const AddonState* a = state.FindAddon(addon);
  if (a == nullptr) {
    return NotFound("addon_not_found", "no add-on named " + addon)
        .WithRemediation("via addon list --all");
  }
  result.addon_id = a->id;
  if (dry_run) doomed = PlanPrune(state, a->id);
  for (const auto& [sid, snap] : state.snapshots) {
    if (snap.addon_id != a->id || snap.status != SnapshotStatus::kTaken) continue;
    bool goes = std::find(doomed.begin(), doomed.end(), sid) != doomed.end();
    if (snap.deleted && !goes) continue;  // deleted before this command
    (goes ? result.deleted : result.kept).push_back(snap);
  }
  auto by_seq = [](const SnapshotState& x, const SnapshotState& y) {
    return x.requested_seq < y.requested_seq;
  };
  std::sort(result.deleted.begin(), result.deleted.end(), by_seq);
  std::sort(result.kept.begin(), result.kept.end(), by_seq);
  if (!dry_run) {
    ctx.crash.At("prune.after_event");
    VIA_ASSIGN_OR_RETURN(auto provider, session.OwnedProvider(ctx, a->id));
    for (SnapshotState& snap : result.deleted) {
      snap.deleted = true;
      snap.deleted_reason = "retention";
      VIA_RETURN_IF_ERROR(provider->RemoveSnapshotFile(a->id, snap.id));
    }
  }
  return result;
}

Result<ExportResult> ExportSnapshot(const Context& ctx, const std::string& snapshot_id,
                                    const std::string& to) {
  VIA_RETURN_IF_ERROR(RequireSnapshotId(snapshot_id));
  if (to.empty()) return InvalidArgument("invalid_path", "--to needs a file name");
  VIA_ASSIGN_OR_RETURN(Session session, Session::OpenForReading(ctx));
  VIA_ASSIGN_OR_RETURN(auto slice, SnapshotSlice(session, snapshot_id));
  auto it = slice.first.snapshots.find(snapshot_id);
  if (it == slice.first.snapshots.end()) {
    return NotFound("snapshot_not_found", "no snapshot " + snapshot_id);
  }
  const SnapshotState& snap = it->second;
  if (snap.status != SnapshotStatus::kTaken) {
    return FailedPrecondition("snapshot_not_taken",
                              "snapshot " + snapshot_id + " is " + SnapshotStatusName(snap.status));
  }
  if (snap.deleted) {
    return FailedPrecondition("snapshot_deleted", "snapshot " + snapshot_id + " was deleted");
  }
  // The copy is written on the machine the command runs on: the owner's.
  VIA_RETURN_IF_ERROR(RequireOwnerFor(ctx, session, snap.addon_id,
                                      "via addon snapshot export " + snapshot_id + " --to " + to));
  VIA_ASSIGN_OR_RETURN(auto provider, session.OwnedProvider(ctx, snap.addon_id));
  VIA_ASSIGN_OR_RETURN(fileio::Digest digest,
                       provider->ExportSnapshot(snap.addon_id, snapshot_id, to, snap.sha256,
                                                PhaseSink(ctx, "export " + snapshot_id)));
  return ExportResult{snapshot_id, snap.addon_id, to,
                      Bytes(digest.sha256.begin(), digest.sha256.end()), digest.bytes};
}

}  // namespace via::commands
