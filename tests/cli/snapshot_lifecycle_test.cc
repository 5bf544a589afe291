// Snapshots after they are taken, through the real `via` binary on real
// SQLite files: verification recorded in the log, restore that verifies
// first, delete, retention policy and prune, export and import, a new add-on
// from a destroyed one's snapshot, and crashes at every new step.

#include <catch2/catch.hpp>

#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/cli_home.h"
#include "serve_process.h"

#include <chrono>
#include <thread>

using namespace via;
using nlohmann::json;
using via::testing::CliHome;
namespace fs = std::filesystem;

namespace {

std::string Create(CliHome& h, const std::string& name, const std::string& binding = "DATABASE") {
  auto j = h.Json("addon create sqlite " + name + " --app api" +
                  (binding.empty() ? "" : " --bind " + binding));
  REQUIRE(j.is_object());
  REQUIRE(j["addon"].is_object());
  return j["addon"]["id"];
}

std::string Snap(CliHome& h, const std::string& name, const std::string& label = "") {
  auto j = h.Json("addon snapshot " + name + (label.empty() ? "" : " --label " + label));
  REQUIRE(j.is_object());
  REQUIRE(j["status"] == "taken");
  return j["id"];
}

fs::path SnapFile(CliHome& h, const std::string& addon_id, const std::string& snap_id) {
  return h.dir.path() / "snapshots" / addon_id / (snap_id + ".sqlite");
}

// Flips one bit of `file` at `offset` bytes from its end.
void FlipNearEnd(const fs::path& file, int offset) {
  std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
  f.seekg(-offset, std::ios::end);
  char c = 0;
  f.read(&c, 1);
  f.seekp(-offset, std::ios::end);
  c = static_cast<char>(c ^ 1);
  f.write(&c, 1);
}

json Find(const json& list, const std::string& id) {
  for (const auto& s : list) {
    if (s["id"] == id) return s;
  }
  return nullptr;
}

std::vector<std::string> TypesOf(CliHome& h) {
  std::vector<std::string> out;
  for (const auto& r : h.Records()) out.push_back(r["type"]);
  return out;
}

}  // namespace

TEST_CASE("a snapshot is taken unverified, verify records the outcome and the list shows it",
          "[cli][snapshots]") {
  CliHome h;
  std::string id = Create(h, "app-db");
  h.Sql(h.Db("app-db"), "CREATE TABLE t(x); INSERT INTO t VALUES (1),(2)");
  std::string sn = Snap(h, "app-db");
  auto list = h.Json("addon snapshots app-db")["snapshots"];
  CHECK(Find(list, sn)["verification"] == "unverified");

  auto r = h.Run("--json addon snapshots verify app-db");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  auto verified = json::parse(r.out);
  CHECK(verified["ok"] == true);
  REQUIRE(verified["snapshots"].size() == 1);
  CHECK(verified["snapshots"][0]["verification"] == "verified");
  list = h.Json("addon snapshots app-db")["snapshots"];
  CHECK(Find(list, sn)["verification"] == "verified");
  auto types = TypesOf(h);
  CHECK(std::count(types.begin(), types.end(), "SnapshotVerified") == 1);
  // Nothing left unverified: a second run verifies nothing.
  auto again = h.Json("addon snapshots verify app-db");
  CHECK(again["snapshots"].empty());
  CHECK(h.Run("audit verify").exit_code == 0);
}

