// `--command-id` on every command that appends (docs/cli.md "Retrying
// safely"): a retry with the same id and command line answers with the first
// run's result and appends nothing, through the real `via` binary.

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "domain/time_text.h"
#include "testing.h"

using namespace via;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Home {
  testing::TempDir dir;

  testing::CommandResult Run(const std::string& args) {
    return testing::Run(testing::ViaBinary() + " --home '" + dir.path().string() + "' " + args +
                        " </dev/null");
  }
  std::pair<int, json> Json(const std::string& args) {
    auto r = Run("--json " + args);
    INFO(args << "\n" << r.out);
    return {r.exit_code, json::parse(r.out.empty() ? "null" : r.out, nullptr, false)};
  }
  json Must(const std::string& args) {
    auto [code, out] = Json(args);
    INFO(args << "\n" << out.dump());
    REQUIRE(code == 0);
    return out;
  }
  std::uint64_t LogSize() { return Json("audit verify").second["size"].get<std::uint64_t>(); }
  // The records `audit log` prints of `type`.
  std::vector<json> Records(const std::string& type) {
    auto r = Run("--json audit log");
    REQUIRE(r.exit_code == 0);
    std::vector<json> out;
    std::size_t start = 0;
    while (start < r.out.size()) {
      std::size_t end = r.out.find('\n', start);
      if (end == std::string::npos) end = r.out.size();
      if (end > start) {
        json record = json::parse(r.out.substr(start, end - start));
        if (record["type"] == type) out.push_back(record);
      }
      start = end + 1;
    }
    return out;
  }
  // Runs `args` twice; the second run must answer what the first did
  // (`same` compares the two answers) and append nothing.
  template <typename Same>
  json Twice(const std::string& args, Same same) {
    json first = Must(args);
    const std::uint64_t size = LogSize();
    json second = Must(args);
    same(first, second);
    CHECK(LogSize() == size);
    return first;
  }
};

std::vector<std::string> Ids(const json& snapshots) {
  std::vector<std::string> out;
  for (const auto& s : snapshots) out.push_back(s["id"]);
  return out;
}

}  // namespace

TEST_CASE("a retried workload token with the same command id is the same token, issued once",
          "[cli][issue13]") {
  Home h;
  h.Must("addon create sqlite app-db --app api --bind DATABASE");
  const std::string release = h.Must("release create --app api")["release"];
  const std::string cmd = "--command-id tok-1 workload token --app api --release " + release;
  auto first = h.Run(cmd);
  REQUIRE(first.exit_code == 0);
  const std::uint64_t size = h.LogSize();
  auto second = h.Run(cmd);
  REQUIRE(second.exit_code == 0);
  // Byte for byte the same JWT: the claims come from the first run's record.
  CHECK(second.out == first.out);
  CHECK(first.out.size() > 100);
  CHECK(h.LogSize() == size);
  auto issued = h.Records("WorkloadTokenIssued");
  REQUIRE(issued.size() == 1);
  auto issued_at = ParseRfc3339Ms(issued[0]["issued_at"].get<std::string>());
  auto expires_at = ParseRfc3339Ms(issued[0]["expires_at"].get<std::string>());
  REQUIRE(issued_at.has_value());
  REQUIRE(expires_at.has_value());
  CHECK(*issued_at > 0);
  CHECK(*expires_at == *issued_at + 3600 * 1000);

  // JSON shows the same token and its one record.
  auto [c3, j3] = h.Json(cmd);
  CHECK(c3 == 0);
  CHECK(j3["token"].get<std::string>() + "\n" == first.out);
  CHECK(j3["token_id"] == issued[0]["token_id"]);
  CHECK(j3["seq"] == issued[0]["seq"]);

  // Another id (or none) is another token.
  auto other = h.Run("--command-id tok-2 workload token --app api --release " + release);
  REQUIRE(other.exit_code == 0);
  CHECK(other.out != first.out);
  auto plain = h.Run("workload token --app api --release " + release);
  REQUIRE(plain.exit_code == 0);
  CHECK(plain.out != first.out);
  CHECK(h.Records("WorkloadTokenIssued").size() == 3);
  // The same id with another --ttl is another command line: a new token.
  auto longer = h.Run(cmd + " --ttl 2h");
  REQUIRE(longer.exit_code == 0);
  CHECK(longer.out != first.out);
}

