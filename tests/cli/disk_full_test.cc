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
#include "testing.h"

using namespace via;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Home {
  testing::TempDir dir;

  testing::CommandResult Run(const std::string& args, const std::string& env = "") {
    return testing::Run(env + " " + testing::ViaBinary() + " --home '" + dir.path().string() +
                        "' " + args + " </dev/null");
  }
  json Json(const std::string& args, const std::string& env = "") {
    auto r = Run("--json " + args, env);
    INFO(args << "\n" << r.out);
    return json::parse(r.out.empty() ? "null" : r.out, nullptr, false);
  }
  std::string Id(const std::string& name) { return Json("addon status " + name)["addon"]["id"]; }
  fs::path Db(const std::string& name) { return dir.path() / "addons" / Id(name) / "data.sqlite"; }
  std::string Sql(const fs::path& db, const std::string& sql) {
    auto r = testing::Run("sqlite3 '" + db.string() + "' \"" + sql + "\"");
    REQUIRE(r.exit_code == 0);
    return r.out;
  }
  std::vector<json> Records() {
    auto r = Run("--json audit log");
    REQUIRE(r.exit_code == 0);
    std::vector<json> out;
    std::size_t start = 0;
    while (start < r.out.size()) {
      std::size_t end = r.out.find('\n', start);
      if (end == std::string::npos) end = r.out.size();
      if (end > start) out.push_back(json::parse(r.out.substr(start, end - start)));
      start = end + 1;
    }
    return out;
  }
  std::vector<std::string> SnapshotFiles(const std::string& name) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(dir.path() / "snapshots" / Id(name), ec)) {
      out.push_back(f.path().filename().string());
    }
    return out;
  }
};

// About 9 MB of data and a marker row.
void Fill(Home& h, const std::string& name, const std::string& marker) {
  h.Sql(h.Db(name), "CREATE TABLE IF NOT EXISTS big(b); CREATE TABLE IF NOT EXISTS mark(m);"
                    "DELETE FROM mark; INSERT INTO mark VALUES ('" + marker + "');"
                    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<3000)"
                    " INSERT INTO big SELECT randomblob(3000) FROM c;");
}

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
  for (const auto& snap : h.Json("addon snapshots " + name)) {
    if (snap["status"] != "taken") continue;
    auto bytes = eventstore::ReadFile(h.dir.path() / "snapshots" / h.Id(name) /
                                      (snap["id"].get<std::string>() + ".sqlite"));
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
    Fill(h, "app-db", "before");
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
    json list = h.Json("addon snapshots app-db");
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
    Fill(h, "app-db", "after");
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
  Fill(h, "app-db", "snapshotted");
  json snap = h.Json("addon snapshot app-db");
  REQUIRE(snap["status"] == "taken");
  Fill(h, "app-db", "changed");

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
  auto failed = h.Run("--json addon snapshot app-db", "VIA_TEST_FAULT=snapshot_enospc:lots");
  CHECK(failed.exit_code == 2);
  CHECK(json::parse(failed.out, nullptr, false)["error"]["code"] == "bad_test_fault");
  CHECK(h.Records().back()["type"] == "SnapshotFailed");  // no dangling intent
  CHECK(h.SnapshotFiles("app-db").empty());
  CheckNothingToRecover(h, "app-db");
}
