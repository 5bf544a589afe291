// Real crashes: the `via` process kills itself with SIGKILL at a named point
// ($VIA_CRASH_AT), then `via recover` must leave a log that verifies, a read
// model equal to a replay, no dangling intent, no half-written trusted file,
// and readiness as the events say. A second recover changes nothing.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
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

// What must hold after `via recover` whatever the crash interrupted.
void CheckRecovered(Home& h) {
  auto first = h.Run("--json recover");
  INFO("recover: " << first.out);
  REQUIRE(first.exit_code == 0);
  CHECK(h.Run("audit verify").exit_code == 0);
  json replay = h.Json("audit replay");
  CHECK(replay["read_model_matches"] == true);
  json second = h.Json("recover");
  INFO("second recover: " << second.dump());
  CHECK(second["changed"] == false);
  CHECK(second["intents"].empty());
  CHECK(second["read_model_rebuilt"] == false);
  // Every snapshot an event trusts is whole: its bytes hash to the recorded value.
  for (const auto& addon : replay["addons"]) {
    json list = h.Json("addon snapshots " + addon["id"].get<std::string>())["snapshots"];
    for (const auto& snap : list) {
      if (snap["status"] != "taken") continue;
      fs::path file = h.dir.path() / "snapshots" / addon["id"].get<std::string>() /
                      (snap["id"].get<std::string>() + ".sqlite");
      auto bytes = eventstore::ReadFile(file, SIZE_MAX);
      REQUIRE(bytes.ok());
      CHECK(HexEncode(crypto::Sha256::Digest(*bytes)) == snap["sha256"]);
    }
  }
}

}  // namespace

TEST_CASE("a crash at any point of create is recovered", "[cli][recover]") {
  for (const char* point : {"provision.before_file", "provision.after_file",
                            "projection.before_commit"}) {
    INFO(point);
    Home h;
    REQUIRE(h.Run("init").exit_code == 0);
    auto crashed = h.Run("addon create sqlite app-db --app api --bind DATABASE",
                         std::string("VIA_CRASH_AT=") + point);
    CHECK(crashed.exit_code == 137);
    CheckRecovered(h);
    // Readiness is what the events say: a crash before the add-on's events
    // were appended (the projection point comes first) leaves no add-on.
    bool created = !h.Json("audit log --addon app-db --limit 1").is_null();
    // Usable but for a release that claims it (none was made).
    json status = h.Json("addon status app-db");
    CHECK(status["blocking"] == (created ? "release_claim_missing" : "addon_not_found"));
    json ensured = h.Json("addon ensure sqlite app-db --app api --bind DATABASE");
    CHECK(ensured["blocking"] == "release_claim_missing");
  }
}

TEST_CASE("a crash at any point of a snapshot is recovered", "[cli][recover]") {
  for (const char* point : {"snapshot.before_file", "snapshot.during_file", "snapshot.after_file"}) {
    INFO(point);
    Home h;
    REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
    REQUIRE(h.Run("release create --app api").exit_code == 0);  // usable needs a claim
    h.Fill("app-db", "one");
    auto crashed = h.Run("addon snapshot app-db", std::string("VIA_CRASH_AT=") + point);
    CHECK(crashed.exit_code == 137);
    CheckRecovered(h);
    json list = h.Json("addon snapshots app-db")["snapshots"];
    REQUIRE(list.size() == 1);
    CHECK((list[0]["status"] == "taken" || list[0]["status"] == "failed"));
    CHECK(h.Run("addon status app-db").exit_code == 0);
    CHECK(h.Run("addon snapshot app-db").exit_code == 0);  // the next one works
  }
}

TEST_CASE("a crash at any point of a restore is recovered to the snapshot", "[cli][recover]") {
  for (const char* point : {"restore.before_file", "restore.during_file", "restore.after_file"}) {
    INFO(point);
    Home h;
    REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
    REQUIRE(h.Run("release create --app api").exit_code == 0);  // usable needs a claim
    h.Fill("app-db", "snapshotted");
    json snap = h.Json("addon snapshot app-db");
    REQUIRE(snap["status"] == "taken");
    h.Fill("app-db", "changed");
    auto crashed = h.Run("--yes addon restore app-db --snapshot " + snap["id"].get<std::string>(),
                         std::string("VIA_CRASH_AT=") + point);
    CHECK(crashed.exit_code == 137);
    CHECK(h.Json("addon status app-db")["blocking"] == "restore_in_progress");
    CheckRecovered(h);
    CHECK(h.Run("addon status app-db").exit_code == 0);
    CHECK(h.Sql(h.Db("app-db"), "SELECT m FROM mark; PRAGMA integrity_check;") ==
          "snapshotted\nok\n");
  }
}

TEST_CASE("a crash at any point of a repair is recovered", "[cli][recover]") {
  for (const char* point : {"repair.before_file", "repair.after_file"}) {
    INFO(point);
    Home h;
    REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
    REQUIRE(h.Run("release create --app api").exit_code == 0);  // usable needs a claim
    fs::path db = h.Db("app-db");
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db.string() + suffix);
    auto crashed = h.Run("addon ensure sqlite app-db --app api --bind DATABASE --repair",
                         std::string("VIA_CRASH_AT=") + point);
    CHECK(crashed.exit_code == 137);
    CheckRecovered(h);
    // Storage was missing; recover never invents files for it unless a
    // repair was in flight, in which case it finishes the repair.
    CHECK(h.Run("addon status app-db").exit_code == 0);
  }
}