TEST_CASE("a snapshot damaged after taking: verify records ok false, restore refuses with 6, "
          "repair skips it",
          "[cli][snapshots]") {
  CliHome h;
  std::string id = Create(h, "app-db");
  h.Sql(h.Db("app-db"), "CREATE TABLE t(x); INSERT INTO t VALUES ('good')");
  std::string good = Snap(h, "app-db", "good");
  REQUIRE(h.Run("addon snapshots verify app-db").exit_code == 0);
  h.Sql(h.Db("app-db"), "UPDATE t SET x = 'newer'");
  std::string bad = Snap(h, "app-db", "bad");
  FlipNearEnd(SnapFile(h, id, bad), 10);

  auto r = h.Run("--json addon snapshots verify app-db --snapshot " + bad);
  CHECK(r.exit_code == 6);
  auto out = json::parse(r.out);
  CHECK(out["ok"] == false);
  CHECK(out["snapshots"][0]["verification"] == "failed");
  auto records = h.Records();
  bool recorded = false;
  for (const auto& rec : records) {
    if (rec["type"] == "SnapshotVerified" && rec["snapshot_id"] == bad) {
      recorded = rec["ok"] == false;
    }
  }
  CHECK(recorded);

  auto refused = h.Run("--json addon restore app-db --snapshot " + bad + " --yes");
  CHECK(refused.exit_code == 6);
  CHECK(json::parse(refused.out)["error"]["code"] == "snapshot_verification_failed");
  CHECK(h.Sql(h.Db("app-db"), "SELECT x FROM t") == "newer\n");  // untouched

  // The live database is lost: repair takes the newest snapshot that is not
  // known bad, the verified one.
  fs::remove(h.Db("app-db"));
  auto repaired = h.Json("addon ensure sqlite app-db --app api --bind DATABASE --repair");
  INFO(repaired.dump());
  CHECK(repaired["storage_ready"] == true);
  CHECK(repaired["binding_ready"] == true);
  CHECK(h.Sql(h.Db("app-db"), "SELECT x FROM t") == "good\n");
  bool from_good = false;
  for (const auto& rec : h.Records()) {
    if (rec["type"] == "StorageRepaired" && rec["action"] == "restored_from_snapshot") {
      from_good = rec["snapshot_id"] == good;
    }
  }
  CHECK(from_good);
}

TEST_CASE("repair prefers the newest verified snapshot to a newer unverified one",
          "[cli][snapshots]") {
  CliHome h;
  std::string id = Create(h, "app-db");
  h.Sql(h.Db("app-db"), "CREATE TABLE t(x); INSERT INTO t VALUES ('verified')");
  std::string older = Snap(h, "app-db");
  REQUIRE(h.Run("addon snapshots verify app-db --snapshot " + older).exit_code == 0);
  h.Sql(h.Db("app-db"), "UPDATE t SET x = 'unverified'");
  Snap(h, "app-db");
  fs::remove(h.Db("app-db"));
  auto repaired = h.Json("addon ensure sqlite app-db --app api --bind DATABASE --repair");
  CHECK(repaired["storage_ready"] == true);
  CHECK(repaired["binding_ready"] == true);
  CHECK(h.Sql(h.Db("app-db"), "SELECT x FROM t") == "verified\n");
}

