// Snapshots and restore, credential generations and releases through the real
// `via` binary on real SQLite files.

#include <catch2/catch.hpp>

#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "testing.h"

using namespace via;
using nlohmann::json;
using via::testing::Via;
namespace fs = std::filesystem;

namespace {

struct Home {
  testing::TempDir dir;

  std::pair<int, json> Json(const std::string& args) {
    auto r = Via(dir.path(), "--json " + args);
    INFO(args << "\n" << r.out);
    return {r.exit_code, json::parse(r.out.empty() ? "null" : r.out, nullptr, false)};
  }

  std::string Create(const std::string& name, const std::string& app = "api",
                     const std::string& binding = "DATABASE") {
    auto [code, j] = Json("addon create sqlite " + name + " --app " + app +
                          (binding.empty() ? "" : " --bind " + binding));
    REQUIRE(code == 0);
    return j["addon"]["id"];
  }

  fs::path Db(const std::string& id) { return dir.path() / "addons" / id / "data.sqlite"; }
};

// Runs SQL on a database file with the sqlite3 C API; returns the first
// column of every row joined with ','.
std::string Sql(const fs::path& db, const std::string& sql) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  sqlite3_busy_timeout(raw, 10000);
  std::string out;
  auto collect = [](void* arg, int, char** values, char**) {
    auto* s = static_cast<std::string*>(arg);
    if (!s->empty()) *s += ",";
    *s += values[0] ? values[0] : "NULL";
    return 0;
  };
  char* error = nullptr;
  int rc = sqlite3_exec(raw, sql.c_str(), collect, &out, &error);
  std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(raw);
  INFO(sql << ": " << message);
  REQUIRE(rc == SQLITE_OK);
  return out;
}

}  // namespace

TEST_CASE("snapshot, change, restore brings the data back and the safety snapshot undoes it",
          "[cli]") {
  Home h;
  std::string id = h.Create("app-db");
  Sql(h.Db(id), "CREATE TABLE t(x); INSERT INTO t VALUES (1),(2),(3)");
  auto [code, snap] = h.Json("addon snapshot app-db --label before");
  REQUIRE(code == 0);
  CHECK(snap["status"] == "taken");
  CHECK(snap["label"] == "before");
  Sql(h.Db(id), "DELETE FROM t; INSERT INTO t VALUES (42)");

  auto [restore_code, restored] = h.Json("addon restore app-db --snapshot " +
                                         snap["id"].get<std::string>() + " --yes");
  REQUIRE(restore_code == 0);
  CHECK(Sql(h.Db(id), "SELECT x FROM t ORDER BY x") == "1,2,3");
  CHECK(Sql(h.Db(id), "PRAGMA integrity_check") == "ok");
  CHECK(Sql(h.Db(id), "PRAGMA journal_mode") == "wal");

  // The undo restores what was there before the restore.
  std::string undo = restored["undo"];
  REQUIRE(undo.rfind("via ", 0) == 0);
  CHECK(Via(h.dir.path(), "--yes " + undo.substr(4)).exit_code == 0);
  CHECK(Sql(h.Db(id), "SELECT x FROM t") == "42");

  auto [list_code, list] = h.Json("addon snapshots app-db");
  CHECK(list["snapshots"].size() == 3);  // before, safety of the restore, safety of the undo
  CHECK(Via(h.dir.path(), "audit verify").exit_code == 0);
}

