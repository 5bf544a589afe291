// docs/cli.md "JSON conventions", through the real binary: every command of
// `via help` runs with --json (a table, in an order that builds up a home with
// every kind of record), and each output is checked against the convention —
// one object per line, the error envelope, times in the one RFC 3339 form,
// durations only as integer `*_ms`, digests of content as lowercase hex and
// the log's hashes as base64. The access log of `via serve` is checked too.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_home.h"
#include "domain/time_text.h"
#include "serve_process.h"
#include "testing.h"

using nlohmann::json;
using via::testing::CliHome;
namespace fs = std::filesystem;

namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool IsLowerHex64(const json& v) {
  if (!v.is_string()) return false;
  const std::string s = v;
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Standard base64 of 32 bytes: 43 characters of the alphabet and one '='.
bool IsBase64Of32(const json& v) {
  if (!v.is_string()) return false;
  const std::string s = v;
  return s.size() == 44 && s[43] == '=' &&
         s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") ==
             43;
}

const std::set<std::string> kContentDigests = {"sha256", "fingerprint", "secret_fingerprint"};
const std::set<std::string> kLogHashes = {"hash",      "prev_hash", "root",          "root1",
                                          "root2",     "leaf_hash", "digest",        "replay_digest",
                                          "read_model_digest"};

// Every violation of the convention in `value` (found under `path`).
void Check(const json& value, const std::string& path, std::vector<std::string>& bad) {
  if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      Check(value[i], path + "[" + std::to_string(i) + "]", bad);
    }
    return;
  }
  if (!value.is_object()) return;
  for (const auto& [key, v] : value.items()) {
    const std::string where = path + "." + key;
    if (EndsWith(key, "_at") || key == "at" || key == "ts") {
      if (!v.is_null() && !(v.is_string() && via::IsRfc3339Ms(v.get<std::string>()))) {
        bad.push_back(where + ": a time, not RFC 3339 UTC with milliseconds: " + v.dump());
      }
    }
    if (EndsWith(key, "_at_ms") || EndsWith(key, "_seconds") || EndsWith(key, "_s")) {
      bad.push_back(where + ": a time or duration in another form than the convention's");
    }
    if (EndsWith(key, "_ms") && !v.is_number_integer()) {
      bad.push_back(where + ": a duration, not whole milliseconds: " + v.dump());
    }
    if (kContentDigests.count(key) && !v.is_null() && !IsLowerHex64(v)) {
      bad.push_back(where + ": a digest of content, not 64 lowercase hex digits: " + v.dump());
    }
    if (kLogHashes.count(key) && !v.is_null() && !IsBase64Of32(v)) {
      bad.push_back(where + ": a log hash, not base64 of 32 bytes: " + v.dump());
    }
    if (key == "proof") {
      if (!v.is_array()) bad.push_back(where + ": not an array");
      for (const auto& h : v) {
        if (!IsBase64Of32(h)) bad.push_back(where + ": a proof node not in base64: " + h.dump());
      }
    }
    if (key == "error") {
      if (!v.is_object()) {
        bad.push_back(where + ": not an object");
      } else {
        if (!v.contains("code") || !v["code"].is_string() || v["code"].get<std::string>().empty()) {
          bad.push_back(where + ".code: missing or empty");
        }
        if (!v.contains("message") || !v["message"].is_string()) {
          bad.push_back(where + ".message: missing");
        }
        for (const char* k : {"remediation", "owner"}) {
          if (!v.contains(k) || !(v[k].is_string() || v[k].is_null())) {
            bad.push_back(where + "." + k + ": missing (a string or null)");
          }
        }
      }
    }
    Check(v, where, bad);
  }
}

enum class Expect {
  kOk,      // exit 0, an object without `error`
  kAnswer,  // a non-zero exit that is an answer (a blocker, damage found): no `error`
  kError,   // a non-zero exit with the error envelope
};

struct Row {
  std::string args;
  int exit;
  Expect expect;
  std::string env = "";
};

