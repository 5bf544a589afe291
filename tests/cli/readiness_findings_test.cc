// Regression tests for issue 13's findings ("Readiness that never misleads"),
// each from the situation an operator met, through the real `via` binary.

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <nlohmann/json.hpp>

#include "testing.h"

using namespace via;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Home {
  testing::TempDir dir;

  testing::CommandResult Run(const std::string& args, const std::string& env = "") {
    return testing::Run(env + (env.empty() ? "" : " ") + testing::ViaBinary() + " --home '" +
                        dir.path().string() + "' " + args + " </dev/null");
  }
  std::pair<int, json> Json(const std::string& args, const std::string& env = "") {
    auto r = Run("--json " + args, env);
    INFO(args << "\n" << r.out);
    return {r.exit_code, json::parse(r.out.empty() ? "null" : r.out, nullptr, false)};
  }
  void Must(const std::string& args) {
    auto r = Run(args);
    INFO(args << "\n" << r.out);
    REQUIRE(r.exit_code == 0);
  }
  std::string Id(const std::string& name) {
    return Json("addon status " + name).second["addon"]["id"].get<std::string>();
  }
  std::uint64_t LogSize() { return Json("audit verify").second["size"].get<std::uint64_t>(); }
  fs::path Db(const std::string& id) { return dir.path() / "addons" / id / "data.sqlite"; }
  // Types of the records `audit log ARGS` prints.
  std::vector<std::string> Types(const std::string& args) {
    auto r = Run("--json audit log " + args);
    REQUIRE(r.exit_code == 0);
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < r.out.size()) {
      std::size_t end = r.out.find('\n', start);
      if (end == std::string::npos) end = r.out.size();
      if (end > start) out.push_back(json::parse(r.out.substr(start, end - start))["type"]);
      start = end + 1;
    }
    return out;
  }
};

bool Has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

TEST_CASE("finding 1: a failed create can be run again, binding included", "[cli][issue13]") {
  Home h;
  const std::string create = "addon create sqlite app-db --app api --bind DATABASE";
  auto [failed_code, failed] = h.Json(create, "VIA_TEST_FAULT=provision_fail");
  REQUIRE(failed_code == 3);
  CHECK(failed["blocking"] == "provisioning_failed");
  const std::string failed_id = failed["addon"]["id"];
  // Its remediation is the same command; it retires the record and frees the binding.
  CHECK(failed["remediation"] == "via " + create);
  auto [code, created] = h.Json(create);
  CHECK(code == 0);
  CHECK(created["addon"]["id"] != failed_id);
  CHECK(created["binding_ready"] == true);
  auto [old_code, old] = h.Json("addon status " + failed_id);
  CHECK(old["addon"]["name"] == "app-db#failed#" + failed_id);
  CHECK(old["remediation"].is_null());  // retired: history, the name is in use again

  // The same through ensure.
  Home e;
  const std::string ensure = "addon ensure sqlite app-db --app api --bind DATABASE";
  auto [ef, efailed] = e.Json(ensure, "VIA_TEST_FAULT=provision_fail");
  CHECK(ef == 3);
  CHECK(efailed["blocking"] == "provisioning_failed");
  auto [ec, eok] = e.Json(ensure);
  CHECK(ec == 3);
  CHECK(eok["created"] == true);
  CHECK(eok["binding_ready"] == true);
  CHECK(eok["blocking"] == "release_claim_missing");
}

TEST_CASE("finding 1: destroying a failed record with SQLite bytes frees its binding",
          "[cli][issue13]") {
  Home h;
  auto r = h.Run("addon create sqlite app-db --app api --bind DATABASE",
                 "VIA_TEST_FAULT=provision_fail_after_create");
  REQUIRE(r.exit_code == 3);
  h.Must("--yes addon destroy app-db");
  auto [code, created] = h.Json("addon create sqlite other --app api --bind DATABASE");
  CHECK(code == 0);
  CHECK(created["binding_ready"] == true);
}

TEST_CASE("finding 2: a destroyed name prints its own app, never a placeholder",
          "[cli][issue13]") {
  Home h;
  h.Must("addon create sqlite app-db --app web");
  h.Must("--yes addon destroy app-db");
  auto [code, report] = h.Json("addon status app-db");
  CHECK(code == 3);
  CHECK(report["blocking"] == "addon_destroyed");
  CHECK(report["remediation"] == "via addon create sqlite app-db --app web");
  CHECK(report.dump().find("APP") == std::string::npos);
  auto [nf_code, unknown] = h.Json("addon status never-was");
  CHECK(nf_code == 5);
  CHECK(unknown["remediation"].is_null());
  CHECK(unknown["owner"] == "operator");
}

