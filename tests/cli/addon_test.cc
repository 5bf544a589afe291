// The add-on lifecycle through the real `via` binary on real SQLite files:
// every §7 blocker from a real situation, exit codes, tombstones, provider
// failures, races between processes, and a read model that can be deleted.

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "eventstore/event_log.h"
#include "testing.h"

using namespace via;
using nlohmann::json;
using via::testing::Via;
namespace fs = std::filesystem;

namespace {

struct Home {
  testing::TempDir dir;

  testing::CommandResult Run(const std::string& args) { return Via(dir.path(), args); }

  // Runs with --json and parses stdout (one document).
  std::pair<int, json> Json(const std::string& args) {
    auto r = Via(dir.path(), "--json " + args);
    INFO(args << "\n" << r.out);
    json parsed = json::parse(r.out.empty() ? "null" : r.out, nullptr, false);
    return {r.exit_code, parsed};
  }

  std::uint64_t LogSize() {
    auto [code, j] = Json("audit verify");
    REQUIRE(code == 0);
    return j["size"].get<std::uint64_t>();
  }

  std::string AddonId(const std::string& name) {
    auto [code, j] = Json("addon status " + name);
    return j["addon"]["id"].get<std::string>();
  }

  fs::path DataFile(const std::string& name) {
    return dir.path() / "addons" / AddonId(name) / "data.sqlite";
  }

  // Appends events straight to the log, as a newer or partly-run version would.
  void AppendRaw(std::vector<Event> events) {
    testing::FakeClock clock;
    testing::CountingIds ids;
    eventstore::EventLog::Options options;
    options.home = eventstore::Home{dir.path()};
    options.clock = &clock;
    options.ids = &ids;
    auto log = eventstore::EventLog::Open(options);
    REQUIRE(log.ok());
    eventstore::AppendRequest request;
    request.actor = "test";
    request.recorded_at_ms = clock.NowMs();
    request.events = std::move(events);
    REQUIRE((*log)->Append(request).ok());
  }

  // Runs a remediation command line as printed (it starts with "via ").
  int RunRemediation(const std::string& remediation) {
    REQUIRE(remediation.rfind("via ", 0) == 0);
    return Run("--yes " + remediation.substr(4)).exit_code;
  }
};

std::string Blocker(const json& report) {
  return report["blocking"].is_null() ? "" : report["blocking"].get<std::string>();
}

void ScribblePages(const fs::path& file) {
  std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(4096);
  std::string junk(4096 * 2, '\x5a');
  f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
}

}  // namespace

TEST_CASE("create, bind and status make an add-on usable", "[cli]") {
  Home h;
  auto [code, created] = h.Json("addon create sqlite app-db --app api --bind DATABASE");
  CHECK(code == 0);
  // Every layer but the runtime's release claim: no release names it yet.
  CHECK(created["usable_by_app"] == false);
  CHECK(created["binding_ready"] == true);
  CHECK(created["storage_ready"] == true);
  CHECK(Blocker(created) == "release_claim_missing");
  CHECK(created["owner"] == "app_developer");
  CHECK(h.RunRemediation(created["remediation"]) == 0);  // via release create --app api
  auto [status_code, status] = h.Json("addon status app-db");
  CHECK(status_code == 0);
  CHECK(status["addon"]["state"] == "active");
  CHECK(status["addon"]["generation"] == 1);
  CHECK(status["binding"]["name"] == "DATABASE");
  CHECK(status["blocking"].is_null());
  CHECK(status["log"]["size"].get<int>() > 1);
  CHECK(fs::exists(h.DataFile("app-db")));
}

TEST_CASE("ensure is idempotent and binds a missing binding", "[cli]") {
  Home h;
  auto [c1, first] = h.Json("addon ensure sqlite app-db --app api --bind DATABASE");
  CHECK(c1 == 3);  // usable but for a release that claims it
  CHECK(Blocker(first) == "release_claim_missing");
  CHECK(first["created"] == true);
  CHECK(first["changed"] == true);
  REQUIRE(h.Run("release create --app api").exit_code == 0);
  std::uint64_t size = h.LogSize();
  auto [c2, second] = h.Json("addon ensure sqlite app-db --app api --bind DATABASE");
  CHECK(c2 == 0);
  CHECK(second["created"] == false);
  CHECK(second["already_exists"] == true);
  CHECK(second["changed"] == false);
  CHECK(h.LogSize() == size);
  auto [c3, third] = h.Json("addon ensure sqlite app-db --app api --bind CACHE");
  CHECK(c3 == 3);  // v1 does not claim CACHE
  CHECK(Blocker(third) == "release_claim_missing");
  CHECK(third["changed"] == true);
  CHECK(third["binding"]["name"] == "CACHE");
}