TEST_CASE("snapshot delete, verify, policy and prune retried with the same command id",
          "[cli][issue13]") {
  Home h;
  h.Must("addon create sqlite app-db --app api --bind DATABASE");
  std::vector<std::string> taken;
  for (int i = 0; i < 3; ++i) taken.push_back(h.Must("addon snapshot app-db")["id"]);

  // verify: the first run's outcomes, even after a new unverified snapshot
  // (which a fresh verify would pick up).
  json verified = h.Twice("--command-id v-1 addon snapshots verify app-db", [](const json& a, const json& b) {
    CHECK(Ids(b["snapshots"]) == Ids(a["snapshots"]));
    CHECK(b["ok"] == true);
  });
  CHECK(Ids(verified["snapshots"]) == taken);
  CHECK(h.Records("SnapshotVerified").size() == 3);
  const std::string late = h.Must("addon snapshot app-db")["id"];
  std::uint64_t size = h.LogSize();
  json again = h.Must("--command-id v-1 addon snapshots verify app-db");
  CHECK(Ids(again["snapshots"]) == taken);
  CHECK(h.LogSize() == size);
  // One snapshot by id, under another id.
  json one = h.Twice("--command-id v-2 addon snapshots verify app-db --snapshot " + late,
                     [](const json& a, const json& b) { CHECK(b == a); });
  CHECK(Ids(one["snapshots"]) == std::vector<std::string>{late});
  CHECK(h.Records("SnapshotVerified").size() == 4);

  // policy: the policy the first run set, though another was set since.
  h.Twice("--command-id p-1 addon snapshots policy app-db --keep-last 2",
          [](const json& a, const json& b) { CHECK(b == a); });
  h.Must("addon snapshots policy app-db --keep-last 3");
  size = h.LogSize();
  CHECK(h.Must("--command-id p-1 addon snapshots policy app-db --keep-last 2")["keep_last"] == 2);
  CHECK(h.LogSize() == size);
  h.Must("addon snapshots policy app-db --keep-last 2");

  // prune: the snapshots the first run deleted, and no others later.
  json pruned = h.Twice("--command-id pr-1 addon snapshots prune app-db", [](const json& a, const json& b) {
    CHECK(Ids(b["deleted"]) == Ids(a["deleted"]));
  });
  CHECK(Ids(pruned["deleted"]) == std::vector<std::string>{taken[0], taken[1]});
  CHECK(h.Records("SnapshotDeleted").size() == 2);
  h.Must("addon snapshot app-db");
  h.Must("addon snapshots verify app-db");
  size = h.LogSize();
  CHECK(Ids(h.Must("--command-id pr-1 addon snapshots prune app-db")["deleted"]) ==
        Ids(pruned["deleted"]));
  CHECK(h.LogSize() == size);

  // delete: the deleted snapshot; its record stays one.
  h.Twice("--yes --command-id d-1 addon snapshot delete " + taken[2],
          [&](const json& a, const json& b) {
            CHECK(b["id"] == taken[2]);
            CHECK(b["id"] == a["id"]);
          });
  CHECK(h.Records("SnapshotDeleted").size() == 3);
  const std::string id = h.Json("addon status app-db").second["addon"]["id"];
  CHECK_FALSE(fs::exists(h.dir.path() / "snapshots" / id / (taken[2] + ".sqlite")));
  CHECK(fs::exists(h.dir.path() / "snapshots" / id / (late + ".sqlite")));
}

