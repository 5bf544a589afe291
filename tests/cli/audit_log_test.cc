// `via audit log` as text: one line per record with its time (RFC 3339 UTC),
// actor, event type and a one-line summary; --json stays the format of
// docs/event-log-format.md section 10.1.

#include <catch2/catch.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli_home.h"
#include "eventstore/event_log.h"

using via::testing::CliHome;

namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

// The text line of record `seq`.
std::string LineOf(const std::vector<std::string>& lines, int seq) {
  const std::string prefix = std::to_string(seq) + "  ";
  for (const auto& l : lines) {
    if (l.rfind(prefix, 0) == 0) return l;
  }
  return "";
}

// The seq of the first record of `type` (0 when none).
int SeqOf(const std::vector<nlohmann::json>& records, const std::string& type, int nth = 1) {
  for (const auto& r : records) {
    if (r["type"] == type && --nth == 0) return r["seq"];
  }
  return 0;
}

struct LifecycleHome : CliHome {
  std::string id;
  LifecycleHome() {
    REQUIRE(Run("--actor alice init").exit_code == 0);
    REQUIRE(Run("--actor alice addon create sqlite app-db --app api --bind DATABASE").exit_code ==
            0);
    REQUIRE(Run("--actor alice release create --app api").exit_code == 0);
    REQUIRE(Run("--actor bob addon rotate-credentials app-db").exit_code == 0);
    REQUIRE(Run("--actor bob --yes addon revoke-credentials app-db --generation 1").exit_code == 0);
    REQUIRE(Run("--actor carol addon snapshot app-db --label nightly").exit_code == 0);
    REQUIRE(Run("--actor carol workload token --app api --release v1").exit_code == 0);
    id = Id("app-db");
    REQUIRE(Run("--actor dave addon unbind app-db --app api --bind DATABASE").exit_code == 0);
    REQUIRE(Run("--actor dave --yes addon destroy app-db --force").exit_code == 0);
  }
};

}  // namespace

TEST_CASE("audit log prints one line per record: seq, time, actor, type, summary",
          "[cli][audit_log]") {
  LifecycleHome home;
  auto r = home.Run("audit log");
  REQUIRE(r.exit_code == 0);
  const auto lines = Lines(r.out);
  const auto records = home.Records();
  REQUIRE(lines.size() == records.size());
  const std::regex shape(
      R"(^(\d+)  (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)  (\S+)  ([A-Za-z]+) *  (\S.*)$)");
  for (std::size_t i = 0; i < lines.size(); ++i) {
    INFO(lines[i]);
    std::smatch m;
    REQUIRE(std::regex_match(lines[i], m, shape));
    CHECK(std::stoi(m[1]) == records[i]["seq"]);
    CHECK(m[2] == records[i]["recorded_at"].get<std::string>());
    CHECK(m[3] == records[i]["actor"].get<std::string>());
    CHECK(m[4] == records[i]["type"].get<std::string>());
  }
}

TEST_CASE("audit log summaries name the add-on and what happened to it", "[cli][audit_log]") {
  LifecycleHome home;
  const auto lines = Lines(home.Run("audit log").out);
  const auto records = home.Records();
  const std::string addon = "app-db (" + home.id + ")";
  auto line = [&](const std::string& type, int nth = 1) {
    return LineOf(lines, SeqOf(records, type, nth));
  };
  CHECK_THAT(line("AddonCreated"),
             Catch::EndsWith("AddonCreated         " + addon +
                             " created: sqlite for app api, binding DATABASE"));
  CHECK_THAT(line("BindingAttached"), Catch::EndsWith("api/DATABASE bound to " + addon));
  CHECK_THAT(line("BindingSnapshotted"),
             Catch::EndsWith("release v1 of api claims DATABASE -> " + addon));
  CHECK_THAT(line("GenerationRotated", 2),
             Catch::EndsWith("GenerationRotated    " + addon + " generation 2"));
  CHECK_THAT(line("GenerationRevoked"), Catch::EndsWith(addon + " generation 1 revoked"));
  CHECK_THAT(line("SnapshotRequested"), Catch::Contains(", label \"nightly\""));
  CHECK_THAT(line("SnapshotTaken"), Catch::Contains(" bytes, ") && Catch::Contains(" sha256 "));
  CHECK_THAT(line("WorkloadTokenIssued"),
             Catch::Matches(R"(.*token wt_\w+ for api/v1, expires \d{4}-.*Z$)"));
  CHECK_THAT(line("AddonDestroyed"),
             Catch::EndsWith(addon + " destroyed; its record is now app-db#destroyed#" + home.id));
  CHECK_THAT(line("BindingDetached"), Catch::Contains("  dave  "));
}

