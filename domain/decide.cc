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

Result<std::vector<Event>> DecideDestroy(const State& state, const std::string& addon) {
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
  std::string live_name = a->phase == AddonPhase::kFailed ? a->original_name : a->name;
  return std::vector<Event>{AddonDestroyed{a->id, DestroyedTombstone(live_name, a->id)}};
}

}  // namespace via