TEST_CASE("restore verifies an unverified snapshot first and records it", "[cli][snapshots]") {
  CliHome h;
  Create(h, "app-db");
  h.Sql(h.Db("app-db"), "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  std::string sn = Snap(h, "app-db");
  h.Sql(h.Db("app-db"), "DELETE FROM t");
  auto r = h.Run("--json addon restore app-db --snapshot " + sn + " --yes");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(h.Sql(h.Db("app-db"), "SELECT count(*) FROM t") == "1\n");
  auto types = TypesOf(h);
  auto verified = std::find(types.begin(), types.end(), "SnapshotVerified");
  auto restore = std::find(types.begin(), types.end(), "RestoreRequested");
  REQUIRE(verified != types.end());
  CHECK(verified < restore);
  auto list = h.Json("addon snapshots app-db")["snapshots"];
  CHECK(Find(list, sn)["verification"] == "verified");
  std::string safety = json::parse(r.out)["safety_snapshot_id"];
  CHECK(Find(list, safety)["safety"] == true);
  CHECK(Find(list, sn)["safety"] == false);
}

TEST_CASE("snapshot delete appends SnapshotDeleted, removes the file, and guards the newest "
          "verified one",
          "[cli][snapshots]") {
  CliHome h;
  std::string id = Create(h, "app-db");
  std::string a = Snap(h, "app-db");
  std::string b = Snap(h, "app-db");
  REQUIRE(h.Run("addon snapshots verify app-db").exit_code == 0);
  auto refused = h.Run("--json --yes addon snapshot delete " + b);
  CHECK(refused.exit_code == 4);
  CHECK(json::parse(refused.out)["error"]["code"] == "newest_verified_snapshot");
  CHECK(fs::exists(SnapFile(h, id, b)));
  CHECK(h.Run("--json addon snapshot delete " + a).exit_code == 2);  // no --yes, no TTY
  auto deleted = h.Run("--json --yes addon snapshot delete " + a);
  INFO(deleted.out);
  CHECK(deleted.exit_code == 0);
  CHECK_FALSE(fs::exists(SnapFile(h, id, a)));
  CHECK(Find(h.Json("addon snapshots app-db")["snapshots"], a)["deleted"] == true);
  CHECK(h.Run("--json --yes addon snapshot delete " + a).exit_code == 4);  // already deleted
  CHECK(h.Run("--json --yes addon snapshot delete sn_nope").exit_code == 5);
  CHECK(h.Run("--json --yes addon snapshot delete " + b + " --force").exit_code == 0);
  CHECK(h.SnapshotFiles("app-db").empty());
  // A deleted snapshot can no longer be restored.
  CHECK(h.Run("--json --yes addon restore app-db --snapshot " + b).exit_code == 4);
  CHECK(h.Run("audit verify").exit_code == 0);
}

TEST_CASE("prune applies the policy, keeps the newest verified snapshot, covers safety "
          "snapshots",
          "[cli][snapshots]") {
  CliHome h;
  std::string id = Create(h, "app-db");
  h.Sql(h.Db("app-db"), "CREATE TABLE t(x)");
  std::string first = Snap(h, "app-db");
  REQUIRE(h.Run("addon snapshots verify app-db").exit_code == 0);  // only `first` verified
  REQUIRE(h.Run("--yes addon restore app-db --snapshot " + first).exit_code == 0);  // + safety
  Snap(h, "app-db");
  std::string newest = Snap(h, "app-db");
  REQUIRE(h.Json("addon snapshots app-db")["snapshots"].size() == 4);

  auto policy = h.Json("addon snapshots policy app-db --keep-last 1");
  CHECK(policy["keep_last"] == 1);
  auto dry = h.Json("addon snapshots prune app-db --dry-run");
  CHECK(dry["dry_run"] == true);
  CHECK(dry["deleted"].size() == 2);  // keep: newest, and `first` (newest verified)
  CHECK(h.SnapshotFiles("app-db").size() == 4);  // a dry run deletes nothing
  auto pruned = h.Json("addon snapshots prune app-db");
  REQUIRE(pruned["deleted"].size() == 2);
  std::vector<std::string> kept;
  for (const auto& s : pruned["kept"]) kept.push_back(s["id"]);
  std::sort(kept.begin(), kept.end());
  std::vector<std::string> expected{first, newest};
  std::sort(expected.begin(), expected.end());
  CHECK(kept == expected);
  bool safety_deleted = false;
  for (const auto& s : pruned["deleted"]) safety_deleted = safety_deleted || s["safety"] == true;
  CHECK(safety_deleted);
  CHECK(h.SnapshotFiles("app-db").size() == 2);
  auto types = TypesOf(h);
  CHECK(std::count(types.begin(), types.end(), "SnapshotDeleted") == 2);
  CHECK(std::count(types.begin(), types.end(), "SnapshotPolicySet") == 1);
  // Nothing more to prune.
  CHECK(h.Json("addon snapshots prune app-db")["deleted"].empty());
  // A schedule needs a keep rule.
  CHECK(h.Run("--json addon snapshots policy app-db --every 24h").exit_code == 2);
  CHECK(h.Run("--json addon snapshots policy app-db --every 24h --keep-daily 7").exit_code == 0);
}

TEST_CASE("export then create --from-file gives the same rows, a damaged file is refused",
          "[cli][snapshots]") {
  CliHome h;
  Create(h, "app-db");
  h.Sql(h.Db("app-db"),
        "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t(v);"
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<500)"
        " INSERT INTO t SELECT i, 'row ' || i FROM c;");
  std::string sn = Snap(h, "app-db");
  fs::path out = h.dir.path() / "exported.sqlite";
  auto r = h.Run("--json addon snapshot export " + sn + " --to '" + out.string() + "'");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  auto exported = json::parse(r.out);
  auto snap = Find(h.Json("addon snapshots app-db")["snapshots"], sn);
  CHECK(exported["sha256"] == snap["sha256"]);
  CHECK(exported["bytes"] == snap["bytes"]);
  // Never over an existing file.
  CHECK(h.Run("--json addon snapshot export " + sn + " --to '" + out.string() + "'").exit_code == 4);

  auto created = h.Run("--json addon create sqlite copy-db --app web --bind DATABASE --from-file '" +
                       out.string() + "'");
  INFO(created.out);
  REQUIRE(created.exit_code == 0);
  // Its storage and binding are ready; app web has no release, so that is what blocks it.
  auto report = json::parse(created.out);
  CHECK(report["storage_ready"] == true);
  CHECK(report["binding_ready"] == true);
  CHECK(report["blocking"] == "release_claim_missing");
  const std::string rows = "SELECT count(*), sum(k), group_concat(v) FROM t";
  CHECK(h.Sql(h.Db("copy-db"), rows) == h.Sql(h.Db("app-db"), rows));
  CHECK(h.Sql(h.Db("copy-db"), "PRAGMA journal_mode") == "wal\n");
  bool recorded = false;
  for (const auto& rec : h.Records()) {
    if (rec["type"] == "StorageRepaired" && rec["action"] == "imported") {
      recorded = rec["detail"].get<std::string>().find(snap["sha256"].get<std::string>()) !=
                 std::string::npos;
    }
  }
  CHECK(recorded);

  // A damaged database is refused before any event, and leaves nothing behind.
  fs::path broken = h.dir.path() / "broken.sqlite";
  fs::copy_file(out, broken);
  {
    std::fstream f(broken, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(4096 + 8);  // the b-tree header of page 2
    f.write("\xff\xff\xff\xff", 4);
  }
  auto before = h.Records().size();
  auto refused = h.Run("--json addon create sqlite broken-db --app web2 --from-file '" +
                       broken.string() + "'");
  CHECK(refused.exit_code == 6);
  CHECK(h.Records().size() == before);
  CHECK(h.Json("addon status broken-db")["blocking"] == "addon_not_found");
  auto missing = h.Run("--json addon create sqlite none-db --app web2 --from-file /nonexistent.sqlite");
  CHECK(missing.exit_code == 5);
  auto recover = h.Json("recover --dry-run");
  CHECK(recover.dump().find("orphan") == std::string::npos);
}

TEST_CASE("create --from-snapshot starts a new add-on from a destroyed add-on's snapshot",
          "[cli][snapshots]") {
  CliHome h;
  std::string old_id = Create(h, "app-db", "");
  h.Sql(h.Db("app-db"), "CREATE TABLE t(x); INSERT INTO t VALUES ('kept')");
  std::string sn = Snap(h, "app-db");
  REQUIRE(h.Run("--yes addon destroy app-db").exit_code == 0);
  auto r = h.Run("--json addon create sqlite app-db --app api --bind DATABASE --from-snapshot " + sn);
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  auto report = json::parse(r.out);
  CHECK(report["addon"]["id"] != old_id);
  CHECK(report["storage_ready"] == true);
  CHECK(report["binding_ready"] == true);
  CHECK(h.Sql(h.Db("app-db"), "SELECT x FROM t") == "kept\n");
  // The snapshot was verified on the way (it never had been).
  CHECK(Find(h.Json("addon snapshots " + old_id)["snapshots"], sn)["verification"] == "verified");
  CHECK(h.Run("--json addon create sqlite other --app x --from-snapshot sn_nope").exit_code == 5);
  CHECK(h.Run("audit verify").exit_code == 0);
}

TEST_CASE("a snapshot taken while a writer commits restores to a consistent state",
          "[cli][snapshots]") {
  CliHome h;
  Create(h, "app-db");
  fs::path db = h.Db("app-db");
  h.Sql(db, "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER);"
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<2000)"
            " INSERT INTO acct SELECT i, 100 FROM c;"
            "CREATE TABLE big(b); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c "
            "WHERE i<2000) INSERT INTO big SELECT randomblob(3000) FROM c;");
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
      ::usleep(200);
    }
  }
  auto taken = h.Json("addon snapshot app-db");
  ::kill(writer, SIGKILL);
  int status = 0;
  ::waitpid(writer, &status, 0);
  REQUIRE(taken["status"] == "taken");
  std::string sn = taken["id"];
  h.Sql(db, "DELETE FROM acct");
  auto r = h.Run("--yes addon restore app-db --snapshot " + sn);
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(h.Sql(db, "SELECT count(*), sum(bal) FROM acct") == "2000|200000\n");
  CHECK(h.Sql(db, "PRAGMA integrity_check") == "ok\n");
}

