// `via addon create | bind | unbind | ensure | status | list | history |
// destroy`: the add-on lifecycle and the reading commands.

#include "commands/addon.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "commands/nodes.h"
#include "commands/session.h"
#include "domain/decide.h"
#include "domain/names.h"
#include "eventstore/record_codec.h"
#include "storage/file.h"

namespace via::commands {
namespace {

std::vector<std::string> ProviderNames(const Context& ctx) {
  return ctx.providers ? ctx.providers->Names() : std::vector<std::string>{};
}

// Provisions an add-on whose creation is in the log, then reads the slice a
// report of it needs.
Result<State> ProvisionAndReport(const Context& ctx, Session& session, const std::string& id,
                                 const std::string& app, const std::string& binding) {
  VIA_ASSIGN_OR_RETURN(auto provider, session.Provider(ctx, id));
  VIA_RETURN_IF_ERROR(provider->Provision(id));
  VIA_ASSIGN_OR_RETURN(auto slice, ReportSlice(session, id, app, binding));
  return std::move(slice.first);
}

}  // namespace

namespace {

// `create --from-file | --from-snapshot`: the file work comes first, under the
// new id that no event names yet; then AddonCreated and its completions
// (StorageProvisioned, StorageRepaired "imported" saying where the data came
// from and its SHA-256) in one append. A crash before the append leaves a
// folder that no event trusts; a refusal removes it.
Result<ReadinessReport> CreateFromData(const Context& ctx, Session& session,
                                       const CreateRequest& request, const CreateSource& from,
                                       const CreateCommand& command,
                                       const StateKeys& keys) {
  if (!from.from_file.empty() && !from.from_snapshot.empty()) {
    return InvalidArgument("conflicting_sources", "--from-file and --from-snapshot exclude each other");
  }
  // A retry of the same --command-id: the add-on the first run created,
  // without reading or copying the source again.
  VIA_ASSIGN_OR_RETURN(auto replayed, FindReplay(ctx, session, keys));
  if (replayed) {
    std::string first;
    for (const auto& e : replayed->events) {
      if (const auto* created = std::get_if<AddonCreated>(&e)) first = created->addon_id;
    }
    if (first.empty()) return Internal("create: no AddonCreated among the command's records");
    VIA_ASSIGN_OR_RETURN(auto slice, ReportSlice(session, first, request.app, request.binding));
    return Report(ctx, session, slice.first, request.name, slice.first.FindById(first),
                  request.app, request.binding);
  }
  const std::string& id = command.new_addon_id;
  // Refuse early what the append would refuse (name taken, bad names).
  {
    VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(keys));
    VIA_RETURN_IF_ERROR(DecideCreate(slice.first, command).status());
  }
  VIA_ASSIGN_OR_RETURN(auto provider, session.ProviderNamed(ctx, request.provider));
  auto phases = [&](const char* phase, std::uint64_t done, std::uint64_t total) {
    if (ctx.progress) ctx.progress(std::string("import ") + phase, done, total);
  };
  std::filesystem::path source;
  bool verified = false;
  std::string snapshot_id;
  std::string detail;
  if (!from.from_snapshot.empty()) {
    snapshot_id = from.from_snapshot;
    StateKeys snap_keys;
    snap_keys.snapshots.insert(snapshot_id);
    VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(snap_keys));
    auto it = slice.first.snapshots.find(snapshot_id);
    if (it == slice.first.snapshots.end()) {
      return NotFound("snapshot_not_found", "no snapshot " + snapshot_id);
    }
    SnapshotState snap = it->second;
    if (snap.status != SnapshotStatus::kTaken || snap.deleted) {
      return FailedPrecondition("snapshot_not_usable",
                                "snapshot " + snapshot_id + " is " +
                                    (snap.deleted ? "deleted" : SnapshotStatusName(snap.status)))
          .WithOwner("operator");  // pick another snapshot
    }
    VIA_ASSIGN_OR_RETURN(auto owner, session.Provider(ctx, snap.addon_id));
    if (owner->Name() != provider->Name()) {
      return FailedPrecondition("snapshot_of_another_provider",
                                "snapshot " + snapshot_id + " holds " + owner->Name() +
                                    " data, not " + provider->Name());
    }
    if (snap.verification == SnapshotVerification::kUnverified) {
      VIA_ASSIGN_OR_RETURN(SnapshotVerified v, owner->Verify(snap.addon_id, snapshot_id, phases));
      snap.verification = v.ok ? SnapshotVerification::kVerified : SnapshotVerification::kFailed;
      snap.verify_detail = v.detail;
    }
    if (snap.verification != SnapshotVerification::kVerified) {
      return DataLoss("snapshot_verification_failed",
                      "snapshot " + snapshot_id + " failed verification: " + snap.verify_detail);
    }
    source = owner->SnapshotPath(snap.addon_id, snapshot_id);
    VIA_ASSIGN_OR_RETURN(fileio::Digest digest, fileio::DigestFile(source, phases));
    if (Bytes(digest.sha256.begin(), digest.sha256.end()) != snap.sha256) {
      return DataLoss("snapshot_hash_mismatch",
                      "snapshot file of " + snapshot_id + " does not match the SHA-256 recorded "
                      "in the log");
    }
    verified = true;
    detail = "snapshot " + snapshot_id + " of " + snap.addon_id + ", sha256 " +
             HexEncode(snap.sha256) + ", " + std::to_string(snap.bytes) + " bytes";
  } else {
    source = std::filesystem::absolute(from.from_file);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(source, ec)) {
      return NotFound("file_not_found", "no file at " + source.string());
    }
    auto digest = fileio::DigestFile(source, phases);
    if (!digest.ok()) return digest.status().WithContext("import " + source.string());
    detail = "file " + source.string() + ", sha256 " + HexEncode(digest->sha256) + ", " +
             std::to_string(digest->bytes) + " bytes";
  }
  Status staged = provider->StageImport(id, source, verified, phases);
  if (!staged.ok()) {
    provider->DiscardImport(id);
    return staged;
  }
  ctx.crash.At("import.before_event");
  auto decided = DecideAndAppend(ctx, session, keys, [&](const State& s) -> Result<std::vector<Event>> {
    VIA_ASSIGN_OR_RETURN(std::vector<Event> events, DecideCreate(s, command));
    events.push_back(StorageProvisioned{id});
    events.push_back(StorageRepaired{id, "imported", snapshot_id, detail});
    return events;
  });
  if (!decided.ok()) {
    provider->DiscardImport(id);
    return decided.status();
  }
  std::string made = id;
  if (decided->replayed) {
    // A racing retry of the same --command-id appended first: its add-on
    // is the answer, and this run's copy is no one's.
    provider->DiscardImport(id);
    for (const auto& e : decided->events) {
      if (const auto* created = std::get_if<AddonCreated>(&e)) made = created->addon_id;
    }
  }
  VIA_ASSIGN_OR_RETURN(auto slice, ReportSlice(session, made, request.app, request.binding));
  return Report(ctx, session, slice.first, request.name, slice.first.FindById(made), request.app,
                request.binding);
}

}  // namespace

