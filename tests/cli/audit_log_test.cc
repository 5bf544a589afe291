// `via audit log` as text: one line per record with its time (RFC 3339 UTC),
// actor, event type and a one-line summary; --json stays the format of
// docs/event-log-format.md section 10.1.

#include <catch2/catch.hpp>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli_home.h"

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
    REQUIRE(Run("--actor alice addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
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
    for (const char* key : {"seq", "type", "recorded_at", "recorded_at_ms", "actor", "command_id",
                            "prev_hash", "hash", "record"}) {
      CHECK(record.contains(key));
    }
    CHECK_FALSE(record.contains("summary"));
  }
}
