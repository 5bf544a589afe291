#pragma once

// Readiness rules (DESIGN.md section 7): layers are checked in order
// metadata -> storage -> binding -> runtime; the first that fails names the
// blocker, its owner, a reason and a remediation command that works when
// pasted. Pure: storage and runtime facts are probed by the caller.

#include <optional>
#include <string>

#include "domain/state.h"

namespace via {

// What the provider found on disk (probed for real by the caller).
enum class StorageFact { kOk, kMissing, kUnreadable, kCorrupt };

struct ReadinessInput {
  std::string requested;            // name or id the user asked about
  const AddonState* addon = nullptr;  // null: not found
  std::string expected_provider;    // "" when not asked (status)
  std::string app;                  // binding to check ("" when none)
  std::string binding;
  std::optional<std::string> binding_target;  // add-on id the binding points at
  StorageFact storage = StorageFact::kMissing;
  std::string storage_detail;
  bool credentials_key_present = true;
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
  std::string remediation;
  bool operator==(const Readiness&) const = default;
};

Readiness Evaluate(const ReadinessInput& input);

}  // namespace via