Result<ReadinessReport> CreateAddon(const Context& ctx, const CreateRequest& request,
                                    const CreateSource& source) {
  VIA_RETURN_IF_ERROR(RejectTombstone(request.name));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  const std::string new_id = ctx.ids->NewId("ad_");
  VIA_ASSIGN_OR_RETURN(auto generation, NewGeneration(ctx, new_id, 1));
  VIA_ASSIGN_OR_RETURN(std::string node, PlacementNode(ctx, request.node));
  VIA_ASSIGN_OR_RETURN(const bool remote, IsOtherNode(ctx, node));
  CreateCommand command{request.name,      request.provider, request.app,
                        request.binding,   new_id,           generation.first,
                        generation.second, ProviderNames(ctx), node};
  StateKeys keys = AddonKeys(request.name);
  if (!request.binding.empty()) keys.bindings.insert({request.app, request.binding});
  if (!source.from_file.empty() || !source.from_snapshot.empty()) {
    if (remote) {
      // The data is staged in this home before the event: only the owner's
      // home can import it.
      return FailedPrecondition("not_this_node",
                                "--from-file and --from-snapshot stage the data in this home, "
                                "which is not node " + node + "'s")
          .WithRemediation("run the command with --home of node " + node);
    }
    return CreateFromData(ctx, session, request, source, command, keys);
  }
  // Another node's add-on: that node makes its storage (owner work).
  Context asking = ctx;
  if (remote) {
    asking.command_id = OwnerWorkCommandId(ctx.command_id.empty() ? new_id : ctx.command_id);
  }
  // The bindings of a failed record that holds the name (retiring it frees them).
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(
                                            asking, session, keys,
                                            [&](const State& s) { return DecideCreate(s, command); },
                                            [&](const State& s) {
                                              return AddonDetailKeys(s, request.name);
                                            }));
  // The add-on this command created (a replayed retry: the first run's).
  std::string id;
  for (const auto& e : decided.events) {
    if (const auto* created = std::get_if<AddonCreated>(&e)) id = created->addon_id;
  }
  if (id.empty()) return Internal("create: no AddonCreated among the command's records");
  if (remote) {
    VIA_RETURN_IF_ERROR(AwaitOwner(ctx, node, "provisioning of " + id, "via addon status " + id,
                                   [&](Session& now) -> Result<bool> {
                                     VIA_ASSIGN_OR_RETURN(auto slice, now.Slice(AddonKeys(id)));
                                     const AddonState* a = slice.first.FindById(id);
                                     return a == nullptr || a->phase != AddonPhase::kProvisioning;
                                   }));
    VIA_ASSIGN_OR_RETURN(Session fresh, Session::OpenForReading(ctx));
    VIA_ASSIGN_OR_RETURN(auto slice, ReportSlice(fresh, id, request.app, request.binding));
    return Report(ctx, fresh, slice.first, request.name, slice.first.FindById(id), request.app,
                  request.binding);
  }
  VIA_ASSIGN_OR_RETURN(State state,
                       ProvisionAndReport(ctx, session, id, request.app, request.binding));
  return Report(ctx, session, state, request.name, state.FindById(id), request.app,
                request.binding);
}

