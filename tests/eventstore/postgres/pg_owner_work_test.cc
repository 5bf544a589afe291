// Owner work on several nodes (docs/operations.md "Several nodes"): file
// work on an add-on placed on node a, asked for from node b's home, is done
// by a's `via serve` (the intent appended under an owner-work command id, the
// CLI waiting for the completion): restore, the storage of an add-on created
// on another node, and repair, check and verify (OwnerWorkRequested, answered
// by OwnerWorkFinished). With the owner down the command answers
// owner_timeout within its timeout, and the owner carries the intent out
// once when it starts; a kill -9 of the owner during a remote restore is
// settled by `via recover` on the owner's home. Both homes verify one chain.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "log_backend.h"
#include "nodes_harness.h"
#include "serve_process.h"
#include "testing.h"

using namespace via;
using via::testing::Eventually;
using via::testing::FreePort;
using via::testing::JsonOf;
using via::testing::Metric;
using via::testing::NodeServer;
using via::testing::ReadText;
using via::testing::TwoHomes;
using via::testing::Via;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The rows of `sql` (one integer column) in the owner's database file,
// read with SQLite itself, not through Via.
std::vector<long long> Rows(const fs::path& db, const std::string& sql) {
  sqlite3* conn = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &conn, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_busy_timeout(conn, 10000);  // the owner may be writing it (a restore)
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(conn, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
  std::vector<long long> out;
  while (sqlite3_step(stmt) == SQLITE_ROW) out.push_back(sqlite3_column_int64(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close(conn);
  return out;
}

void Exec(const fs::path& db, const std::string& sql) {
  sqlite3* conn = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &conn) == SQLITE_OK);
  sqlite3_busy_timeout(conn, 10000);
  char* error = nullptr;
  const int rc = sqlite3_exec(conn, sql.c_str(), nullptr, nullptr, &error);
  INFO((error ? error : ""));
  sqlite3_free(error);
  sqlite3_close(conn);
  REQUIRE(rc == SQLITE_OK);
}

// How many events of `type` the add-on named `name` has (`addon history`).
int EventCount(const fs::path& home, const std::string& name, const std::string& type) {
  int n = 0;
  const json history = JsonOf(Via(home, "--json addon history " + name).out);
  for (const auto& incarnation : history["addons"]) {
    for (const auto& e : incarnation["events"]) n += e["type"] == type;
  }
  return n;
}

}  // namespace

TEST_CASE("a restore asked for on another node's home is done by the owner's via serve",
          "[postgres][nodes][owner_work]") {
  TwoHomes homes;
  NodeServer a(homes.a, "a");
  REQUIRE(!a.server.url().empty());
  REQUIRE(Via(homes.a, "addon create sqlite db-a --app api >/dev/null").exit_code == 0);
  const std::string id = JsonOf(Via(homes.a, "--json addon status db-a").out)["addon"]["id"];
  const fs::path db = homes.a / "addons" / id / "data.sqlite";
  Exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)");
  const std::string old_snap =
      JsonOf(Via(homes.a, "--json addon snapshot db-a").out)["id"];
  Exec(db, "INSERT INTO t VALUES (3)");
  REQUIRE(Rows(db, "SELECT count(*) FROM t") == std::vector<long long>{3});

  // From b's home (b runs no server: the CLI alone), done by a.
  const std::uint64_t appends_before = Metric(a.port, "via_log_appends_total");
  auto restored =
      Via(homes.b, "--json --yes addon restore db-a --snapshot " + old_snap + " --owner-timeout 30s");
  REQUIRE(restored.exit_code == 0);
  // The owner's appends for it (the safety snapshot, the restore) went
  // through its server's group committer: nothing else appends through it
  // here (NodeServer runs without background passes, and no app asks for a
  // descriptor). Not an exact count: a decision made again after b's append
  // moved the head submits again.
  const std::uint64_t appends = Metric(a.port, "via_log_appends_total") - appends_before;
  CHECK(appends >= 1);
  const json r = JsonOf(restored.out);
  CHECK(r["addon_id"] == id);
  CHECK(r["snapshot_id"] == old_snap);
  const std::string safety = r["safety_snapshot_id"];
  CHECK(r["undo"] == "via addon restore db-a --snapshot " + safety);
  // The old rows are back in a's file; the safety snapshot is a's, and holds
  // the rows from before the restore.
  CHECK(Rows(db, "SELECT count(*) FROM t") == std::vector<long long>{2});
  CHECK(fs::exists(homes.a / "snapshots" / id / (safety + ".sqlite")));
  CHECK_FALSE(fs::exists(homes.b / "snapshots" / id));
  CHECK(Rows(homes.a / "snapshots" / id / (safety + ".sqlite"), "SELECT count(*) FROM t") ==
        std::vector<long long>{3});
  CHECK(ReadText(homes.a / "serve.err").find("restore " + old_snap) != std::string::npos);
  // The human output, the same as a local restore's.
  auto undone = Via(homes.b, "--yes addon restore db-a --snapshot " + safety);
  REQUIRE(undone.exit_code == 0);
  CHECK(undone.out.find("restored " + id + " from " + safety) != std::string::npos);
  CHECK(undone.out.find("undo: via addon restore db-a --snapshot ") != std::string::npos);
  CHECK(Rows(db, "SELECT count(*) FROM t") == std::vector<long long>{3});

  // A snapshot whose file no longer matches its event is refused by the
  // owner: the command exits as a local restore would (6, the code kept).
  fs::path old_file = homes.a / "snapshots" / id / (old_snap + ".sqlite");
  {
    std::fstream f(old_file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x5a');
  }
  auto refused = Via(homes.b, "--json --yes addon restore db-a --snapshot " + old_snap);
  CHECK(refused.exit_code == 6);
  CHECK(JsonOf(refused.out)["error"]["code"] == "snapshot_hash_mismatch");
  CHECK(Rows(db, "SELECT count(*) FROM t") == std::vector<long long>{3});  // untouched
  // The refusal closed the intent: storage is ready, no restore in flight.
  CHECK(JsonOf(Via(homes.b, "--json addon status db-a").out)["storage_ready"] == true);

  CHECK(Via(homes.a, "audit verify >/dev/null").exit_code == 0);
  CHECK(Via(homes.b, "audit verify >/dev/null").exit_code == 0);
}

