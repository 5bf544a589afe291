#include "domain/decide.h"

#include "domain/names.h"

namespace via {
namespace {

Status AddonNotFound(const std::string& addon) {
  return NotFound("addon_not_found", "no add-on named " + addon)
      .WithRemediation("via addon list --all");
}

}  // namespace

Result<std::vector<Event>> DecideCreate(const State& state, const CreateCommand& c) {
  VIA_RETURN_IF_ERROR(ValidateAddonName(c.name));
  VIA_RETURN_IF_ERROR(ValidateAppName(c.app));
  if (!c.binding.empty()) VIA_RETURN_IF_ERROR(ValidateBindingName(c.binding));
  if (c.provider != kSqliteProvider) {
    return InvalidArgument("unknown_provider", "unknown provider '" + c.provider +
                                                   "'; this build provides: sqlite");
  }
  std::vector<Event> events;
  if (const AddonState* existing = state.FindAddon(c.name); existing && existing->name == c.name) {
    if (existing->phase != AddonPhase::kFailed) {
      return AlreadyExists("name_taken", "add-on name " + c.name + " is taken by " + existing->id)
          .WithRemediation("via addon status " + c.name);
    }
    if (existing->data_present) {
      return FailedPrecondition("name_blocked_by_failed",
                                "add-on " + c.name + " (" + existing->id +
                                    ") failed to provision but its file holds SQLite data, so "
                                    "the name stays blocked")
          .WithRemediation("via addon ensure sqlite " + c.name + " --app " + existing->app +
                           " --bind " + (c.binding.empty() ? "DATABASE" : c.binding) + " --repair");
    }
    events.push_back(AddonRenamed{existing->id, c.name, FailedTombstone(c.name, existing->id)});
  }
  if (!c.binding.empty()) {
    auto it = state.bindings.find({c.app, c.binding});
    if (it != state.bindings.end()) {
      return FailedPrecondition("binding_conflict", "binding " + c.binding + " of app " + c.app +
                                                        " already points at " + it->second)
          .WithRemediation("via addon unbind " + it->second + " --app " + c.app + " --bind " +
                           c.binding);
    }
  }
  events.push_back(AddonCreated{c.new_addon_id, c.name, c.provider, c.app, c.binding});
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
    return FailedPrecondition("addon_destroyed", "add-on " + a->id + " was destroyed");
  }
  auto it = state.bindings.find({app, binding});
  if (it != state.bindings.end()) {
    if (it->second == a->id) return std::vector<Event>{};
    return FailedPrecondition("binding_conflict", "binding " + binding + " of app " + app +
                                                      " already points at " + it->second)
        .WithRemediation("via addon unbind " + it->second + " --app " + app + " --bind " + binding);
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
  if (it == state.bindings.end() || it->second != a->id) {
    return NotFound("binding_not_found",
                    "app " + app + " has no binding " + binding + " to " + a->name);
  }
  return std::vector<Event>{BindingDetached{app, binding, a->id}};
}

std::vector<std::string> LatestReleasesClaiming(const State& state, const std::string& addon_id);

Result<std::vector<Event>> DecideDestroy(const State& state, const std::string& addon, bool force) {
  const AddonState* a = state.FindAddon(addon);
  if (a == nullptr) return AddonNotFound(addon);
  if (a->phase == AddonPhase::kDestroyed) {
    return FailedPrecondition("addon_destroyed", "add-on " + a->id + " is already destroyed");
  }
  std::vector<BindingKey> bound = state.BindingsOf(a->id);
  if (!bound.empty()) {
    std::string list;
    for (const auto& [app, binding] : bound) list += (list.empty() ? "" : ", ") + app + "/" + binding;
    return FailedPrecondition("addon_bound", "add-on " + a->name + " is still bound: " + list)
        .WithRemediation("via addon unbind " + a->name + " --app " + bound[0].first + " --bind " +
                         bound[0].second);
  }
  if (!force) {
    std::vector<std::string> releases = LatestReleasesClaiming(state, a->id);
    if (!releases.empty()) {
      std::string list;
      for (const auto& r : releases) list += (list.empty() ? "" : ", ") + r;
      return FailedPrecondition("claimed_by_release",
                                "add-on " + a->name + " is claimed by the latest release of: " +
                                    list + "; destroying it breaks those releases")
          .WithRemediation("create a new release without it, or: via addon destroy " + a->name +
                           " --force");
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
  if (a == nullptr) {
    return NotFound("addon_not_found", "no add-on named " + addon)
        .WithRemediation("via addon list --all");
  }
  if (a->phase == AddonPhase::kDestroyed) {
    return FailedPrecondition("addon_destroyed", "add-on " + a->id + " is destroyed");
  }
  return a;
}

}  // namespace

Result<std::vector<Event>> DecideSnapshot(const State& state, const std::string& addon,
                                          const std::string& snapshot_id,
                                          const std::string& label) {
  VIA_ASSIGN_OR_RETURN(const AddonState* a, LiveAddon(state, addon));
  if (!a->restoring_snapshot.empty()) {
    return FailedPrecondition("restore_in_progress",
                              "a restore of " + a->name + " is in progress")
        .WithRemediation("via recover");
  }
  if (a->phase != AddonPhase::kActive) {
    return FailedPrecondition("addon_not_active", "add-on " + a->name + " is " + PhaseName(a->phase))
        .WithRemediation("via addon status " + a->name);
  }
  if (label.size() > 200) return InvalidArgument("label_too_long", "a label has at most 200 bytes");
  return std::vector<Event>{SnapshotRequested{a->id, snapshot_id, label}};
}

Status CheckRestore(const State& state, const std::string& addon, const std::string& snapshot_id) {
  VIA_ASSIGN_OR_RETURN(const AddonState* a, LiveAddon(state, addon));
  auto it = state.snapshots.find(snapshot_id);
  if (it == state.snapshots.end()) {
    return NotFound("snapshot_not_found", "no snapshot " + snapshot_id)
        .WithRemediation("via addon snapshots " + a->name);
  }
  if (it->second.addon_id != a->id) {
    return FailedPrecondition("snapshot_of_another_addon",
                              "snapshot " + snapshot_id + " belongs to add-on " +
                                  it->second.addon_id + ", not " + a->id);
  }
  if (it->second.status != SnapshotStatus::kTaken) {
    return FailedPrecondition("snapshot_not_taken", "snapshot " + snapshot_id + " is " +
                                                        SnapshotStatusName(it->second.status));
  }
  if (it->second.deleted) {
    return FailedPrecondition("snapshot_deleted", "snapshot " + snapshot_id + " was deleted");
  }
  if (!a->restoring_snapshot.empty()) {
    return FailedPrecondition("restore_in_progress", "a restore of " + a->name + " is in progress")
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
                                                std::to_string(generation));
  }
  if (found->revoked) {
    return FailedPrecondition("generation_already_revoked",
                              "generation " + std::to_string(generation) + " of " + a->name +
                                  " is already revoked");
  }
  if (active == 1 && !force) {
    return FailedPrecondition("last_active_generation",
                              "generation " + std::to_string(generation) +
                                  " is the last active one: revoking it cuts every app off")
        .WithRemediation("via addon rotate-credentials " + a->name +
                         " (then revoke), or pass --force");
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
        return AlreadyExists("release_exists", "app " + app + " already has release " + id);
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
