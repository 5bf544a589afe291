#pragma once

// Pure decisions: given the current state and a command, the events to append
// or the refusal (DESIGN.md sections 4 and 6). Ids, salts and fingerprints are
// made by the caller and passed in, so decisions are deterministic.

#include <string>
#include <vector>

#include "domain/events.h"
#include "domain/state.h"
#include "domain/status.h"

namespace via {

inline constexpr const char* kSqliteProvider = "sqlite";

struct CreateCommand {
  std::string name;
  std::string provider;
  std::string app;
  std::string binding;  // optional
  std::string new_addon_id;
  Bytes salt;         // generation 1's derivation salt
  Bytes fingerprint;  // SHA-256 of generation 1's credential
};

// AddonCreated + GenerationRotated(1) [+ BindingAttached], preceded by
// AddonRenamed when a failed record without SQLite bytes holds the name.
// Errors: InvalidArgument (names, unknown provider), AlreadyExists
// ("name_taken"), FailedPrecondition ("name_blocked_by_failed" when the failed
// record holds SQLite bytes; "binding_conflict").
Result<std::vector<Event>> DecideCreate(const State& state, const CreateCommand& command);

// BindingAttached, or nothing when already attached. Errors: NotFound,
// InvalidArgument, FailedPrecondition ("addon_destroyed", "binding_conflict").
Result<std::vector<Event>> DecideBind(const State& state, const std::string& addon,
                                      const std::string& app, const std::string& binding);

// BindingDetached. Errors: NotFound (add-on, or "binding_not_found").
Result<std::vector<Event>> DecideUnbind(const State& state, const std::string& addon,
                                        const std::string& app, const std::string& binding);

// AddonDestroyed with the NAME#destroyed#ID tombstone. Errors: NotFound,
// FailedPrecondition ("addon_bound" naming the bindings, "addon_destroyed").
Result<std::vector<Event>> DecideDestroy(const State& state, const std::string& addon);

}  // namespace via