TEST_CASE("a remote restore waits out a down owner with owner_timeout and is then done once and "
          "a kill -9 of the owner during one is settled by via recover",
          "[postgres][nodes][owner_work]") {
  TwoHomes homes;
  std::string id;
  std::string first;
  fs::path db;
  {
    NodeServer a(homes.a, "a");
    REQUIRE(!a.server.url().empty());
    REQUIRE(Via(homes.a, "addon create sqlite db-a --app api >/dev/null").exit_code == 0);
    id = JsonOf(Via(homes.a, "--json addon status db-a").out)["addon"]["id"];
    db = homes.a / "addons" / id / "data.sqlite";
    Exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
    first = JsonOf(Via(homes.a, "--json addon snapshot db-a").out)["id"];
    Exec(db, "INSERT INTO t VALUES (2)");
  }  // a stops (SIGKILL)

  // The owner down: the command gives up within its timeout.
  const auto started = std::chrono::steady_clock::now();
  auto timed_out =
      Via(homes.b, "--json --yes addon restore db-a --snapshot " + first + " --owner-timeout 1s");
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(timed_out.exit_code == 1);
  const json error = JsonOf(timed_out.out)["error"];
  CHECK(error["code"] == "owner_timeout");
  CHECK(error["remediation"].get<std::string>().find("via serve --node a") != std::string::npos);
  CHECK(took < std::chrono::seconds(10));  // 1 s of waiting, plus start-up
  CHECK(Rows(db, "SELECT count(*) FROM t") == std::vector<long long>{2});  // nothing yet
  // A second restore is refused while that one is pending.
  auto second = Via(homes.b, "--json --yes addon restore db-a --snapshot " + first +
                                 " --owner-timeout 1s");
  CHECK(second.exit_code == 4);
  CHECK(JsonOf(second.out)["error"]["code"] == "restore_in_progress");

  {
    // a comes back and carries the pending restore out, once.
    NodeServer a(homes.a, "a");
    REQUIRE(!a.server.url().empty());
    CHECK(Eventually([&] { return Rows(db, "SELECT count(*) FROM t") == std::vector<long long>{1}; }));
    CHECK(Eventually([&] {
      return ReadText(homes.a / "serve.err").find("restore " + first + " of " + id + ": restored") !=
             std::string::npos;
    }));
    CHECK(EventCount(homes.b, "db-a", "RestoreRequested") == 1);
    CHECK(EventCount(homes.b, "db-a", "SnapshotRestored") == 1);
    Exec(db, "INSERT INTO t VALUES (5)");
  }

  // Killed (SIGKILL at a crash point) during a remote restore: the restore
  // is in the log, its completion is not.
  {
    NodeServer a(homes.a, "a", {"VIA_CRASH_AT=restore.after_file"});
    REQUIRE(!a.server.url().empty());
    auto cut = Via(homes.b, "--json --yes addon restore db-a --snapshot " + first +
                                " --owner-timeout 3s");
    CHECK(cut.exit_code == 1);
    CHECK(JsonOf(cut.out)["error"]["code"] == "owner_timeout");
    CHECK(Eventually([&] { return !a.server.alive(); }));
    CHECK(WTERMSIG(a.server.exit_status()) == SIGKILL);
  }
  CHECK(EventCount(homes.b, "db-a", "RestoreRequested") == 2);
  CHECK(EventCount(homes.b, "db-a", "SnapshotRestored") == 1);
  // Recovery on the owner's home settles it: the restore is finished.
  REQUIRE(Via(homes.a, "recover >/dev/null").exit_code == 0);
  CHECK(Rows(db, "SELECT count(*) FROM t") == std::vector<long long>{1});
  CHECK(EventCount(homes.b, "db-a", "SnapshotRestored") == 2);
  CHECK(EventCount(homes.b, "db-a", "RestoreFailed") == 0);
  CHECK(Via(homes.a, "audit verify >/dev/null").exit_code == 0);
  CHECK(Via(homes.b, "audit verify >/dev/null").exit_code == 0);
}

