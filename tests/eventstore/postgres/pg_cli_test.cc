// The real `via` on a PostgreSQL log: `via init --log URL` once, then every
// command uses the log the home remembers, and `audit verify`, `audit prove`
// and `audit log --json` answer as they do on the SQLite log.

#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "eventstore/home.h"
#include "eventstore/postgres/pq.h"
#include "log_backend.h"
#include "testing.h"

using namespace via;
using via::testing::Via;

namespace {

std::pair<int, nlohmann::json> Json(const std::filesystem::path& home, const std::string& args) {
  auto result = Via(home, "--json " + args);
  INFO("via " << args << " -> " << result.exit_code << ": " << result.out);
  nlohmann::json j;
  if (!result.out.empty()) {
    // audit log --json prints one object per line.
    if (result.out.find('\n') + 1 < result.out.size()) {
      j = nlohmann::json::array();
      std::istringstream lines(result.out);
      for (std::string line; std::getline(lines, line);) {
        if (!line.empty()) j.push_back(nlohmann::json::parse(line));
      }
    } else {
      j = nlohmann::json::parse(result.out);
    }
  }
  return {result.exit_code, j};
}

std::set<std::string> Keys(const nlohmann::json& j) {
  std::set<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.insert(it.key());
  return keys;
}

// The same commands on a home; returns (verify, prove, log) outputs.
struct Outputs {
  nlohmann::json verify, prove, log;
};
Outputs Exercise(const std::filesystem::path& home) {
  REQUIRE(Via(home, "addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(Via(home, "addon create sqlite cache --app api --bind CACHE").exit_code == 0);
  Outputs out;
  int code = 0;
  std::tie(code, out.verify) = Json(home, "audit verify");
  CHECK(code == 0);
  std::tie(code, out.prove) = Json(home, "audit prove --inclusion 2");
  CHECK(code == 0);
  std::tie(code, out.log) = Json(home, "audit log");
  CHECK(code == 0);
  return out;
}

}  // namespace

TEST_CASE("via init --log puts the log on PostgreSQL and every command uses it", "[postgres]") {
  testing::TestLogDatabase database;  // sets PGPASSFILE for `via`
  const std::string url = database.url();
  testing::TempDir pg_home, sqlite_home;
  auto [init_code, init] = Json(pg_home.path(), "init --log " + url);
  REQUIRE(init_code == 0);
  CHECK(init["created"] == true);
  CHECK(init["log"] == url);
  // The home remembers the URL, without a password; there is no SQLite log.
  eventstore::Home home{pg_home.path()};
  std::ifstream remembered(home.log_url_file());
  std::string line;
  std::getline(remembered, line);
  CHECK(line == url);
  CHECK_FALSE(std::filesystem::exists(home.log_db()));
  // Init again: the same log, nothing new.
  auto [again_code, again] = Json(pg_home.path(), "init");
  CHECK(again_code == 0);
  CHECK(again["created"] == false);
  CHECK(again["log_id"] == init["log_id"]);

  REQUIRE(Via(sqlite_home.path(), "init").exit_code == 0);
  Outputs pg = Exercise(pg_home.path());
  Outputs lite = Exercise(sqlite_home.path());

  // The same answers, field for field (ids, keys and hashes differ per log).
  CHECK(Keys(pg.verify) == Keys(lite.verify));
  CHECK(pg.verify["size"] == lite.verify["size"]);
  CHECK(pg.verify["checkpoints_verified"] == lite.verify["checkpoints_verified"]);
  CHECK(Keys(pg.prove) == Keys(lite.prove));
  REQUIRE(pg.log.is_array());
  REQUIRE(lite.log.is_array());
  CHECK(pg.log.size() == lite.log.size());
  CHECK(pg.log.size() == pg.verify["size"]);
  for (std::size_t i = 0; i < pg.log.size() && i < lite.log.size(); ++i) {
    CHECK(Keys(pg.log[i]) == Keys(lite.log[i]));
    CHECK(pg.log[i]["seq"] == lite.log[i]["seq"]);
    CHECK(pg.log[i]["type"] == lite.log[i]["type"]);
  }
  // The read model (SQLite, per home) follows the PostgreSQL log: usable
  // once a release of the app claims the binding.
  CHECK(Json(pg_home.path(), "release create --app api").first == 0);
  auto [status_code, status] = Json(pg_home.path(), "addon status app-db");
  CHECK(status_code == 0);
  CHECK(status["usable_by_app"] == true);

  // A record changed behind Via's back on the server: verify names it, exit 6.
  testing::RawLog raw(home);
  const std::uint64_t seq = 3;
  Bytes record = raw.Bytes1("SELECT record FROM records WHERE seq=" + std::to_string(seq));
  record[record.size() / 2] ^= 0x01;
  REQUIRE(raw.Tamper("UPDATE records SET record=?1 WHERE seq=" + std::to_string(seq), &record));
  auto [bad_code, bad] = Json(pg_home.path(), "audit verify");
  CHECK(bad_code == 6);
  CHECK(bad["first_bad_seq"] == seq);
}

TEST_CASE("via on a home whose PostgreSQL log is unreachable exits 1 log_unreachable",
          "[postgres]") {
  testing::TempDir dir;
  auto [code, out] = Json(dir.path(), "init --log postgresql://via@127.0.0.1:1/via");
  CHECK(code == 1);
  CHECK(out["error"]["code"] == "log_unreachable");
  // A URL that never worked is not remembered.
  CHECK_FALSE(std::filesystem::exists(eventstore::Home{dir.path()}.log_url_file()));
  // A home whose server went away: every command says so.
  testing::TempDir gone;
  std::filesystem::create_directories(gone.path());
  {
    std::ofstream url(eventstore::Home{gone.path()}.log_url_file());
    url << "postgresql://via@127.0.0.1:1/via\n";
  }
  auto [verify_code, verify] = Json(gone.path(), "audit verify");
  CHECK(verify_code == 1);
  CHECK(verify["error"]["code"] == "log_unreachable");
  auto [create_code, create] = Json(gone.path(), "addon create sqlite app-db --app api");
  CHECK(create_code == 1);
  CHECK(create["error"]["code"] == "log_unreachable");
}

TEST_CASE("via init --log refuses a URL with a password", "[postgres]") {
  testing::TempDir dir;
  auto [code, out] = Json(dir.path(), "init --log postgresql://via:secret@127.0.0.1:5432/via");
  CHECK(code == 2);
  CHECK(out["error"]["code"] == "password_in_url");
  CHECK_FALSE(std::filesystem::exists(eventstore::Home{dir.path()}.log_url_file()));
}

// docs/operations.md "Cost per append": a home whose log.url names a service
// role leaves an older head guard as it is; naming the owner in log.url for
// one `via init` replaces it, and the home then appends as the service role
// again.
TEST_CASE("the owner's via init replaces an older head guard that a service role's home keeps",
          "[postgres]") {
  namespace pg = via::eventstore::postgres;
  testing::TestLogDatabase database;
  const std::string url = database.url();
  testing::TempDir dir;
  REQUIRE(Via(dir.path(), "init --log " + url + " >/dev/null").exit_code == 0);
  auto run = [&](const std::string& sql) {
    auto conn = pg::Conn::Connect(url);
    REQUIRE(conn.ok());
    Status done = conn->Exec(sql);
    INFO(done.ToString());
    REQUIRE(done.ok());
  };
  auto guard = [&] { return testing::HeadGuardBody(url); };
  const std::string old_test = testing::kFirstHeadGuardClause;
  run(testing::kFirstHeadGuardSql);
  // The service role of docs/operations.md "Privileges", named in log.url.
  const std::string role = "via_cli_svc_" + std::to_string(::getpid());
  run(testing::ServiceRoleSql(role));
  eventstore::Home home{dir.path()};
  auto name_in_log_url = [&](const std::string& u) {
    std::ofstream out(home.log_url_file(), std::ios::trunc);
    out << u << "\n";
  };
  const std::string service_url = url + "?options=-c%20role%3D" + role;
  name_in_log_url(service_url);
  CHECK(Via(dir.path(), "addon create sqlite app-db --app api >/dev/null").exit_code == 0);
  CHECK(guard().find(old_test) != std::string::npos);

  name_in_log_url(url);
  auto [init_code, init] = Json(dir.path(), "init");
  CHECK(init_code == 0);
  CHECK(init["created"] == false);
  CHECK(guard().find(old_test) == std::string::npos);
  CHECK(guard().find("(SELECT pg_catalog.max(seq) FROM via.records)") != std::string::npos);

  name_in_log_url(service_url);
  CHECK(Via(dir.path(), "addon create sqlite cache --app api >/dev/null").exit_code == 0);
  auto [verify_code, verify] = Json(dir.path(), "audit verify");
  CHECK(verify_code == 0);
  run("DROP OWNED BY " + role + "; DROP ROLE " + role);
}
