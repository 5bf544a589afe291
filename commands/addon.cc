#include "commands/addon.h"

#include <filesystem>
#include <functional>
#include <set>

#include "crypto/credentials.h"
#include "crypto/crypto.h"
#include "domain/decide.h"
#include "domain/names.h"
#include "eventstore/checkpoint.h"
#include "eventstore/record_codec.h"
#include "projections/read_model.h"
#include "providers/sqlite/provider.h"

namespace via::commands {
namespace {

constexpr int kMaxRaceRetries = 200;

// The open log and read model of one command. Commands that only read open
// the log file read-only and skip the signing key and the tail's signature
// check (no OpenSSL work at all), which keeps `status` close to the cost of
// one SQLite read; commands that append open the full EventLog.
//
// Every answer reads the read model in one snapshot after catching it up, and
// a command that decides on that snapshot appends expecting exactly the log
// head the snapshot describes (the model's cursor), so no fact it combines can
// come from two moments. In a home that cannot be written (a read-only mount)
// the read model cannot catch up; reading commands then fold the log in
// memory instead.
struct Session {
  std::unique_ptr<eventstore::EventLog> log;            // when appending
  std::unique_ptr<eventstore::LogStore> read_only_log;  // when only reading
  std::unique_ptr<projections::ReadModel> model;
  bool in_memory = false;  // the model could not be written: fold the log instead

  eventstore::LogStore& store() { return log ? log->store() : *read_only_log; }

  static Result<Session> Open(const Context& ctx) {
    Session s;
    VIA_ASSIGN_OR_RETURN(s.log, ctx.OpenLog());
    VIA_ASSIGN_OR_RETURN(s.model, projections::ReadModel::Open(ctx.home.state_db().string()));
    s.model->set_crash_points(ctx.crash);
    return s;
  }

  static Result<Session> OpenForReading(const Context& ctx) {
    std::error_code ec;
    if (!std::filesystem::exists(ctx.home.log_db(), ec)) return Open(ctx);  // creates the home
    Session s;
    eventstore::LogStore::Options options;
    options.path = ctx.home.log_db().string();
    options.read_only = true;
    options.create_if_missing = false;
    auto log = eventstore::LogStore::Open(options);
    // Being created by another process right now: initialize it with it.
    if (!log.ok() && log.status().code() == StatusCode::kNotFound) return Open(ctx);
    if (!log.ok()) return log.status();
    s.read_only_log = std::move(log).value();
    auto model = projections::ReadModel::Open(ctx.home.state_db().string());
    if (!model.ok()) {
      if (model.status().reason() != "home_not_writable") return model.status();
      s.in_memory = true;
    } else {
      s.model = std::move(model).value();
    }
    return s;
  }

  // Brings the read model up to the log's head. In a home that cannot be
  // written, reading commands fall back to folding the log in memory.
  Status CatchUp() {
    if (in_memory) return Status::Ok();
    auto caught_up = model->CatchUp(store());
    if (caught_up.ok()) return Status::Ok();
    if (caught_up.status().reason() != "home_not_writable" || log) return caught_up.status();
    in_memory = true;
    return Status::Ok();
  }

  // The state as of one snapshot of the caught-up read model, and the log
  // head it describes (append after exactly that head).
  Result<std::pair<State, eventstore::Head>> Fresh() {
    VIA_RETURN_IF_ERROR(CatchUp());
    if (in_memory) {
      VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, store().BeginRead());
      VIA_ASSIGN_OR_RETURN(eventstore::Head head, store().GetHead());
      VIA_ASSIGN_OR_RETURN(State state, projections::Replay(store(), head.seq));
      return std::make_pair(std::move(state), head);
    }
    VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, model->BeginRead());
    VIA_ASSIGN_OR_RETURN(eventstore::Head head, model->CursorHead());
    VIA_ASSIGN_OR_RETURN(State state, model->Load());
    return std::make_pair(std::move(state), head);
  }

  providers::sqlite::SqliteProvider Provider(const Context& ctx) {
    providers::sqlite::ProviderOptions options;
    options.home = ctx.home;
    options.actor = ctx.actor;
    options.clock = ctx.clock;
    options.test_fault = ctx.test_fault;
    options.crash = ctx.crash;
    return providers::sqlite::SqliteProvider(options, *log);
  }
};