TEST_CASE("a crash at every new snapshot step, then via recover, leaves a consistent home",
          "[cli][snapshots][crash]") {
  struct Point {
    std::string at;
    std::string command;  // {SN} is replaced by a snapshot id
  };
  const std::vector<Point> points = {
      {"verify.before_check", "addon snapshots verify app-db"},
      {"verify.after_check", "addon snapshots verify app-db"},
      {"delete.after_event", "--yes addon snapshot delete {SN}"},
      {"delete.before_file", "--yes addon snapshot delete {SN}"},
      {"delete.after_file", "--yes addon snapshot delete {SN}"},
      {"prune.after_event", "addon snapshots prune app-db"},
      {"import.before_file", "addon create sqlite copy-db --app web --from-snapshot {SN}"},
      {"import.after_file", "addon create sqlite copy-db --app web --from-snapshot {SN}"},
      {"import.before_event", "addon create sqlite copy-db --app web --from-snapshot {SN}"},
  };
  for (const auto& point : points) {
    DYNAMIC_SECTION(point.at) {
      CliHome h;
      std::string id = Create(h, "app-db");
      h.Sql(h.Db("app-db"), "CREATE TABLE t(x); INSERT INTO t VALUES (7)");
      std::string old = Snap(h, "app-db");
      std::string sn = Snap(h, "app-db");
      REQUIRE(h.Run("addon snapshots policy app-db --keep-last 1").exit_code == 0);
      std::string command = point.command;
      if (auto at = command.find("{SN}"); at != std::string::npos) {
        command.replace(at, 4, point.at.rfind("delete", 0) == 0 ? old : sn);
      }
      auto crashed = h.Run(command, "VIA_CRASH_AT=" + point.at);
      INFO(crashed.out);
      REQUIRE(crashed.exit_code == 137);  // SIGKILL at the crash point

      auto recovered = h.Json("recover");
      INFO(recovered.dump());
      REQUIRE(recovered.is_object());
      CHECK(h.Run("audit verify").exit_code == 0);
      // Recovery is idempotent: a second run finds nothing to do.
      auto again = h.Json("recover --dry-run");
      INFO(again.dump());
      CHECK(again["changed"] == false);
      for (const auto& item : again["storage"]) CHECK(item["kind"] != "deleted_snapshot");
      for (const auto& item : again["storage"]) CHECK(item["kind"] != "temp_file");
      // Every snapshot the log trusts has its file, and no deleted one has.
      for (const auto& s : json(h.Json("addon snapshots app-db")["snapshots"])) {
        CHECK(fs::exists(SnapFile(h, id, s["id"])) == (s["deleted"] == false));
      }
      // The command can be run again to completion (or was complete).
      h.Run(command);
      CHECK(h.Run("audit verify").exit_code == 0);
      CHECK(h.Sql(h.Db("app-db"), "SELECT x FROM t") == "7\n");
      if (point.at.rfind("import", 0) == 0) {
        CHECK(h.Sql(h.Db("copy-db"), "SELECT x FROM t") == "7\n");
      }
    }
  }
}

