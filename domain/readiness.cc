#include "domain/readiness.h"
#include "domain/reasons.h"

namespace via {
namespace {

// One layer's verdict: ready, or the blocker that says why not.
struct Blocker {
  std::string code;
  std::string owner;
  std::string reason;
  std::string remediation;  // "" when the owner must decide
};
using Verdict = std::optional<Blocker>;

std::string BindFlag(const std::string& binding) {
  return binding.empty() ? "" : " --bind " + binding;
}

// `via addon create` of a record's name again, for its app and the binding it
// was created for (never a guessed one).
std::string CreateAgain(const AddonState& a) {
  return "via addon create " + a.provider + " " + a.original_name + " --app " + a.app +
         BindFlag(a.requested_binding);
}

std::string EnsureRepair(const AddonState& a) {
  return "via addon ensure " + a.provider + " " + a.name + " --app " + a.app + " --repair";
}

Verdict Metadata(const ReadinessInput& in) {
  const AddonState* a = in.addon;
  if (a == nullptr) {
    const std::string provider =
        in.expected_provider.empty() ? in.default_provider : in.expected_provider;
    if (in.app.empty() || provider.empty()) {
      // Which app it is for is the operator's call: no placeholder command.
      return Blocker{"addon_not_found", "operator",
                     "no add-on named " + in.requested + "; create it with via addon create " +
                         (provider.empty() ? "<provider>" : provider) + " " + in.requested +
                         " --app <app>",
                     ""};
    }
    // A binding that points at another add-on is not asked for (create
    // would refuse it); the binding layer reports the conflict.
    return Blocker{"addon_not_found", "operator", "no add-on named " + in.requested,
                   "via addon create " + provider + " " + in.requested + " --app " + in.app +
                       (in.binding_target ? "" : BindFlag(in.binding))};
  }
  const bool name_free = !in.name_holder.has_value() || *in.name_holder == a->id;
  if (a->phase == AddonPhase::kDestroyed) {
    if (!name_free) {
      return Blocker{"addon_destroyed", "operator",
                     "add-on " + a->id + " was destroyed (kept as " + a->name + "); the name " +
                         a->original_name + " now belongs to " + *in.name_holder,
                     ""};
    }
    return Blocker{"addon_destroyed", "operator",
                   "add-on " + a->id + " was destroyed; its record is kept as " + a->name,
                   CreateAgain(*a)};
  }
  if (a->phase == AddonPhase::kFailed) {
    std::string reason = "provisioning of " + a->original_name + " (" + a->id +
                         ") failed: " + a->failure_reason;
    if (a->name != a->original_name) {
      // Retired by a later create: history, not something to fix.
      if (!name_free) {
        return Blocker{"provisioning_failed", "operator",
                       reason + "; the record is retired as " + a->name + " and the name " +
                           a->original_name + " now belongs to " + *in.name_holder,
                       ""};
      }
      return Blocker{"provisioning_failed", "operator",
                     reason + "; the record is retired as " + a->name, CreateAgain(*a)};
    }
    if (a->data_present) {
      return Blocker{"provisioning_failed", "operator",
                     reason + " (" + in.data_note + ", so the name stays blocked)",
                     EnsureRepair(*a)};
    }
    return Blocker{"provisioning_failed", "operator", reason, CreateAgain(*a)};
  }
  if (!in.provider_known) {
    return Blocker{"unknown_provider", "platform",
                   "add-on " + a->name + " uses provider '" + a->provider +
                       "', which this build does not run: a build with it is needed",
                   ""};
  }
  // Asked for as something else (ensure names the provider and app it expects).
  if (!in.expected_provider.empty() &&
      (in.expected_provider != a->provider || (!in.app.empty() && in.app != a->app))) {
    return Blocker{"metadata_conflict", "operator",
                   "add-on " + a->name + " exists with provider " + a->provider + " for app " +
                       a->app + ", not " +
                       (in.expected_provider.empty() ? a->provider : in.expected_provider) +
                       " for app " + (in.app.empty() ? a->app : in.app) +
                       ": choose another name, or ask for it as it is",
                   ""};
  }
  return std::nullopt;
}

Verdict Storage(const ReadinessInput& in) {
  const AddonState* a = in.addon;
  if (a == nullptr) return Blocker{"addon_not_found", "operator", "", ""};
  if (a->phase == AddonPhase::kDestroyed) return Blocker{"addon_destroyed", "operator", "", ""};
  if (!a->restoring_snapshot.empty()) {
    return Blocker{reason::kRestoreInProgress, "operator",
                   "a restore from " + a->restoring_snapshot +
                       " is in progress (via recover finishes or rolls back one whose process died)",
                   "via recover"};
  }
  switch (in.storage) {
    case StorageFact::kOk:
      break;
    case StorageFact::kMissing:
      return Blocker{"storage_missing", "operator",
                     in.storage_noun + " for " + a->name + " is missing", EnsureRepair(*a)};
    case StorageFact::kUnreadable:
      return Blocker{"storage_unreadable", "platform",
                     in.storage_noun + " for " + a->name + " cannot be read: " + in.storage_detail +
                         "; fix the file's permissions or disk, then: " + EnsureRepair(*a),
                     ""};
    case StorageFact::kUnreachable:
      // The server is the platform's: nothing to paste until it answers.
      return Blocker{"storage_unreachable", "platform",
                     "the server holding the " + in.storage_noun + " of " + a->name +
                         " does not answer: " + in.storage_detail,
                     ""};
    case StorageFact::kCorrupt:
      return Blocker{"storage_corrupt", "operator",
                     in.storage_noun + " for " + a->name + " is corrupt: " + in.storage_detail,
                     EnsureRepair(*a)};
  }
  // The probe reads the header and schema only; a full check that found
  // damage in the current content (`via addon check`) blocks until a repair
  // or restore replaces it.
  if (a->checked_corrupt()) {
    return Blocker{"storage_corrupt", "operator",
                   "the last full check of " + a->name + " (seq " + std::to_string(a->check_seq) +
                       ") found damage: " + a->check_detail,
                   EnsureRepair(*a)};
  }
  return std::nullopt;
}

Verdict Binding(const ReadinessInput& in) {
  const AddonState* a = in.addon;
  const std::string name = a ? a->name : in.requested;
  if (in.binding.empty() || in.app.empty()) {
    // The name the app reads is the app developer's to choose.
    return Blocker{"binding_missing", "app_developer",
                   "no app has a binding to " + name +
                       "; attach the one the app reads: via addon bind " + name +
                       " --app <app> --bind <NAME>",
                   ""};
  }
  if (!in.binding_target) {
    if (a == nullptr || a->phase == AddonPhase::kDestroyed) {
      return Blocker{"binding_missing", "operator",
                     "app " + in.app + " has no binding " + in.binding, ""};
    }
    return Blocker{"binding_missing", "operator", "app " + in.app + " has no binding " + in.binding,
                   "via addon bind " + a->name + " --app " + in.app + " --bind " + in.binding};
  }
  if (a == nullptr || *in.binding_target != a->id) {
    // Moving it would change what another add-on serves: the operator decides.
    return Blocker{"binding_conflict", "operator",
                   "binding " + in.binding + " of app " + in.app + " points at another add-on (" +
                       *in.binding_target + "); to move it: via addon unbind " +
                       *in.binding_target + " --app " + in.app + " --bind " + in.binding +
                       ", then bind " + name,
                   ""};
  }
  return std::nullopt;
}

Verdict Runtime(const ReadinessInput& in) {
  const AddonState* a = in.addon;
  if (a == nullptr) return Blocker{"addon_not_found", "operator", "", ""};
  if (a->phase == AddonPhase::kDestroyed) return Blocker{"addon_destroyed", "operator", "", ""};
  if (!a->has_active_generation()) {
    return Blocker{"no_active_generation", "security",
                   "every credential generation of " + a->name + " is revoked",
                   "via addon rotate-credentials " + a->name};
  }
  if (!in.credentials_key_present) {
    return Blocker{"credentials_key_missing", "security",
                   "keys/credentials.key is missing, so no credential can be derived; restore "
                   "it from backup (see docs/operations.md)",
                   ""};
  }
  if (!in.latest_release_claims) {
    if (in.binding.empty() || in.app.empty()) {
      return Blocker{"release_claim_missing", "app_developer",
                     "no release claims a binding to " + a->name, ""};
    }
    std::string which = in.latest_release.empty()
                            ? "app " + in.app + " has no release yet"
                            : "the latest release of " + in.app + " (" + in.latest_release +
                                  ") does not claim " + in.binding + " for " + a->name;
    return Blocker{"release_claim_missing", "app_developer",
                   which + ", so the app's workloads are refused its descriptor",
                   "via release create --app " + in.app};
  }
  return std::nullopt;
}

}  // namespace

Readiness Evaluate(const ReadinessInput& in) {
  Readiness r;
  Verdict layers[] = {Metadata(in), Storage(in), Binding(in), Runtime(in)};
  r.metadata_ready = !layers[0];
  r.storage_ready = !layers[1];
  r.binding_ready = !layers[2];
  r.runtime_ready = !layers[3];
  r.usable_by_app = r.metadata_ready && r.storage_ready && r.binding_ready && r.runtime_ready;
  for (const Verdict& v : layers) {
    if (!v) continue;
    r.blocking = v->code;
    r.owner = v->owner;
    r.reason = v->reason;
    r.remediation = v->remediation;
    break;
  }
  return r;
}

const std::vector<std::string>& BlockerCodes() {
  static const std::vector<std::string> kCodes = {
      "addon_not_found",    "addon_destroyed",       "provisioning_failed",
      "metadata_conflict",  "unknown_provider",      "storage_missing",
      "storage_unreadable", "storage_corrupt",       "storage_unreachable",
      reason::kRestoreInProgress,
      "binding_missing",    "binding_conflict",      "no_active_generation",
      "credentials_key_missing", "release_claim_missing"};
  return kCodes;
}

}  // namespace via