// The command paths of the "Commands:" section of `via help`, with
// `completion bash|zsh|fish` expanded to its noun.
std::vector<std::string> CommandPaths() {
  auto help = via::testing::Run(via::testing::ViaBinary() + " help </dev/null 2>/dev/null");
  REQUIRE(help.exit_code == 0);
  std::vector<std::string> out;
  std::istringstream lines(help.out);
  std::string line;
  bool in_commands = false;
  while (std::getline(lines, line)) {
    if (line == "Commands:") {
      in_commands = true;
      continue;
    }
    if (!in_commands) continue;
    if (line.empty()) break;
    if (line.size() < 3 || line[2] == ' ') continue;
    std::string left = line.substr(2, line.find("  ", 2) - 2);
    if (const auto bar = left.find('|'); bar != std::string::npos) {
      left = left.substr(0, left.rfind(' ', bar));
    }
    out.push_back(left);
  }
  REQUIRE(out.size() > 20);
  return out;
}

// The words of `args` up to the first that is a flag or an operand of ours.
bool Covers(const std::string& args, const std::string& path) {
  return args == path || args.rfind(path + " ", 0) == 0;
}

}  // namespace

TEST_CASE("every command's --json output follows the one convention", "[cli][json]") {
  CliHome h;
  const fs::path dir = h.dir.path();
  via::testing::TempDir files;  // outside the home, which must start empty
  const std::string exported = (files.path() / "export.sqlite").string();
  const std::string html = (files.path() / "timeline.html").string();
  const std::string script = (files.path() / "script.sql").string();
  const std::string password = (files.path() / "pg.password").string();
  std::ofstream(script) << "CREATE TABLE t(x);\nINSERT INTO t VALUES (1), (2);\nSELECT x FROM t;\n";
  std::ofstream(password) << "secret\n";

  // Ids that later rows need, filled in as the table runs.
  std::string snapshot, second_snapshot, token;
  std::unique_ptr<via::testing::ServeProcess> server;

  std::vector<Row> rows = {
      {"init", 0, Expect::kOk},
      {"addon create sqlite app-db --app api --bind DATABASE", 0, Expect::kOk},
      {"addon create sqlite other --app api", 0, Expect::kOk},
      {"addon bind other --app api --bind CACHE", 0, Expect::kOk},
      {"addon unbind other --app api --bind CACHE", 0, Expect::kOk},
      {"addon status app-db", 3, Expect::kAnswer},  // release_claim_missing
      {"addon ensure sqlite app-db --app api --bind DATABASE", 3, Expect::kAnswer},
      {"release create --app api", 0, Expect::kOk},
      {"release create --app api --id v1", 4, Expect::kError},  // release_exists
      {"release list --app api", 0, Expect::kOk},
      {"addon ensure sqlite app-db --app api --bind DATABASE", 0, Expect::kOk},
      {"addon status app-db", 0, Expect::kOk},
      {"addon status nope", 5, Expect::kAnswer},
      {"addon check app-db", 0, Expect::kOk},
      {"addon list", 0, Expect::kOk},
      {"addon list --all", 0, Expect::kOk},
      {"addon list --al", 2, Expect::kError},  // usage, with a suggestion
      {"addon history app-db", 0, Expect::kOk},
      {"addon snapshot app-db --label one", 0, Expect::kOk},
      {"addon snapshots app-db", 0, Expect::kOk},
      {"addon snapshots verify app-db", 0, Expect::kOk},
      {"addon snapshot export SNAPSHOT --to " + exported, 0, Expect::kOk},
      {"addon snapshot export SNAPSHOT --to " + exported, 4, Expect::kError},  // file_exists
      {"addon snapshots policy app-db --keep-last 3 --every 24h", 0, Expect::kOk},
      {"addon snapshots prune app-db --dry-run", 0, Expect::kOk},
      {"addon snapshot app-db --label two", 0, Expect::kOk},
      {"--yes addon restore app-db --snapshot SNAPSHOT", 0, Expect::kOk},
      {"--yes addon snapshot delete SECOND", 0, Expect::kOk},
      {"--yes addon snapshot delete nope", 5, Expect::kError},
      {"addon rotate-credentials app-db", 0, Expect::kOk},
      {"addon revoke-credentials app-db --generation 1", 0, Expect::kOk},
      {"addon revoke-credentials app-db --generation 1", 4, Expect::kError},
      {"workload token --app api --release v1 --ttl 1h", 0, Expect::kOk},
      {"provider add postgres --admin-url postgresql://via@127.0.0.1:1/postgres "
       "--password-file " + password, 1, Expect::kError},  // nothing listens on port 1
      {"--yes addon destroy other", 0, Expect::kOk},
      {"--yes addon destroy other", 5, Expect::kError},
      {"audit verify", 0, Expect::kOk},
      {"audit log", 0, Expect::kOk},
      {"audit checkpoint", 0, Expect::kOk},
      {"audit key", 0, Expect::kOk},
      {"audit prove --inclusion 2", 0, Expect::kOk},
      {"audit prove --inclusion 100000", 5, Expect::kError},
      {"audit prove --consistency 1", 0, Expect::kOk},
      {"audit replay", 0, Expect::kOk},
      {"audit timeline --html " + html, 0, Expect::kOk},
      {"recover --dry-run", 0, Expect::kOk},
      {"recover", 0, Expect::kOk},
      {"sql DATABASE \"SELECT 1 AS one\"", 0, Expect::kOk, "SERVE"},
      {"sql DATABASE --file " + script, 0, Expect::kOk, "SERVE"},
      {"sql DATABASE \"SELECT nope\"", 2, Expect::kError, "SERVE"},  // sql_error
      {"sql DATABASE \"SELECT 1\"", 2, Expect::kError},              // not_configured
      {"init", 0, Expect::kOk},                                      // already initialized
  };

  // Commands with no --json output of their own: the server logs lines on
  // stderr (its access log is checked below), help and completion print text.
  const std::set<std::string> no_json = {"serve", "help", "completion"};
  for (const std::string& path : CommandPaths()) {
    if (no_json.count(path)) continue;
    bool covered = false;
    for (const Row& row : rows) {
      std::string args = row.args;
      if (args.rfind("--yes ", 0) == 0) args = args.substr(6);
      covered = covered || Covers(args, path);
    }
    INFO("`via " << path << "` has no row in this table");
    CHECK(covered);
  }

  for (Row row : rows) {
    // Fill in the ids that earlier rows produced.
    for (auto [word, value] : {std::pair<std::string, std::string*>{"SNAPSHOT", &snapshot},
                               {"SECOND", &second_snapshot}}) {
      if (auto at = row.args.find(word); at != std::string::npos) {
        REQUIRE(!value->empty());
        row.args.replace(at, word.size(), *value);
      }
    }
    std::string env;
    if (row.env == "SERVE") {
      if (!server) {
        server = std::make_unique<via::testing::ServeProcess>(dir);
        REQUIRE(!server->url().empty());
      }
      env = "VIA_CONFIG_URL='" + server->url() + "' VIA_WORKLOAD_TOKEN='" + token + "'";
    } else if (row.args.rfind("sql ", 0) == 0) {
      env = "env -u VIA_CONFIG_URL -u VIA_WORKLOAD_TOKEN";
    }
    auto r = h.Run("--json " + row.args, env);
    INFO("via --json " << row.args << "\nexit " << r.exit_code << "\n" << r.out);
    CHECK(r.exit_code == row.exit);
    REQUIRE(!r.out.empty());
    REQUIRE(r.out.back() == '\n');
    // One object per line; one line except for `audit log` (JSON Lines).
    std::vector<json> lines;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      json j = json::parse(line, nullptr, false);
      REQUIRE(!j.is_discarded());
      CHECK(j.is_object());
      lines.push_back(j);
    }
    if (row.args != "audit log") CHECK(lines.size() == 1);
    for (const json& j : lines) {
      std::vector<std::string> bad;
      Check(j, "", bad);
      for (const auto& b : bad) FAIL_CHECK(b);
      if (row.expect == Expect::kError) {
        CHECK(j.contains("error"));
      } else {
        CHECK_FALSE(j.contains("error"));
      }
    }

    // The values later rows need, and a few fields the convention names.
    const json& j = lines.front();
    if (row.args == "addon snapshot app-db --label one") snapshot = j["id"];
    if (row.args == "addon snapshot app-db --label two") second_snapshot = j["id"];
    if (row.args.rfind("workload token", 0) == 0) {
      token = j["token"];
      CHECK(via::IsRfc3339Ms(j["expires_at"].get<std::string>()));
    }
    if (row.args == "addon list" || row.args == "addon list --all") {
      CHECK(j["addons"].is_array());
      CHECK(j["addons"].size() == 2);
    }
    if (row.args == "addon snapshots app-db") {
      REQUIRE(j["snapshots"].size() == 1);
      CHECK(IsLowerHex64(j["snapshots"][0]["sha256"]));
      CHECK(via::IsRfc3339Ms(j["snapshots"][0]["requested_at"].get<std::string>()));
      CHECK(j["snapshots"][0]["verified_at"].is_null());
    }
    if (row.args == "addon snapshots verify app-db") {
      CHECK(via::IsRfc3339Ms(j["snapshots"][0]["verified_at"].get<std::string>()));
    }
    if (row.args.rfind("addon snapshots policy", 0) == 0) CHECK(j["every_ms"] == 86400000);
    if (row.args == "release list --app api") CHECK(j["releases"].size() == 1);
    if (row.args == "addon history app-db") CHECK(j["addons"][0]["events"].size() > 3);
    if (row.args == "addon check app-db") CHECK(j["seq"].is_number_integer());
    if (row.args == "audit log") {
      // Every event's digest of content is hex and its times RFC 3339.
      std::set<std::string> types;
      for (const json& rec : lines) {
        types.insert(rec["type"].get<std::string>());
        CHECK_FALSE(rec.contains("recorded_at_ms"));
        if (rec["type"] == "SnapshotTaken") CHECK(IsLowerHex64(rec["sha256"]));
        if (rec["type"] == "GenerationRotated") CHECK(IsLowerHex64(rec["fingerprint"]));
        if (rec["type"] == "WorkloadTokenIssued") {
          CHECK(via::ParseRfc3339Ms(rec["expires_at"].get<std::string>()).value() ==
                via::ParseRfc3339Ms(rec["issued_at"].get<std::string>()).value() + 3600 * 1000);
        }
        if (rec["type"] == "SnapshotPolicySet") CHECK(rec["every_ms"] == 86400000);
      }
      for (const char* t : {"SnapshotTaken", "GenerationRotated", "WorkloadTokenIssued",
                            "SnapshotPolicySet", "StorageChecked", "SnapshotVerified"}) {
        INFO(t);
        CHECK(types.count(t) == 1);
      }
    }
  }

  // The access log of the server the sql rows went through.
  REQUIRE(server);
  server.reset();
  std::ifstream log(dir / "access.log");
  int lines = 0;
  for (std::string line; std::getline(log, line); ++lines) {
    INFO(line);
    json j = json::parse(line, nullptr, false);
    REQUIRE(j.is_object());
    CHECK(via::IsRfc3339Ms(j["ts"].get<std::string>()));
    CHECK(j["duration_ms"].is_number_integer());
    std::vector<std::string> bad;
    Check(j, "", bad);
    for (const auto& b : bad) FAIL_CHECK(b);
  }
  CHECK(lines >= 3);
}

