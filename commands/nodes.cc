#include "commands/nodes.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "commands/addon.h"
#include "commands/session.h"
#include "domain/names.h"
#include "domain/reasons.h"
#include "eventstore/filenames.h"
#include "storage/file.h"

namespace via::commands {

Result<std::optional<std::string>> HomeNode(const eventstore::Home& home) {
  auto bytes = eventstore::ReadFile(home.node_file(), 4096);
  if (!bytes.ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) return std::optional<std::string>();
    return bytes.status();
  }
  std::string name(bytes->begin(), bytes->end());
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
  if (!ValidateNodeName(name).ok()) {
    return InvalidArgument("bad_node_file", home.node_file().string() + " does not hold a node name")
        .WithRemediation("write this home's node name into " + home.node_file().string() +
                         " (or delete it: the next `via serve --node NAME` writes it)");
  }
  return std::optional<std::string>(name);
}

Result<AnnounceResult> AnnounceNode(const Context& ctx, const std::string& node,
                                    const std::string& public_url) {
  VIA_RETURN_IF_ERROR(ValidateNodeName(node));
  VIA_RETURN_IF_ERROR(ValidatePublicUrl(public_url));
  VIA_ASSIGN_OR_RETURN(std::optional<std::string> home_node, HomeNode(ctx.home));
  if (home_node && *home_node != node) {
    return FailedPrecondition("node_mismatch", "this home is node " + *home_node + "'s, not " + node)
        .WithRemediation("via serve --node " + *home_node + " (a home serves one node; a new node "
                         "gets a home of its own)");
  }
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  VIA_ASSIGN_OR_RETURN(
      Decided decided,
      DecideAndAppend(ctx, session, StateKeys{}, [&](const State& s) -> Result<std::vector<Event>> {
        auto it = s.nodes.find(node);
        if (it != s.nodes.end() && it->second == public_url) return std::vector<Event>{};
        return std::vector<Event>{NodeAnnounced{node, public_url}};
      }));
  if (!home_node) {
    const std::string line = node + "\n";
    VIA_RETURN_IF_ERROR(
        eventstore::WriteFileAtomically(ctx.home.node_file(), AsBytes(line), 0644));
  }
  AnnounceResult result;
  result.node = node;
  result.public_url = public_url;
  result.announced = !decided.events.empty() && !decided.replayed;
  result.seq = decided.appended.last_seq;
  return result;
}

Result<std::string> PlacementNode(const Context& ctx, const std::string& requested) {
  VIA_ASSIGN_OR_RETURN(std::optional<std::string> home_node, HomeNode(ctx.home));
  if (requested.empty()) return home_node.value_or("");
  VIA_RETURN_IF_ERROR(ValidateNodeName(requested));
  return requested;
}

Result<bool> IsOtherNode(const Context& ctx, const std::string& node) {
  if (node.empty()) return false;
  VIA_ASSIGN_OR_RETURN(std::optional<std::string> home_node, HomeNode(ctx.home));
  return node != home_node.value_or("");
}

Status AwaitOwner(const Context& ctx, const std::string& node, const std::string& what,
                  const std::string& shows, const std::function<Result<bool>(Session&)>& finished) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(std::max<std::int64_t>(0, ctx.owner_timeout_ms));
  for (;;) {
    // A new read each time: a session catches its model up once.
    VIA_ASSIGN_OR_RETURN(Session now, Session::OpenForReading(ctx));
    VIA_ASSIGN_OR_RETURN(bool done, finished(now));
    if (done) return Status::Ok();
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Unavailable("owner_timeout",
                     "node " + node + " did not finish " + what + " within " +
                         std::to_string(ctx.owner_timeout_ms) +
                         " ms; the request stays in the log and node " + node +
                         " carries it out once its `via serve` runs")
      .WithRemediation("check that `via serve --node " + node + "` runs (its /readyz), then `" +
                       shows + "` shows the outcome");
}

namespace {

// The snapshot another node's home asked for, unless it is finished.
Result<std::string> FinishOwnerSnapshot(const Context& ctx, Session& session,
                                        const std::string& addon_id,
                                        const std::string& snapshot_id) {
  const std::string what = "snapshot " + snapshot_id + " of " + addon_id;
  StateKeys keys = AddonKeys(addon_id);
  keys.snapshots.insert(snapshot_id);
  VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(keys));
  auto it = slice.first.snapshots.find(snapshot_id);
  if (it == slice.first.snapshots.end()) {
    return NotFound("snapshot_not_found", "no snapshot " + snapshot_id);
  }
  if (it->second.status != SnapshotStatus::kRequested) {
    return what + ": " + SnapshotStatusName(it->second.status) + " already";
  }
  VIA_ASSIGN_OR_RETURN(auto provider, session.OwnedProvider(ctx, addon_id));
  VIA_RETURN_IF_ERROR(provider->Snapshot(addon_id, snapshot_id, nullptr).status());
  return what + ": taken";
}