TEST_CASE("ensure refuses to steal a binding that points at another add-on", "[cli]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite one --app api --bind DATABASE").exit_code == 0);
  // A new add-on is not created at all (refused, exit 4)...
  auto [code, refused] = h.Json("addon ensure sqlite two --app api --bind DATABASE");
  CHECK(code == 4);
  CHECK(refused["error"]["code"] == "binding_conflict");
  CHECK(refused["error"]["remediation"].is_null());  // moving it is the operator's call
  CHECK(refused["error"]["owner"] == "operator");
  // The full readiness object comes with the refusal (finding 3).
  CHECK(refused["binding_ready"] == false);
  CHECK(refused["usable_by_app"] == false);
  CHECK(refused["created"] == false);
  CHECK(refused["changed"] == false);
  CHECK(refused.contains("metadata_ready"));
  CHECK(h.Json("addon status two").first == 5);
  // ...and an existing one reports the conflict without taking the binding.
  REQUIRE(h.Run("addon create sqlite two --app api").exit_code == 0);
  auto [code2, report] = h.Json("addon ensure sqlite two --app api --bind DATABASE");
  CHECK(code2 == 3);
  CHECK(Blocker(report) == "binding_conflict");
  CHECK(report["owner"] == "operator");
  CHECK(report["remediation"].is_null());
  CHECK(report["changed"] == false);
  // The reason names the unbind that would move it; the operator runs it.
  CHECK(report["reason"].get<std::string>().find("via addon unbind") != std::string::npos);
  REQUIRE(h.Run("addon unbind one --app api --bind DATABASE").exit_code == 0);
  auto [c4, taken] = h.Json("addon ensure sqlite two --app api --bind DATABASE");
  CHECK(c4 == 3);
  CHECK(Blocker(taken) == "release_claim_missing");
  CHECK(taken["binding_ready"] == true);
}

TEST_CASE("a missing binding is reported and its remediation binds it", "[cli]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite app-db --app api").exit_code == 0);
  auto [code, report] = h.Json("addon status app-db");
  CHECK(code == 3);
  CHECK(Blocker(report) == "binding_missing");
  // The name the app reads is not guessed: no command, the app developer decides.
  CHECK(report["remediation"].is_null());
  CHECK(report["owner"] == "app_developer");
  CHECK(report.dump().find("DATABASE") == std::string::npos);
  REQUIRE(h.Run("addon bind app-db --app api --bind DATABASE").exit_code == 0);
  // Once bound and unbound, the binding is known: its remediation binds it again.
  REQUIRE(h.Run("release create --app api").exit_code == 0);
  REQUIRE(h.Run("addon unbind app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(h.Run("addon create sqlite x --app api --bind DATABASE").exit_code == 0);
  REQUIRE(h.Run("addon unbind x --app api --bind DATABASE").exit_code == 0);
  auto [c2, again] = h.Json("addon status x");
  CHECK(Blocker(again) == "binding_missing");
  CHECK(again["remediation"] == "via addon bind x --app api --bind DATABASE");
}

TEST_CASE("missing storage is reported and ensure --repair recreates it", "[cli]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(h.Run("release create --app api").exit_code == 0);
  fs::path file = h.DataFile("app-db");
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file.string() + suffix);
  auto [code, report] = h.Json("addon status app-db");
  CHECK(code == 3);
  CHECK(Blocker(report) == "storage_missing");
  CHECK(report["storage_ready"] == false);
  CHECK(report["metadata_ready"] == true);
  // The other layers on their own definitions (finding 3).
  CHECK(report["binding_ready"] == true);
  CHECK(report["runtime_ready"] == true);
  auto [ensure_code, ensured] = h.Json("addon ensure sqlite app-db --app api --bind DATABASE");
  CHECK(ensure_code == 3);  // without --repair, files are never touched
  CHECK_FALSE(fs::exists(file));
  CHECK(h.RunRemediation(report["remediation"]) == 0);
  auto [after_code, after] = h.Json("addon status app-db");
  CHECK(after_code == 0);
}