TEST_CASE("finding 3: an add-on bound after the latest release is not usable by it",
          "[cli][issue13]") {
  Home h;
  h.Must("addon create sqlite app-db --app api");
  h.Must("release create --app api");
  h.Must("addon bind app-db --app api --bind DATABASE");
  auto [code, report] = h.Json("addon status app-db");
  CHECK(code == 3);
  CHECK(report["usable_by_app"] == false);
  CHECK(report["binding_ready"] == true);
  CHECK(report["runtime_ready"] == false);
  CHECK(report["blocking"] == "release_claim_missing");
  CHECK(report["owner"] == "app_developer");
  CHECK(report["remediation"] == "via release create --app api");
  h.Must("release create --app api");
  CHECK(h.Json("addon status app-db").first == 0);
}

TEST_CASE("finding 5: a repair says which snapshot it restored, and empties need consent",
          "[cli][issue13]") {
  Home h;
  h.Must("addon create sqlite app-db --app api --bind DATABASE");
  h.Must("release create --app api");
  const std::string id = h.Id("app-db");
  REQUIRE(testing::Run("sqlite3 '" + h.Db(id).string() +
                       "' \"CREATE TABLE t(x); INSERT INTO t VALUES ('kept');\"")
              .exit_code == 0);
  auto [sc, snap] = h.Json("addon snapshot app-db");
  REQUIRE(sc == 0);
  const std::string sn = snap["id"];
  for (const char* s : {"", "-wal", "-shm"}) fs::remove(h.Db(id).string() + s);
  auto [code, repaired] = h.Json("addon ensure sqlite app-db --app api --repair");
  CHECK(code == 0);
  CHECK(repaired["restored_from"] == sn);
  CHECK(testing::Run("sqlite3 '" + h.Db(id).string() + "' 'SELECT x FROM t'").out == "kept\n");
  CHECK(h.Json("addon status app-db").first == 0);

  // Missing again, and the only snapshot no longer matches its record: an
  // empty database is not installed without --allow-empty.
  for (const auto& f : fs::directory_iterator(h.dir.path() / "snapshots" / id)) {
    std::ofstream(f.path(), std::ios::app) << "tampered";
  }
  for (const char* s : {"", "-wal", "-shm"}) fs::remove(h.Db(id).string() + s);
  std::uint64_t size = h.LogSize();
  auto [rc, refused] = h.Json("addon ensure sqlite app-db --app api --repair");
  CHECK(rc == 4);
  CHECK(refused["error"]["code"] == "repair_needs_allow_empty");
  CHECK(refused["blocking"] == "storage_missing");
  CHECK(refused["usable_by_app"] == false);
  CHECK_FALSE(fs::exists(h.Db(id)));
  CHECK(h.LogSize() == size);  // nothing appended
  auto human = h.Run("addon ensure sqlite app-db --app api --repair");
  CHECK(human.exit_code == 4);
  CHECK(human.out.find("--allow-empty") != std::string::npos);
  auto [ac, allowed] = h.Json("addon ensure sqlite app-db --app api --repair --allow-empty");
  CHECK(ac == 0);
  CHECK(allowed["restored_from"].is_null());
  CHECK(allowed["warning"].get<std::string>().find("empty") != std::string::npos);
  CHECK(h.Run("addon ensure sqlite app-db --app api --allow-empty").exit_code == 2);
}

TEST_CASE("finding 6: destroy refuses while a release with a live token claims the add-on",
          "[cli][issue13]") {
  Home h;
  h.Must("addon create sqlite app-db --app api --bind DATABASE");
  h.Must("release create --app api");  // v1 claims it
  h.Must("workload token --app api --release v1 --ttl 10m");
  h.Must("addon unbind app-db --app api --bind DATABASE");
  h.Must("release create --app api");  // v2 does not: v1 is no longer the latest
  auto [code, refused] = h.Json("--yes addon destroy app-db");
  CHECK(code == 4);
  CHECK(refused["error"]["code"] == "claimed_by_release");
  CHECK(refused["error"]["message"].get<std::string>().find("api/v1") != std::string::npos);
  CHECK(refused["error"]["owner"] == "operator");
  CHECK(h.Json("addon status app-db").second["addon"]["state"] == "active");
  CHECK(h.Run("--yes addon destroy app-db --force").exit_code == 0);

  // A token that has expired protects nothing.
  Home x;
  x.Must("addon create sqlite app-db --app api --bind DATABASE");
  x.Must("release create --app api");
  x.Must("workload token --app api --release v1 --ttl 1s");
  x.Must("addon unbind app-db --app api --bind DATABASE");
  x.Must("release create --app api");
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  CHECK(x.Run("--yes addon destroy app-db").exit_code == 0);
}