TEST_CASE("addon create --node OTHER is provisioned by the owner (also once it starts) and "
          "status on a home that is not the owner's tells the truth",
          "[postgres][nodes][owner_work]") {
  TwoHomes homes;
  {
    NodeServer b(homes.b, "b");  // announces b
    REQUIRE(!b.server.url().empty());
  }
  NodeServer a(homes.a, "a");
  REQUIRE(!a.server.url().empty());

  // b is down: asked from a's home, the add-on is created on b but b makes
  // no storage until it runs; the command answers owner_timeout.
  auto timed_out = Via(homes.a, "--json addon create sqlite db-b --app web --bind DATABASE "
                                "--node b --owner-timeout 1s");
  CHECK(timed_out.exit_code == 1);
  CHECK(JsonOf(timed_out.out)["error"]["code"] == "owner_timeout");
  json status = JsonOf(Via(homes.a, "--json addon status db-b").out);
  CHECK(status["addon"]["node"] == "b");
  CHECK(status["addon"]["state"] == "provisioning");
  CHECK(status["storage_probed"] == false);
  const std::string id = status["addon"]["id"];
  CHECK_FALSE(fs::exists(homes.b / "addons" / id));
  CHECK_FALSE(fs::exists(homes.a / "addons" / id));

  {
    // b starts and provisions it, once.
    NodeServer b(homes.b, "b");
    REQUIRE(!b.server.url().empty());
    CHECK(Eventually([&] {
      return JsonOf(Via(homes.a, "--json addon status db-b").out)["addon"]["state"] == "active";
    }));
    CHECK(fs::exists(homes.b / "addons" / id / "data.sqlite"));
    CHECK(EventCount(homes.a, "db-b", "StorageProvisioned") == 1);

    // b up: created from a's home, provisioned by b, answered as a local
    // create is (the readiness of the new add-on).
    auto created = Via(homes.a, "--json addon create sqlite db-b2 --app web --node b");
    REQUIRE(created.exit_code == 0);
    const json made = JsonOf(created.out);
    CHECK(made["addon"]["node"] == "b");
    CHECK(made["addon"]["state"] == "active");
    CHECK(made["storage_ready"] == true);
    CHECK(made["storage_probed"] == false);
    CHECK(fs::exists(homes.b / "addons" / made["addon"]["id"].get<std::string>() / "data.sqlite"));
    CHECK_FALSE(fs::exists(homes.a / "addons" / made["addon"]["id"].get<std::string>()));

    // Data staged in this home cannot go to another node.
    auto staged = Via(homes.a, "--json addon create sqlite db-b3 --app web --node b --from-file " +
                                   (homes.b / "addons" / id / "data.sqlite").string());
    CHECK(staged.exit_code == 4);
    CHECK(JsonOf(staged.out)["error"]["code"] == "not_this_node");
  }

  // Status of b's add-on on a's home (b down): judged from the log, the
  // same readiness as on b's own home, never storage_missing.
  REQUIRE(Via(homes.a, "release create --app web >/dev/null").exit_code == 0);
  const json on_a = JsonOf(Via(homes.a, "--json addon status db-b").out);
  const json on_b = JsonOf(Via(homes.b, "--json addon status db-b").out);
  CHECK(on_a["storage_ready"] == true);
  CHECK(on_a["storage_probed"] == false);
  CHECK(on_b["storage_probed"] == true);
  CHECK(on_a["usable_by_app"] == on_b["usable_by_app"]);
  CHECK(on_a["blocking"] == on_b["blocking"]);
  CHECK(on_a["usable_by_app"] == true);
  CHECK(Via(homes.a, "addon status db-b").out.find("on node b") != std::string::npos);
  // Damage b's file: b's own status sees it; a's cannot, and says so.
  fs::remove(homes.b / "addons" / id / "data.sqlite");
  CHECK(JsonOf(Via(homes.b, "--json addon status db-b").out)["blocking"] == "storage_missing");
  CHECK(JsonOf(Via(homes.a, "--json addon status db-b").out)["storage_probed"] == false);

  CHECK(Via(homes.a, "audit verify >/dev/null").exit_code == 0);
  CHECK(Via(homes.b, "audit verify >/dev/null").exit_code == 0);
}