TEST_CASE("corrupt storage is moved aside, never deleted, and replaced", "[cli]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(h.Run("release create --app api").exit_code == 0);
  fs::path file = h.DataFile("app-db");
  // Give it a few pages, then damage them.
  {
    std::string sql = "sqlite3 '" + file.string() +
                      "' \"CREATE TABLE t(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT "
                      "i+1 FROM c WHERE i<2000) INSERT INTO t SELECT randomblob(100) FROM c;\"";
    REQUIRE(testing::Run(sql).exit_code == 0);
  }
  ScribblePages(file);
  // The readiness probe reads the header and schema only: table pages are
  // the full check's job, which is explicit and recorded.
  auto [before, unchecked] = h.Json("addon status app-db");
  CHECK(before == 0);
  CHECK(unchecked["last_check"].is_null());
  auto [check_code, checked] = h.Json("addon check app-db");
  CHECK(check_code == 3);
  CHECK(checked["ok"] == false);
  CHECK(checked["remediation"] == "via addon ensure sqlite app-db --app api --repair");
  auto [code, report] = h.Json("addon status app-db");
  CHECK(code == 3);
  CHECK(Blocker(report) == "storage_corrupt");
  CHECK(report["last_check"]["ok"] == false);
  CHECK(report["last_check"]["seq"] == checked["seq"]);
  std::uintmax_t damaged_size = fs::file_size(file);
  // No snapshot: the repair would install an empty database, which is an
  // explicit choice (finding 5). Refused, nothing moved, full readiness.
  auto [refused_code, refused] = h.Json("addon ensure sqlite app-db --app api --repair");
  CHECK(refused_code == 4);
  CHECK(refused["error"]["code"] == "repair_needs_allow_empty");
  CHECK(refused["error"]["remediation"] ==
        "via addon ensure sqlite app-db --app api --repair --allow-empty");
  CHECK(refused["usable_by_app"] == false);
  CHECK(Blocker(refused) == "storage_corrupt");
  CHECK(fs::file_size(file) == damaged_size);
  auto [fixed, ensured] = h.Json("addon ensure sqlite app-db --app api --repair --allow-empty");
  CHECK(fixed == 0);
  CHECK(ensured["warning"].get<std::string>().find("empty") != std::string::npos);
  CHECK(ensured["restored_from"].is_null());
  CHECK(ensured["changed"] == true);
  bool found_quarantine = false;
  for (const auto& entry : fs::directory_iterator(file.parent_path())) {
    if (entry.path().filename().string().find("corrupt") != std::string::npos &&
        entry.path().filename().string().find("-wal") == std::string::npos &&
        entry.path().filename().string().find("-shm") == std::string::npos) {
      found_quarantine = true;
      CHECK(fs::file_size(entry.path()) == damaged_size);
    }
  }
  CHECK(found_quarantine);
  auto [after, repaired] = h.Json("addon status app-db");
  CHECK(after == 0);
  CHECK(repaired["last_check"]["current"] == false);  // it checked the old content
  auto [recheck, rechecked] = h.Json("addon check app-db");
  CHECK(recheck == 0);
  CHECK(rechecked["ok"] == true);
}

TEST_CASE("unreadable storage names the platform as owner", "[cli]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
  fs::path file = h.DataFile("app-db");
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file.string() + suffix);
  fs::create_directory(file);  // something that is not a database file
  auto [code, report] = h.Json("addon status app-db");
  CHECK(code == 3);
  CHECK(Blocker(report) == "storage_unreadable");
  CHECK(report["owner"] == "platform");
}

TEST_CASE("a restore in flight blocks the add-on", "[cli]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(h.Run("release create --app api").exit_code == 0);
  h.AppendRaw({RestoreRequested{h.AddonId("app-db"), "sn_1", "sn_2"}});
  auto [code, report] = h.Json("addon status app-db");
  CHECK(code == 3);
  CHECK(Blocker(report) == "restore_in_progress");
  // Its remediation (a crashed restore) is `via recover`, which settles the intent.
  CHECK(report["remediation"].get<std::string>().find("via recover") != std::string::npos);
  CHECK(h.Run("recover").exit_code == 0);
  CHECK(h.Json("addon status app-db").first == 0);
}