TEST_CASE("finding 7: unbind of an absent binding changes nothing", "[cli][issue13]") {
  Home h;
  h.Must("addon create sqlite app-db --app api");
  std::uint64_t size = h.LogSize();
  auto [code, report] = h.Json("addon unbind app-db --app api --bind DATABASE");
  CHECK(code == 0);
  CHECK(report["changed"] == false);
  CHECK(h.LogSize() == size);
}

TEST_CASE("finding 7: a retry with the same --command-id appends nothing", "[cli][issue13]") {
  Home h;
  h.Must("init");
  const std::string create =
      "--command-id deploy-42 addon create sqlite app-db --app api --bind DATABASE";
  auto [c1, first] = h.Json(create);
  REQUIRE(c1 == 0);
  std::uint64_t size = h.LogSize();
  auto [c2, second] = h.Json(create);
  CHECK(c2 == 0);
  CHECK(second["addon"]["id"] == first["addon"]["id"]);
  CHECK(h.LogSize() == size);
  // Without the id, the same command is refused: the id is what made it safe.
  CHECK(h.Json("addon create sqlite app-db --app api --bind DATABASE").first == 4);

  const std::string release = "release create --app api --command-id r-1";
  auto [r1, v1] = h.Json(release);
  REQUIRE(r1 == 0);
  size = h.LogSize();
  auto [r2, again] = h.Json(release);
  CHECK(r2 == 0);
  CHECK(again["release"] == v1["release"]);
  CHECK(h.LogSize() == size);

  const std::string snapshot = "addon snapshot app-db --command-id s-1";
  auto [s1, sn1] = h.Json(snapshot);
  REQUIRE(s1 == 0);
  size = h.LogSize();
  auto [s2, sn2] = h.Json(snapshot);
  CHECK(s2 == 0);
  CHECK(sn2["id"] == sn1["id"]);
  CHECK(sn2["status"] == "taken");
  CHECK(h.LogSize() == size);

  const std::string rotate = "addon rotate-credentials app-db --command-id rot-1";
  auto [g1, gen1] = h.Json(rotate);
  REQUIRE(g1 == 0);
  size = h.LogSize();
  auto [g2, gen2] = h.Json(rotate);
  CHECK(gen2["generation"] == gen1["generation"]);
  CHECK(h.LogSize() == size);

  h.Must("addon unbind app-db --app api --bind DATABASE");
  h.Must("release create --app api");
  const std::string destroy = "--yes addon destroy app-db --command-id d-1";
  auto [d1, gone1] = h.Json(destroy);
  REQUIRE(d1 == 0);
  size = h.LogSize();
  auto [d2, gone2] = h.Json(destroy);
  CHECK(d2 == 0);  // the first result, not addon_not_found
  CHECK(gone2["tombstone_name"] == gone1["tombstone_name"]);
  CHECK(h.LogSize() == size);

  // The same id on another command is another command.
  auto [o1, other] = h.Json("--command-id deploy-42 addon create sqlite other --app api");
  CHECK(o1 == 0);
  CHECK(other["addon"]["name"] == "other");

  CHECK(h.Json("--command-id 'bad id' addon create sqlite x --app api").first == 2);
  auto [u, unsupported] = h.Json("--command-id z addon status other");
  CHECK(u == 2);
  CHECK(unsupported["error"]["code"] == "command_id_unsupported");
}

TEST_CASE("finding 7: audit log --app and --addon show every event that touches them",
          "[cli][issue13]") {
  Home h;
  h.Must("addon create sqlite app-db --app api --bind DATABASE");
  h.Must("release create --app api");
  h.Must("addon rotate-credentials app-db");
  h.Must("addon revoke-credentials app-db --generation 1");
  auto [sc, snap] = h.Json("addon snapshot app-db");
  REQUIRE(sc == 0);
  h.Must("--yes addon restore app-db --snapshot " + snap["id"].get<std::string>());
  h.Must("addon unbind app-db --app api --bind DATABASE");
  h.Must("release create --app api");
  h.Must("--yes addon destroy app-db");
  h.Must("addon create sqlite web-db --app web --bind DATABASE");  // another app's

  for (const std::string& filter : {std::string("--app api"), std::string("--addon app-db")}) {
    INFO(filter);
    auto types = h.Types(filter);
    for (const char* t : {"AddonCreated", "BindingAttached", "BindingSnapshotted",
                          "GenerationRevoked", "SnapshotRequested", "RestoreRequested",
                          "SnapshotRestored", "BindingDetached", "AddonDestroyed"}) {
      INFO(t);
      CHECK(Has(types, t));
    }
  }
  // Nothing of the other app.
  auto json_lines = h.Run("--json audit log --app api").out;
  CHECK(json_lines.find("web-db") == std::string::npos);
}