TEST_CASE("audit log summaries keep names when the output starts later", "[cli][audit_log]") {
  LifecycleHome home;
  const int seq = SeqOf(home.Records(), "GenerationRevoked");
  auto r = home.Run("audit log --since " + std::to_string(seq) + " --limit 1");
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::EndsWith("app-db (" + home.id + ") generation 1 revoked\n"));
}

TEST_CASE("audit log text escapes control characters from the log", "[cli][audit_log]") {
  CliHome home;
  REQUIRE(home.Run("init").exit_code == 0);
  REQUIRE(home.Run("--actor \"$(printf 'mal\\033[31mlory')\" addon create sqlite db --app api")
              .exit_code == 0);
  REQUIRE(home.Run("addon snapshot db --label \"$(printf 'a\\nb')\"").exit_code == 0);
  auto r = home.Run("audit log");
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find('\033') == std::string::npos);
  CHECK(r.out.find("mal\\x1b[31mlory") != std::string::npos);
  CHECK(r.out.find("label \"a\\nb\"") != std::string::npos);
}

TEST_CASE("audit log --json is unchanged by the text format", "[cli][audit_log]") {
  LifecycleHome home;
  for (const auto& record : home.Records()) {
    INFO(record.dump());
    for (const char* key : {"seq", "type", "recorded_at", "actor", "command_id", "prev_hash",
                            "hash", "record"}) {
      CHECK(record.contains(key));
    }
    // One time format (docs/cli.md "JSON conventions"): no integer twin.
    CHECK_FALSE(record.contains("recorded_at_ms"));
    CHECK_FALSE(record.contains("summary"));
  }
}

namespace {

// One event of each type, with fields a summary can show.
std::vector<via::Event> OneOfEach() {
  using namespace via;
  std::vector<Event> events;
  const Bytes hash(32, 0xab);
  events.push_back(AddonCreated{"ad_x", "db-x", "sqlite", "api", "DATABASE"});
  events.push_back(StorageProvisioned{"ad_x"});
  events.push_back(ProvisioningFailed{"ad_x", "disk full", true});
  events.push_back(AddonRenamed{"ad_x", "db-x", "db-x#failed#ad_x"});
  events.push_back(BindingAttached{"api", "DATABASE", "ad_x"});
  events.push_back(BindingDetached{"api", "DATABASE", "ad_x"});
  events.push_back(BindingSnapshotted{"api", "v3", {{"DATABASE", "ad_x"}, {"CACHE", "ad_y"}}});
  events.push_back(GenerationRotated{"ad_x", 3, hash, hash});
  events.push_back(GenerationRevoked{"ad_x", 2});
  events.push_back(SnapshotRequested{"ad_x", "sn_1", ""});
  events.push_back(SnapshotTaken{"ad_x", "sn_1", hash, 4096, 1});
  events.push_back(SnapshotFailed{"ad_x", "sn_2", "disk_full"});
  events.push_back(RestoreRequested{"ad_x", "sn_1", "sn_3"});
  events.push_back(SnapshotRestored{"ad_x", "sn_1", "sn_3"});
  events.push_back(RestoreFailed{"ad_x", "sn_1", "hash mismatch"});
  events.push_back(RepairRequested{"ad_x", "recreated_empty"});
  events.push_back(StorageRepaired{"ad_x", "restored_from_snapshot", "sn_1", ""});
  events.push_back(WorkloadTokenIssued{"api", "v3", "wt_1", 1767225600000});
  events.push_back(GenerationDelivered{"ad_x", 3, "api", "v3"});
  events.push_back(StorageChecked{"ad_x", false, "integrity_check", "row 7 missing from index"});
  events.push_back(SnapshotVerified{"ad_x", "sn_1", true, "sha256+integrity_check", "ok"});
  events.push_back(SnapshotDeleted{"ad_x", "sn_1", "retention"});
  events.push_back(SnapshotPolicySet{"ad_x", 3, 7, 4, 86400});
  events.push_back(ProviderConfigured{"postgres", "db.internal", 5432, "via", "postgres",
                                      Bytes(32, 0xab)});
  events.push_back(NodeAnnounced{"node-a", "http://10.0.0.1:7600"});
  events.push_back(AddonPlaced{"ad_x", "node-a"});
  events.push_back(OwnerWorkRequested{"ad_x", "repair", "allow_empty"});
  events.push_back(OwnerWorkFinished{"ad_x", "owner/ow_1/repair", "", "", "repaired: recreated_empty", ""});
  events.push_back(AddonDestroyed{"ad_x", "db-x#destroyed#ad_x"});
  return events;
}

}  // namespace