using Decider = std::function<Result<std::vector<Event>>(const State&)>;

struct Decided {
  State state;  // the state the decision was made on
  std::vector<Event> events;
  eventstore::AppendResult appended;

  // The state right after this command's own records: what the command did,
  // without anything another process appended since (its answer comes from
  // here, never from a later read).
  State After() const {
    State after = state;
    for (std::size_t i = 0; i < events.size(); ++i) {
      Record record;
      record.seq = appended.first_seq + i;
      record.event = events[i];
      Apply(after, record);
    }
    return after;
  }
};

// Decides on the current state and appends expecting its head; when another
// process appended first, decides again on the new state.
Result<Decided> DecideAndAppend(const Context& ctx, Session& session, const Decider& decide) {
  for (int attempt = 0; attempt < kMaxRaceRetries; ++attempt) {
    VIA_ASSIGN_OR_RETURN(auto fresh, session.Fresh());
    Decided out;
    out.state = std::move(fresh.first);
    VIA_ASSIGN_OR_RETURN(out.events, decide(out.state));
    if (out.events.empty()) return out;
    eventstore::AppendRequest request;
    request.actor = ctx.actor;
    request.recorded_at_ms = ctx.clock->NowMs();
    request.events = out.events;
    request.expected_head = fresh.second;
    auto appended = session.log->Append(request);
    if (appended.ok()) {
      out.appended = *appended;
      return out;
    }
    if (appended.status().code() != StatusCode::kAborted &&
        appended.status().code() != StatusCode::kUnavailable) {
      return appended.status();
    }
  }
  return Unavailable("busy", "too many concurrent changes; try again");
}

// Salt and fingerprint of a new credential generation.
Result<std::pair<Bytes, Bytes>> NewGeneration(const Context& ctx, const std::string& addon_id,
                                              std::uint32_t generation) {
  // Only `via init` creates the key: a silently regenerated key would change
  // every credential already handed out.
  auto key = eventstore::ReadFile(ctx.home.credentials_key());
  if (!key.ok() || key->size() != 32) {
    return FailedPrecondition("credentials_key_missing",
                              ctx.home.credentials_key().string() + " is missing or damaged")
        .WithRemediation("restore keys/credentials.key from backup (see docs/operations.md)");
  }
  Bytes salt = crypto::RandomBytes(16);
  Hash256 credential = crypto::DeriveCredential(*key, addon_id, generation, salt);
  Hash256 fingerprint = crypto::CredentialFingerprint(credential);
  return std::make_pair(salt, Bytes(fingerprint.begin(), fingerprint.end()));
}

// Fills the §7 report for `addon` (may be null) and the binding (app, binding).
Result<ReadinessReport> Report(const Context& ctx, Session& session, const State& state,
                               const std::string& requested, const AddonState* addon,
                               std::string app, std::string binding,
                               const std::string& expected_provider = "") {
  ReadinessReport report;
  if (addon) {
    report.addon = *addon;
    if (binding.empty()) {
      // status NAME: the binding it was created for, else any it has.
      if (!addon->requested_binding.empty()) {
        app = addon->app;
        binding = addon->requested_binding;
      } else if (auto bound = state.BindingsOf(addon->id); !bound.empty()) {
        app = bound[0].first;
        binding = bound[0].second;
      }
    }
  }
  report.app = app;
  report.binding = binding;
  ReadinessInput in;
  in.requested = requested;
  in.addon = addon;
  in.expected_provider = expected_provider;
  in.app = app;
  in.binding = binding;
  if (!app.empty() && !binding.empty()) {
    if (auto it = state.bindings.find({app, binding}); it != state.bindings.end()) {
      in.binding_target = it->second;
    }
  }
  if (addon && addon->phase != AddonPhase::kDestroyed) {
    in.storage = providers::sqlite::ProbeAddonStorage(ctx.home, addon->id, &in.storage_detail);
  }
  std::error_code ec;
  in.credentials_key_present = std::filesystem::exists(ctx.home.credentials_key(), ec);
  if (addon && binding.empty()) {
    // No binding at all: the app cannot reach it yet.
    in.binding = "DATABASE";
    in.app = addon->app;
  }
  report.readiness = Evaluate(in);
  // The log as of the state this answer describes: its size and the root
  // signed for exactly that size (one row holds both).
  report.log_size = state.seq;
  auto note = session.store().CheckpointAt(state.seq);
  if (note.ok()) {
    auto checkpoint = eventstore::ParseCheckpointUnverified(*note);
    if (checkpoint.ok()) report.log_root = checkpoint->root;
  } else if (note.status().code() != StatusCode::kNotFound) {
    return note.status();
  }
  return report;
}

