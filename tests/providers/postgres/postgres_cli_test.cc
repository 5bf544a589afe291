// The real `via` with the PostgreSQL provider on the throwaway cluster
// (fixture "postgres"): `via provider add` and its refusals, and an app that
// gets a postgres descriptor with a workload token from `via serve`, connects
// with psql, writes, survives a rotation, is cut off by a revoke (its open
// session included) and sees its data back after a restore.

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "commands/addon.h"
#include "commands/context.h"
#include "crypto/credentials.h"
#include "eventstore/home.h"
#include "providers/postgres/provider.h"
#include "providers/registry.h"
#include "serve_process.h"
#include "server/api.h"
#include "testing.h"

using namespace via;
using via::testing::Run;
using via::testing::Via;

namespace {

struct Cluster {
  std::string url;  // postgresql://via@127.0.0.1:PORT/postgres
  std::string port;
  std::string password;
};

Cluster GetCluster() {
  const char* dir = std::getenv("VIA_TEST_PG_DIR");
  REQUIRE(dir != nullptr);  // set by ctest (fixture "postgres"): never skipped
  Cluster c;
  std::ifstream(std::filesystem::path(dir) / "url") >> c.url;
  std::ifstream(std::filesystem::path(dir) / "port") >> c.port;
  std::string line;
  std::ifstream(std::filesystem::path(dir) / "pgpass") >> line;
  for (int i = 0; i < 4; ++i) line = line.substr(line.find(':') + 1);
  c.password = line;
  REQUIRE_FALSE(c.url.empty());
  return c;
}

std::string WritePassword(const std::filesystem::path& dir, const std::string& password) {
  std::filesystem::path file = dir / "admin.password";
  std::ofstream(file) << password << "\n";
  return file.string();
}

nlohmann::json Json(const testing::CommandResult& r) {
  INFO(r.out);
  REQUIRE_FALSE(r.out.empty());
  return nlohmann::json::parse(r.out);
}

std::uint64_t LogSize(const std::filesystem::path& home) {
  auto r = Via(home, "--json audit verify");
  REQUIRE(r.exit_code == 0);
  return Json(r)["size"].get<std::uint64_t>();
}

// psql as an app: the descriptor's url, one command, its output.
testing::CommandResult Psql(const std::string& url, const std::string& sql) {
  return Run("PGCONNECT_TIMEOUT=5 psql -X -q -t -A -v ON_ERROR_STOP=1 '" + url + "' -c \"" + sql +
             "\" 2>&1");
}

}  // namespace

TEST_CASE("provider add: an unreachable server or a wrong password appends nothing",
          "[providers][postgres][cli]") {
  Cluster c = GetCluster();
  testing::TempDir dir;
  const auto home = dir.path() / "home";
  REQUIRE(Via(home, "init").exit_code == 0);
  const std::uint64_t before = LogSize(home);

  // Nothing listens on port 1.
  auto unreachable = Via(home, "--json provider add postgres --admin-url postgresql://via@127.0.0.1:1/postgres "
                               "--password-file " + WritePassword(dir.path(), c.password));
  CHECK(unreachable.exit_code == 1);
  CHECK(Json(unreachable)["error"]["code"] == "storage_unreachable");

  auto wrong = Via(home, "--json provider add postgres --admin-url " + c.url +
                             " --password-file " + WritePassword(dir.path(), "not-the-password"));
  CHECK(wrong.exit_code == 4);
  CHECK(Json(wrong)["error"]["code"] == "admin_auth_failed");

  auto with_password = Via(home, "--json provider add postgres --admin-url postgresql://via:secret@127.0.0.1:" +
                                     c.port + "/postgres --password-file " +
                                     WritePassword(dir.path(), c.password));
  CHECK(with_password.exit_code == 2);
  CHECK(Json(with_password)["error"]["code"] == "bad_admin_url");

  auto sqlite = Via(home, "--json provider add sqlite --admin-url " + c.url + " --password-file " +
                              WritePassword(dir.path(), c.password));
  CHECK(sqlite.exit_code == 4);
  CHECK(Json(sqlite)["error"]["code"] == "provider_not_configurable");

  CHECK(LogSize(home) == before);
  CHECK_FALSE(std::filesystem::exists(home / "keys" / "providers" / "postgres.password"));
  // Without a registered server, creating a postgres add-on says so.
  auto create = Via(home, "--json addon create postgres app-db --app api --bind DATABASE");
  INFO(create.out);
  CHECK(create.out.find("provider_not_configured") != std::string::npos);  // in the reason
}

