#include "commands/session.h"

#include <filesystem>

#include "commands/nodes.h"
#include "crypto/credentials.h"
#include "crypto/crypto.h"
#include "domain/names.h"
#include "domain/reasons.h"
#include "eventstore/checkpoint.h"
#include "eventstore/file_lock.h"
#include "eventstore/filenames.h"
#include "eventstore/record_codec.h"

namespace via::commands {
namespace {

constexpr int kMaxRaceRetries = 200;

}  // namespace

Result<Session> Session::Open(const Context& ctx) {
  Session s;
  VIA_ASSIGN_OR_RETURN(s.log_, ctx.OpenLog());
  VIA_ASSIGN_OR_RETURN(s.model_, projections::ReadModel::Open(ctx.home.state_db().string()));
  s.model_->set_crash_points(ctx.crash);
  return s;
}

Result<Session> Session::OpenForReading(const Context& ctx) {
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
  s.read_only_log_ = std::move(log).value();
  auto model = projections::ReadModel::Open(ctx.home.state_db().string());
  if (!model.ok()) {
    if (model.status().reason() != reason::kHomeNotWritable) return model.status();
    s.in_memory_ = true;
  } else {
    s.model_ = std::move(model).value();
    s.model_->set_crash_points(ctx.crash);
  }
  return s;
}

Status Session::CatchUp() {
  if (in_memory_) return Status::Ok();
  auto caught_up = model_->CatchUp(store());
  if (caught_up.ok()) return Status::Ok();
  if (caught_up.status().reason() != reason::kHomeNotWritable || log_) return caught_up.status();
  in_memory_ = true;
  return Status::Ok();
}

Result<std::pair<State, eventstore::Head>> Session::Slice(const StateKeys& keys,
                                                          const MoreKeys& more) {
  VIA_RETURN_IF_ERROR(CatchUp());
  if (in_memory_) {
    VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, store().BeginRead());
    VIA_ASSIGN_OR_RETURN(eventstore::Head head, store().GetHead());
    VIA_ASSIGN_OR_RETURN(State state, projections::Replay(store(), head.seq));
    return std::make_pair(std::move(state), head);
  }
  VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, model_->BeginRead());
  VIA_ASSIGN_OR_RETURN(eventstore::Head head, model_->CursorHead());
  VIA_ASSIGN_OR_RETURN(State state, model_->LoadSlice(keys));
  if (more) {
    // What to read besides can depend on what that read found (an add-on's
    // bindings, then the releases of the apps they belong to): a few rounds
    // until nothing new is asked for.
    StateKeys all = keys;
    for (int round = 0; round < 4; ++round) {
      StateKeys grown = all;
      grown.Merge(more(state));
      if (grown == all) break;
      all = std::move(grown);
      VIA_ASSIGN_OR_RETURN(state, model_->LoadSlice(all));
    }
  }
  return std::make_pair(std::move(state), head);
}

providers::Environment ProviderEnvironment(const Context& ctx, eventstore::EventLog* log) {
  providers::Environment env;
  env.home = ctx.home;
  env.actor = ctx.actor;
  env.clock = ctx.clock;
  env.log = log;
  env.test_faults = ctx.test_faults.get();
  env.crash = ctx.crash;
  return env;
}

Result<std::unique_ptr<providers::Provider>> Session::ProviderNamed(const Context& ctx,
                                                                   const std::string& name) {
  if (ctx.providers == nullptr) return Internal("no provider registry in the command context");
  return ctx.providers->Make(name, ProviderEnvironment(ctx, log_.get()));
}

Result<std::unique_ptr<providers::Provider>> Session::Provider(const Context& ctx,
                                                               const std::string& addon_id) {
  VIA_ASSIGN_OR_RETURN(auto slice, Slice(AddonKeys(addon_id)));
  const AddonState* addon = slice.first.FindById(addon_id);
  if (addon == nullptr) return NotFound("addon_not_found", "no add-on " + addon_id);
  return ProviderNamed(ctx, addon->provider);
}