Status RejectTombstone(const std::string& addon) {
  if (IsTombstoneName(addon)) {
    std::string id = addon.substr(addon.rfind('#') + 1);
    return InvalidArgument("tombstone_name",
                           "'" + addon + "' is a tombstone, not a live add-on name")
        .WithRemediation("via addon status " + id);
  }
  return Status::Ok();
}

// Provisions an add-on whose creation is in the log, then returns the fresh state.
Result<State> ProvisionAndRefresh(const Context& ctx, Session& session, const std::string& id) {
  VIA_RETURN_IF_ERROR(session.Provider(ctx).Provision(id));
  VIA_ASSIGN_OR_RETURN(auto fresh, session.Fresh());
  return std::move(fresh.first);
}

}  // namespace

Result<ReadinessReport> CreateAddon(const Context& ctx, const CreateRequest& request) {
  VIA_RETURN_IF_ERROR(RejectTombstone(request.name));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  const std::string id = ctx.ids->NewId("ad_");
  VIA_ASSIGN_OR_RETURN(auto generation, NewGeneration(ctx, id, 1));
  CreateCommand command{request.name, request.provider, request.app, request.binding,
                        id,           generation.first, generation.second};
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, [&](const State& s) {
                         return DecideCreate(s, command);
                       }));
  VIA_ASSIGN_OR_RETURN(State state, ProvisionAndRefresh(ctx, session, id));
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
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, [&](const State& s) {
                         return decide(s, addon, app, binding);
                       }));
  VIA_ASSIGN_OR_RETURN(auto fresh, session.Fresh());
  ReadinessReport report;
  VIA_ASSIGN_OR_RETURN(report, Report(ctx, session, fresh.first, addon,
                                      fresh.first.FindAddon(addon), app, binding));
  report.changed = !decided.events.empty();
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

Result<ReadinessReport> EnsureAddon(const Context& ctx, const CreateRequest& request,
                                    bool repair) {
  VIA_RETURN_IF_ERROR(RejectTombstone(request.name));
  VIA_RETURN_IF_ERROR(ValidateAddonName(request.name));
  VIA_RETURN_IF_ERROR(ValidateAppName(request.app));
  VIA_RETURN_IF_ERROR(ValidateBindingName(request.binding));
  if (request.provider != kSqliteProvider) {
    return InvalidArgument("unknown_provider",
                           "unknown provider '" + request.provider + "'; this build provides: sqlite");
  }
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  bool created = false;
  bool changed = false;
  std::string warning;
  const std::string new_id = ctx.ids->NewId("ad_");
  VIA_ASSIGN_OR_RETURN(auto generation, NewGeneration(ctx, new_id, 1));

  // 1. The add-on: create it unless a live one holds the name.
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, [&](const State& s) -> Result<std::vector<Event>> {
    const AddonState* existing = s.FindAddon(request.name);
    if (existing && existing->name == request.name &&
        !(existing->phase == AddonPhase::kFailed && !existing->data_present)) {
      return std::vector<Event>{};
    }
    return DecideCreate(s, CreateCommand{request.name, request.provider, request.app,
                                         request.binding, new_id, generation.first,
                                         generation.second});
  }));
  created = !decided.events.empty();
  changed = created;
  // The add-on this command created or found, by id from then on.
  const State mine = decided.After();
  const AddonState* found = mine.FindAddon(request.name);
  if (found == nullptr) return Internal("ensure: no add-on after deciding to create it");
  const std::string id = found->id;
  VIA_ASSIGN_OR_RETURN(auto fresh, session.Fresh());
  const AddonState* addon = fresh.first.FindById(id);
  if (addon == nullptr) return Internal("ensure: add-on " + id + " vanished");
  if (addon->phase == AddonPhase::kProvisioning) {
    VIA_ASSIGN_OR_RETURN(fresh.first, ProvisionAndRefresh(ctx, session, id));
    addon = fresh.first.FindById(id);
  }
  bool compatible = addon->provider == request.provider && addon->app == request.app;

  // 2. The binding: attach when missing, never steal.
  if (compatible && addon->phase != AddonPhase::kDestroyed) {
    auto it = fresh.first.bindings.find({request.app, request.binding});
    if (it == fresh.first.bindings.end()) {
      VIA_ASSIGN_OR_RETURN(Decided bound, DecideAndAppend(ctx, session, [&](const State& s) -> Result<std::vector<Event>> {
        if (s.bindings.count({request.app, request.binding})) return std::vector<Event>{};
        return DecideBind(s, id, request.app, request.binding);
      }));
      changed = changed || !bound.events.empty();
    }
  }

  // 3. Storage: repair only when asked.
  VIA_ASSIGN_OR_RETURN(fresh, session.Fresh());
  addon = fresh.first.FindById(id);
  if (repair && compatible) {
    std::string detail;
    StorageFact fact = session.Provider(ctx).ProbeStorage(id, &detail);
    bool needs = fact == StorageFact::kMissing || fact == StorageFact::kCorrupt ||
                 addon->checked_corrupt() ||
                 (addon->phase == AddonPhase::kFailed && addon->data_present);
    if (needs) {
      VIA_ASSIGN_OR_RETURN(auto outcome, session.Provider(ctx).Repair(fresh.first, id));
      changed = changed || !outcome.actions.empty();
      warning = outcome.warning;
      VIA_ASSIGN_OR_RETURN(fresh, session.Fresh());
      addon = fresh.first.FindById(id);
    }
  }

  ReadinessReport report;
  VIA_ASSIGN_OR_RETURN(report, Report(ctx, session, fresh.first, request.name, addon, request.app,
                                      request.binding, request.provider));
  report.is_ensure = true;
  report.created = created;
  report.already_exists = !created;
  report.changed = changed;
  report.compatible = compatible;
  report.warning = warning;
  return report;
}