namespace {

// Bind and unbind: decide, append, report the binding's readiness.
Result<ReadinessReport> ChangeBinding(
    const Context& ctx, const std::string& addon, const std::string& app,
    const std::string& binding,
    Result<std::vector<Event>> (*decide)(const State&, const std::string&, const std::string&,
                                         const std::string&)) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  StateKeys keys = AddonKeys(addon);
  keys.bindings.insert({app, binding});
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, keys, [&](const State& s) {
                         return decide(s, addon, app, binding);
                       }));
  VIA_ASSIGN_OR_RETURN(auto slice, ReportSlice(session, addon, app, binding));
  ReadinessReport report;
  VIA_ASSIGN_OR_RETURN(report, Report(ctx, session, slice.first, addon,
                                      slice.first.FindAddon(addon), app, binding));
  report.changed = !decided.events.empty();
  report.is_binding_change = true;
  return report;
}

}  // namespace

Result<ReadinessReport> BindAddon(const Context& ctx, const std::string& addon,
                                  const std::string& app, const std::string& binding) {
  return ChangeBinding(ctx, addon, app, binding, &DecideBind);
}

Result<ReadinessReport> UnbindAddon(const Context& ctx, const std::string& addon,
                                    const std::string& app, const std::string& binding) {
  return ChangeBinding(ctx, addon, app, binding, &DecideUnbind);
}

