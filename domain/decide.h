#pragma once

// Pure decisions: given the current state and a command, the events to append
// or the refusal (DESIGN.md sections 4 and 6). Ids, salts and fingerprints are
// made by the caller and passed in, so decisions are deterministic.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "domain/events.h"
#include "domain/state.h"
#include "domain/status.h"

namespace via {

struct CreateCommand {
  std::string name;
  std::string provider;
  std::string app;
  std::string binding;  // optional
  std::string new_addon_id;
  Bytes salt;         // generation 1's derivation salt
  Bytes fingerprint;  // SHA-256 of generation 1's credential
  // The providers this build runs (from the provider registry; domain/
  // names none).
  std::vector<std::string> providers;
  // The node that will own it (AddonPlaced); "" on a single node: not placed.
  std::string node = {};
};

// AddonCreated + GenerationRotated(1) [+ BindingAttached], preceded by
// AddonRenamed when a failed record without data holds the name.
// Errors: InvalidArgument (names, unknown provider), AlreadyExists
// ("name_taken"), FailedPrecondition ("name_blocked_by_failed" when the failed
// record holds data; "binding_conflict").
Result<std::vector<Event>> DecideCreate(const State& state, const CreateCommand& command);

// BindingAttached, or nothing when already attached. Errors: NotFound,
// InvalidArgument, FailedPrecondition ("addon_destroyed", "binding_conflict").
Result<std::vector<Event>> DecideBind(const State& state, const std::string& addon,
                                      const std::string& app, const std::string& binding);

// BindingDetached. Errors: NotFound (add-on, or "binding_not_found").
Result<std::vector<Event>> DecideUnbind(const State& state, const std::string& addon,
                                        const std::string& app, const std::string& binding);

// Workload tokens in the log: "app/release" -> the latest expiry of a token
// issued for that release, and the time to compare with.
struct TokenFacts {
  std::map<std::string, std::int64_t> expiry_by_release;
  std::int64_t now_ms = 0;
};

// AddonDestroyed with the NAME#destroyed#ID tombstone. Errors: NotFound,
// FailedPrecondition ("addon_bound" naming the bindings, "addon_destroyed",
// "claimed_by_release" naming the latest releases that claim it, or any
// release claiming it that holds an unexpired workload token, unless
// `force`). `state` must hold the release lists of the apps whose releases
// claim the add-on (StateKeys::claims_on).
Result<std::vector<Event>> DecideDestroy(const State& state, const std::string& addon,
                                         bool force = false, const TokenFacts& tokens = {});

}  // namespace via

namespace via {

// SnapshotRequested. Errors: NotFound, FailedPrecondition ("addon_destroyed",
// "restore_in_progress", "provisioning_failed").
Result<std::vector<Event>> DecideSnapshot(const State& state, const std::string& addon,
                                          const std::string& snapshot_id, const std::string& label);

// Checks that `snapshot_id` may be restored into `addon`: it exists, was taken,
// and belongs to that add-on; the add-on is live and not already restoring.
// Errors: NotFound ("snapshot_not_found"), FailedPrecondition
// ("snapshot_of_another_addon", "snapshot_not_taken", "snapshot_deleted", "addon_destroyed",
// "restore_in_progress").
Status CheckRestore(const State& state, const std::string& addon, const std::string& snapshot_id);

// The id of the add-on whose live storage `via addon check` may check: it
// exists, is not destroyed and was provisioned. Errors: NotFound,
// FailedPrecondition ("addon_destroyed", "addon_not_active").
Result<std::string> DecideCheck(const State& state, const std::string& addon);

// GenerationRotated for generation N+1 with the caller's salt and fingerprint.
Result<std::vector<Event>> DecideRotate(const State& state, const std::string& addon,
                                        const Bytes& salt, const Bytes& fingerprint);

// GenerationRevoked. Errors: NotFound ("generation_not_found"),
// FailedPrecondition ("generation_already_revoked", "last_active_generation"
// unless `force`).
Result<std::vector<Event>> DecideRevoke(const State& state, const std::string& addon,
                                        std::uint32_t generation, bool force);

// BindingSnapshotted of the app's current bindings. `release_id` empty: the
// next "vN". Errors: InvalidArgument, AlreadyExists ("release_exists").
Result<std::vector<Event>> DecideRelease(const State& state, const std::string& app,
                                         const std::string& release_id);

// The releases whose claims name `addon_id`, among each app's latest release.
std::vector<std::string> LatestReleasesClaiming(const State& state, const std::string& addon_id);

}  // namespace via