// A restore another node's home asked for: the checks a local restore makes
// before its intent are made here, after it, and a refusal closes the intent
// with RestoreFailed "CODE: message" (RemoteRestoreFailure reads it back).
Result<std::string> FinishOwnerRestore(const Context& ctx, Session& session,
                                       const RestoreRequested& r) {
  const std::string what = "restore " + r.snapshot_id + " of " + r.addon_id;
  StateKeys keys = AddonKeys(r.addon_id);
  keys.snapshots.insert(r.snapshot_id);
  keys.snapshots.insert(r.safety_snapshot_id);
  VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(keys));
  const AddonState* a = slice.first.FindById(r.addon_id);
  if (a == nullptr || a->restoring_snapshot != r.snapshot_id ||
      a->restore_safety_snapshot != r.safety_snapshot_id) {
    return what + ": finished already";
  }
  VIA_ASSIGN_OR_RETURN(auto provider, session.OwnedProvider(ctx, r.addon_id));
  auto refuse = [&](const std::string& code, const std::string& message) -> Result<std::string> {
    eventstore::AppendRequest request;
    request.actor = ctx.actor;
    request.command_id =
        eventstore::RestoreCommandId(r.addon_id, r.snapshot_id, r.safety_snapshot_id);
    request.recorded_at_ms = ctx.clock->NowMs();
    request.events.push_back(RestoreFailed{r.addon_id, r.snapshot_id, code + ": " + message});
    VIA_RETURN_IF_ERROR(session.log().Append(request).status());
    return what + ": refused: " + code + ": " + message;
  };
  // 1. The undo: the safety snapshot, requested in the same append.
  auto safety = slice.first.snapshots.find(r.safety_snapshot_id);
  if (safety == slice.first.snapshots.end()) {
    return refuse("safety_snapshot_failed", "no safety snapshot " + r.safety_snapshot_id);
  }
  if (safety->second.status == SnapshotStatus::kRequested) {
    auto taken = provider->Snapshot(r.addon_id, r.safety_snapshot_id, nullptr);
    if (!taken.ok()) {
      return refuse("safety_snapshot_failed", "the safety snapshot " + r.safety_snapshot_id +
                                                  " could not be taken: " +
                                                  taken.status().message());
    }
  } else if (safety->second.status != SnapshotStatus::kTaken) {
    return refuse("safety_snapshot_failed", "the safety snapshot " + r.safety_snapshot_id +
                                                " failed: " + safety->second.failure_reason);
  }
  // 2. The snapshot: verified (now, recorded, when it never was) and exactly
  // the bytes its event names.
  auto it = slice.first.snapshots.find(r.snapshot_id);
  if (it == slice.first.snapshots.end()) {
    return refuse("snapshot_not_found", "no snapshot " + r.snapshot_id);
  }
  SnapshotState snap = it->second;
  if (snap.verification == SnapshotVerification::kUnverified) {
    VIA_ASSIGN_OR_RETURN(SnapshotVerified verified,
                         provider->Verify(r.addon_id, r.snapshot_id, nullptr));
    snap.verification =
        verified.ok ? SnapshotVerification::kVerified : SnapshotVerification::kFailed;
    snap.verify_detail = verified.detail;
  }
  if (snap.verification == SnapshotVerification::kFailed) {
    return refuse("snapshot_verification_failed",
                  "snapshot " + r.snapshot_id + " failed verification (" + snap.verify_detail +
                      "); refusing to restore it");
  }
  auto digest = fileio::DigestFile(provider->SnapshotPath(r.addon_id, r.snapshot_id));
  if (!digest.ok()) {
    return refuse("snapshot_file_missing", "snapshot file of " + r.snapshot_id +
                                               " cannot be read: " + digest.status().message());
  }
  if (Bytes(digest->sha256.begin(), digest->sha256.end()) != snap.sha256 ||
      digest->bytes != snap.bytes) {
    return refuse("snapshot_hash_mismatch",
                  "snapshot file of " + r.snapshot_id +
                      " does not match the SHA-256 recorded in the log; refusing to restore it");
  }
  // 3. The restore; the provider appends SnapshotRestored or RestoreFailed.
  Status restored = provider->Restore(r.addon_id, r.snapshot_id, r.safety_snapshot_id,
                                      /*verified=*/true, nullptr);
  if (!restored.ok()) return restored;
  return what + ": restored (safety snapshot " + r.safety_snapshot_id + ")";
}

