// A full disk during a snapshot. The fault is injected below SQLite
// (providers/sqlite/fault_vfs.h, $VIA_TEST_FAULT=snapshot_enospc:BYTES): the
// snapshot's temp file gets BYTES of room, then write(2) "fails" with ENOSPC
// and SQLite reports SQLITE_FULL, as on a real full file system. Then:
// a clear error with the stable code disk_full, SnapshotFailed in the log,
// no file left that anything could trust, nothing for `via recover` to do,
// and once space is back the next snapshot succeeds and restores.

#include <catch2/catch.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "crypto/crypto.h"
#include "eventstore/home.h"
#include "cli_home.h"
#include "testing.h"

using namespace via;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using Home = testing::CliHome;

// Nothing half-trusted: the log verifies, every snapshot the log calls taken
// is whole, and `via recover` finds nothing to do (no intent, no temp file,
// the read model equals a replay).
void CheckNothingToRecover(Home& h, const std::string& name) {
  CHECK(h.Run("audit verify").exit_code == 0);
  json dry = h.Json("recover --dry-run");
  INFO("recover --dry-run: " << dry.dump());
  CHECK(dry["changed"] == false);
  CHECK(dry["intents"].empty());
  CHECK(dry["storage"].empty());
  CHECK(dry["read_model_rebuilt"] == false);
  CHECK(h.Json("audit replay")["read_model_matches"] == true);
  for (const auto& snap : json(h.Json("addon snapshots " + name)["snapshots"])) {
    if (snap["status"] != "taken") continue;
    auto bytes = eventstore::ReadFile(h.dir.path() / "snapshots" / h.Id(name) /
                                      (snap["id"].get<std::string>() + ".sqlite"),
                                      SIZE_MAX);
    REQUIRE(bytes.ok());
    CHECK(HexEncode(crypto::Sha256::Digest(*bytes)) == snap["sha256"]);
  }
}

}  // namespace

TEST_CASE("a full disk during a snapshot fails cleanly and the next one succeeds",
          "[cli][disk_full]") {
  // Room for the header and a few pages, for 1 MiB (the copy fails midway),
  // and the default (64 KiB).
  for (const char* fault : {"snapshot_enospc:8192", "snapshot_enospc:1048576", "snapshot_enospc"}) {
    INFO(fault);
    Home h;
    REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
    REQUIRE(h.Run("release create --app api").exit_code == 0);  // usable needs a claim
    h.Fill("app-db", "before");
    const std::string env = std::string("VIA_TEST_FAULT=") + fault;
    const std::size_t records = h.Records().size();

    // A clear error with a stable code, in JSON and in text.
    auto failed = h.Run("--json addon snapshot app-db", env);
    CHECK(failed.exit_code == 1);
    json error = json::parse(failed.out, nullptr, false)["error"];
    INFO(failed.out);
    CHECK(error["code"] == "disk_full");
    CHECK(error["message"].get<std::string>().find("disk is full") != std::string::npos);
    CHECK(error["remediation"].get<std::string>().find("free space") != std::string::npos);
    {
      // Straight after the failure: no intent, no temp file, nothing changed,
      // nothing to rebuild (the read model may lag the snapshot's two records,
      // which the next command catches up with).
      json dry = h.Json("recover --dry-run");
      INFO("recover --dry-run: " << dry.dump());
      CHECK(dry["changed"] == false);
      CHECK(dry["intents"].empty());
      CHECK(dry["storage"].empty());
      CHECK(dry["read_model_rebuilt"] == false);
      CHECK(dry["read_model_behind"].get<int>() <= 2);
    }
    auto text = h.Run("addon snapshot app-db 2>&1", env);
    CHECK(text.exit_code == 1);
    CHECK(text.out.find("[disk_full]") != std::string::npos);
    CHECK(text.out.find("error: ") == 0);

    // Both attempts are in the log, each closed by SnapshotFailed.
    std::vector<json> log = h.Records();
    REQUIRE(log.size() == records + 4);
    for (std::size_t i = records; i < log.size(); i += 2) {
      CHECK(log[i]["type"] == "SnapshotRequested");
      CHECK(log[i + 1]["type"] == "SnapshotFailed");
      CHECK(log[i + 1]["snapshot_id"] == log[i]["snapshot_id"]);
      CHECK(log[i + 1]["reason"].get<std::string>().find("full") != std::string::npos);
    }
    json list = h.Json("addon snapshots app-db")["snapshots"];
    REQUIRE(list.size() == 2);
    for (const auto& snap : list) CHECK(snap["status"] == "failed");

    // No temp file, no snapshot file, nothing for recover to settle.
    CHECK(h.SnapshotFiles("app-db").empty());
    CheckNothingToRecover(h, "app-db");
    CHECK(h.Run("addon status app-db").exit_code == 0);  // the add-on is still usable
    CHECK(h.Sql(h.Db("app-db"), "SELECT m FROM mark; PRAGMA integrity_check;") == "before\nok\n");

    // Space is back: the next snapshot succeeds, verifies and restores.
    json snap = h.Json("addon snapshot app-db");
    REQUIRE(snap["status"] == "taken");
    CHECK(h.SnapshotFiles("app-db") ==
          std::vector<std::string>{snap["id"].get<std::string>() + ".sqlite"});
    h.Fill("app-db", "after");
    REQUIRE(h.Run("--yes addon restore app-db --snapshot " + snap["id"].get<std::string>())
                .exit_code == 0);
    CHECK(h.Sql(h.Db("app-db"), "SELECT m FROM mark; PRAGMA integrity_check;") == "before\nok\n");
    CheckNothingToRecover(h, "app-db");
  }
}

