#include "domain/decide.h"

#include <algorithm>

#include "domain/names.h"
#include "domain/reasons.h"

namespace via {
namespace {

Status AddonNotFound(const std::string& addon) {
  return NotFound("addon_not_found",
                  "no add-on named " + addon + " (via addon list --all lists every record)")
      .WithOwner("operator");
}

// A binding that points at another add-on: moving it changes what that
// add-on's app is served, so no command is offered; the operator decides.
Status BindingConflict(const State& state, const std::string& app, const std::string& binding,
                       const std::string& holder) {
  std::string what = holder;
  if (const AddonState* h = state.FindById(holder)) {
    what = h->name + " (" + holder + ", " + PhaseName(h->phase) + ")";
  }
  return FailedPrecondition("binding_conflict",
                            "binding " + binding + " of app " + app + " already points at " +
                                what + "; to move it: via addon unbind " + holder + " --app " +
                                app + " --bind " + binding)
      .WithOwner("operator");
}

}  // namespace

Result<std::vector<Event>> DecideCreate(const State& state, const CreateCommand& c) {
  VIA_RETURN_IF_ERROR(ValidateAddonName(c.name));
  VIA_RETURN_IF_ERROR(ValidateAppName(c.app));
  if (!c.binding.empty()) VIA_RETURN_IF_ERROR(ValidateBindingName(c.binding));
  if (std::find(c.providers.begin(), c.providers.end(), c.provider) == c.providers.end()) {
    std::string known;
    for (const std::string& p : c.providers) known += (known.empty() ? "" : ", ") + p;
    return InvalidArgument("unknown_provider",
                           "unknown provider '" + c.provider + "'; this build provides: " + known)
        .WithOwner("platform");  // a build with that provider
  }
  if (!c.node.empty() && !state.nodes.count(c.node)) {
    // The operator starts that node (`via serve --node NAME --public-url
    // URL`): a long-running server, not a command to paste.
    return FailedPrecondition("unknown_node", "node " + c.node +
                                                  " has not announced itself on this log (start "
                                                  "it: via serve --node " + c.node +
                                                  " --public-url URL)")
        .WithOwner("operator");
  }
  std::vector<Event> events;
  bool freed = false;  // the binding asked for was the retired record's
  if (const AddonState* existing = state.FindAddon(c.name); existing && existing->name == c.name) {
    if (existing->phase != AddonPhase::kFailed) {
      return AlreadyExists("name_taken", "add-on name " + c.name + " is taken by " + existing->id +
                                             " (via addon status " + c.name + " shows it)")
          .WithOwner("operator");
    }
    if (existing->data_present) {
      return FailedPrecondition("name_blocked_by_failed",
                                "add-on " + c.name + " (" + existing->id +
                                    ") failed to provision but its storage holds data, so "
                                    "the name stays blocked")
          .WithRemediation("via addon ensure " + existing->provider + " " + c.name + " --app " + existing->app +
                           " --repair");
    }
    // Retiring the failed record releases the bindings it was given: it
    // never served anything.
    for (const auto& [app, binding] : state.BindingsOf(existing->id)) {
      events.push_back(BindingDetached{app, binding, existing->id});
      freed = freed || (app == c.app && binding == c.binding);
    }
    events.push_back(AddonRenamed{existing->id, c.name, FailedTombstone(c.name, existing->id)});
  }
  if (!c.binding.empty() && !freed) {
    auto it = state.bindings.find({c.app, c.binding});
    if (it != state.bindings.end()) return BindingConflict(state, c.app, c.binding, it->second);
  }
  events.push_back(AddonCreated{c.new_addon_id, c.name, c.provider, c.app, c.binding});
  if (!c.node.empty()) events.push_back(AddonPlaced{c.new_addon_id, c.node});
  events.push_back(GenerationRotated{c.new_addon_id, 1, c.fingerprint, c.salt});
  if (!c.binding.empty()) events.push_back(BindingAttached{c.app, c.binding, c.new_addon_id});
  return events;
}

Result<std::vector<Event>> DecideBind(const State& state, const std::string& addon,
                                      const std::string& app, const std::string& binding) {
  VIA_RETURN_IF_ERROR(ValidateAppName(app));
  VIA_RETURN_IF_ERROR(ValidateBindingName(binding));
  const AddonState* a = state.FindAddon(addon);
  if (a == nullptr) return AddonNotFound(addon);
  if (a->phase == AddonPhase::kDestroyed) {
    return FailedPrecondition("addon_destroyed", "add-on " + a->id + " was destroyed (via addon "
                                                 "status " + a->id + " shows how to create it again)")
        .WithOwner("operator");
  }
  auto it = state.bindings.find({app, binding});
  if (it != state.bindings.end()) {
    if (it->second == a->id) return std::vector<Event>{};
    return BindingConflict(state, app, binding, it->second);
  }
  return std::vector<Event>{BindingAttached{app, binding, a->id}};
}

Result<std::vector<Event>> DecideUnbind(const State& state, const std::string& addon,
                                        const std::string& app, const std::string& binding) {
  VIA_RETURN_IF_ERROR(ValidateAppName(app));
  VIA_RETURN_IF_ERROR(ValidateBindingName(binding));
  const AddonState* a = state.FindAddon(addon);
  if (a == nullptr) return AddonNotFound(addon);
  auto it = state.bindings.find({app, binding});
  // Absent already: nothing to do (a retry of an unbind is not an error).
  if (it == state.bindings.end()) return std::vector<Event>{};
  if (it->second != a->id) {
    return FailedPrecondition("binding_of_another_addon",
                              "binding " + binding + " of app " + app + " points at " +
                                  it->second + ", not " + a->name + " (" + a->id +
                                  "): nothing of " + a->name + " to detach")
        .WithOwner("operator");
  }
  return std::vector<Event>{BindingDetached{app, binding, a->id}};
}

std::vector<std::string> LatestReleasesClaiming(const State& state, const std::string& addon_id);

Result<std::vector<Event>> DecideDestroy(const State& state, const std::string& addon, bool force,
                                         const TokenFacts& tokens) {
  const AddonState* a = state.FindAddon(addon);
  if (a == nullptr) return AddonNotFound(addon);
  if (a->phase == AddonPhase::kDestroyed) {
    return FailedPrecondition("addon_destroyed", "add-on " + a->id + " is already destroyed")
        .WithOwner("operator");
  }
  std::vector<BindingKey> bound = state.BindingsOf(a->id);
  // A failed add-on never served anything: destroying it releases its
  // bindings (AddonDestroyed detaches them) instead of refusing.
  if (!bound.empty() && a->phase != AddonPhase::kFailed) {
    std::string list;
    for (const auto& [app, binding] : bound) list += (list.empty() ? "" : ", ") + app + "/" + binding;
    return FailedPrecondition("addon_bound", "add-on " + a->name + " is still bound: " + list)
        .WithRemediation("via addon unbind " + a->name + " --app " + bound[0].first + " --bind " +
                         bound[0].second);
  }
  if (!force && a->phase != AddonPhase::kFailed) {
    // Releases whose workloads still hold a valid token and were given this
    // add-on: destroying it breaks running workloads, whichever release is
    // the latest.
    std::string live;
    std::int64_t until = 0;
    for (const auto& [app, list] : state.releases) {
      for (const auto& release : list) {
        bool claims = false;
        for (const auto& claim : release.claims) claims = claims || claim.addon_id == a->id;
        auto it = tokens.expiry_by_release.find(app + "/" + release.id);
        if (!claims || it == tokens.expiry_by_release.end() || it->second <= tokens.now_ms) {
          continue;
        }
        live += (live.empty() ? "" : ", ") + app + "/" + release.id;
        until = std::max(until, it->second);
      }
    }
    if (!live.empty()) {
      return FailedPrecondition("claimed_by_release",
                                "add-on " + a->name + " is claimed by releases whose workloads "
                                "hold unexpired tokens: " + live + " (the last expires at " +
                                    std::to_string(until) +
                                    " ms); destroying it breaks them (--force destroys it anyway)")
          .WithOwner("operator");
    }
    std::vector<std::string> releases = LatestReleasesClaiming(state, a->id);
    if (!releases.empty()) {
      std::string list;
      for (const auto& r : releases) list += (list.empty() ? "" : ", ") + r;
      // It is unbound by now (addon_bound comes first): a new release of
      // that app no longer claims it.
      const std::string app = releases.front().substr(0, releases.front().find('/'));
      return FailedPrecondition("claimed_by_release",
                                "add-on " + a->name + " is claimed by the latest release of: " +
                                    list + "; destroying it breaks those releases (--force "
                                    "destroys it anyway)")
          .WithRemediation("via release create --app " + app)
          .WithOwner("app_developer");
    }
  }
  std::string live_name = a->phase == AddonPhase::kFailed ? a->original_name : a->name;
  return std::vector<Event>{AddonDestroyed{a->id, DestroyedTombstone(live_name, a->id)}};
}

}  // namespace via