TEST_CASE("every event type has its own audit log summary", "[cli][audit_log]") {
  CliHome home;
  REQUIRE(home.Run("init").exit_code == 0);
  {
    via::testing::FakeClock clock;
    via::testing::CountingIds ids;
    via::eventstore::EventLog::Options options;
    options.home = via::eventstore::Home{home.dir.path()};
    options.clock = &clock;
    options.ids = &ids;
    auto log = via::eventstore::EventLog::Open(options);
    REQUIRE(log.ok());
    for (const auto& event : OneOfEach()) {
      via::eventstore::AppendRequest request;
      request.actor = "tester";
      request.recorded_at_ms = clock.NowMs();
      request.events.push_back(event);
      REQUIRE((*log)->Append(request).ok());
    }
  }
  // LogInitialized and one of each other type: every alternative of Event.
  REQUIRE(OneOfEach().size() + 1 == std::variant_size_v<via::Event>);
  auto r = home.Run("audit log --since 2");
  REQUIRE(r.exit_code == 0);
  std::string ab64;  // the hex of 32 bytes 0xab
  for (int i = 0; i < 32; ++i) ab64 += "ab";
  const std::vector<std::string> expected = {
      "AddonCreated         db-x (ad_x) created: sqlite for app api, binding DATABASE",
      "StorageProvisioned   db-x (ad_x) storage provisioned",
      "ProvisioningFailed   db-x (ad_x) provisioning failed: disk full (the file holds data)",
      "AddonRenamed         db-x (ad_x) renamed db-x -> db-x#failed#ad_x",
      "BindingAttached      api/DATABASE bound to db-x (ad_x)",
      "BindingDetached      api/DATABASE unbound from db-x (ad_x)",
      "BindingSnapshotted   release v3 of api claims DATABASE -> db-x (ad_x), CACHE -> ad_y",
      "GenerationRotated    db-x (ad_x) generation 3",
      "GenerationRevoked    db-x (ad_x) generation 2 revoked",
      "SnapshotRequested    db-x (ad_x) snapshot sn_1 requested",
      "SnapshotTaken        db-x (ad_x) snapshot sn_1 taken: 4096 bytes, 1 pages, sha256 " + ab64,
      "SnapshotFailed       db-x (ad_x) snapshot sn_2 failed: disk_full",
      "RestoreRequested     db-x (ad_x) restore from sn_1 requested (safety snapshot sn_3)",
      "SnapshotRestored     db-x (ad_x) restored from sn_1 (undo: sn_3)",
      "RestoreFailed        db-x (ad_x) restore from sn_1 failed: hash mismatch",
      "RepairRequested      db-x (ad_x) repair requested: recreated_empty",
      "StorageRepaired      db-x (ad_x) storage repaired: restored_from_snapshot from sn_1",
      "WorkloadTokenIssued  token wt_1 for api/v3, expires 2026-01-01T00:00:00.000Z",
      "GenerationDelivered  db-x (ad_x) generation 3 first delivered to api/v3",
      "StorageChecked       db-x (ad_x) storage checked (integrity_check): damage found: row 7 "
      "missing from index",
      "SnapshotVerified     db-x (ad_x) snapshot sn_1 verified (sha256+integrity_check): ok",
      "SnapshotDeleted      db-x (ad_x) snapshot sn_1 deleted (retention)",
      "SnapshotPolicySet    db-x (ad_x) snapshot policy: keep last 3, daily 7, weekly 4, every "
      "86400s",
      "ProviderConfigured   provider postgres configured: via@db.internal:5432/postgres (secret "
      "fingerprint abababababababab)",
      "NodeAnnounced        node node-a announced at http://10.0.0.1:7600",
      "AddonPlaced          db-x (ad_x) placed on node node-a",
      "OwnerWorkRequested   db-x (ad_x) repair (allow_empty) asked of its node",
      "OwnerWorkFinished    db-x (ad_x) owner work owner/ow_1/repair finished: repaired: "
      "recreated_empty",
      "AddonDestroyed       db-x (ad_x) destroyed; its record is now db-x#destroyed#ad_x",
  };
  const auto lines = Lines(r.out);
  REQUIRE(lines.size() == expected.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    CHECK_THAT(lines[i], Catch::EndsWith("  tester  " + expected[i]));
  }
}