TEST_CASE("a full disk during a restore's safety snapshot leaves the data as it was",
          "[cli][disk_full]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(h.Run("release create --app api").exit_code == 0);  // usable needs a claim
  h.Fill("app-db", "snapshotted");
  json snap = h.Json("addon snapshot app-db");
  REQUIRE(snap["status"] == "taken");
  h.Fill("app-db", "changed");

  // The undo cannot be written, so the restore must not start.
  auto failed = h.Run("--json --yes addon restore app-db --snapshot " + snap["id"].get<std::string>(),
                      "VIA_TEST_FAULT=snapshot_enospc:1048576");
  INFO(failed.out);
  CHECK(failed.exit_code == 1);
  CHECK(json::parse(failed.out, nullptr, false)["error"]["code"] == "disk_full");
  std::vector<json> log = h.Records();
  CHECK(log.back()["type"] == "SnapshotFailed");
  for (const auto& r : log) CHECK(r["type"] != "RestoreRequested");
  CHECK(h.Sql(h.Db("app-db"), "SELECT m FROM mark; PRAGMA integrity_check;") == "changed\nok\n");
  CHECK(h.SnapshotFiles("app-db") ==
        std::vector<std::string>{snap["id"].get<std::string>() + ".sqlite"});
  CheckNothingToRecover(h, "app-db");

  // With space back the same restore works.
  REQUIRE(h.Run("--yes addon restore app-db --snapshot " + snap["id"].get<std::string>())
              .exit_code == 0);
  CHECK(h.Sql(h.Db("app-db"), "SELECT m FROM mark; PRAGMA integrity_check;") == "snapshotted\nok\n");
  CheckNothingToRecover(h, "app-db");
}

TEST_CASE("a malformed disk-full fault closes the snapshot as failed", "[cli][disk_full]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(h.Run("release create --app api").exit_code == 0);  // usable needs a claim
  auto failed = h.Run("--json addon snapshot app-db", "VIA_TEST_FAULT=snapshot_enospc:lots");
  CHECK(failed.exit_code == 2);
  CHECK(json::parse(failed.out, nullptr, false)["error"]["code"] == "bad_test_fault");
  CHECK(h.Records().back()["type"] == "SnapshotFailed");  // no dangling intent
  CHECK(h.SnapshotFiles("app-db").empty());
  CheckNothingToRecover(h, "app-db");
}