// The storage of an add-on another node's home created on this node.
Result<std::string> FinishOwnerProvision(const Context& ctx, Session& session,
                                         const std::string& addon_id) {
  const std::string what = "provisioning of " + addon_id;
  VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(AddonKeys(addon_id)));
  const AddonState* a = slice.first.FindById(addon_id);
  if (a == nullptr) return NotFound("addon_not_found", "no add-on " + addon_id);
  if (a->phase != AddonPhase::kProvisioning) return what + ": " + PhaseName(a->phase) + " already";
  VIA_ASSIGN_OR_RETURN(auto provider, session.OwnedProvider(ctx, addon_id));
  VIA_RETURN_IF_ERROR(provider->Provision(addon_id));
  return what + ": done";
}

// Repair, check or verification asked with OwnerWorkRequested: done as the
// command would do it on this home, its events under
// "done/<request>/<step>", then OwnerWorkFinished under "done/<request>".
Result<std::string> FinishOwnerRequest(const Context& ctx, Session& session,
                                       const std::string& command_id,
                                       const OwnerWorkRequested& request) {
  const std::string what = request.work + " of " + request.addon_id;
  const std::string done = OwnerWorkDoneCommandId(command_id);
  VIA_ASSIGN_OR_RETURN(auto already, FindCommandRecords(session.store(), done));
  if (already && !already->records.empty()) return what + ": finished already";
  Status failed = Status::Ok();
  // Placed on another node: that node answers. Any other refusal (the add-on
  // gone, destroyed) is answered here, so the asker gets it at once instead
  // of owner_timeout, and a restart does not find the request again.
  if (Status owned = session.RequireOwner(ctx, request.addon_id); !owned.ok()) {
    if (owned.reason() == reason::kOwnerElsewhere) return owned;
    failed = owned;
  }
  Context doing = ctx;
  doing.command_id = done;
  std::string message;
  if (!failed.ok()) {
    // refused above
  } else if (request.work == "check") {
    auto checked = CheckAddon(doing, request.addon_id);
    if (!checked.ok()) {
      failed = checked.status();
    } else {
      message = checked->checked.ok ? "checked: ok" : "checked: damage found: " + checked->checked.detail;
    }
  } else if (request.work == "verify") {
    auto verified = VerifySnapshots(doing, request.addon_id, request.argument);
    if (!verified.ok()) {
      failed = verified.status();
    } else {
      message = "verified " + std::to_string(verified->size()) + " snapshot(s)";
    }
  } else if (request.work == "repair") {
    VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(AddonKeys(request.addon_id)));
    const AddonState* a = slice.first.FindById(request.addon_id);
    auto repaired = a == nullptr ? Result<StorageRepair>(NotFound("addon_not_found",
                                                                 "no add-on " + request.addon_id))
                                 : RepairStorage(ctx, session, *a, request.argument == "allow_empty");
    if (!repaired.ok()) {
      failed = repaired.status();
    } else if (!repaired->refusal.ok()) {
      failed = repaired->refusal;
    } else {
      message = !repaired->warning.empty() ? repaired->warning
                : repaired->changed        ? std::string(kRepairedMessage)
                                           : std::string(kNothingToRepairMessage);
    }
  } else {
    failed = InvalidArgument("unknown_owner_work", "no owner work named '" + request.work + "'");
  }
  eventstore::AppendRequest finished;
  finished.actor = ctx.actor;
  finished.command_id = done;
  finished.recorded_at_ms = ctx.clock->NowMs();
  finished.events.push_back(OwnerWorkFinished{
      request.addon_id, command_id, failed.ok() ? "" : failed.reason(),
      failed.ok() ? "" : StatusCodeName(failed.code()), failed.ok() ? message : failed.message(),
      failed.remediation()});
  VIA_RETURN_IF_ERROR(session.log().Append(finished).status());
  return what + ": " + (failed.ok() ? message : "failed: " + failed.reason() + ": " + failed.message());
}

}  // namespace