Status Session::RequireOwner(const Context& ctx, const std::string& name_or_id) {
  VIA_ASSIGN_OR_RETURN(auto slice, Slice(AddonKeys(name_or_id)));
  const AddonState* addon = slice.first.FindAddon(name_or_id);
  if (addon == nullptr || addon->node.empty()) return Status::Ok();
  VIA_ASSIGN_OR_RETURN(std::optional<std::string> home_node, HomeNode(ctx.home));
  if (addon->node == home_node.value_or("")) return Status::Ok();
  return FailedPrecondition(reason::kOwnerElsewhere, "add-on " + addon->id + " lives on node " +
                                                   addon->node +
                                                   "; its files are there, not in this home")
      .WithRemediation("run the command with --home of node " + addon->node);
}

Result<std::unique_ptr<providers::Provider>> Session::OwnedProvider(const Context& ctx,
                                                                    const std::string& addon_id) {
  VIA_RETURN_IF_ERROR(RequireOwner(ctx, addon_id));
  return Provider(ctx, addon_id);
}

StateKeys AddonKeys(const std::string& name_or_id) {
  StateKeys keys;
  keys.names.insert(name_or_id);
  keys.addons.insert(name_or_id);
  return keys;
}

StateKeys AddonDetailKeys(const State& slice, const std::string& name_or_id) {
  StateKeys keys;
  const AddonState* a = slice.FindAddon(name_or_id);
  if (a == nullptr && !LooksLikeId(name_or_id, "ad_")) {
    // Not live: the record it was last created as (destroyed or retired).
    keys.incarnations_of.insert(name_or_id);
    a = LatestIncarnation(slice, name_or_id);
  }
  if (a != nullptr) {
    keys.addons.insert(a->id);
    keys.bindings_of.insert(a->id);
    keys.names.insert(a->original_name);
    keys.latest_release_of.insert(a->app);
    if (!a->requested_binding.empty()) keys.bindings.insert({a->app, a->requested_binding});
    for (const auto& [app, binding] : slice.BindingsOf(a->id)) keys.latest_release_of.insert(app);
  }
  return keys;
}

const AddonState* LatestIncarnation(const State& state, const std::string& name) {
  const AddonState* latest = nullptr;
  for (const auto& [id, a] : state.addons) {
    if (a.original_name == name && (latest == nullptr || a.created_seq > latest->created_seq)) {
      latest = &a;
    }
  }
  return latest;
}

State Decided::After() const {
  if (replayed) return state;  // the slice already holds the first run's records
  State after = state;
  for (const Record& record : records) Apply(after, record);
  return after;
}

std::string StepCommandId(const Context& ctx, const std::string& step) {
  return eventstore::StepCommandId(ctx.command_id, step);
}

Result<std::optional<CommandRecords>> FindCommandRecords(eventstore::LogStore& store,
                                                         const std::string& command_id) {
  if (command_id.empty()) return std::optional<CommandRecords>();
  VIA_ASSIGN_OR_RETURN(auto previous, store.FindCommand(command_id));
  if (!previous) return std::optional<CommandRecords>();
  CommandRecords out;
  out.appended = *previous;
  Status error;
  VIA_RETURN_IF_ERROR(store.Scan(previous->first_seq, previous->last_seq,
                                 [&](const eventstore::StoredRecord& row) {
                                   auto record = eventstore::DecodeRecord(row.bytes);
                                   if (!record.ok()) {
                                     error = record.status();
                                     return false;
                                   }
                                   out.records.push_back(std::move(record).value());
                                   return true;
                                 }));
  VIA_RETURN_IF_ERROR(error);
  return std::optional<CommandRecords>(std::move(out));
}

namespace {

// The answer of a retry: what the first run appended, with the slice `keys`
// and whatever those records name, read now.
Result<Decided> ReplayOf(Session& session, const StateKeys& keys, const Session::MoreKeys& more,
                         CommandRecords previous) {
  Decided out;
  out.replayed = true;
  out.appended = previous.appended;
  out.appended.replayed = true;
  StateKeys replay_keys = keys;
  for (const Record& r : previous.records) {
    out.events.push_back(r.event);
    replay_keys.Merge(KeysOf(r));
  }
  out.records = std::move(previous.records);
  VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(replay_keys, more));
  out.state = std::move(slice.first);
  return out;
}

}  // namespace