TEST_CASE("repair and check and verify asked for on another node's home are done by the owner",
          "[postgres][nodes][owner_work]") {
  TwoHomes homes;
  NodeServer a(homes.a, "a");
  REQUIRE(!a.server.url().empty());
  REQUIRE(Via(homes.a, "addon create sqlite db-a --app api --bind DATABASE >/dev/null").exit_code == 0);
  const std::string id = JsonOf(Via(homes.a, "--json addon status db-a").out)["addon"]["id"];
  const fs::path db = homes.a / "addons" / id / "data.sqlite";
  Exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3)");
  const std::string snap = JsonOf(Via(homes.a, "--json addon snapshot db-a").out)["id"];
  REQUIRE(Via(homes.a, "release create --app api >/dev/null").exit_code == 0);

  // verify, from b: a reads its snapshot file and records SnapshotVerified.
  auto verified = Via(homes.b, "--json addon snapshots verify db-a --owner-timeout 30s");
  REQUIRE(verified.exit_code == 0);
  const json v = JsonOf(verified.out);
  REQUIRE(v["snapshots"].size() == 1);
  CHECK(v["snapshots"][0]["id"] == snap);
  CHECK(v["snapshots"][0]["verification"] == "verified");
  CHECK(EventCount(homes.a, "db-a", "SnapshotVerified") == 1);
  // Nothing left to verify: answered here, nothing asked.
  const std::uint64_t before = JsonOf(Via(homes.b, "--json audit verify").out)["size"];
  auto again = Via(homes.b, "--json addon snapshots verify db-a");
  REQUIRE(again.exit_code == 0);
  CHECK(JsonOf(again.out)["snapshots"].empty());
  CHECK(JsonOf(Via(homes.b, "--json audit verify").out)["size"] == before);

  // check, from b: a runs integrity_check on its file.
  auto checked = Via(homes.b, "--json addon check db-a --owner-timeout 30s");
  REQUIRE(checked.exit_code == 0);
  const json c = JsonOf(checked.out);
  CHECK(c["ok"] == true);
  CHECK(c["addon_id"] == id);
  CHECK(c["check"] == "integrity_check");
  CHECK(EventCount(homes.a, "db-a", "StorageChecked") == 1);

  // repair, from b: a's file is gone; a restores it from the snapshot.
  fs::remove(db);
  CHECK(JsonOf(Via(homes.a, "--json addon status db-a").out)["blocking"] == "storage_missing");
  auto repaired = Via(homes.b, "--json addon ensure sqlite db-a --app api --bind DATABASE --repair "
                               "--owner-timeout 30s");
  REQUIRE(repaired.exit_code == 0);
  const json r = JsonOf(repaired.out);
  CHECK(r["restored_from"] == snap);
  CHECK(r["changed"] == true);
  CHECK(r["warning"].is_null());
  CHECK(Rows(db, "SELECT count(*) FROM t") == std::vector<long long>{3});
  CHECK(JsonOf(Via(homes.a, "--json addon status db-a").out)["storage_ready"] == true);
  // Nothing to repair: nothing changes.
  auto nothing = Via(homes.b, "--json addon ensure sqlite db-a --app api --bind DATABASE --repair");
  REQUIRE(nothing.exit_code == 0);
  CHECK(JsonOf(nothing.out)["changed"] == false);
  CHECK(JsonOf(nothing.out)["restored_from"].is_null());

  // A repair that would install an empty database is refused by the owner
  // without --allow-empty, as on its own home (exit 4, nothing written).
  REQUIRE(Via(homes.a, "addon create sqlite db-e --app api >/dev/null").exit_code == 0);
  const std::string e_id = JsonOf(Via(homes.a, "--json addon status db-e").out)["addon"]["id"];
  const fs::path e_db = homes.a / "addons" / e_id / "data.sqlite";
  // A SQLite header over garbage: the probe finds it corrupt.
  const std::string garbage = std::string("SQLite format 3", 16) +
                              std::string("\x10\x00\x01\x01\x00\x40\x20\x20", 8) +
                              std::string(8168, 'x');
  {
    std::ofstream out(e_db, std::ios::binary | std::ios::trunc);
    out << garbage;
  }
  auto refused = Via(homes.b, "--json addon ensure sqlite db-e --app api --repair");
  CHECK(refused.exit_code == 4);
  CHECK(JsonOf(refused.out)["error"]["code"] == "repair_needs_allow_empty");
  CHECK(JsonOf(refused.out)["error"]["remediation"].get<std::string>().find("--allow-empty") !=
        std::string::npos);
  CHECK(ReadText(e_db) == garbage);  // nothing moved
  auto emptied = Via(homes.b, "--json addon ensure sqlite db-e --app api --repair --allow-empty");
  CHECK(emptied.exit_code != 4);  // db-e has no binding: 3 (not bound), never a refusal
  const json e = JsonOf(emptied.out);
  CHECK_FALSE(e.contains("error"));
  CHECK(e["changed"] == true);
  CHECK(e["storage_ready"] == true);
  CHECK(e["warning"].get<std::string>().find("empty") != std::string::npos);
  CHECK(JsonOf(Via(homes.a, "--json addon status db-e").out)["storage_ready"] == true);

  // Owner down: owner_timeout within the timeout; a does it once it runs.
  a.server.Kill();
  auto timed_out = Via(homes.b, "--json addon check db-a --owner-timeout 1s");
  CHECK(timed_out.exit_code == 1);
  CHECK(JsonOf(timed_out.out)["error"]["code"] == "owner_timeout");
  CHECK(EventCount(homes.a, "db-a", "StorageChecked") == 1);
  NodeServer back(homes.a, "a");
  REQUIRE(!back.server.url().empty());
  CHECK(Eventually([&] { return EventCount(homes.a, "db-a", "StorageChecked") == 2; }));
  CHECK(Eventually([&] { return EventCount(homes.a, "db-a", "OwnerWorkFinished") == 5; }));

  CHECK(Via(homes.a, "audit verify >/dev/null").exit_code == 0);
  CHECK(Via(homes.b, "audit verify >/dev/null").exit_code == 0);
}

