#include <catch2/catch.hpp>

#include "domain/decide.h"

using namespace via;

namespace {

State Fold(const std::vector<Event>& events) {
  State s;
  std::uint64_t seq = 0;
  for (const auto& e : events) Apply(s, Record{++seq, {}, 0, "t", "", e});
  return s;
}

CreateCommand Create(const std::string& name, const std::string& id, const std::string& binding = "") {
  return CreateCommand{name, "sqlite", "api", binding, id, Bytes{1}, Bytes{2}, {"sqlite"}};
}

void ApplyAll(State& s, const std::vector<Event>& events) {
  for (const auto& e : events) Apply(s, Record{s.seq + 1, {}, 0, "t", "", e});
}

}  // namespace

TEST_CASE("create emits the add-on, generation 1 and the requested binding", "[domain]") {
  auto events = DecideCreate(State{}, Create("app-db", "ad_1", "DATABASE"));
  REQUIRE(events.ok());
  REQUIRE(events->size() == 3);
  CHECK(std::get<AddonCreated>((*events)[0]).name == "app-db");
  CHECK(std::get<GenerationRotated>((*events)[1]).generation == 1);
  CHECK(std::get<BindingAttached>((*events)[2]).binding == "DATABASE");
}

TEST_CASE("create on a node places the add-on there, a node never announced is refused",
          "[domain]") {
  CreateCommand c = Create("app-db", "ad_1");
  c.node = "node-a";
  auto refused = DecideCreate(State{}, c);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().reason() == "unknown_node");
  CHECK(ExitCodeFor(refused.status().code()) == 4);
  State s = Fold({NodeAnnounced{"node-a", "http://10.0.0.1:7600"}});
  CHECK(s.nodes.at("node-a") == "http://10.0.0.1:7600");
  auto events = DecideCreate(s, c);
  REQUIRE(events.ok());
  REQUIRE(events->size() == 3);
  CHECK(std::get<AddonPlaced>((*events)[1]) == AddonPlaced{"ad_1", "node-a"});
  ApplyAll(s, *events);
  CHECK(s.FindAddon("app-db")->node == "node-a");
  // A node announced again at a new URL keeps one entry, the newest URL.
  ApplyAll(s, {NodeAnnounced{"node-a", "http://10.0.0.2:7600"}});
  CHECK(s.nodes.size() == 1);
  CHECK(s.nodes.at("node-a") == "http://10.0.0.2:7600");
}

TEST_CASE("create refuses a live name with exit code 4", "[domain]") {
  State s = Fold(*DecideCreate(State{}, Create("app-db", "ad_1")));
  auto again = DecideCreate(s, Create("app-db", "ad_2"));
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().reason() == "name_taken");
  CHECK(ExitCodeFor(again.status().code()) == 4);
}

TEST_CASE("create refuses an unknown provider as a usage error", "[domain]") {
  CreateCommand c = Create("app-db", "ad_1");
  c.provider = "oracle";
  auto events = DecideCreate(State{}, c);
  REQUIRE_FALSE(events.ok());
  CHECK(events.status().reason() == "unknown_provider");
  CHECK(ExitCodeFor(events.status().code()) == 2);
}

TEST_CASE("create over a failed record without SQLite bytes retires it as NAME#failed#ID",
          "[domain]") {
  State s = Fold(*DecideCreate(State{}, Create("app-db", "ad_1")));
  ApplyAll(s, {ProvisioningFailed{"ad_1", "disk full", false}});
  auto events = DecideCreate(s, Create("app-db", "ad_2"));
  REQUIRE(events.ok());
  CHECK(std::get<AddonRenamed>((*events)[0]).new_name == "app-db#failed#ad_1");
  ApplyAll(s, *events);
  CHECK(s.FindAddon("app-db")->id == "ad_2");
  CHECK(s.FindById("ad_1")->name == "app-db#failed#ad_1");
}

TEST_CASE("retrying a failed create with the same binding frees and retakes it (finding 1)",
          "[domain]") {
  State s = Fold(*DecideCreate(State{}, Create("app-db", "ad_1", "DATABASE")));
  ApplyAll(s, {ProvisioningFailed{"ad_1", "no SQLite bytes", false}});
  auto events = DecideCreate(s, Create("app-db", "ad_2", "DATABASE"));
  REQUIRE(events.ok());
  // The failed record's binding is detached before it is retired.
  CHECK(std::get<BindingDetached>((*events)[0]).addon_id == "ad_1");
  CHECK(std::get<AddonRenamed>((*events)[1]).addon_id == "ad_1");
  ApplyAll(s, *events);
  CHECK(s.bindings.at({"api", "DATABASE"}) == "ad_2");
  CHECK(s.BindingsOf("ad_1").empty());
}

TEST_CASE("destroying a failed record releases its binding, with and without SQLite bytes",
          "[domain]") {
  for (bool data : {false, true}) {
    State s = Fold(*DecideCreate(State{}, Create("app-db", "ad_1", "DATABASE")));
    ApplyAll(s, {ProvisioningFailed{"ad_1", "crash", data}});
    auto destroyed = DecideDestroy(s, "app-db");
    REQUIRE(destroyed.ok());
    ApplyAll(s, *destroyed);
    CHECK(s.bindings.count({"api", "DATABASE"}) == 0);
    CHECK(DecideCreate(s, Create("app-db", "ad_2", "DATABASE")).ok());
  }
}

TEST_CASE("unbind of an absent binding changes nothing", "[domain]") {
  State s = Fold(*DecideCreate(State{}, Create("app-db", "ad_1")));
  auto none = DecideUnbind(s, "app-db", "api", "DATABASE");
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("a failed record holding SQLite bytes keeps blocking the name", "[domain]") {
  State s = Fold(*DecideCreate(State{}, Create("app-db", "ad_1")));
  ApplyAll(s, {ProvisioningFailed{"ad_1", "crash", true}});
  auto events = DecideCreate(s, Create("app-db", "ad_2"));
  REQUIRE_FALSE(events.ok());
  CHECK(events.status().reason() == "name_blocked_by_failed");
  CHECK(events.status().remediation().find("--repair") != std::string::npos);
}

TEST_CASE("destroy refuses while bound and frees the name afterwards", "[domain]") {
  State s = Fold(*DecideCreate(State{}, Create("app-db", "ad_1", "DATABASE")));
  auto refused = DecideDestroy(s, "app-db");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().reason() == "addon_bound");
  ApplyAll(s, *DecideUnbind(s, "app-db", "api", "DATABASE"));
  auto destroyed = DecideDestroy(s, "app-db");
  REQUIRE(destroyed.ok());
  ApplyAll(s, *destroyed);
  CHECK(s.FindAddon("app-db") == nullptr);
  CHECK(s.FindById("ad_1")->name == "app-db#destroyed#ad_1");
  CHECK(DecideCreate(s, Create("app-db", "ad_2")).ok());
}

TEST_CASE("bind refuses to steal a binding that points at another add-on", "[domain]") {
  State s = Fold(*DecideCreate(State{}, Create("one", "ad_1", "DATABASE")));
  ApplyAll(s, *DecideCreate(s, Create("two", "ad_2")));
  auto stolen = DecideBind(s, "two", "api", "DATABASE");
  REQUIRE_FALSE(stolen.ok());
  CHECK(stolen.status().reason() == "binding_conflict");
  // No command that would move another add-on's binding: the operator decides.
  CHECK(stolen.status().remediation().empty());
  CHECK(stolen.status().owner() == "operator");
  auto same = DecideBind(s, "one", "api", "DATABASE");
  REQUIRE(same.ok());
  CHECK(same->empty());
}