Result<StorageRepair> RepairStorage(const Context& ctx, Session& session, const AddonState& addon,
                                    bool allow_empty) {
  StorageRepair out;
  std::string detail;
  VIA_ASSIGN_OR_RETURN(auto provider, session.OwnedProvider(ctx, addon.id));
  StorageFact fact = provider->Probe(addon.id, &detail);
  bool needs = fact == StorageFact::kMissing || fact == StorageFact::kCorrupt ||
               addon.checked_corrupt() ||
               (addon.phase == AddonPhase::kFailed && addon.data_present);
  if (!needs) return out;
  auto repaired = provider->Repair(addon.id, allow_empty);
  if (!repaired.ok()) {
    // A refusal (an empty database without consent, an unreadable file)
    // is answered beside the readiness; anything else is an error.
    if (repaired.status().code() != StatusCode::kFailedPrecondition) return repaired.status();
    out.refusal = repaired.status();
    return out;
  }
  out.changed = !repaired->actions.empty();
  out.warning = repaired->warning;
  out.restored_from = repaired->restored_from;
  return out;
}

Result<ReadinessReport> EnsureAddon(const Context& ctx, const CreateRequest& request,
                                    bool repair, bool allow_empty) {
  VIA_RETURN_IF_ERROR(RejectTombstone(request.name));
  VIA_RETURN_IF_ERROR(ValidateAddonName(request.name));
  VIA_RETURN_IF_ERROR(ValidateAppName(request.app));
  if (!request.binding.empty()) VIA_RETURN_IF_ERROR(ValidateBindingName(request.binding));
  if (ctx.providers == nullptr || !ctx.providers->Has(request.provider)) {
    return ctx.providers ? ctx.providers->Unknown(request.provider)
                         : Internal("no provider registry in the command context");
  }
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  bool changed = false;
  std::string warning;
  std::string restored_from;
  Status refusal;
  const std::string new_id = ctx.ids->NewId("ad_");
  StateKeys keys = AddonKeys(request.name);
  if (!request.binding.empty()) keys.bindings.insert({request.app, request.binding});
  VIA_ASSIGN_OR_RETURN(const std::string node, PlacementNode(ctx, ""));

  // 1. The add-on: create it unless a live one holds the name.
  auto decided_or = DecideAndAppend(
      ctx, session, keys,
      [&](const State& s) -> Result<std::vector<Event>> {
        const AddonState* existing = s.FindAddon(request.name);
        if (existing && existing->name == request.name &&
            !(existing->phase == AddonPhase::kFailed && !existing->data_present)) {
          return std::vector<Event>{};
        }
        VIA_ASSIGN_OR_RETURN(auto generation, NewGeneration(ctx, new_id, 1));
        return DecideCreate(s, CreateCommand{request.name, request.provider, request.app,
                                             request.binding, new_id, generation.first,
                                             generation.second, ProviderNames(ctx), node});
      },
      [&](const State& s) { return AddonDetailKeys(s, request.name); });
  if (!decided_or.ok()) {
    // Refused: nothing was appended. The answer is still the full readiness
    // of what the name and binding are now, with the refusal beside it.
    const StatusCode code = decided_or.status().code();
    if (code != StatusCode::kFailedPrecondition && code != StatusCode::kAlreadyExists) {
      return decided_or.status();
    }
    VIA_ASSIGN_OR_RETURN(auto now, ReportSlice(session, request.name, request.app, request.binding));
    ReadinessReport report;
    VIA_ASSIGN_OR_RETURN(report, Report(ctx, session, now.first, request.name,
                                        now.first.FindAddon(request.name), request.app,
                                        request.binding, request.provider));
    report.is_ensure = true;
    report.refusal = decided_or.status();
    report.already_exists = report.addon.has_value() &&
                            report.addon->phase != AddonPhase::kDestroyed;
    report.compatible = !report.addon || (report.addon->provider == request.provider &&
                                          report.addon->app == request.app);
    return report;
  }
  Decided decided = std::move(decided_or).value();
  const bool created = !decided.events.empty();
  changed = created;
  // The add-on this command created or found, by id from then on.
  const State mine = decided.After();
  const AddonState* found = mine.FindAddon(request.name);
  if (found == nullptr) return Internal("ensure: no add-on after deciding to create it");
  const std::string id = found->id;
  auto fresh = [&]() { return ReportSlice(session, id, request.app, request.binding); };
  VIA_ASSIGN_OR_RETURN(auto slice, fresh());
  const AddonState* addon = slice.first.FindById(id);
  if (addon == nullptr) return Internal("ensure: add-on " + id + " vanished");
  VIA_ASSIGN_OR_RETURN(const bool elsewhere, IsOtherNode(ctx, addon->node));
  if (addon->phase == AddonPhase::kProvisioning && !elsewhere) {
    // (Another node's add-on is provisioned by that node: reported as it is.)
    VIA_ASSIGN_OR_RETURN(slice.first,
                         ProvisionAndReport(ctx, session, id, request.app, request.binding));
    addon = slice.first.FindById(id);
  }
  const bool compatible = addon->provider == request.provider && addon->app == request.app;

  // 2. The binding (when one is named): attach when missing, never steal.
  if (!request.binding.empty() && compatible && addon->phase != AddonPhase::kDestroyed &&
      !slice.first.bindings.count({request.app, request.binding})) {
    StateKeys bind_keys = AddonKeys(id);
    bind_keys.bindings.insert({request.app, request.binding});
    VIA_ASSIGN_OR_RETURN(Decided bound, DecideAndAppend(ctx, session, bind_keys, [&](const State& s) -> Result<std::vector<Event>> {
      if (s.bindings.count({request.app, request.binding})) return std::vector<Event>{};
      return DecideBind(s, id, request.app, request.binding);
    }, nullptr, "bind"));
    changed = changed || !bound.events.empty();
  }

  // 3. Storage: repair only when asked.
  VIA_ASSIGN_OR_RETURN(slice, fresh());
  addon = slice.first.FindById(id);
  std::optional<Session> later;  // a read after the owner's work (several nodes)
  if (repair && compatible && elsewhere) {
    // Another node's add-on: that node probes and repairs it (owner work);
    // what it did is read back from its StorageRepaired records.
    VIA_ASSIGN_OR_RETURN(OwnerWorkOutcome asked,
                         AskOwner(ctx, session, id, addon->node, "repair",
                                  allow_empty ? "allow_empty" : "",
                                  "via addon status " + addon->name));
    Status failed = OwnerWorkError(asked.finished);
    if (!failed.ok()) {
      if (failed.code() != StatusCode::kFailedPrecondition) return failed;
      refusal = failed;
    } else {
      if (asked.finished.message != kRepairedMessage &&
          asked.finished.message != kNothingToRepairMessage) {
        warning = asked.finished.message;
      }
      for (std::uint64_t seq = asked.requested_seq + 1; seq < asked.finished_seq; ++seq) {
        VIA_ASSIGN_OR_RETURN(Record record, session.store().Read(seq));
        const auto* e = std::get_if<StorageRepaired>(&record.event);
        if (e == nullptr || e->addon_id != id) continue;
        changed = true;
        if (e->action == "restored_from_snapshot") restored_from = e->snapshot_id;
      }
    }
    VIA_ASSIGN_OR_RETURN(later, Session::OpenForReading(ctx));
    VIA_ASSIGN_OR_RETURN(slice, ReportSlice(*later, id, request.app, request.binding));
    addon = slice.first.FindById(id);
  } else if (repair && compatible) {
    VIA_ASSIGN_OR_RETURN(StorageRepair repaired, RepairStorage(ctx, session, *addon, allow_empty));
    refusal = repaired.refusal;
    changed = changed || repaired.changed;
    warning = repaired.warning;
    restored_from = repaired.restored_from;
    VIA_ASSIGN_OR_RETURN(slice, fresh());
    addon = slice.first.FindById(id);
  }

  ReadinessReport report;
  VIA_ASSIGN_OR_RETURN(report, Report(ctx, later ? *later : session, slice.first, request.name,
                                      addon, request.app, request.binding, request.provider));
  report.is_ensure = true;
  report.created = created;
  report.already_exists = !created;
  report.changed = changed;
  report.compatible = compatible;
  report.warning = warning;
  report.refusal = refusal;
  report.restored_from = restored_from;
  return report;
}