Result<ReadinessReport> AddonStatus(const Context& ctx, const std::string& addon) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  if (!LooksLikeId(addon, "ad_")) VIA_RETURN_IF_ERROR(ValidateAddonName(addon));
  VIA_ASSIGN_OR_RETURN(Session session, Session::OpenForReading(ctx));
  VIA_RETURN_IF_ERROR(session.CatchUp());
  if (session.in_memory) {
    VIA_ASSIGN_OR_RETURN(auto fresh, session.Fresh());
    return Report(ctx, session, fresh.first, addon, fresh.first.FindAddon(addon), "", "");
  }
  // Only the add-on and its bindings are needed: read from the read model in
  // one snapshot, no replay.
  State state;
  std::optional<AddonState> found;
  {
    VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, session.model->BeginRead());
    VIA_ASSIGN_OR_RETURN(eventstore::Head cursor, session.model->CursorHead());
    state.seq = cursor.seq;
    VIA_ASSIGN_OR_RETURN(found, session.model->FindAddon(addon));
    if (found) {
      state.addons[found->id] = *found;
      VIA_ASSIGN_OR_RETURN(auto bound, session.model->BindingsOf(found->id));
      for (const auto& key : bound) state.bindings[key] = found->id;
      if (!found->requested_binding.empty()) {
        VIA_ASSIGN_OR_RETURN(auto target,
                             session.model->BindingTarget(found->app, found->requested_binding));
        if (target) state.bindings[{found->app, found->requested_binding}] = *target;
      }
    }
  }
  return Report(ctx, session, state, addon, found ? &state.addons[found->id] : nullptr, "", "");
}

Result<std::vector<AddonSummary>> ListAddons(const Context& ctx, bool all) {
  VIA_ASSIGN_OR_RETURN(Session session, Session::OpenForReading(ctx));
  VIA_ASSIGN_OR_RETURN(auto fresh, session.Fresh());
  std::vector<AddonSummary> out;
  for (const auto& [id, addon] : fresh.first.addons) {
    bool live = fresh.first.names.count(addon.name) && fresh.first.names.at(addon.name) == id;
    if (!all && !live) continue;
    out.push_back(AddonSummary{addon, fresh.first.BindingsOf(id)});
  }
  return out;
}