TEST_CASE("the one time format: RFC 3339 UTC with milliseconds, both ways", "[cli][json]") {
  CHECK(via::Rfc3339Ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(via::Rfc3339Ms(1767225600123) == "2026-01-01T00:00:00.123Z");
  CHECK(via::Rfc3339Ms(-1) == "1969-12-31T23:59:59.999Z");
  for (std::int64_t ms : {std::int64_t{0}, std::int64_t{1767225600123}, std::int64_t{951782400999},
                          std::int64_t{4102444799999}, std::int64_t{-1}}) {
    INFO(ms);
    CHECK(via::ParseRfc3339Ms(via::Rfc3339Ms(ms)) == ms);
  }
  CHECK(via::ParseRfc3339Ms("2000-02-29T23:59:59.999Z") == 951868799999);
  for (const char* bad : {"2026-01-01T00:00:00Z", "2026-01-01T00:00:00.123+00:00",
                          "2026-01-01 00:00:00.123Z", "2026-13-01T00:00:00.123Z",
                          "2025-02-29T00:00:00.123Z", "2026-01-01T24:00:00.000Z",
                          "1767225600123", "2026-01-01t00:00:00.123z", ""}) {
    INFO(bad);
    CHECK_FALSE(via::IsRfc3339Ms(bad));
  }
}