Result<OwnerWorkOutcome> AskOwner(const Context& ctx, Session& session,
                                  const std::string& addon_id, const std::string& node,
                                  const std::string& work, const std::string& argument,
                                  const std::string& shows) {
  Context asking = ctx;
  asking.command_id =
      OwnerWorkCommandId(ctx.command_id.empty() ? ctx.ids->NewId("ow_") : ctx.command_id);
  VIA_ASSIGN_OR_RETURN(
      Decided decided,
      DecideAndAppend(asking, session, AddonKeys(addon_id),
                      [&](const State& s) -> Result<std::vector<Event>> {
                        const AddonState* a = s.FindById(addon_id);
                        if (a == nullptr || a->phase == AddonPhase::kDestroyed) {
                          return FailedPrecondition("addon_destroyed",
                                                    "add-on " + addon_id + " is destroyed");
                        }
                        return std::vector<Event>{OwnerWorkRequested{addon_id, work, argument}};
                      },
                      nullptr, work));
  OwnerWorkOutcome out;
  const std::string request = StepCommandId(asking, work);
  out.done_command_id = OwnerWorkDoneCommandId(request);
  out.requested_seq = decided.records.empty() ? decided.appended.last_seq : decided.records.front().seq;
  bool got = false;
  VIA_RETURN_IF_ERROR(AwaitOwner(ctx, node, work + " of " + addon_id, shows,
                                 [&](Session& now) -> Result<bool> {
                                   VIA_ASSIGN_OR_RETURN(auto records, FindCommandRecords(
                                                                          now.store(), out.done_command_id));
                                   if (!records) return false;
                                   for (const Record& r : records->records) {
                                     if (const auto* e = std::get_if<OwnerWorkFinished>(&r.event)) {
                                       out.finished = *e;
                                       out.finished_seq = r.seq;
                                       got = true;
                                     }
                                   }
                                   return got;
                                 }));
  return out;
}

Status OwnerWorkError(const OwnerWorkFinished& finished) {
  if (finished.code.empty()) return Status::Ok();
  StatusCode code = StatusCode::kInternal;
  for (int c = 0; c <= static_cast<int>(StatusCode::kInternal); ++c) {
    if (finished.status == StatusCodeName(static_cast<StatusCode>(c))) code = static_cast<StatusCode>(c);
  }
  if (code == StatusCode::kOk) code = StatusCode::kInternal;
  Status error(code, finished.code, finished.message);
  if (!finished.remediation.empty()) error = error.WithRemediation(finished.remediation);
  return error;
}

Result<std::string> RunOwnerWork(const Context& ctx, const std::string& command_id) {
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  VIA_ASSIGN_OR_RETURN(auto found, FindCommandRecords(session.store(), command_id));
  if (!found || found->records.empty()) {
    return NotFound("owner_work_not_found", "no records under command id " + command_id);
  }
  std::optional<SnapshotRequested> snapshot;
  std::optional<RestoreRequested> restore;
  std::optional<AddonCreated> created;
  std::optional<OwnerWorkRequested> asked;
  for (const Record& record : found->records) {
    if (const auto* e = std::get_if<OwnerWorkRequested>(&record.event)) asked = *e;
    if (const auto* e = std::get_if<SnapshotRequested>(&record.event)) snapshot = *e;
    if (const auto* e = std::get_if<RestoreRequested>(&record.event)) restore = *e;
    if (const auto* e = std::get_if<AddonCreated>(&record.event)) created = *e;
  }
  if (asked) return FinishOwnerRequest(ctx, session, command_id, *asked);
  if (restore) return FinishOwnerRestore(ctx, session, *restore);
  if (created) return FinishOwnerProvision(ctx, session, created->addon_id);
  if (snapshot) return FinishOwnerSnapshot(ctx, session, snapshot->addon_id, snapshot->snapshot_id);
  return "command " + command_id + ": no file work in it";
}

Status RemoteRestoreFailure(const std::string& node, const std::string& snapshot_id,
                            const std::string& reason) {
  // "CODE: message" when RunOwnerWork refused; any other reason (the
  // provider's own RestoreFailed) is kept whole.
  const std::size_t colon = reason.find(": ");
  std::string code = colon == std::string::npos ? "" : reason.substr(0, colon);
  const bool data = code == "snapshot_verification_failed" || code == "snapshot_file_missing" ||
                    code == "snapshot_hash_mismatch";
  const bool known = data || code == "snapshot_not_found" || code == "safety_snapshot_failed";
  const std::string message = "node " + node + " did not restore snapshot " + snapshot_id + ": " +
                              (known ? reason.substr(colon + 2) : reason);
  if (data) return DataLoss(code, message).WithOwner("operator");
  if (code == "snapshot_not_found") return NotFound(code, message).WithOwner("operator");
  return Status(StatusCode::kInternal, known ? code : "restore_failed", message);
}

}  // namespace via::commands
