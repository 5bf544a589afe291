#pragma once

// Readiness rules (DESIGN.md section 7): each layer (metadata, storage,
// binding, runtime) is evaluated on its own definition; the first failing one
// in that order names the blocker, its owner, a reason and either a command
// that, pasted, makes progress without touching another add-on's binding or
// data, or no command (the owner must decide). Binding names are never
// guessed. Pure: storage and runtime facts are probed by the caller.

#include <optional>
#include <string>
#include <vector>

#include "domain/state.h"

namespace via {

// What the provider found on disk (probed for real by the caller).
// kUnreachable: the server that holds it does not answer (a provider whose
// storage is remote).
enum class StorageFact { kOk, kMissing, kUnreadable, kCorrupt, kUnreachable };

struct ReadinessInput {
  std::string requested;            // name or id the user asked about
  const AddonState* addon = nullptr;  // null: not found
  std::string expected_provider;    // "" when not asked (status)
  std::string app;                  // binding to check ("" when none known)
  std::string binding;
  std::optional<std::string> binding_target;  // add-on id the binding points at
  // The add-on id that holds the add-on's original name now, if any (for a
  // destroyed or retired record: whether the name can be created again).
  std::optional<std::string> name_holder;
  // The latest release of `app` ("" when it has none) and whether it claims
  // `binding` for this add-on.
  std::string latest_release;
  bool latest_release_claims = false;
  StorageFact storage = StorageFact::kMissing;
  std::string storage_detail;
  bool credentials_key_present = true;
  // What the add-on's provider says (domain/ names no provider; the caller
  // fills these from the provider registry): whether this build runs it,
  // what its storage is called in reasons, why a failed record with data
  // keeps its name, and the provider an `addon create` remediation names when
  // no add-on says which ("" offers none).
  bool provider_known = true;
  std::string storage_noun = "storage";
  std::string data_note = "its storage holds data";
  std::string default_provider;
};

struct Readiness {
  bool metadata_ready = false;
  bool storage_ready = false;
  bool binding_ready = false;
  bool runtime_ready = false;
  bool usable_by_app = false;
  std::optional<std::string> blocking;  // stable blocker code; nullopt when usable
  std::string owner;                    // operator | app_developer | security | platform
  std::string reason;
  std::string remediation;  // "" when the owner must decide
  bool operator==(const Readiness&) const = default;
};

Readiness Evaluate(const ReadinessInput& input);

// Every blocker code Evaluate can name, in layer order.
const std::vector<std::string>& BlockerCodes();

}  // namespace via