Result<std::optional<Decided>> FindReplay(const Context& ctx, Session& session,
                                          const StateKeys& keys, const Session::MoreKeys& more,
                                          const std::string& step) {
  VIA_ASSIGN_OR_RETURN(auto previous,
                       FindCommandRecords(session.store(), StepCommandId(ctx, step)));
  if (!previous) return std::optional<Decided>();
  VIA_ASSIGN_OR_RETURN(Decided replayed, ReplayOf(session, keys, more, std::move(*previous)));
  return std::optional<Decided>(std::move(replayed));
}

Result<Decided> DecideAndAppend(const Context& ctx, Session& session, const StateKeys& keys,
                                const Decider& decide, const Session::MoreKeys& more,
                                const std::string& step) {
  // Deciding commands queue here, so that the head a decision is made on is
  // still the head when it appends (no stale-head retry storms, and no
  // polling on SQLite's busy handler: the kernel wakes the next in line).
  // Appends without this lock (via serve's records) still only make the
  // append below fail with stale_head, and the decision is made again.
  VIA_ASSIGN_OR_RETURN(eventstore::FileLock lock,
                       eventstore::FileLock::Exclusive(ctx.home.append_lock()));
  const std::string command_id = StepCommandId(ctx, step);
  // A retry: the answer is what the first run appended; nothing is appended.
  auto replay = [&]() -> Result<Decided> {
    VIA_ASSIGN_OR_RETURN(auto previous, FindCommandRecords(session.store(), command_id));
    if (!previous) return Internal("command " + command_id + " vanished from the log");
    return ReplayOf(session, keys, more, std::move(*previous));
  };
  if (!command_id.empty()) {
    VIA_ASSIGN_OR_RETURN(auto previous, session.store().FindCommand(command_id));
    if (previous) return replay();
  }
  for (int attempt = 0; attempt < kMaxRaceRetries; ++attempt) {
    VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(keys, more));
    Decided out;
    out.state = std::move(slice.first);
    VIA_ASSIGN_OR_RETURN(out.events, decide(out.state));
    if (out.events.empty()) return out;
    eventstore::AppendRequest request;
    request.actor = ctx.actor;
    request.recorded_at_ms = ctx.clock->NowMs();
    request.events = out.events;
    request.expected_head = slice.second;
    request.command_id = command_id;
    auto appended = session.log().Append(request);
    if (appended.ok()) {
      // The same id appended by a racing retry first: answer with its records.
      if (appended->replayed) return replay();
      out.appended = *appended;
      for (std::size_t i = 0; i < out.events.size(); ++i) {
        Record record;
        record.seq = appended->first_seq + i;
        record.recorded_at_ms = request.recorded_at_ms;
        record.actor = request.actor;
        if (i + 1 == out.events.size()) record.command_id = command_id;
        record.event = out.events[i];
        out.records.push_back(std::move(record));
      }
      return out;
    }
    // log_unreachable: the log's own retries ran out (LogStore::Append);
    // deciding again would only wait as long once more.
    if ((appended.status().code() != StatusCode::kAborted &&
         appended.status().code() != StatusCode::kUnavailable) ||
        appended.status().reason() == reason::kLogUnreachable) {
      return appended.status();
    }
  }
  return Unavailable("busy", "too many concurrent changes; try again");
}