TEST_CASE("recover --dry-run tells a read model that is behind from one that differs",
          "[cli][recover]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(h.Run("release create --app api").exit_code == 0);  // usable needs a claim
  const fs::path model = h.dir.path() / "state" / "projections.db";
  const fs::path saved = h.dir.path() / "model-before-snapshot.db";
  h.Sql(model, ".backup '" + saved.string() + "'");
  REQUIRE(h.Run("addon snapshot app-db").exit_code == 0);  // two records
  // The model as it was before the snapshot: consistent, two records behind.
  h.Sql(model, ".restore '" + saved.string() + "'");
  json behind = h.Json("recover --dry-run");
  INFO(behind.dump());
  CHECK(behind["read_model_rebuilt"] == false);
  CHECK(behind["read_model_behind"] == 2);
  CHECK(behind["changed"] == false);
  auto text = h.Run("recover --dry-run");
  CHECK(text.out.find("2 record(s) behind") != std::string::npos);
  CHECK(text.out.find("nothing to do") != std::string::npos);

  // The same model with one row changed: behind and different, so a rebuild.
  h.Sql(model, "UPDATE addons SET failure_reason = 'tampered'");
  json differs = h.Json("recover --dry-run");
  INFO(differs.dump());
  CHECK(differs["read_model_rebuilt"] == true);
  CHECK(differs["read_model_behind"] == 0);
  json fixed = h.Json("recover");
  CHECK(fixed["read_model_rebuilt"] == true);
  CHECK(fixed["changed"] == true);
  CHECK(h.Json("recover --dry-run")["read_model_rebuilt"] == false);
  CHECK(h.Json("audit replay")["read_model_matches"] == true);
}

TEST_CASE("recover reports orphans and missing files and never deletes them", "[cli][recover]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(h.Run("release create --app api").exit_code == 0);  // usable needs a claim
  fs::path orphan = h.dir.path() / "addons" / "ad_NOT_IN_THE_LOG";
  fs::create_directories(orphan);
  std::ofstream(orphan / "data.sqlite") << "someone's bytes";
  fs::path db = h.Db("app-db");
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db.string() + suffix);
  json dry = h.Json("recover --dry-run");
  CHECK(dry["dry_run"] == true);
  json report = h.Json("recover");
  bool saw_orphan = false, saw_missing = false;
  for (const auto& item : report["storage"]) {
    saw_orphan = saw_orphan || (item["kind"] == "orphan" && item["action"] == "reported");
    saw_missing = saw_missing || (item["kind"] == "storage" && item["action"] == "reported");
  }
  CHECK(saw_orphan);
  CHECK(saw_missing);
  CHECK(fs::exists(orphan / "data.sqlite"));
  CHECK_FALSE(fs::exists(db));  // reported, not recreated: that is `ensure --repair`'s job
}

// "append.before_commit#N" / "append.after_commit#N": the N-th append of the
// command dies with all its records inserted but uncommitted, or committed
// and durable with nothing after it done. Before commit the event must not be
// in the log (SQLite's WAL drops the uncommitted frames); after commit it is,
// and the read model catches up with it.
struct AppendCase {
  const char* point;
  std::size_t committed;  // records of the crashed command that are in the log
  const char* last_type;  // type of the log's last record after the crash (null: unchanged)
};

TEST_CASE("a crash inside an append of a snapshot is recovered", "[cli][recover][append]") {
  // A snapshot appends SnapshotRequested (1st append) and SnapshotTaken (2nd).
  for (const AppendCase& c : {AppendCase{"append.before_commit", 0, nullptr},
                              AppendCase{"append.after_commit", 1, "SnapshotRequested"},
                              AppendCase{"append.before_commit#2", 1, "SnapshotRequested"},
                              AppendCase{"append.after_commit#2", 2, "SnapshotTaken"}}) {
    INFO(c.point);
    Home h;
    REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
    REQUIRE(h.Run("release create --app api").exit_code == 0);  // usable needs a claim
    h.Fill("app-db", "one");
    const std::vector<json> before = h.Records();
    auto crashed = h.Run("addon snapshot app-db", std::string("VIA_CRASH_AT=") + c.point);
    CHECK(crashed.exit_code == 137);

    // Exactly the committed records are in the log, and it verifies as is.
    const std::vector<json> after = h.Records();
    REQUIRE(after.size() == before.size() + c.committed);
    CHECK(after.back()["type"] == (c.last_type ? c.last_type : before.back()["type"]));
    CHECK(after.back()["hash"] == (c.last_type ? after.back()["hash"] : before.back()["hash"]));
    CHECK(h.Run("audit verify").exit_code == 0);
    if (c.committed == 0) {
      // No intent, so no side effect: the file work never started.
      CHECK(h.SnapshotFiles("app-db").empty());
      CHECK(h.Json("addon snapshots app-db")["snapshots"].empty());
    }
    if (c.committed == 2) {
      // The completion is in the log: a reader catches up with it at once.
      json list = h.Json("addon snapshots app-db")["snapshots"];
      REQUIRE(list.size() == 1);
      CHECK(list[0]["status"] == "taken");
    }

    CheckRecovered(h);
    CHECK(h.Records().size() >= after.size());  // nothing committed is lost
    json list = h.Json("addon snapshots app-db")["snapshots"];
    if (c.committed == 0) {
      CHECK(list.empty());
    } else {
      REQUIRE(list.size() == 1);
      // The file was complete when the second append died: recover keeps it.
      if (c.committed == 2 || std::string(c.point) == "append.before_commit#2") {
        CHECK(list[0]["status"] == "taken");
      }
      CHECK((list[0]["status"] == "taken" || list[0]["status"] == "failed"));
    }
    CHECK(h.Run("addon status app-db").exit_code == 0);
    CHECK(h.Run("addon snapshot app-db").exit_code == 0);  // the next one works
  }
}

