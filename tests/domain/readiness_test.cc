#include <catch2/catch.hpp>

#include <functional>

#include "domain/readiness.h"

using namespace via;

namespace {

AddonState Active() {
  AddonState a;
  a.id = "ad_1";
  a.name = "app-db";
  a.original_name = "app-db";
  a.provider = "sqlite";
  a.app = "api";
  a.phase = AddonPhase::kActive;
  a.generations.push_back(GenerationState{1, {}, {}, false});
  return a;
}

ReadinessInput Input(const AddonState* a) {
  ReadinessInput in;
  in.requested = "app-db";
  in.addon = a;
  in.app = "api";
  in.binding = "DATABASE";
  in.binding_target = "ad_1";
  in.storage = StorageFact::kOk;
  return in;
}

}  // namespace

TEST_CASE("an active, bound add-on with storage and credentials is usable", "[domain]") {
  AddonState a = Active();
  Readiness r = Evaluate(Input(&a));
  CHECK(r.usable_by_app);
  CHECK_FALSE(r.blocking.has_value());
  CHECK(r.metadata_ready);
  CHECK(r.runtime_ready);
}

TEST_CASE("readiness names the first failing layer in order", "[domain]") {
  AddonState a = Active();
  a.generations[0].revoked = true;  // runtime broken too
  ReadinessInput in = Input(&a);
  in.storage = StorageFact::kMissing;  // storage broken first
  in.binding_target.reset();
  Readiness r = Evaluate(in);
  CHECK(r.blocking == std::optional<std::string>("storage_missing"));
  CHECK(r.metadata_ready);
  CHECK_FALSE(r.storage_ready);
  CHECK_FALSE(r.binding_ready);
  CHECK(r.owner == "operator");
  CHECK(r.remediation == "via addon ensure sqlite app-db --app api --bind DATABASE --repair");
}

TEST_CASE("each blocker code comes with its owner", "[domain]") {
  AddonState a = Active();
  struct Case {
    std::function<void(AddonState&, ReadinessInput&)> set;
    std::string code;
    std::string owner;
  };
  std::vector<Case> cases = {
      {[](AddonState&, ReadinessInput& in) { in.addon = nullptr; }, "addon_not_found", "operator"},
      {[](AddonState& x, ReadinessInput&) { x.phase = AddonPhase::kDestroyed; }, "addon_destroyed", "operator"},
      {[](AddonState& x, ReadinessInput&) { x.phase = AddonPhase::kFailed; }, "provisioning_failed", "operator"},
      {[](AddonState&, ReadinessInput& in) { in.app = "web"; }, "metadata_conflict", "operator"},
      {[](AddonState& x, ReadinessInput&) { x.provider = "redis"; }, "unknown_provider", "platform"},
      {[](AddonState&, ReadinessInput& in) { in.storage = StorageFact::kUnreadable; }, "storage_unreadable", "platform"},
      {[](AddonState&, ReadinessInput& in) { in.storage = StorageFact::kCorrupt; }, "storage_corrupt", "operator"},
      {[](AddonState& x, ReadinessInput&) { x.restoring_snapshot = "sn_1"; }, "restore_in_progress", "operator"},
      {[](AddonState&, ReadinessInput& in) { in.binding_target.reset(); }, "binding_missing", "operator"},
      {[](AddonState&, ReadinessInput& in) { in.binding_target = "ad_2"; }, "binding_conflict", "operator"},
      {[](AddonState& x, ReadinessInput&) { x.generations[0].revoked = true; }, "no_active_generation", "security"},
      {[](AddonState&, ReadinessInput& in) { in.credentials_key_present = false; }, "credentials_key_missing", "security"},
  };
  for (const auto& c : cases) {
    AddonState copy = a;
    ReadinessInput in = Input(&copy);
    c.set(copy, in);
    Readiness r = Evaluate(in);
    INFO(c.code);
    CHECK(r.blocking == std::optional<std::string>(c.code));
    CHECK(r.owner == c.owner);
    CHECK_FALSE(r.usable_by_app);
    CHECK_FALSE(r.reason.empty());
    bool actionable = r.remediation.find("via ") != std::string::npos ||
                      r.remediation.find("docs/") != std::string::npos ||
                      r.remediation.find("upgrade") != std::string::npos;
    CHECK(actionable);
  }
}
