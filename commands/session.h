#pragma once

// What the handlers in commands/ share (not part of the public face): the
// open log and read model of one command, deciding on a slice of the state
// and appending after exactly the head that slice describes, and the §7
// readiness report.
//
// Every answer reads the read model in one snapshot after catching it up, and
// a command that decides on that snapshot appends expecting exactly the log
// head the snapshot describes (the model's cursor), so no fact it combines
// can come from two moments. Decisions read only the rows they name
// (domain::StateKeys), never every add-on. In a home that cannot be written
// (a read-only mount) the read model cannot catch up; reading commands then
// fold the log in memory instead.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "commands/addon.h"
#include "commands/context.h"
#include "domain/state.h"
#include "eventstore/event_log.h"
#include "projections/read_model.h"
#include "providers/provider.h"

namespace via::commands {

class Session {
 public:
  // For commands that append: the full EventLog (key, tail check).
  static Result<Session> Open(const Context& ctx);
  // For commands that only read: the log read-only, no key, no OpenSSL.
  static Result<Session> OpenForReading(const Context& ctx);

  eventstore::LogStore& store() { return log_ ? log_->store() : *read_only_log_; }
  eventstore::EventLog& log() { return *log_; }
  // Null when the state is folded in memory (a home that cannot be written).
  projections::ReadModel* model() { return in_memory_ ? nullptr : model_.get(); }

  // Brings the read model up to the log's head (once per command: later
  // calls only look at the cursor).
  Status CatchUp();

  // Keys to read besides, once the first slice is known (for instance the
  // bindings of the add-on a name resolved to).
  using MoreKeys = std::function<StateKeys(const State&)>;

  // The slice `keys` (and `more` of it) of the caught-up state, read in one
  // snapshot, and the log head it describes.
  Result<std::pair<State, eventstore::Head>> Slice(const StateKeys& keys,
                                                   const MoreKeys& more = nullptr);

  // The provider named `name` working on this session's log. Errors:
  // InvalidArgument "unknown_provider".
  Result<std::unique_ptr<providers::Provider>> ProviderNamed(const Context& ctx,
                                                             const std::string& name);
  // The provider of the add-on `addon_id` (read from the caught-up state).
  // Errors: NotFound "addon_not_found"; as ProviderNamed.
  Result<std::unique_ptr<providers::Provider>> Provider(const Context& ctx,
                                                        const std::string& addon_id);
  // The same for file work on the add-on's storage (snapshot, restore,
  // verify, repair): only its owner's home does it. Errors: as Provider;
  // FailedPrecondition "owner_elsewhere" when the add-on is placed on
  // another node than this home's (commands/nodes.h).
  Result<std::unique_ptr<providers::Provider>> OwnedProvider(const Context& ctx,
                                                             const std::string& addon_id);
  // Ok unless the add-on (live name or id; none: Ok) is placed on another
  // node than this home's: then "owner_elsewhere", as OwnedProvider. For
  // commands that append an intent before their file work.
  Status RequireOwner(const Context& ctx, const std::string& name_or_id);

 private:
  Session() = default;
  std::unique_ptr<eventstore::EventLog> log_;            // when appending
  std::unique_ptr<eventstore::LogStore> read_only_log_;  // when only reading
  std::unique_ptr<projections::ReadModel> model_;
  bool in_memory_ = false;
};

// The keys of one add-on named by live name or id.
StateKeys AddonKeys(const std::string& name_or_id);
// The add-on created last under `name` (live, failed or destroyed), or null.
const AddonState* LatestIncarnation(const State& state, const std::string& name);
// What a readiness report of that add-on reads besides: its bindings, the
// binding it was created for, and only the latest release of each app it is
// bound in (StateKeys::latest_release_of: one indexed lookup, whatever the
// number of releases) (`more` of Session::Slice).
StateKeys AddonDetailKeys(const State& slice, const std::string& name_or_id);

using Decider = std::function<Result<std::vector<Event>>(const State&)>;

// The log command id of decision `step` of this command under --command-id
// ("<ctx.command_id>/<step>"), or "" without one.
std::string StepCommandId(const Context& ctx, const std::string& step);

// The records appended under `command_id` (a full log command id), decoded,
// with where they are; nullopt when nothing was appended under it (or the id
// is empty).
struct CommandRecords {
  eventstore::AppendResult appended;
  std::vector<Record> records;
};
Result<std::optional<CommandRecords>> FindCommandRecords(eventstore::LogStore& store,
                                                         const std::string& command_id);

struct Decided {
  State state;  // the slice the decision was made on
  std::vector<Event> events;
  eventstore::AppendResult appended;
  // A retry of the same --command-id: `events` are the first run's records
  // (already in `state`); nothing was appended.
  bool replayed = false;
  // `events` as the records appended (seq, time, actor; a replayed retry:
  // the first run's).
  std::vector<Record> records;

  // The slice right after this command's own records: what the command did,
  // without anything another process appended since (its answer comes from
  // here, never from a later read).
  State After() const;
};

// Decides on the slice `keys` and appends expecting the head it describes;
// when another process appended first, decides again on the new state.
// With ctx.command_id, the append carries "<command_id>/<step>" (`step`
// names this decision among the command's decisions), and a decision already
// appended under that id is not made again: its records come back, replayed.
Result<Decided> DecideAndAppend(const Context& ctx, Session& session, const StateKeys& keys,
                                const Decider& decide,
                                const Session::MoreKeys& more = nullptr,
                                const std::string& step = "1");

// A retry's answer without deciding: the decision `step` already appended
// under ctx.command_id, replayed as DecideAndAppend would (the slice `keys`
// plus what its records name, read now), or nullopt when there is none (or
// no --command-id). For commands whose work before the decision (file work)
// must not be redone by a retry.
Result<std::optional<Decided>> FindReplay(const Context& ctx, Session& session,
                                          const StateKeys& keys,
                                          const Session::MoreKeys& more = nullptr,
                                          const std::string& step = "1");
// The environment a provider of this command works in (`log` may be null).
providers::Environment ProviderEnvironment(const Context& ctx, eventstore::EventLog* log);

// Salt and fingerprint of a new credential generation (FailedPrecondition
// "credentials_key_missing" without keys/credentials.key).
Result<std::pair<Bytes, Bytes>> NewGeneration(const Context& ctx, const std::string& addon_id,
                                              std::uint32_t generation);

// InvalidArgument "tombstone_name" for NAME#destroyed#ID / NAME#failed#ID.
Status RejectTombstone(const std::string& addon);

// Fills the §7 report for `addon` (may be null) and the binding (app,
// binding) from `state`, which must hold the add-on, that binding and the
// add-on's bindings; storage is probed for real. Assess leaves out the log's
// root (what `addon list` needs: one answer per add-on, no log read).
Result<ReadinessReport> Assess(const Context& ctx, const State& state,
                               const std::string& requested, const AddonState* addon,
                               std::string app, std::string binding,
                               const std::string& expected_provider = "");
Result<ReadinessReport> Report(const Context& ctx, Session& session, const State& state,
                               const std::string& requested, const AddonState* addon,
                               std::string app, std::string binding,
                               const std::string& expected_provider = "");

// The slice a readiness report of `addon` (live name or id) with the binding
// (app, binding) reads, in one snapshot: Report(..., slice.first, ...).
Result<std::pair<State, eventstore::Head>> ReportSlice(Session& session, const std::string& addon,
                                                       const std::string& app,
                                                       const std::string& binding);

}  // namespace via::commands