Result<std::vector<Incarnation>> AddonHistory(const Context& ctx, const std::string& name) {
  VIA_RETURN_IF_ERROR(RejectTombstone(name));
  VIA_RETURN_IF_ERROR(ValidateAddonName(name));
  VIA_ASSIGN_OR_RETURN(Session session, Session::OpenForReading(ctx));
  VIA_ASSIGN_OR_RETURN(auto fresh, session.Fresh());
  std::vector<Incarnation> out;
  std::map<std::string, std::size_t> index;
  for (const auto& [id, addon] : fresh.first.addons) {
    if (addon.original_name != name) continue;
    out.push_back(Incarnation{addon, {}});
  }
  std::sort(out.begin(), out.end(), [](const Incarnation& a, const Incarnation& b) {
    return a.addon.created_seq < b.addon.created_seq;
  });
  if (out.empty()) {
    return NotFound("addon_not_found", "no add-on was ever named " + name)
        .WithRemediation("via addon list --all");
  }
  for (std::size_t i = 0; i < out.size(); ++i) index[out[i].addon.id] = i;
  std::uint64_t first = out.front().addon.created_seq;
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
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, [&](const State& s) {
                         return DecideDestroy(s, addon, force);
                       }));
  const auto& destroyed = std::get<AddonDestroyed>(decided.events.front());
  return DestroyResult{destroyed.addon_id, destroyed.tombstone_name, decided.appended.last_seq};
}

namespace {

std::function<void(std::uint64_t, std::uint64_t)> PagesProgress(const Context& ctx,
                                                                const std::string& what) {
  if (!ctx.progress) return nullptr;
  auto progress = ctx.progress;
  return [progress, what](std::uint64_t done, std::uint64_t total) { progress(what, done, total); };
}

// Requests and takes one snapshot of a live add-on.
Result<SnapshotState> TakeOne(const Context& ctx, Session& session, const std::string& addon,
                              const std::string& label) {
  const std::string snapshot_id = ctx.ids->NewId("sn_");
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, [&](const State& s) {
                         return DecideSnapshot(s, addon, snapshot_id, label);
                       }));
  const auto& requested = std::get<SnapshotRequested>(decided.events.front());
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
  VIA_ASSIGN_OR_RETURN(auto fresh, session.Fresh());
  VIA_ASSIGN_OR_RETURN(std::string id, DecideCheck(fresh.first, addon));
  const AddonState& a = *fresh.first.FindById(id);
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
  VIA_ASSIGN_OR_RETURN(auto fresh, session.Fresh());
  const AddonState* a = fresh.first.FindAddon(addon);
  if (a == nullptr) {
    return NotFound("addon_not_found", "no add-on named " + addon)
        .WithRemediation("via addon list --all");
  }
  std::vector<SnapshotState> out;
  for (const auto& [id, snap] : fresh.first.snapshots) {
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
  VIA_ASSIGN_OR_RETURN(auto fresh, session.Fresh());
  VIA_RETURN_IF_ERROR(CheckRestore(fresh.first, addon, snapshot_id));
  const AddonState& a = *fresh.first.FindAddon(addon);
  const SnapshotState& snap = fresh.first.snapshots.at(snapshot_id);
  // The file must be exactly what the log says was taken.
  auto digest = providers::sqlite::DigestFile(ctx.home.snapshot_file(a.id, snapshot_id));
  if (!digest.ok()) {
    return DataLoss("snapshot_file_missing", "snapshot file of " + snapshot_id +
                                                 " cannot be read: " + digest.status().message());
  }
  if (Bytes(digest->sha256.begin(), digest->sha256.end()) != snap.sha256 ||
      digest->bytes != snap.bytes) {
    return DataLoss("snapshot_hash_mismatch",
                    "snapshot file of " + snapshot_id + " does not match the SHA-256 recorded in "
                    "the log; refusing to restore it");
  }
  // The undo: a safety snapshot of the current data.
  VIA_ASSIGN_OR_RETURN(SnapshotState safety,
                       TakeOne(ctx, session, a.id, "safety before restore of " + snapshot_id));
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, [&](const State& s) -> Result<std::vector<Event>> {
    VIA_RETURN_IF_ERROR(CheckRestore(s, a.id, snapshot_id));
    return std::vector<Event>{RestoreRequested{a.id, snapshot_id, safety.id}};
  }));
  VIA_RETURN_IF_ERROR(session.Provider(ctx).Restore(a.id, snapshot_id, safety.id,
                                                    PagesProgress(ctx, "restore " + snapshot_id)));
  return RestoreResult{a.id, snapshot_id, safety.id};
}