TEST_CASE("a crash inside an append of create is recovered", "[cli][recover][append]") {
  // Create appends AddonCreated, GenerationRotated and BindingAttached (1st
  // append), then StorageProvisioned (2nd).
  for (const AppendCase& c : {AppendCase{"append.before_commit", 0, "LogInitialized"},
                              AppendCase{"append.after_commit", 3, "BindingAttached"},
                              AppendCase{"append.before_commit#2", 3, "BindingAttached"},
                              AppendCase{"append.after_commit#2", 4, "StorageProvisioned"}}) {
    INFO(c.point);
    Home h;
    REQUIRE(h.Run("init").exit_code == 0);
    const std::vector<json> before = h.Records();
    auto crashed = h.Run("addon create sqlite app-db --app api --bind DATABASE",
                         std::string("VIA_CRASH_AT=") + c.point);
    CHECK(crashed.exit_code == 137);
    const std::vector<json> after = h.Records();
    REQUIRE(after.size() == before.size() + c.committed);
    CHECK(after.back()["type"] == c.last_type);
    CHECK(h.Run("audit verify").exit_code == 0);
    if (c.committed == 0) {
      // No AddonCreated, so nothing was made for it.
      const fs::path addons = h.dir.path() / "addons";
      CHECK((!fs::exists(addons) || fs::is_empty(addons)));
    }
    if (c.committed == 4) CHECK(h.Json("addon status app-db")["storage_ready"] == true);

    CheckRecovered(h);
    json status = h.Json("addon status app-db");
    CHECK(status["blocking"] == (c.committed == 0 ? "addon_not_found" : "release_claim_missing"));
    json ensured = h.Json("addon ensure sqlite app-db --app api --bind DATABASE");
    CHECK(ensured["blocking"] == "release_claim_missing");
  }
}

TEST_CASE("a crash inside an append of a restore is recovered", "[cli][recover][append]") {
  // A restore appends the safety snapshot's SnapshotRequested (1) and
  // SnapshotTaken (2), then RestoreRequested (3) and SnapshotRestored (4).
  struct RestoreCase {
    const char* point;
    const char* data;  // the add-on's content once recovered
  };
  for (const RestoreCase& c : {RestoreCase{"append.before_commit#3", "changed"},
                               RestoreCase{"append.after_commit#3", "snapshotted"},
                               RestoreCase{"append.before_commit#4", "snapshotted"},
                               RestoreCase{"append.after_commit#4", "snapshotted"}}) {
    INFO(c.point);
    Home h;
    REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
    REQUIRE(h.Run("release create --app api").exit_code == 0);  // usable needs a claim
    h.Fill("app-db", "snapshotted");
    json snap = h.Json("addon snapshot app-db");
    REQUIRE(snap["status"] == "taken");
    // Verified beforehand, so that the restore appends no SnapshotVerified.
    REQUIRE(h.Run("addon snapshots verify app-db").exit_code == 0);
    h.Fill("app-db", "changed");
    const std::size_t before = h.Records().size();
    auto crashed = h.Run("--yes addon restore app-db --snapshot " + snap["id"].get<std::string>(),
                         std::string("VIA_CRASH_AT=") + c.point);
    CHECK(crashed.exit_code == 137);
    const std::vector<json> after = h.Records();
    const bool third = std::string(c.point).ends_with("#3");
    const bool committed = std::string(c.point).starts_with("append.after_commit");
    CHECK(after.size() == before + (third ? 2 : 3) + (committed ? 1 : 0));
    CHECK(after.back()["type"] == (committed ? (third ? "RestoreRequested" : "SnapshotRestored")
                                             : (third ? "SnapshotTaken" : "RestoreRequested")));
    CheckRecovered(h);
    CHECK(h.Run("addon status app-db").exit_code == 0);
    CHECK(h.Sql(h.Db("app-db"), "SELECT m FROM mark; PRAGMA integrity_check;") ==
          std::string(c.data) + "\nok\n");
  }
}