TEST_CASE("revoking every generation leaves no active generation", "[cli]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(h.Run("release create --app api").exit_code == 0);
  h.AppendRaw({GenerationRevoked{h.AddonId("app-db"), 1}});
  auto [code, report] = h.Json("addon status app-db");
  CHECK(code == 3);
  CHECK(Blocker(report) == "no_active_generation");
  CHECK(report["owner"] == "security");
  CHECK(report["addon"]["revoked_generations"] == json::array({1}));
  CHECK(h.RunRemediation(report["remediation"]) == 0);  // rotate-credentials
  CHECK(h.Json("addon status app-db").first == 0);
}

TEST_CASE("a missing credentials key is reported to security and never recreated", "[cli]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
  fs::remove(h.dir.path() / "keys" / "credentials.key");
  auto [code, report] = h.Json("addon status app-db");
  CHECK(code == 3);
  CHECK(Blocker(report) == "credentials_key_missing");
  CHECK(report["owner"] == "security");
  auto [create_code, error] = h.Json("addon create sqlite other --app api");
  CHECK(create_code == 4);
  CHECK(error["error"]["code"] == "credentials_key_missing");
  CHECK_FALSE(fs::exists(h.dir.path() / "keys" / "credentials.key"));
}

TEST_CASE("an add-on from an unknown provider is reported, not run", "[cli]") {
  Home h;
  h.Run("init");
  h.AppendRaw({AddonCreated{"ad_future", "queue", "rabbitmq", "api", ""}});
  auto [code, report] = h.Json("addon status queue");
  CHECK(code == 3);
  CHECK(Blocker(report) == "unknown_provider");
  CHECK(report["owner"] == "platform");
}

TEST_CASE("ensure of an existing name for another app is a metadata conflict", "[cli]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
  auto [code, report] = h.Json("addon ensure sqlite app-db --app web --bind DATABASE");
  CHECK(code == 3);
  CHECK(Blocker(report) == "metadata_conflict");
  CHECK(report["compatible"] == false);
  CHECK(report["changed"] == false);
}

TEST_CASE("a destroyed add-on is inspectable by id and its name is free", "[cli]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite app-db --app api").exit_code == 0);
  std::string id = h.AddonId("app-db");
  auto [code, destroyed] = h.Json("addon destroy app-db --yes");
  REQUIRE(code == 0);
  CHECK(destroyed["tombstone_name"] == "app-db#destroyed#" + id);
  auto [status_code, report] = h.Json("addon status " + id);
  CHECK(status_code == 3);
  CHECK(Blocker(report) == "addon_destroyed");
  CHECK(h.RunRemediation(report["remediation"]) == 0);  // recreates the name
  CHECK(h.AddonId("app-db") != id);
  auto [history_code, history] = h.Json("addon history app-db");
  CHECK(history_code == 0);
  CHECK(history["addons"].size() == 2);
  auto [list_code, all] = h.Json("addon list --all");
  CHECK(all["addons"].size() == 2);
  auto [live_code, live] = h.Json("addon list");
  CHECK(live["addons"].size() == 1);
}

TEST_CASE("bad input is refused with its exit code and appends nothing", "[cli]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
  std::uint64_t size = h.LogSize();
  struct Case {
    std::string args;
    int exit;
    std::string code;
  };
  std::vector<Case> cases = {
      {"addon create sqlite Bad_Name --app api", 2, "invalid_name"},
      {"addon create sqlite ok --app API", 2, "invalid_name"},
      {"addon create sqlite ok --app api --bind database", 2, "invalid_name"},
      {"addon create oracle ok --app api", 2, "unknown_provider"},
      {"addon create sqlite app-db --app api", 4, "name_taken"},
      {"addon status nope", 5, ""},
      {"addon bind nope --app api --bind DATABASE", 5, "addon_not_found"},
      {"addon destroy nope --yes", 5, "addon_not_found"},
      {"addon destroy app-db --yes", 4, "addon_bound"},
      {"addon status 'app-db#destroyed#ad_1'", 2, "tombstone_name"},
      {"addon destroy app-db", 2, "confirmation_required"},
  };
  for (const auto& c : cases) {
    auto [code, out] = h.Json(c.args);
    INFO(c.args);
    CHECK(code == c.exit);
    if (!c.code.empty()) CHECK(out["error"]["code"] == c.code);
  }
  auto [code, missing] = h.Json("addon status nope");
  CHECK(code == 5);
  CHECK(Blocker(missing) == "addon_not_found");
  CHECK(missing["owner"] == "operator");
  CHECK(h.LogSize() == size);
}