namespace {

std::vector<std::uint32_t> ActiveGenerations(const AddonState& a) {
  std::vector<std::uint32_t> out;
  for (const auto& g : a.generations) {
    if (!g.revoked) out.push_back(g.number);
  }
  return out;
}

}  // namespace

Result<GenerationResult> RotateCredentials(const Context& ctx, const std::string& addon) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  std::string id;
  for (int attempt = 0; attempt < kMaxRaceRetries; ++attempt) {
    VIA_ASSIGN_OR_RETURN(auto fresh, session.Fresh());
    const AddonState* a = id.empty() ? fresh.first.FindAddon(addon) : fresh.first.FindById(id);
    if (a == nullptr) {
      return NotFound("addon_not_found", "no add-on named " + addon)
          .WithRemediation("via addon list --all");
    }
    id = a->id;
    // The salt is bound to the generation it is made for: when another rotation
    // wins the race, decide again with a fresh salt for the next number.
    const std::uint32_t next = a->current_generation() + 1;
    VIA_ASSIGN_OR_RETURN(auto generation, NewGeneration(ctx, id, next));
    auto decided = DecideAndAppend(ctx, session, [&](const State& s) -> Result<std::vector<Event>> {
      const AddonState* current = s.FindById(id);
      if (current && current->current_generation() + 1 != next) {
        return Aborted("stale_generation", "another rotation happened first");
      }
      return DecideRotate(s, id, generation.first, generation.second);
    });
    if (!decided.ok() && decided.status().reason() == "stale_generation") continue;
    if (!decided.ok()) return decided.status();
    // The generation this command rotated, from its own event.
    const auto& rotated = std::get<GenerationRotated>(decided->events.front());
    const State after = decided->After();
    return GenerationResult{id, rotated.generation, ActiveGenerations(*after.FindById(id)), {}};
  }
  return Unavailable("busy", "too many concurrent rotations; try again");
}

Result<GenerationResult> RevokeCredentials(const Context& ctx, const std::string& addon,
                                           std::uint32_t generation, bool force) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, [&](const State& s) {
                         return DecideRevoke(s, addon, generation, force);
                       }));
  const auto& revoked = std::get<GenerationRevoked>(decided.events.front());
  const State after = decided.After();
  GenerationResult result{revoked.addon_id, generation,
                          ActiveGenerations(*after.FindById(revoked.addon_id)), {}};
  for (const auto& [addon_id, gen, app, release] : after.deliveries) {
    if (addon_id == revoked.addon_id && gen == generation) {
      result.served_to.push_back(app + "/" + release);
    }
  }
  return result;
}

Result<ReleaseResult> CreateRelease(const Context& ctx, const std::string& app,
                                    const std::string& release_id) {
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, [&](const State& s) {
                         return DecideRelease(s, app, release_id);
                       }));
  const auto& snapped = std::get<BindingSnapshotted>(decided.events.front());
  ReleaseResult result;
  result.release = ReleaseState{app, snapped.release_id, snapped.claims, ctx.clock->NowMs(),
                                decided.appended.last_seq};
  for (const auto& claim : snapped.claims) {
    const AddonState* a = decided.state.FindById(claim.addon_id);
    VIA_ASSIGN_OR_RETURN(ReadinessReport report,
                         Report(ctx, session, decided.state, claim.addon_id, a, app, claim.binding));
    if (!report.readiness.usable_by_app) {
      result.warnings.push_back(claim.binding + " -> " + claim.addon_id + " is not usable now (" +
                                *report.readiness.blocking + ")");
    }
  }
  return result;
}

Result<std::vector<ReleaseState>> ListReleases(const Context& ctx, const std::string& app) {
  VIA_RETURN_IF_ERROR(ValidateAppName(app));
  VIA_ASSIGN_OR_RETURN(Session session, Session::OpenForReading(ctx));
  VIA_ASSIGN_OR_RETURN(auto fresh, session.Fresh());
  auto it = fresh.first.releases.find(app);
  if (it == fresh.first.releases.end()) return std::vector<ReleaseState>{};
  return it->second;
}

}  // namespace via::commands