TEST_CASE("check and create from a file or a snapshot retried with the same command id",
          "[cli][issue13]") {
  Home h;
  h.Must("addon create sqlite app-db --app api --bind DATABASE");

  // check: the recorded check, not a second one.
  json checked = h.Twice("--command-id c-1 addon check app-db",
                         [](const json& a, const json& b) { CHECK(b == a); });
  CHECK(checked["ok"] == true);
  CHECK(h.Records("StorageChecked").size() == 1);

  // create --from-file: the add-on the first run made; nothing is copied again.
  const fs::path file = h.dir.path() / "import.sqlite";
  REQUIRE(testing::Run("sqlite3 '" + file.string() + "' 'CREATE TABLE t(x); INSERT INTO t VALUES (7);'")
              .exit_code == 0);
  json imported = h.Twice("--command-id f-1 addon create sqlite imported --app api --from-file '" +
                              file.string() + "'",
                          [](const json& a, const json& b) { CHECK(b["addon"]["id"] == a["addon"]["id"]); });
  CHECK(h.Records("AddonCreated").size() == 2);
  // Without the id, the same line is refused: the name is taken.
  CHECK(h.Json("addon create sqlite imported --app api --from-file '" + file.string() + "'").first == 4);
  // No second copy was left behind by the retry.
  std::size_t folders = 0;
  for (const auto& entry : fs::directory_iterator(h.dir.path() / "addons")) {
    (void)entry;
    ++folders;
  }
  CHECK(folders == 2);

  // create --from-snapshot, from a snapshot never verified (the first run
  // verifies it; the retry reads nothing).
  const std::string snap = h.Must("addon snapshot app-db")["id"];
  json copy = h.Twice("--command-id s-1 addon create sqlite copy --app api --from-snapshot " + snap,
                      [](const json& a, const json& b) { CHECK(b["addon"]["id"] == a["addon"]["id"]); });
  CHECK(copy["addon"]["name"] == "copy");
  CHECK(h.Records("AddonCreated").size() == 3);
  CHECK(h.Records("SnapshotVerified").size() == 1);
}

TEST_CASE("init and recover take a command id and a repeat changes nothing", "[cli][issue13]") {
  Home h;
  json created = h.Must("--command-id i-1 init");
  CHECK(created["created"] == true);
  const std::uint64_t size = h.LogSize();
  auto again = h.Run("--command-id i-1 init");
  REQUIRE(again.exit_code == 0);
  CHECK(again.out.find("already initialized: ") == 0);
  CHECK(h.Must("--command-id i-1 init")["created"] == false);
  CHECK(h.LogSize() == size);

  h.Must("addon create sqlite app-db --app api --bind DATABASE");
  const std::uint64_t before = h.LogSize();
  json r1 = h.Must("--command-id r-1 recover");
  json r2 = h.Must("--command-id r-1 recover");
  CHECK(r2["changed"] == false);
  CHECK(r2["intents"].empty());
  CHECK(h.LogSize() == before);
}

TEST_CASE("commands that only read refuse a command id", "[cli][issue13]") {
  Home h;
  h.Must("addon create sqlite app-db --app api --bind DATABASE");
  const std::string snap = h.Must("addon snapshot app-db")["id"];
  const fs::path out = h.dir.path() / "export.sqlite";
  for (const std::string& args :
       {std::string("addon status app-db"), std::string("addon list"),
        std::string("addon history app-db"), std::string("addon snapshots app-db"),
        "addon snapshot export " + snap + " --to '" + out.string() + "'",
        std::string("release list --app api"), std::string("audit log"),
        std::string("audit verify")}) {
    auto [code, answer] = h.Json("--command-id x-1 " + args);
    INFO(args);
    CHECK(code == 2);
    CHECK(answer["error"]["code"] == "command_id_unsupported");
  }
  CHECK_FALSE(fs::exists(out));
}