TEST_CASE("restore refuses a verified snapshot whose file changed by one byte with exit 6",
          "[cli]") {
  Home h;
  std::string id = h.Create("app-db");
  Sql(h.Db(id), "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  auto [code, snap] = h.Json("addon snapshot app-db");
  REQUIRE(code == 0);
  REQUIRE(h.Json("addon snapshots verify app-db").first == 0);
  fs::path file = h.dir.path() / "snapshots" / id / (snap["id"].get<std::string>() + ".sqlite");
  {
    std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
    f.seekg(100);
    char c = 0;
    f.read(&c, 1);
    f.seekp(100);
    c = static_cast<char>(c ^ 1);
    f.write(&c, 1);
  }
  auto [restore_code, error] = h.Json("addon restore app-db --snapshot " +
                                      snap["id"].get<std::string>() + " --yes");
  CHECK(restore_code == 6);
  CHECK(error["error"]["code"] == "snapshot_hash_mismatch");
  CHECK(Sql(h.Db(id), "SELECT x FROM t") == "1");  // untouched
}

TEST_CASE("restore refuses another add-on's snapshot, a missing one, and no confirmation",
          "[cli]") {
  Home h;
  h.Create("one");
  h.Create("two", "web");
  auto [code, snap] = h.Json("addon snapshot one");
  REQUIRE(code == 0);
  std::string snap_id = snap["id"];
  auto [c1, other] = h.Json("addon restore two --snapshot " + snap_id + " --yes");
  CHECK(c1 == 4);
  CHECK(other["error"]["code"] == "snapshot_of_another_addon");
  auto [c2, missing] = h.Json("addon restore one --snapshot sn_nope --yes");
  CHECK(c2 == 5);
  auto [c3, unconfirmed] = h.Json("addon restore one --snapshot " + snap_id);
  CHECK(c3 == 2);
  CHECK(unconfirmed["error"]["code"] == "confirmation_required");
}

TEST_CASE("snapshots of a destroyed add-on are kept and listed by its id", "[cli]") {
  Home h;
  std::string id = h.Create("app-db", "api", "");
  REQUIRE(h.Json("addon snapshot app-db").first == 0);
  REQUIRE(h.Json("addon destroy app-db --yes").first == 0);
  auto [code, list] = h.Json("addon snapshots " + id);
  CHECK(code == 0);
  CHECK(list["snapshots"].size() == 1);
  auto [c2, refused] = h.Json("addon restore " + id + " --snapshot " +
                              list["snapshots"][0]["id"].get<std::string>() + " --yes");
  CHECK(c2 == 4);
  CHECK(refused["error"]["code"] == "addon_destroyed");
}

TEST_CASE("readers never see a torn database while a restore runs beside a writer", "[cli]") {
  Home h;
  std::string id = h.Create("app-db");
  fs::path db = h.Db(id);
  // 2,000 accounts holding 100 each: every transaction moves money, so the sum
  // is 200,000 in every consistent state.
  Sql(db, "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER);"
          "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<2000)"
          " INSERT INTO acct SELECT i, 100 FROM c;");
  auto [code, snap] = h.Json("addon snapshot app-db");
  REQUIRE(code == 0);
  Sql(db, "UPDATE acct SET bal = bal - 1 WHERE id = 1; UPDATE acct SET bal = bal + 1 WHERE id = 2");

  pid_t writer = ::fork();
  if (writer == 0) {
    sqlite3* raw = nullptr;
    sqlite3_open(db.c_str(), &raw);
    sqlite3_busy_timeout(raw, 50);
    for (int i = 0;; ++i) {
      std::string tx = "BEGIN IMMEDIATE; UPDATE acct SET bal = bal - 1 WHERE id = " +
                       std::to_string(i % 2000 + 1) + "; UPDATE acct SET bal = bal + 1 WHERE id = " +
                       std::to_string((i * 7) % 2000 + 1) + "; COMMIT;";
      if (sqlite3_exec(raw, tx.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
        sqlite3_exec(raw, "ROLLBACK", nullptr, nullptr, nullptr);
      }
      // An app's pace, not a tight loop: SQLite grants locks in no order, so a
      // writer that retakes the lock the instant it drops it can starve the
      // restore (the SQL proxy pauses writes during a restore for that reason).
      ::usleep(300);
    }
  }
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  const fs::path stop_file = h.dir.path() / "stop-reader";
  pid_t reader = ::fork();
  if (reader == 0) {
    ::close(pipefd[0]);
    sqlite3* raw = nullptr;
    sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_busy_timeout(raw, 1000);
    int bad = 0, good = 0;
    for (int i = 0; i < 100000; ++i) {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v2(raw, "SELECT sum(bal), count(*) FROM acct", -1, &stmt, nullptr) != SQLITE_OK) {
        ++bad;
        continue;
      }
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW) {
        if (sqlite3_column_int64(stmt, 0) == 200000 && sqlite3_column_int64(stmt, 1) == 2000) {
          ++good;
        } else {
          ++bad;
        }
      } else if ((rc & 0xff) != SQLITE_BUSY) {
        ++bad;
      }
      sqlite3_finalize(stmt);
      if (i % 64 == 0 && fs::exists(stop_file)) break;  // the restore is over
    }
    std::string result = std::to_string(bad) + " " + std::to_string(good);
    (void)::write(pipefd[1], result.data(), result.size());
    ::_exit(0);
  }
  ::close(pipefd[1]);
  auto restored = Via(h.dir.path(), "--json addon restore app-db --snapshot " +
                                        snap["id"].get<std::string>() + " --yes");
  ::kill(writer, SIGKILL);
  std::ofstream(stop_file) << "stop";
  int status = 0;
  ::waitpid(writer, &status, 0);
  std::string result;
  char buf[64];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) result.append(buf, static_cast<std::size_t>(n));
  ::waitpid(reader, &status, 0);
  INFO(restored.out);
  CHECK(restored.exit_code == 0);
  int bad = -1, good = -1;
  std::sscanf(result.c_str(), "%d %d", &bad, &good);
  CHECK(bad == 0);
  CHECK(good > 0);
  CHECK(Sql(db, "PRAGMA integrity_check") == "ok");
  CHECK(Sql(db, "SELECT sum(bal) FROM acct") == "200000");
}

