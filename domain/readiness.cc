#include "domain/readiness.h"

namespace via {
namespace {

Readiness Block(Readiness r, std::string code, std::string owner, std::string reason,
                std::string remediation) {
  r.usable_by_app = false;
  r.blocking = std::move(code);
  r.owner = std::move(owner);
  r.reason = std::move(reason);
  r.remediation = std::move(remediation);
  return r;
}

}  // namespace

Readiness Evaluate(const ReadinessInput& in) {
  Readiness r;
  const AddonState* a = in.addon;
  const std::string app = !in.app.empty() ? in.app : (a ? a->app : std::string("APP"));
  const std::string name = a ? (a->phase == AddonPhase::kDestroyed ? a->original_name : a->name)
                             : in.requested;
  const std::string bind_flag = in.binding.empty() ? "" : " --bind " + in.binding;
  const std::string ensure_repair = "via addon ensure sqlite " + name + " --app " + app +
                                    (in.binding.empty() ? " --bind DATABASE" : bind_flag) +
                                    " --repair";

  // Metadata.
  if (a == nullptr) {
    return Block(r, "addon_not_found", "operator", "no add-on named " + in.requested,
                 "via addon create sqlite " + in.requested + " --app " + app + bind_flag);
  }
  if (a->phase == AddonPhase::kDestroyed) {
    return Block(r, "addon_destroyed", "operator",
                 "add-on " + a->id + " was destroyed; its record is kept as " + a->name,
                 "via addon create sqlite " + a->original_name + " --app " + app + bind_flag);
  }
  if (a->phase == AddonPhase::kFailed) {
    std::string reason = "provisioning of " + a->name + " failed: " + a->failure_reason;
    if (a->data_present) {
      return Block(r, "provisioning_failed", "operator",
                   reason + " (the file holds SQLite data, so the name stays blocked)",
                   ensure_repair);
    }
    return Block(r, "provisioning_failed", "operator", reason,
                 "via addon create sqlite " + a->name + " --app " + a->app + bind_flag);
  }
  if (a->provider != "sqlite") {
    return Block(r, "unknown_provider", "platform",
                 "add-on " + a->name + " uses provider '" + a->provider +
                     "', which this build does not run",
                 "upgrade via to a build with the '" + a->provider + "' provider");
  }
  if ((!in.expected_provider.empty() && in.expected_provider != a->provider) ||
      (!in.app.empty() && in.app != a->app)) {
    return Block(r, "metadata_conflict", "operator",
                 "add-on " + a->name + " exists with provider " + a->provider + " for app " +
                     a->app + ", not " +
                     (in.expected_provider.empty() ? a->provider : in.expected_provider) +
                     " for app " + (in.app.empty() ? a->app : in.app),
                 "via addon status " + a->name);
  }
  r.metadata_ready = true;

  // Storage.
  if (!a->restoring_snapshot.empty()) {
    return Block(r, "restore_in_progress", "operator",
                 "a restore from " + a->restoring_snapshot + " is in progress",
                 "wait for the restore to finish, or run: via recover");
  }
  switch (in.storage) {
    case StorageFact::kOk:
      break;
    case StorageFact::kMissing:
      return Block(r, "storage_missing", "operator", "database file for " + a->name + " is missing",
                   ensure_repair);
    case StorageFact::kUnreadable:
      return Block(r, "storage_unreadable", "platform",
                   "database file for " + a->name + " cannot be read: " + in.storage_detail,
                   "fix the file's permissions or disk, then: " + ensure_repair);
    case StorageFact::kCorrupt:
      return Block(r, "storage_corrupt", "operator",
                   "database file for " + a->name + " is corrupt: " + in.storage_detail,
                   ensure_repair);
  }
  // The probe reads the header and schema only; a full check that found
  // damage in the current content (`via addon check`) blocks until a repair
  // or restore replaces it.
  if (a->checked_corrupt()) {
    return Block(r, "storage_corrupt", "operator",
                 "the last full check of " + a->name + " (seq " + std::to_string(a->check_seq) +
                     ") found damage: " + a->check_detail,
                 ensure_repair);
  }
  r.storage_ready = true;

  // Binding.
  if (!in.binding.empty()) {
    if (!in.binding_target) {
      return Block(r, "binding_missing", "operator",
                   "app " + app + " has no binding " + in.binding,
                   "via addon bind " + a->name + " --app " + app + " --bind " + in.binding);
    }
    if (*in.binding_target != a->id) {
      return Block(r, "binding_conflict", "operator",
                   "binding " + in.binding + " of app " + app + " points at another add-on (" +
                       *in.binding_target + ")",
                   "via addon unbind " + *in.binding_target + " --app " + app + " --bind " +
                       in.binding);
    }
  }
  r.binding_ready = true;

  // Runtime.
  if (!a->has_active_generation()) {
    return Block(r, "no_active_generation", "security",
                 "every credential generation of " + a->name + " is revoked",
                 "via addon rotate-credentials " + a->name);
  }
  if (!in.credentials_key_present) {
    return Block(r, "credentials_key_missing", "security",
                 "keys/credentials.key is missing, so no credential can be derived",
                 "restore keys/credentials.key from backup (see docs/operations.md)");
  }
  r.runtime_ready = true;
  r.usable_by_app = true;
  return r;
}

}  // namespace via