TEST_CASE("a provider failure leaves provisioning_failed and the next create retires it",
          "[cli]") {
  Home h;
  auto failed = testing::Run("VIA_TEST_FAULT=provision_fail " + testing::ViaBinary() +
                             " --json --home '" + h.dir.path().string() +
                             "' addon create sqlite app-db --app api </dev/null");
  CHECK(failed.exit_code == 3);
  CHECK(json::parse(failed.out)["blocking"] == "provisioning_failed");
  std::string failed_id = h.AddonId("app-db");
  auto [code, created] = h.Json("addon create sqlite app-db --app api --bind DATABASE");
  CHECK(code == 0);
  CHECK(h.AddonId("app-db") != failed_id);
  auto [status_code, old] = h.Json("addon status " + failed_id);
  CHECK(old["addon"]["name"] == "app-db#failed#" + failed_id);
}

TEST_CASE("a failed record whose file holds SQLite bytes keeps blocking the name", "[cli]") {
  Home h;
  auto failed = testing::Run("VIA_TEST_FAULT=provision_fail_after_create " +
                             testing::ViaBinary() + " --json --home '" + h.dir.path().string() +
                             "' addon create sqlite app-db --app api --bind DATABASE </dev/null");
  CHECK(failed.exit_code == 3);
  auto [code, refused] = h.Json("addon create sqlite app-db --app api");
  CHECK(code == 4);
  CHECK(refused["error"]["code"] == "name_blocked_by_failed");
  REQUIRE(h.Run("release create --app api").exit_code == 0);
  // The remediation adopts the intact file.
  CHECK(h.RunRemediation(refused["error"]["remediation"]) == 0);
  CHECK(h.Json("addon status app-db").first == 0);
}

TEST_CASE("four processes running the same ensure at once make one add-on", "[cli]") {
  Home h;
  h.Run("init");
  std::vector<std::string> outputs(4);
  std::vector<FILE*> pipes;
  for (int i = 0; i < 4; ++i) {
    std::string cmd = testing::ViaBinary() + " --json --home '" + h.dir.path().string() +
                      "' addon ensure sqlite app-db --app api --bind DATABASE </dev/null";
    pipes.push_back(::popen(cmd.c_str(), "r"));
  }
  int created = 0;
  for (FILE* pipe : pipes) {
    std::string out;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    int status = ::pclose(pipe);
    INFO(out);
    CHECK(WEXITSTATUS(status) == 3);  // no release claims it yet
    json j = json::parse(out, nullptr, false);
    CHECK(Blocker(j) == "release_claim_missing");
    if (j.is_object() && j["created"] == true) ++created;
  }
  CHECK(created == 1);
  auto [code, all] = h.Json("addon list --all");
  CHECK(all["addons"].size() == 1);
  CHECK(h.Run("audit verify").exit_code == 0);
}

TEST_CASE("two processes creating the same name: one wins, the other exits 4", "[cli]") {
  // Twenty fresh homes: both processes also create the read model at once,
  // which failed one of them with "busy" about one time in five before the
  // read model's creation waited for the other.
  for (int round = 0; round < 20; ++round) {
    Home h;
    h.Run("init");
    std::vector<FILE*> pipes;
    for (int i = 0; i < 2; ++i) {
      std::string cmd = testing::ViaBinary() + " --json --home '" + h.dir.path().string() +
                        "' addon create sqlite app-db --app api </dev/null";
      pipes.push_back(::popen(cmd.c_str(), "r"));
    }
    std::vector<int> codes;
    std::string out;
    for (FILE* pipe : pipes) {
      char buf[4096];
      std::size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
      codes.push_back(WEXITSTATUS(::pclose(pipe)));
    }
    std::sort(codes.begin(), codes.end());
    INFO("round " << round << ": " << out);
    REQUIRE(codes == std::vector<int>{0, 4});
  }
}

TEST_CASE("deleting the read model changes no command's answer", "[cli]") {
  Home h;
  REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(h.Run("addon create sqlite other --app web").exit_code == 0);
  REQUIRE(h.Run("addon destroy other --yes").exit_code == 0);
  auto before_status = h.Run("--json addon status app-db").out;
  auto before_list = h.Run("--json addon list --all").out;
  auto before_replay = h.Run("--json audit replay").out;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    fs::remove(h.dir.path() / "state" / (std::string("projections.db") + suffix));
  }
  CHECK(h.Run("--json addon status app-db").out == before_status);
  CHECK(h.Run("--json addon list --all").out == before_list);
  CHECK(h.Run("--json audit replay").out == before_replay);
}