Result<std::pair<Bytes, Bytes>> NewGeneration(const Context& ctx, const std::string& addon_id,
                                              std::uint32_t generation) {
  // Only `via init` creates the key: a silently regenerated key would change
  // every credential already handed out.
  auto key = eventstore::ReadFile(ctx.home.credentials_key());
  if (!key.ok() || key->size() != 32) {
    return FailedPrecondition("credentials_key_missing",
                              ctx.home.credentials_key().string() +
                                  " is missing or damaged; restore it from backup (see "
                                  "docs/operations.md)")
        .WithOwner("security");  // restore it from backup (docs/operations.md): never regenerate
  }
  Bytes salt = crypto::RandomBytes(16);
  Hash256 credential = crypto::DeriveCredential(*key, addon_id, generation, salt);
  Hash256 fingerprint = crypto::CredentialFingerprint(credential);
  return std::make_pair(salt, Bytes(fingerprint.begin(), fingerprint.end()));
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

Result<std::pair<State, eventstore::Head>> ReportSlice(Session& session, const std::string& addon,
                                                       const std::string& app,
                                                       const std::string& binding) {
  StateKeys keys = AddonKeys(addon);
  if (!app.empty() && !binding.empty()) {
    keys.bindings.insert({app, binding});
    keys.latest_release_of.insert(app);
  }
  return session.Slice(keys, [&](const State& s) { return AddonDetailKeys(s, addon); });
}

Result<ReadinessReport> Assess(const Context& ctx, const State& state,
                               const std::string& requested, const AddonState* addon,
                               std::string app, std::string binding,
                               const std::string& expected_provider) {
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
    if (auto it = state.releases.find(app); it != state.releases.end() && !it->second.empty()) {
      in.latest_release = it->second.back().id;
      for (const auto& claim : it->second.back().claims) {
        if (addon && claim.binding == binding && claim.addon_id == addon->id) {
          in.latest_release_claims = true;
        }
      }
    }
  }
  if (addon) {
    if (auto it = state.names.find(addon->original_name); it != state.names.end()) {
      in.name_holder = it->second;
    }
  }
  const providers::Environment env = ProviderEnvironment(ctx, nullptr);
  if (ctx.providers != nullptr) {
    ctx.providers->Describe(addon ? addon->provider : expected_provider, in, env);
  }
  // Several nodes: the files of an add-on placed on another node are that
  // node's; this home judges its storage by the log alone (provisioned, no
  // restore in flight, no current check that found damage), never by a
  // probe of files it does not hold.
  bool elsewhere = false;
  if (addon && !addon->node.empty()) {
    VIA_ASSIGN_OR_RETURN(std::optional<std::string> home_node, HomeNode(ctx.home));
    elsewhere = addon->node != home_node.value_or("");
  }
  if (elsewhere) {
    report.storage_node = addon->node;
    // Provisioned per the log; a restore in flight and a check that found
    // damage are judged by Evaluate from the add-on itself.
    if (addon->phase == AddonPhase::kActive) in.storage = StorageFact::kOk;
  }
  if (addon && addon->phase != AddonPhase::kDestroyed && in.provider_known &&
      ctx.providers != nullptr && !elsewhere) {
    VIA_ASSIGN_OR_RETURN(auto provider, ctx.providers->Make(addon->provider, env));
    in.storage = provider->Probe(addon->id, &in.storage_detail);
  }
  std::error_code ec;
  in.credentials_key_present = std::filesystem::exists(ctx.home.credentials_key(), ec);
  report.readiness = Evaluate(in);
  report.log_size = state.seq;
  return report;
}

Result<ReadinessReport> Report(const Context& ctx, Session& session, const State& state,
                               const std::string& requested, const AddonState* addon,
                               std::string app, std::string binding,
                               const std::string& expected_provider) {
  VIA_ASSIGN_OR_RETURN(ReadinessReport report, Assess(ctx, state, requested, addon, app, binding,
                                                      expected_provider));
  // The log as of the state this answer describes: its size and the root
  // signed for exactly that size (one row holds both).
  auto note = session.store().CheckpointAt(state.seq);
  if (note.ok()) {
    auto checkpoint = eventstore::ParseCheckpointUnverified(*note);
    if (checkpoint.ok()) report.log_root = checkpoint->root;
  } else if (note.status().code() != StatusCode::kNotFound) {
    return note.status();
  }
  return report;
}

}  // namespace via::commands