namespace via {

namespace {

Result<const AddonState*> LiveAddon(const State& state, const std::string& addon) {
  const AddonState* a = state.FindAddon(addon);
  if (a == nullptr) return AddonNotFound(addon);
  if (a->phase == AddonPhase::kDestroyed) {
    return FailedPrecondition("addon_destroyed", "add-on " + a->id + " is destroyed (via addon "
                                                 "status " + a->id + " shows how to create it again)")
        .WithOwner("operator");
  }
  return a;
}

}  // namespace

Result<std::vector<Event>> DecideSnapshot(const State& state, const std::string& addon,
                                          const std::string& snapshot_id,
                                          const std::string& label) {
  VIA_ASSIGN_OR_RETURN(const AddonState* a, LiveAddon(state, addon));
  if (!a->restoring_snapshot.empty()) {
    return FailedPrecondition(reason::kRestoreInProgress,
                              "a restore of " + a->name + " is in progress")
        .WithRemediation("via recover");
  }
  if (a->phase != AddonPhase::kActive) {
    return FailedPrecondition("addon_not_active", "add-on " + a->name + " is " + PhaseName(a->phase))
        .WithRemediation("via addon status " + a->name);
  }
  if (label.size() > 200) {
    return InvalidArgument("label_too_long", "a label has at most 200 bytes").WithOwner("operator");
  }
  return std::vector<Event>{SnapshotRequested{a->id, snapshot_id, label}};
}

Status CheckRestore(const State& state, const std::string& addon, const std::string& snapshot_id) {
  VIA_ASSIGN_OR_RETURN(const AddonState* a, LiveAddon(state, addon));
  auto it = state.snapshots.find(snapshot_id);
  if (it == state.snapshots.end()) {
    return NotFound("snapshot_not_found", "no snapshot " + snapshot_id + " (via addon snapshots " +
                                              a->name + " lists them)")
        .WithOwner("operator");
  }
  if (it->second.addon_id != a->id) {
    return FailedPrecondition("snapshot_of_another_addon",
                              "snapshot " + snapshot_id + " belongs to add-on " +
                                  it->second.addon_id + ", not " + a->id)
        .WithOwner("operator");
  }
  if (it->second.status != SnapshotStatus::kTaken) {
    return FailedPrecondition("snapshot_not_taken", "snapshot " + snapshot_id + " is " +
                                                        SnapshotStatusName(it->second.status))
        .WithOwner("operator");
  }
  if (it->second.deleted) {
    return FailedPrecondition("snapshot_deleted", "snapshot " + snapshot_id + " was deleted")
        .WithOwner("operator");  // pick another snapshot
  }
  if (!a->restoring_snapshot.empty()) {
    return FailedPrecondition(reason::kRestoreInProgress, "a restore of " + a->name + " is in progress")
        .WithRemediation("via recover");
  }
  return Status::Ok();
}

Result<std::string> DecideCheck(const State& state, const std::string& addon) {
  VIA_ASSIGN_OR_RETURN(const AddonState* a, LiveAddon(state, addon));
  if (a->phase != AddonPhase::kActive) {
    return FailedPrecondition("addon_not_active", "add-on " + a->name + " is " + PhaseName(a->phase) +
                                                      ": there is no provisioned storage to check")
        .WithRemediation("via addon status " + a->name);
  }
  return a->id;
}

Result<std::vector<Event>> DecideRotate(const State& state, const std::string& addon,
                                        const Bytes& salt, const Bytes& fingerprint) {
  VIA_ASSIGN_OR_RETURN(const AddonState* a, LiveAddon(state, addon));
  return std::vector<Event>{
      GenerationRotated{a->id, a->current_generation() + 1, fingerprint, salt}};
}

Result<std::vector<Event>> DecideRevoke(const State& state, const std::string& addon,
                                        std::uint32_t generation, bool force) {
  VIA_ASSIGN_OR_RETURN(const AddonState* a, LiveAddon(state, addon));
  const GenerationState* found = nullptr;
  int active = 0;
  for (const auto& g : a->generations) {
    if (g.number == generation) found = &g;
    if (!g.revoked) ++active;
  }
  if (found == nullptr) {
    return NotFound("generation_not_found", "add-on " + a->name + " has no generation " +
                                                std::to_string(generation) +
                                                " (via addon status " + a->name + " lists them)")
        .WithOwner("security");
  }
  if (found->revoked) {
    Status already = FailedPrecondition("generation_already_revoked",
                                        "generation " + std::to_string(generation) + " of " +
                                            a->name + " is already revoked")
                         .WithOwner("security");
    // Nothing left to revoke; what may be left to do is issue a new one.
    if (active == 0) return already.WithRemediation("via addon rotate-credentials " + a->name);
    return already;
  }
  if (active == 1 && !force) {
    return FailedPrecondition("last_active_generation",
                              "generation " + std::to_string(generation) +
                                  " is the last active one: revoking it cuts every app off")
        .WithRemediation("via addon rotate-credentials " + a->name)
        .WithOwner("security");
  }
  return std::vector<Event>{GenerationRevoked{a->id, generation}};
}

Result<std::vector<Event>> DecideRelease(const State& state, const std::string& app,
                                         const std::string& release_id) {
  VIA_RETURN_IF_ERROR(ValidateAppName(app));
  std::string id = release_id;
  auto existing = state.releases.find(app);
  std::size_t count = existing == state.releases.end() ? 0 : existing->second.size();
  if (id.empty()) {
    // The next free "vN".
    for (std::size_t n = count + 1;; ++n) {
      id = "v" + std::to_string(n);
      bool taken = false;
      if (existing != state.releases.end()) {
        for (const auto& r : existing->second) taken = taken || r.id == id;
      }
      if (!taken) break;
    }
  }
  VIA_RETURN_IF_ERROR(ValidateReleaseId(id));
  if (existing != state.releases.end()) {
    for (const auto& r : existing->second) {
      if (r.id == id) {
        return AlreadyExists("release_exists", "app " + app + " already has release " + id +
                                                   " (without --id the next free vN is taken)")
            .WithOwner("app_developer");
      }
    }
  }
  BindingSnapshotted event{app, id, {}};
  for (const auto& [key, addon_id] : state.bindings) {
    if (key.first == app) event.claims.push_back(BindingClaim{key.second, addon_id});
  }
  return std::vector<Event>{event};
}

std::vector<std::string> LatestReleasesClaiming(const State& state, const std::string& addon_id) {
  std::vector<std::string> out;
  for (const auto& [app, list] : state.releases) {
    if (list.empty()) continue;
    for (const auto& claim : list.back().claims) {
      if (claim.addon_id == addon_id) {
        out.push_back(app + "/" + list.back().id);
        break;
      }
    }
  }
  return out;
}

}  // namespace via