TEST_CASE("provider add keeps the password out of the log", "[providers][postgres][cli]") {
  Cluster c = GetCluster();
  testing::TempDir dir;
  const auto home = dir.path() / "home";
  auto added = Via(home, "--json provider add postgres --admin-url " + c.url + " --password-file " +
                             WritePassword(dir.path(), c.password));
  REQUIRE(added.exit_code == 0);
  auto j = Json(added);
  CHECK(j["provider"] == "postgres");
  CHECK(j["host"] == "127.0.0.1");
  CHECK(std::to_string(j["port"].get<int>()) == c.port);
  CHECK(j["user"] == "via");
  CHECK(j["secret_fingerprint"].get<std::string>().size() == 64);  // hex
  struct stat st {};
  REQUIRE(::stat((home / "keys" / "providers" / "postgres.password").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto log = Via(home, "--json audit log");
  REQUIRE(log.exit_code == 0);
  CHECK(log.out.find("ProviderConfigured") != std::string::npos);
  CHECK(log.out.find(c.password) == std::string::npos);
  // The raw log file never holds it either.
  std::ifstream raw(home / "log" / "events.db", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(raw)), {});
  CHECK(bytes.find(c.password) == std::string::npos);
}

TEST_CASE("an app connects with psql through its descriptor: rotate, revoke, then restore",
          "[providers][postgres][e2e]") {
  Cluster c = GetCluster();
  testing::TempDir dir;
  const auto home = dir.path() / "home";
  REQUIRE(Via(home, "provider add postgres --admin-url " + c.url + " --password-file " +
                        WritePassword(dir.path(), c.password))
              .exit_code == 0);
  REQUIRE(Via(home, "addon create postgres app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(Via(home, "release create --app api").exit_code == 0);
  auto status = Via(home, "--json addon status app-db");
  INFO(status.out);
  REQUIRE(status.exit_code == 0);
  CHECK(Json(status)["usable_by_app"] == true);

  testing::ServeProcess serve(home);
  REQUIRE_FALSE(serve.url().empty());
  auto token = Via(home, "workload token --app api --release v1");
  REQUIRE(token.exit_code == 0);
  std::string jwt = token.out.substr(0, token.out.find('\n'));
  auto descriptor = [&]() {
    auto r = Run("curl -s -H 'Authorization: Bearer " + jwt + "' " + serve.url() +
                 "/v1/descriptors/DATABASE");
    REQUIRE(r.exit_code == 0);
    return Json(r);
  };
  auto d1 = descriptor();
  CHECK(d1["provider"] == "postgres");
  CHECK(d1["generation"] == 1);
  const std::string url1 = d1["url"];
  CHECK(url1.rfind("postgresql://", 0) == 0);
  CHECK(d1["auth_token"] == "");

  auto wrote = Psql(url1, "CREATE TABLE notes(body text); INSERT INTO notes VALUES ('first')");
  INFO(wrote.out);
  REQUIRE(wrote.exit_code == 0);

  // Rotation without downtime: generation 2 sees the same table; 1 still works.
  REQUIRE(Via(home, "addon rotate-credentials app-db").exit_code == 0);
  auto d2 = descriptor();
  CHECK(d2["generation"] == 2);
  const std::string url2 = d2["url"];
  CHECK(url2 != url1);
  auto read2 = Psql(url2, "INSERT INTO notes VALUES ('second'); SELECT count(*) FROM notes");
  INFO(read2.out);
  CHECK(read2.exit_code == 0);
  CHECK(read2.out.find("2") != std::string::npos);
  CHECK(Psql(url1, "SELECT count(*) FROM notes").exit_code == 0);

  // An open session of generation 1, then the revoke: it is terminated and
  // new logins are refused.
  const auto marker = dir.path() / "session.out";
  const std::string hold = "PGCONNECT_TIMEOUT=5 psql -X -q -t -A '" + url1 +
                           "' -c 'SELECT pg_sleep(30)' >'" + marker.string() + "' 2>&1; echo $? >>'" +
                           marker.string() + "'";
  std::thread holder([&]() { Run(hold); });
  // Wait until the session is open on the server.
  bool open = false;
  for (int i = 0; i < 100 && !open; ++i) {
    // As the cluster's superuser: another role's query text is hidden from the app.
    auto seen = Run("PGPASSWORD='" + c.password + "' psql -X -q -t -A '" + c.url +
                    "' -c \"SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'\" 2>&1");
    open = seen.exit_code == 0 && seen.out.find("1") == 0;
    if (!open) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(open);
  const auto revoke_start = std::chrono::steady_clock::now();
  REQUIRE(Via(home, "addon revoke-credentials app-db --generation 1").exit_code == 0);
  holder.join();
  const auto held = std::chrono::steady_clock::now() - revoke_start;
  CHECK(held < std::chrono::seconds(20));  // ended by the revoke, not by pg_sleep(30)
  std::ifstream session(marker);
  std::string session_out((std::istreambuf_iterator<char>(session)), {});
  INFO(session_out);
  CHECK(session_out.find("terminat") != std::string::npos);
  auto refused = Psql(url1, "SELECT 1");
  CHECK(refused.exit_code != 0);
  CHECK(Psql(url2, "SELECT 1").exit_code == 0);

  // Snapshot, a change, restore: the data of the snapshot is back.
  auto snap = Via(home, "--json addon snapshot app-db");
  INFO(snap.out);
  REQUIRE(snap.exit_code == 0);
  const std::string snapshot_id = Json(snap)["id"];
  REQUIRE(Psql(url2, "DELETE FROM notes").exit_code == 0);
  auto restored = Via(home, "--yes addon restore app-db --snapshot " + snapshot_id);
  INFO(restored.out);
  REQUIRE(restored.exit_code == 0);
  auto after = Psql(descriptor()["url"], "SELECT string_agg(body, ',' ORDER BY body) FROM notes");
  INFO(after.out);
  CHECK(after.exit_code == 0);
  CHECK(after.out.find("first,second") != std::string::npos);
}

TEST_CASE("postgres readiness from real situations: server gone, database dropped",
          "[providers][postgres][cli]") {
  Cluster c = GetCluster();
  testing::TempDir dir;
  const auto home = dir.path() / "home";
  REQUIRE(Via(home, "provider add postgres --admin-url " + c.url + " --password-file " +
                        WritePassword(dir.path(), c.password))
              .exit_code == 0);
  REQUIRE(Via(home, "addon create postgres app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(Via(home, "release create --app api").exit_code == 0);
  const std::string id = Json(Via(home, "--json addon status app-db"))["addon"]["id"];

  // Dropped behind Via's back: storage_missing, and its remediation works.
  const auto conf = home / "keys" / "providers" / "postgres.conf";
  std::string tag;
  {
    std::ifstream in(conf);
    std::string url;
    std::getline(in, url);
    std::getline(in, tag);
  }
  std::string lower = id;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const std::string db = "via_" + tag + "_" + lower;
  auto dropped = Run("PGPASSWORD='" + c.password + "' psql -X -q '" + c.url +
                     "' -c 'DROP DATABASE " + db + " WITH (FORCE)' 2>&1");
  INFO(dropped.out);
  REQUIRE(dropped.exit_code == 0);
  auto missing = Via(home, "--json addon status app-db");
  CHECK(missing.exit_code == 3);
  auto m = Json(missing);
  CHECK(m["blocking"] == "storage_missing");
  const std::string fix = m["remediation"];
  CHECK(fix == "via addon ensure postgres app-db --app api --repair");
  auto repaired = Via(home, fix.substr(4));
  INFO(repaired.out);
  CHECK(repaired.exit_code == 0);
  CHECK(Json(Via(home, "--json addon status app-db"))["usable_by_app"] == true);

  // The server stops answering (its address changes under the home): the
  // blocker says so, owned by the platform, and status still answers fast.
  std::string text;
  {
    std::ifstream in(conf);
    text.assign((std::istreambuf_iterator<char>(in)), {});
  }
  const std::string moved = "postgresql://via@127.0.0.1:1/postgres\n" + tag + "\n";
  std::ofstream(conf, std::ios::trunc) << moved;
  const auto start = std::chrono::steady_clock::now();
  auto down = Via(home, "--json addon status app-db");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  CHECK(down.exit_code == 3);
  auto d = Json(down);
  CHECK(d["blocking"] == "storage_unreachable");
  CHECK(d["owner"] == "platform");
  CHECK(d["remediation"].is_null());
  std::ofstream(conf, std::ios::trunc) << text;
  CHECK(Json(Via(home, "--json addon status app-db"))["usable_by_app"] == true);
}

TEST_CASE("postgres: a kill -9 at the new crash points is recovered by via recover",
          "[providers][postgres][crash]") {
  Cluster c = GetCluster();
  testing::TempDir dir;
  const auto home = dir.path() / "home";
  REQUIRE(Via(home, "provider add postgres --admin-url " + c.url + " --password-file " +
                        WritePassword(dir.path(), c.password))
              .exit_code == 0);
  auto crashed = [&](const std::string& point, const std::string& args) {
    return Run("VIA_CRASH_AT=" + point + " " + testing::ViaBinary() + " --home '" + home.string() +
               "' " + args + " </dev/null >/dev/null 2>&1")
        .exit_code;
  };
  // Provisioning, between the database and StorageProvisioned.
  CHECK(crashed("pg.provision.after_database", "addon create postgres app-db --app api --bind DATABASE") ==
        137);
  REQUIRE(Via(home, "release create --app api").exit_code == 0);
  auto recovered = Via(home, "--json recover");
  REQUIRE(recovered.exit_code == 0);
  auto r = Json(recovered);
  INFO(r.dump());
  REQUIRE(r["intents"].size() == 1);
  CHECK(r["intents"][0]["kind"] == "provisioning");
  CHECK(r["intents"][0]["action"] == "finished");
  auto status = Json(Via(home, "--json addon status app-db"));
  INFO(status.dump());
  CHECK(status["usable_by_app"] == true);

  // A restore killed after the swap, before SnapshotRestored.
  auto snap = Via(home, "--json addon snapshot app-db");
  REQUIRE(snap.exit_code == 0);
  const std::string snapshot_id = Json(snap)["id"];
  CHECK(crashed("restore.after_swap", "--yes addon restore app-db --snapshot " + snapshot_id) == 137);
  CHECK(Json(Via(home, "--json addon status app-db"))["blocking"] == "restore_in_progress");
  REQUIRE(Via(home, "recover").exit_code == 0);
  CHECK(Json(Via(home, "--json addon status app-db"))["usable_by_app"] == true);
  // Twice changes nothing the second time.
  auto again = Via(home, "--json recover");
  REQUIRE(again.exit_code == 0);
  CHECK(Json(again)["changed"] == false);
}

namespace {

// Records of `type` in the log.
int Count(const std::filesystem::path& home, const std::string& type) {
  auto r = Via(home, "--json audit log");
  REQUIRE(r.exit_code == 0);
  int n = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && nlohmann::json::parse(line)["type"] == type) ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("postgres: pg_dump missing from PATH is a clear error, nothing left half done",
          "[providers][postgres][cli]") {
  Cluster c = GetCluster();
  testing::TempDir dir;
  const auto home = dir.path() / "home";
  REQUIRE(Via(home, "provider add postgres --admin-url " + c.url + " --password-file " +
                        WritePassword(dir.path(), c.password))
              .exit_code == 0);
  REQUIRE(Via(home, "addon create postgres app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(Via(home, "release create --app api").exit_code == 0);
  const std::string id = Json(Via(home, "--json addon status app-db"))["addon"]["id"];
  // A good snapshot first (with the client programs where they are).
  const std::string good = Json(Via(home, "--json addon snapshot app-db"))["id"];

  // A PATH that holds everything but the PostgreSQL client programs.
  const auto bin = dir.path() / "bin";
  std::filesystem::create_directories(bin);
  const std::string no_client = "PATH='" + bin.string() + "' ";
  auto run = [&](const std::string& args) {
    return Run(no_client + testing::ViaBinary() + " --home '" + home.string() + "' --json " + args +
               " </dev/null");
  };

  auto snap = run("addon snapshot app-db");
  INFO(snap.out);
  CHECK(snap.exit_code == 4);
  auto j = Json(snap);
  CHECK(j["error"]["code"] == "pg_client_missing");
  const std::string message = j["error"]["message"];
  CHECK(message.find("pg_dump") != std::string::npos);
  CHECK(message.find("postgresql-client") != std::string::npos);
  // The request is settled at once (failed, with the reason), not left for
  // `via recover`; no file is left where a later command looks.
  CHECK(Count(home, "SnapshotRequested") == 2);
  CHECK(Count(home, "SnapshotTaken") == 1);
  CHECK(Count(home, "SnapshotFailed") == 1);
  auto list = Json(Via(home, "--json addon snapshots app-db"))["snapshots"];
  int failed = 0;
  for (const auto& s : list) {
    if (s["status"] == "failed") {
      ++failed;
      CHECK(s.dump().find("postgresql-client") != std::string::npos);
    }
  }
  CHECK(failed == 1);
  for (const auto& f : std::filesystem::directory_iterator(home / "snapshots" / id)) {
    INFO(f.path());
    CHECK(f.path().filename().string() == good + ".dump");
  }
  auto recovered = Json(Via(home, "--json recover"));
  CHECK(recovered["intents"].empty());
  CHECK(recovered["changed"] == false);

  // A restore needs pg_dump for its safety snapshot: refused before the
  // restore is requested, the live database untouched.
  auto restore = run("--yes addon restore app-db --snapshot " + good);
  INFO(restore.out);
  CHECK(restore.exit_code == 4);
  CHECK(Json(restore)["error"]["code"] == "pg_client_missing");
  CHECK(Count(home, "RestoreRequested") == 0);
  CHECK(Json(Via(home, "--json addon status app-db"))["usable_by_app"] == true);

  // Verifying needs pg_restore: refused, nothing recorded.
  auto verify = run("addon snapshots verify app-db --snapshot " + good);
  INFO(verify.out);
  CHECK(verify.exit_code == 4);
  CHECK(Json(verify)["error"]["code"] == "pg_client_missing");
  CHECK(Count(home, "SnapshotVerified") == 0);

  // With the programs back on PATH, the same commands work.
  CHECK(Via(home, "addon snapshot app-db").exit_code == 0);
  CHECK(Via(home, "addon snapshots verify app-db --snapshot " + good).exit_code == 0);
  CHECK(Via(home, "audit verify").exit_code == 0);
}

TEST_CASE("postgres: via serve's SQL proxy refuses the add-on with 400 addon_not_proxied",
          "[providers][postgres][serve]") {
  Cluster c = GetCluster();
  testing::TempDir dir;
  const auto home = dir.path() / "home";
  REQUIRE(Via(home, "provider add postgres --admin-url " + c.url + " --password-file " +
                        WritePassword(dir.path(), c.password))
              .exit_code == 0);
  REQUIRE(Via(home, "addon create postgres app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(Via(home, "release create --app api").exit_code == 0);

  // The credential a proxied add-on's app would hold (the proxy's token
  // format, derived from credentials.key, the add-on id, generation 1 and
  // its salt): genuine, so the refusal is about the provider, not the token.
  providers::Registry registry;
  providers::postgres::Register(registry);
  testing::FakeClock clock;
  testing::CountingIds ids;
  commands::Context ctx;
  ctx.home = eventstore::Home{home};
  ctx.actor = "test";
  ctx.clock = &clock;
  ctx.ids = &ids;
  ctx.providers = &registry;
  auto report = commands::AddonStatus(ctx, "app-db");
  REQUIRE(report.ok());
  REQUIRE(report->addon.has_value());
  const std::string id = report->addon->id;
  auto key = eventstore::ReadFile(ctx.home.credentials_key());
  REQUIRE(key.ok());
  const Hash256 mac = crypto::DeriveCredential(*key, id, 1, report->addon->generations.at(0).salt);
  const std::string token = server::FormatAuthToken(id, 1, mac);

  testing::ServeProcess serve(home);
  REQUIRE_FALSE(serve.url().empty());
  const std::string pipeline =
      R"({"baton":null,"requests":[{"type":"execute","stmt":{"sql":"SELECT 1"}},{"type":"close"}]})";
  auto post = [&](const std::string& bearer) {
    auto r = Run("curl -s -w '\n%{http_code}' -H 'Authorization: Bearer " + bearer +
                 "' -H 'Content-Type: application/json' --data '" + pipeline + "' " + serve.url() +
                 "/v2/pipeline");
    REQUIRE(r.exit_code == 0);
    const auto cut = r.out.rfind('\n');
    return std::make_pair(std::stoi(r.out.substr(cut + 1)), r.out.substr(0, cut));
  };
  auto [status, body] = post(token);
  INFO(body);
  CHECK(status == 400);
  auto j = nlohmann::json::parse(body, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  CHECK(j.dump().find("addon_not_proxied") != std::string::npos);
  CHECK(body.find("descriptor") != std::string::npos);

  // The app's way in: its descriptor (workload token) is a postgresql://
  // URL that psql uses as it is.
  auto jwt = Via(home, "workload token --app api --release v1");
  REQUIRE(jwt.exit_code == 0);
  const std::string workload = jwt.out.substr(0, jwt.out.find('\n'));
  // The workload token is not a proxy credential either.
  CHECK(post(workload).first == 401);
  auto d = Run("curl -s -H 'Authorization: Bearer " + workload + "' " + serve.url() +
               "/v1/descriptors/DATABASE");
  REQUIRE(d.exit_code == 0);
  auto descriptor = Json(d);
  CHECK(descriptor["provider"] == "postgres");
  const std::string url = descriptor["url"];
  CHECK(url.rfind("postgresql://", 0) == 0);
  auto psql = Psql(url, "CREATE TABLE t(x int); INSERT INTO t VALUES (42); SELECT x FROM t");
  INFO(psql.out);
  CHECK(psql.exit_code == 0);
  CHECK(psql.out.find("42") != std::string::npos);
}