// --- via serve's background upkeep -------------------------------------------

namespace {

// Polls `done` every 100 ms for up to `seconds`.
template <typename F>
bool WaitFor(F done, int seconds) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

}  // namespace

TEST_CASE("via serve verifies, prunes and takes scheduled snapshots in the background, one job "
          "at a time",
          "[cli][snapshots][serve]") {
  CliHome h;
  std::string id = Create(h, "app-db");
  h.Sql(h.Db("app-db"), "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  Snap(h, "app-db");
  Snap(h, "app-db");
  REQUIRE(h.Run("addon snapshots policy app-db --keep-last 1 --every 1h").exit_code == 0);
  auto count = [&](const std::string& field, const std::string& value) {
    int n = 0;
    for (const auto& s : json(h.Json("addon snapshots app-db")["snapshots"])) {
      if (s["deleted"] == false && s[field] == value) ++n;
    }
    return n;
  };
  REQUIRE(count("verification", "unverified") == 2);
  {
    via::testing::ServeProcess serve(h.dir.path(), {"--maintenance-interval", "1s"});
    // The newest snapshot is younger than the schedule's hour, so none is
    // taken; the policy prunes to the newest one; passes verify what is left.
    bool settled = WaitFor(
        [&] {
          auto list = h.Json("addon snapshots app-db")["snapshots"];
          int live = 0, verified = 0;
          for (const auto& s : list) {
            if (s["deleted"] == false) ++live;
            if (s["deleted"] == false && s["verification"] == "verified") ++verified;
          }
          return live == 1 && verified == 1;
        },
        30);
    CHECK(settled);
    // The passes appended through the server's group committer (no app
    // asked for a descriptor: nothing else did): the prune and the
    // verification at least.
    auto metrics = via::testing::Run("curl -sf " + serve.url() + "/metrics");
    REQUIRE(metrics.exit_code == 0);
    const std::size_t at = metrics.out.find("\nvia_log_appends_total ");
    REQUIRE(at != std::string::npos);
    CHECK(std::stoull(metrics.out.substr(at + 23)) >= 2);
  }
  auto types = TypesOf(h);
  CHECK(std::count(types.begin(), types.end(), "SnapshotDeleted") == 1);
  CHECK(std::count(types.begin(), types.end(), "SnapshotVerified") >= 1);
  CHECK(std::count(types.begin(), types.end(), "SnapshotRequested") == 2);  // none scheduled yet
  CHECK(h.SnapshotFiles("app-db").size() == 1);
  CHECK(h.Run("audit verify").exit_code == 0);
}

TEST_CASE("via serve takes a scheduled snapshot when one is due, and not with maintenance off",
          "[cli][snapshots][serve]") {
  CliHome h;
  Create(h, "app-db");
  REQUIRE(h.Run("addon snapshots policy app-db --keep-last 2 --every 1h").exit_code == 0);
  {
    via::testing::ServeProcess serve(h.dir.path(), {"--maintenance-interval", "1s",
                                                    "--snapshot-maintenance", "false"});
    std::this_thread::sleep_for(std::chrono::seconds(3));
    CHECK(h.Json("addon snapshots app-db")["snapshots"].empty());
  }
  {
    via::testing::ServeProcess serve(h.dir.path(), {"--maintenance-interval", "1s"});
    bool taken = WaitFor(
        [&] {
          auto list = h.Json("addon snapshots app-db")["snapshots"];
          return list.size() == 1 && list[0]["label"] == "scheduled" &&
                 list[0]["verification"] == "verified";
        },
        30);
    CHECK(taken);
    // Due again only after an hour: passes go on without taking another.
    std::this_thread::sleep_for(std::chrono::seconds(2));
    CHECK(h.Json("addon snapshots app-db")["snapshots"].size() == 1);
  }
}

TEST_CASE("progress is drawn by phase on a terminal and not at all otherwise",
          "[cli][snapshots][progress]") {
  CliHome h;
  Create(h, "app-db");
  h.Fill("app-db", "x");  // ~9 MB: several copy steps
  const std::string via = via::testing::ViaBinary() + " --home '" +
                          h.dir.path().string() + "' ";
  // On a terminal (script(1) gives the command a pseudo-terminal).
  auto tty = via::testing::Run("script -qec \"" + via + "addon snapshot app-db\" /dev/null");
  REQUIRE(tty.exit_code == 0);
  CHECK(tty.out.find(" copy: ") != std::string::npos);
  CHECK(tty.out.find(" sha256: ") != std::string::npos);
  CHECK(tty.out.find("MiB (100%)") != std::string::npos);
  auto verify = via::testing::Run("script -qec \"" + via + "addon snapshots verify app-db\" /dev/null");
  REQUIRE(verify.exit_code == 0);
  CHECK(verify.out.find(" sha256+integrity_check: ") != std::string::npos);
  // Not a terminal: stderr stays empty.
  const fs::path err = h.dir.path() / "stderr.txt";
  auto plain = via::testing::Run(via + "addon snapshot app-db 2>'" + err.string() + "'");
  REQUIRE(plain.exit_code == 0);
  CHECK(fs::file_size(err) == 0);
}