// `addon snapshot` of another node's add-on, run again with the same
// --command-id (a retry after a lost answer), answers with the first run's
// snapshot and asks the owner for nothing more (it took a new snapshot each
// time: the owner-work id was built from the new snapshot id, not the
// operator's command id; found by the two-node stress test).
TEST_CASE("a remote snapshot run again with its command id answers with the first run's snapshot",
          "[postgres][nodes][owner_work]") {
  TwoHomes homes;
  NodeServer a(homes.a, "a");
  REQUIRE(!a.server.url().empty());
  REQUIRE(Via(homes.a, "addon create sqlite db-a --app api >/dev/null").exit_code == 0);
  auto first = Via(homes.b, "--json --command-id c2 addon snapshot db-a --owner-timeout 30s");
  REQUIRE(first.exit_code == 0);
  auto again = Via(homes.b, "--json --command-id c2 addon snapshot db-a --owner-timeout 30s");
  REQUIRE(again.exit_code == 0);
  const std::string id = JsonOf(first.out)["id"];
  CHECK(JsonOf(again.out)["id"] == id);
  CHECK(JsonOf(again.out)["status"] == "taken");
  CHECK(EventCount(homes.b, "db-a", "SnapshotRequested") == 1);
  CHECK(EventCount(homes.b, "db-a", "SnapshotTaken") == 1);
  // Another command id is another snapshot.
  auto other = Via(homes.b, "--json --command-id c3 addon snapshot db-a --owner-timeout 30s");
  REQUIRE(other.exit_code == 0);
  CHECK(JsonOf(other.out)["id"] != id);
  CHECK(EventCount(homes.b, "db-a", "SnapshotTaken") == 2);
  CHECK(Via(homes.b, "audit verify >/dev/null").exit_code == 0);
}
