// `via addon list`: a table with a header and a readiness column, `--json`
// with the same fields; each add-on's readiness is the answer `addon status`
// gives, storage probed (a missing or corrupt file is not "active" and ready).

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_home.h"

using nlohmann::json;
using via::testing::CliHome;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// A home with add-ons in every readiness a listing should tell apart.
struct Fleet {
  CliHome h;
  Fleet() {
    REQUIRE(h.Run("init").exit_code == 0);
    // Usable: bound, claimed by the latest release.
    REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
    // Its file removed: storage_missing.
    REQUIRE(h.Run("addon create sqlite gone-db --app api --bind GONE").exit_code == 0);
    // Its schema page scribbled on: storage_corrupt (found by the probe alone).
    REQUIRE(h.Run("addon create sqlite bad-db --app api --bind BAD").exit_code == 0);
    // Not a SQLite file any more: storage_unreadable.
    REQUIRE(h.Run("addon create sqlite junk-db --app api --bind JUNK").exit_code == 0);
    REQUIRE(h.Run("release create --app api").exit_code == 0);
    // Bound after the release: release_claim_missing.
    REQUIRE(h.Run("addon create sqlite late-db --app api --bind LATE").exit_code == 0);
    // Never bound: binding_missing.
    REQUIRE(h.Run("addon create sqlite loose-db --app jobs").exit_code == 0);
    // Destroyed: only with --all, addon_destroyed.
    REQUIRE(h.Run("addon create sqlite old-db --app jobs").exit_code == 0);
    REQUIRE(h.Run("--yes addon destroy old-db").exit_code == 0);
    fs::remove(h.Db("gone-db"));
    h.Sql(h.Db("bad-db"), "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    std::fstream bad(h.Db("bad-db"), std::ios::in | std::ios::out | std::ios::binary);
    bad.seekp(100);  // page 1's b-tree header, past the file header
    bad.write(std::string(200, '\xff').data(), 200);
    bad.close();
    std::fstream junk(h.Db("junk-db"), std::ios::in | std::ios::out | std::ios::binary);
    junk.write("this is no SQLite header", 24);
  }
};

}  // namespace

TEST_CASE("addon list --json: each add-on's readiness is what addon status answers",
          "[cli][addon_list]") {
  Fleet f;
  auto r = f.h.Run("--json addon list --all");
  REQUIRE(r.exit_code == 0);
  json list = json::parse(r.out);
  REQUIRE(list["addons"].size() == 7);
  std::map<std::string, std::string> ready;  // name -> "yes" or the blocker
  for (const json& a : list["addons"]) {
    INFO(a.dump());
    for (const char* key : {"id", "name", "provider", "app", "state", "generation",
                            "revoked_generations", "bindings", "usable_by_app", "blocking", "owner",
                            "checked_binding"}) {
      CHECK(a.contains(key));
    }
    // The same answer status gives for it (by id: destroyed ones too).
    json status = f.h.Json("addon status " + a["id"].get<std::string>());
    CHECK(a["usable_by_app"] == status["usable_by_app"]);
    CHECK(a["blocking"] == status["blocking"]);
    CHECK(a["owner"] == status["owner"]);
    CHECK(a["checked_binding"] == status["binding"]);
    const std::string name = a["name"];
    ready[name.substr(0, name.find('#'))] =
        a["usable_by_app"] == true ? "yes" : a["blocking"].get<std::string>();
  }
  CHECK(ready["app-db"] == "yes");
  CHECK(ready["gone-db"] == "storage_missing");
  CHECK(ready["bad-db"] == "storage_corrupt");
  CHECK(ready["junk-db"] == "storage_unreadable");
  CHECK(ready["late-db"] == "release_claim_missing");
  CHECK(ready["loose-db"] == "binding_missing");
  CHECK(ready["old-db"] == "addon_destroyed");
  // Without --all the destroyed record is not listed.
  CHECK(f.h.Json("addon list")["addons"].size() == 6);
}

TEST_CASE("addon list prints a table: a header, then one row per add-on with READY",
          "[cli][addon_list]") {
  Fleet f;
  auto r = f.h.Run("addon list");
  REQUIRE(r.exit_code == 0);
  auto lines = Lines(r.out);
  REQUIRE(lines.size() == 7);  // header + 6 live add-ons
  CHECK(Words(lines[0]) == std::vector<std::string>{"NAME", "ID", "PROVIDER", "APP", "STATE",
                                                    "GEN", "READY", "BINDINGS"});
  // Columns line up with the header: READY starts where its title does.
  const std::size_t ready_at = lines[0].find("READY");
  std::map<std::string, std::vector<std::string>> rows;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    INFO(lines[i]);
    auto words = Words(lines[i]);
    REQUIRE(words.size() == 8);
    CHECK(lines[i].compare(ready_at, words[6].size(), words[6]) == 0);
    rows[words[0]] = words;
  }
  CHECK(rows["app-db"][6] == "yes");
  CHECK(rows["app-db"][7] == "api/DATABASE");
  CHECK(rows["app-db"][4] == "active");
  CHECK(rows["app-db"][5] == "1");
  CHECK(rows["gone-db"][6] == "storage_missing");
  CHECK(rows["bad-db"][6] == "storage_corrupt");
  CHECK(rows["junk-db"][6] == "storage_unreadable");
  CHECK(rows["late-db"][6] == "release_claim_missing");
  CHECK(rows["loose-db"][6] == "binding_missing");
  CHECK(rows["loose-db"][7] == "-");
  // Sorted by name.
  std::vector<std::string> names;
  for (std::size_t i = 1; i < lines.size(); ++i) names.push_back(Words(lines[i])[0]);
  CHECK(std::is_sorted(names.begin(), names.end()));

  auto all = Lines(f.h.Run("addon list --all").out);
  REQUIRE(all.size() == 8);
  bool destroyed = false;
  for (const auto& line : all) {
    auto words = Words(line);
    if (words[0].rfind("old-db#destroyed#", 0) == 0) {
      destroyed = true;
      CHECK(words[4] == "destroyed");
      CHECK(words[6] == "addon_destroyed");
    }
  }
  CHECK(destroyed);
}

TEST_CASE("addon list of an empty home says so, --json is an empty list", "[cli][addon_list]") {
  CliHome h;
  REQUIRE(h.Run("init").exit_code == 0);
  auto r = h.Run("addon list");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("no add-ons") == 0);
  CHECK(h.Json("addon list") == json::parse(R"({"addons":[]})"));
}