TEST_CASE("rotation keeps the old generation valid and revocation has rules", "[cli]") {
  Home h;
  h.Create("app-db");
  REQUIRE(h.Json("release create --app api").first == 0);  // usable needs a release claim
  auto [c1, rotated] = h.Json("addon rotate-credentials app-db");
  CHECK(c1 == 0);
  CHECK(rotated["generation"] == 2);
  CHECK(rotated["active_generations"] == json::array({1, 2}));
  auto [c2, last] = h.Json("addon revoke-credentials app-db --generation 1");
  CHECK(c2 == 0);
  CHECK(last["active_generations"] == json::array({2}));
  CHECK(h.Json("addon revoke-credentials app-db --generation 1").second["error"]["code"] ==
        "generation_already_revoked");
  CHECK(h.Json("addon revoke-credentials app-db --generation 9").first == 5);
  auto [c3, refused] = h.Json("addon revoke-credentials app-db --generation 2");
  CHECK(c3 == 4);
  CHECK(refused["error"]["code"] == "last_active_generation");
  auto [c4, status] = h.Json("addon status app-db");
  CHECK(c4 == 0);
  CHECK(status["addon"]["generation"] == 2);
  CHECK(status["addon"]["revoked_generations"] == json::array({1}));
  CHECK(h.Json("addon revoke-credentials app-db --generation 2 --force").first == 0);
  CHECK(h.Json("addon status app-db").second["blocking"] == "no_active_generation");
}

TEST_CASE("release claims survive later binding changes and rotation needs no release",
          "[cli]") {
  Home h;
  std::string one = h.Create("one");
  auto [c1, v1] = h.Json("release create --app api");
  CHECK(c1 == 0);
  CHECK(v1["release"] == "v1");
  REQUIRE(v1["claims"].size() == 1);
  CHECK(v1["claims"][0]["addon_id"] == one);
  REQUIRE(h.Json("addon unbind one --app api --bind DATABASE").first == 0);
  std::string two = h.Create("two");
  REQUIRE(h.Json("addon rotate-credentials one").first == 0);
  auto [c2, list] = h.Json("release list --app api");
  REQUIRE(list["releases"].size() == 1);
  CHECK(list["releases"][0]["claims"][0]["addon_id"] == one);  // unchanged by the later bind
  auto [c3, v2] = h.Json("release create --app api");
  CHECK(v2["release"] == "v2");
  CHECK(v2["claims"][0]["addon_id"] == two);
  CHECK(h.Json("release create --app api --id v2").first == 4);
  // `one` is claimed by no latest release any more: destroy needs no --force.
  CHECK(h.Json("addon destroy one --yes").first == 0);
  REQUIRE(h.Json("addon unbind two --app api --bind DATABASE").first == 0);
  auto [c4, claimed] = h.Json("addon destroy two --yes");
  CHECK(c4 == 4);
  CHECK(claimed["error"]["code"] == "claimed_by_release");
  CHECK(claimed["error"]["message"].get<std::string>().find("api/v2") != std::string::npos);
  CHECK(h.Json("addon destroy two --yes --force").first == 0);
}