Result<ReadinessReport> AddonStatus(const Context& ctx, const std::string& addon) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  if (!LooksLikeId(addon, "ad_")) VIA_RETURN_IF_ERROR(ValidateAddonName(addon));
  VIA_ASSIGN_OR_RETURN(Session session, Session::OpenForReading(ctx));
  // Only the add-on and its bindings, in one snapshot: no replay.
  VIA_ASSIGN_OR_RETURN(auto slice, ReportSlice(session, addon, "", ""));
  const AddonState* found = slice.first.FindAddon(addon);
  // A name no live add-on holds: report the record last created under it.
  if (found == nullptr && !LooksLikeId(addon, "ad_")) found = LatestIncarnation(slice.first, addon);
  return Report(ctx, session, slice.first, addon, found, "", "");
}

namespace {

// What `addon status` asks about an add-on listed: its live name, or its id
// when it is a destroyed or retired record.
std::string StatusName(const AddonState& a) { return IsTombstoneName(a.name) ? a.id : a.name; }

}  // namespace

Status ListAddons(const Context& ctx, bool all,
                  const std::function<bool(const AddonSummary&)>& visit, bool readiness) {
  VIA_ASSIGN_OR_RETURN(Session session, Session::OpenForReading(ctx));
  VIA_RETURN_IF_ERROR(session.CatchUp());
  if (projections::ReadModel* model = session.model()) {
    // One snapshot for the scan and every slice read inside it (a read
    // transaction begun inside another joins it).
    VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, model->BeginRead());
    Status failed;
    Status scanned =
        model->ScanAddons(all, [&](const AddonState& a, const std::vector<BindingKey>& b) {
          AddonSummary summary{a, b, std::nullopt};
          if (readiness) {
            // The slice `addon status` reads (ReportSlice), from this snapshot.
            StateKeys keys = AddonKeys(a.id);
            auto state = model->LoadSlice(keys);
            for (int round = 0; state.ok() && round < 4; ++round) {
              StateKeys grown = keys;
              grown.Merge(AddonDetailKeys(*state, a.id));
              if (grown == keys) break;
              keys = std::move(grown);
              state = model->LoadSlice(keys);
            }
            if (!state.ok()) {
              failed = state.status();
              return false;
            }
            auto report = Assess(ctx, *state, StatusName(a), state->FindById(a.id), "", "");
            if (!report.ok()) {
              failed = report.status();
              return false;
            }
            summary.report = std::move(*report);
          }
          return visit(summary);
        });
    VIA_RETURN_IF_ERROR(scanned);
    return failed;
  }
  // Folded in memory (a home that cannot be written).
  VIA_ASSIGN_OR_RETURN(auto slice, session.Slice({}));
  const State& state = slice.first;
  std::map<std::string, std::string> by_name;  // stored name -> id, as the model orders them
  for (const auto& [id, addon] : state.addons) {
    auto live = state.names.find(addon.name);
    if (all || (live != state.names.end() && live->second == id)) by_name[addon.name] = id;
  }
  for (const auto& [name, id] : by_name) {
    const AddonState& a = state.addons.at(id);
    AddonSummary summary{a, state.BindingsOf(id), std::nullopt};
    if (readiness) {
      VIA_ASSIGN_OR_RETURN(summary.report, Assess(ctx, state, StatusName(a), &a, "", ""));
    }
    if (!visit(summary)) break;
  }
  return Status::Ok();
}

