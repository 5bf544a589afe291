#include <catch2/catch.hpp>

#include <functional>
#include <set>

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
  in.name_holder = "ad_1";
  in.latest_release = "v1";
  in.latest_release_claims = true;
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

TEST_CASE("each layer is evaluated on its own definition", "[domain]") {
  AddonState a = Active();
  a.generations[0].revoked = true;  // runtime broken too
  ReadinessInput in = Input(&a);
  in.storage = StorageFact::kMissing;  // storage broken first
  Readiness r = Evaluate(in);
  CHECK(r.blocking == std::optional<std::string>("storage_missing"));
  CHECK(r.metadata_ready);
  CHECK_FALSE(r.storage_ready);
  CHECK(r.binding_ready);  // the binding is intact: missing storage does not hide it
  CHECK_FALSE(r.runtime_ready);
  CHECK(r.owner == "operator");
  // No binding name in the repair: it is never guessed, and repair needs none.
  CHECK(r.remediation == "via addon ensure sqlite app-db --app api --repair");

  // Storage and runtime fine, binding missing: only the binding layer fails.
  AddonState b = Active();
  ReadinessInput only_binding = Input(&b);
  only_binding.binding_target.reset();
  only_binding.latest_release_claims = false;
  Readiness rb = Evaluate(only_binding);
  CHECK(rb.metadata_ready);
  CHECK(rb.storage_ready);
  CHECK_FALSE(rb.binding_ready);
  CHECK(rb.blocking == std::optional<std::string>("binding_missing"));
}

TEST_CASE("runtime needs the app's latest release to claim the binding", "[domain]") {
  AddonState a = Active();
  ReadinessInput in = Input(&a);
  in.latest_release = "v1";
  in.latest_release_claims = false;
  Readiness r = Evaluate(in);
  CHECK_FALSE(r.usable_by_app);
  CHECK(r.metadata_ready);
  CHECK(r.storage_ready);
  CHECK(r.binding_ready);
  CHECK_FALSE(r.runtime_ready);
  CHECK(r.blocking == std::optional<std::string>("release_claim_missing"));
  CHECK(r.owner == "app_developer");
  CHECK(r.remediation == "via release create --app api");
  in.latest_release.clear();  // no release at all
  CHECK(Evaluate(in).blocking == std::optional<std::string>("release_claim_missing"));
}

TEST_CASE("no binding name is ever guessed", "[domain]") {
  AddonState a = Active();
  ReadinessInput in = Input(&a);
  in.app.clear();
  in.binding.clear();
  in.binding_target.reset();
  Readiness r = Evaluate(in);
  CHECK(r.blocking == std::optional<std::string>("binding_missing"));
  CHECK(r.owner == "app_developer");
  CHECK(r.remediation.empty());
  CHECK(r.reason.find("DATABASE") == std::string::npos);
}

TEST_CASE("an unknown add-on without an app prints no placeholder command", "[domain]") {
  ReadinessInput in;
  in.requested = "app-db";
  Readiness r = Evaluate(in);
  CHECK(r.blocking == std::optional<std::string>("addon_not_found"));
  CHECK(r.remediation.empty());
  CHECK(r.remediation.find("APP") == std::string::npos);
  in.app = "api";
  CHECK(Evaluate(in).remediation.empty());  // no provider to offer
  in.default_provider = "sqlite";           // the registry's first
  CHECK(Evaluate(in).remediation == "via addon create sqlite app-db --app api");
}

TEST_CASE("a retired failed record never offers its tombstone as a name", "[domain]") {
  AddonState a = Active();
  a.phase = AddonPhase::kFailed;
  a.name = "app-db#failed#ad_1";
  a.requested_binding = "DATABASE";
  ReadinessInput in = Input(&a);
  in.name_holder = "ad_2";  // the create that retired it
  Readiness r = Evaluate(in);
  CHECK(r.blocking == std::optional<std::string>("provisioning_failed"));
  CHECK(r.remediation.empty());  // history: nothing to paste
  CHECK(r.reason.find("ad_2") != std::string::npos);
  in.name_holder.reset();  // the name is free again
  CHECK(Evaluate(in).remediation == "via addon create sqlite app-db --app api --bind DATABASE");
}

TEST_CASE("a binding conflict offers no command that would move another add-on's binding",
          "[domain]") {
  AddonState a = Active();
  ReadinessInput in = Input(&a);
  in.binding_target = "ad_2";
  Readiness r = Evaluate(in);
  CHECK(r.blocking == std::optional<std::string>("binding_conflict"));
  CHECK(r.remediation.empty());
  CHECK(r.owner == "operator");
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
      {[](AddonState&, ReadinessInput& in) { in.app = "web"; in.expected_provider = "sqlite"; }, "metadata_conflict", "operator"},
      {[](AddonState& x, ReadinessInput& in) { x.provider = "redis"; in.provider_known = false; }, "unknown_provider", "platform"},
      {[](AddonState&, ReadinessInput& in) { in.storage = StorageFact::kMissing; }, "storage_missing", "operator"},
      {[](AddonState&, ReadinessInput& in) { in.storage = StorageFact::kUnreadable; }, "storage_unreadable", "platform"},
      {[](AddonState&, ReadinessInput& in) { in.storage = StorageFact::kCorrupt; }, "storage_corrupt", "operator"},
      {[](AddonState&, ReadinessInput& in) { in.storage = StorageFact::kUnreachable; }, "storage_unreachable", "platform"},
      {[](AddonState& x, ReadinessInput&) { x.restoring_snapshot = "sn_1"; }, "restore_in_progress", "operator"},
      {[](AddonState&, ReadinessInput& in) { in.binding_target.reset(); }, "binding_missing", "operator"},
      {[](AddonState&, ReadinessInput& in) { in.binding_target = "ad_2"; }, "binding_conflict", "operator"},
      {[](AddonState& x, ReadinessInput&) { x.generations[0].revoked = true; }, "no_active_generation", "security"},
      {[](AddonState&, ReadinessInput& in) { in.credentials_key_present = false; }, "credentials_key_missing", "security"},
      {[](AddonState&, ReadinessInput& in) { in.latest_release_claims = false; }, "release_claim_missing", "app_developer"},
  };
  std::set<std::string> seen;
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
    // A command to paste, or nothing (the owner decides): never prose, never
    // a placeholder.
    if (!r.remediation.empty()) {
      CHECK(r.remediation.rfind("via ", 0) == 0);
      CHECK(r.remediation.find('<') == std::string::npos);
      CHECK(r.remediation.find("APP") == std::string::npos);
    }
    seen.insert(c.code);
  }
  // Every code the evaluator can name is covered here.
  CHECK(seen == std::set<std::string>(BlockerCodes().begin(), BlockerCodes().end()));
}