Result<std::vector<Incarnation>> AddonHistory(const Context& ctx, const std::string& name) {
  VIA_RETURN_IF_ERROR(RejectTombstone(name));
  VIA_RETURN_IF_ERROR(ValidateAddonName(name));
  VIA_ASSIGN_OR_RETURN(Session session, Session::OpenForReading(ctx));
  VIA_RETURN_IF_ERROR(session.CatchUp());
  std::vector<Incarnation> out;
  if (projections::ReadModel* model = session.model()) {
    VIA_ASSIGN_OR_RETURN(auto addons, model->AddonsNamed(name));
    for (auto& a : addons) out.push_back(Incarnation{std::move(a), {}});
  } else {
    VIA_ASSIGN_OR_RETURN(auto slice, session.Slice({}));
    for (const auto& [id, addon] : slice.first.addons) {
      if (addon.original_name == name) out.push_back(Incarnation{addon, {}});
    }
    std::sort(out.begin(), out.end(), [](const Incarnation& a, const Incarnation& b) {
      return a.addon.created_seq < b.addon.created_seq;
    });
  }
  if (out.empty()) {
    return NotFound("addon_not_found", "no add-on was ever named " + name)
        .WithRemediation("via addon list --all");
  }
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < out.size(); ++i) index[out[i].addon.id] = i;
  const std::uint64_t first = out.front().addon.created_seq;
  Status error;
  VIA_RETURN_IF_ERROR(session.store().Scan(first, 0, [&](const eventstore::StoredRecord& row) {
    auto record = eventstore::DecodeRecord(row.bytes);
    if (!record.ok()) {
      error = record.status().WithContext("seq " + std::to_string(row.seq));
      return false;
    }
    auto it = index.find(EventAddonId(record->event));
    if (it != index.end()) out[it->second].records.push_back(std::move(record).value());
    return true;
  }));
  VIA_RETURN_IF_ERROR(error);
  return out;
}

Result<DestroyResult> DestroyAddon(const Context& ctx, const std::string& addon, bool force) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  auto more = [&](const State& s) {
    StateKeys keys;
    if (const AddonState* a = s.FindAddon(addon)) {
      keys.bindings_of.insert(a->id);
      keys.claims_on.insert(a->id);
    }
    return keys;
  };
  // Workload tokens issued since the add-on was created, up to the state a
  // decision is made on (read on from where the last attempt stopped).
  TokenFacts tokens;
  std::uint64_t scanned = 0;
  auto read_tokens = [&](const State& s) -> Status {
    const AddonState* a = s.FindAddon(addon);
    if (a == nullptr || force) return Status::Ok();
    std::uint64_t from = std::max(scanned + 1, a->created_seq);
    if (from > s.seq) return Status::Ok();
    Status error;
    VIA_RETURN_IF_ERROR(session.store().Scan(from, s.seq, [&](const eventstore::StoredRecord& row) {
      auto record = eventstore::DecodeRecord(row.bytes);
      if (!record.ok()) {
        error = record.status().WithContext("seq " + std::to_string(row.seq));
        return false;
      }
      if (const auto* t = std::get_if<WorkloadTokenIssued>(&record->event)) {
        std::int64_t& until = tokens.expiry_by_release[t->app + "/" + t->release_id];
        until = std::max(until, t->expires_at_ms);
      }
      return true;
    }));
    VIA_RETURN_IF_ERROR(error);
    scanned = s.seq;
    return Status::Ok();
  };
  tokens.now_ms = ctx.clock->NowMs();
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(
                                            ctx, session, AddonKeys(addon),
                                            [&](const State& s) -> Result<std::vector<Event>> {
                                              VIA_RETURN_IF_ERROR(read_tokens(s));
                                              return DecideDestroy(s, addon, force, tokens);
                                            },
                                            more));
  const auto& destroyed = std::get<AddonDestroyed>(decided.events.front());
  // What happens to the storage is the provider's (SQLite keeps the file).
  VIA_ASSIGN_OR_RETURN(auto provider, session.Provider(ctx, destroyed.addon_id));
  VIA_RETURN_IF_ERROR(provider->Retire(destroyed.addon_id));
  return DestroyResult{destroyed.addon_id, destroyed.tombstone_name, decided.appended.last_seq};
}

}  // namespace via::commands
