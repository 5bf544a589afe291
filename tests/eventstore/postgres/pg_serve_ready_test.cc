// `via serve` on a PostgreSQL log: /readyz fails with a reason while the log
// cannot be read (its table renamed away) or while the catch-up is stuck
// behind a lock another session holds, /healthz stays a liveness check, and
// readiness comes back when the log does.

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "log_backend.h"
#include "nodes_harness.h"
#include "serve_process.h"
#include "server/http_get.h"
#include "testing.h"

using namespace via;
using via::testing::Eventually;
using via::testing::FreePort;
using via::testing::JsonOf;
using via::testing::Metric;
using via::testing::NodeServer;
using via::testing::ReadText;
using via::testing::TwoHomes;
using via::testing::HttpGet;
using via::testing::PortOf;

namespace {

using json = nlohmann::json;

std::string ReadyCode(int port) {
  auto r = HttpGet(port, "/readyz", 5000);
  if (r.status == 200) return "ready";
  if (r.status != 503) return "status " + std::to_string(r.status);
  return json::parse(r.body)["error"]["code"].get<std::string>();
}

}  // namespace

TEST_CASE("via serve on a PostgreSQL log: /readyz fails while the log cannot be read or lags",
          "[postgres][server]") {
  testing::TestLogDatabase database;  // sets PGPASSFILE for `via`
  testing::TempDir dir;
  const auto home = dir.path() / "home";
  REQUIRE(testing::Via(home, "init --log " + database.url() + " >/dev/null").exit_code == 0);
  testing::ServeProcess server(home, {"--ready-max-lag", "1s", "--snapshot-maintenance", "false"});
  REQUIRE(!server.url().empty());
  const int port = PortOf(server.url());
  REQUIRE(Eventually([&] { return ReadyCode(port) == "ready"; }));

  auto admin = eventstore::postgres::Conn::Connect(database.url());
  REQUIRE(admin.ok());

  SECTION("the log's table is gone: 503 log_unavailable, then ready again") {
    REQUIRE(admin->Exec("ALTER TABLE via.head RENAME TO head_away").ok());
    CHECK(Eventually([&] { return ReadyCode(port) == "log_unavailable"; }));
    auto ready = HttpGet(port, "/readyz");
    CHECK(ready.headers.find("Retry-After: 1") != std::string::npos);
    CHECK(json::parse(ready.body)["ready"] == false);
    CHECK(HttpGet(port, "/healthz").status == 200);  // alive all the same
    REQUIRE(admin->Exec("ALTER TABLE via.head_away RENAME TO head").ok());
    CHECK(Eventually([&] { return ReadyCode(port) == "ready"; }));
  }

  SECTION("a lock holds the catch-up back: 503 catch_up_lagging, then ready again") {
    REQUIRE(admin->Exec("BEGIN").ok());
    REQUIRE(admin->Exec("LOCK TABLE via.head IN ACCESS EXCLUSIVE MODE").ok());
    CHECK(Eventually([&] { return ReadyCode(port) == "catch_up_lagging"; }));
    auto ready = HttpGet(port, "/readyz");
    CHECK(json::parse(ready.body)["lag_ms"].get<std::int64_t>() > 1000);
    // Liveness and the metrics are answered from memory, behind no lock.
    const auto start = std::chrono::steady_clock::now();
    CHECK(HttpGet(port, "/healthz").status == 200);
    auto metrics = HttpGet(port, "/metrics");
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
    CHECK(metrics.body.find("\nvia_ready 0\n") != std::string::npos);
    REQUIRE(admin->Exec("ROLLBACK").ok());
    CHECK(Eventually([&] { return ReadyCode(port) == "ready"; }));
    CHECK(HttpGet(port, "/metrics").body.find("\nvia_ready 1\n") != std::string::npos);
  }
}

// A failover to a replica that lagged (here: the newest records deleted with
// the triggers off) leaves a log shorter than what a node has applied and
// served. The running node stops answering from what is left (503
// log_shorter_than_seen), and a node started again on that log refuses it
// (exit 6, naming both sizes) instead of serving the shorter log.
TEST_CASE("via serve on a PostgreSQL log that lost records the node applied: not ready, "
          "requests refused, a restart refused",
          "[postgres][server]") {
  testing::TestLogDatabase database;  // sets PGPASSFILE for `via`
  testing::TempDir dir;
  const auto home = dir.path() / "home";
  auto via = [&](const std::string& args) { return testing::Via(home, args + " 2>&1"); };
  REQUIRE(via("init --log " + database.url() + " >/dev/null").exit_code == 0);
  REQUIRE(via("addon create sqlite app-db --app api --bind DATABASE >/dev/null").exit_code == 0);
  REQUIRE(via("release create --app api >/dev/null").exit_code == 0);
  auto token = testing::Via(home, "workload token --app api --release v1 --ttl 30m");
  REQUIRE(token.exit_code == 0);
  while (!token.out.empty() && token.out.back() == '\n') token.out.pop_back();
  REQUIRE(via("addon list >/dev/null").exit_code == 0);  // the read model is current

  testing::ServeProcess server(home, {"--snapshot-maintenance", "false"});
  REQUIRE(!server.url().empty());
  const int port = PortOf(server.url());
  // The first descriptor request of the release appends its delivery.
  REQUIRE(testing::HttpCall(port, "GET", "/v1/descriptors/DATABASE", token.out).status == 200);
  auto admin = eventstore::postgres::Conn::Connect(database.url());
  REQUIRE(admin.ok());
  auto head = admin->Query("SELECT seq FROM via.head");
  REQUIRE(head.ok());
  const std::int64_t size = head->Int8(0, 0);
  REQUIRE(Eventually([&] {
    auto r = HttpGet(port, "/readyz", 5000);
    return r.status == 200 && json::parse(r.body)["seq"] == size;
  }));

  const std::int64_t keep = size - 3;
  REQUIRE(admin->Exec("BEGIN; SET LOCAL session_replication_role = replica; "
                      "DELETE FROM via.records WHERE seq > " + std::to_string(keep) +
                      "; UPDATE via.head SET seq = " + std::to_string(keep) +
                      ", hash = (SELECT hash FROM via.records WHERE seq = " + std::to_string(keep) +
                      "); COMMIT")
              .ok());
  CHECK(Eventually([&] { return ReadyCode(port) == "log_shorter_than_seen"; }));
  auto refused = testing::HttpCall(port, "GET", "/v1/descriptors/DATABASE", token.out);
  INFO(refused.body);
  CHECK(refused.status == 503);
  CHECK(refused.body.find("log_shorter_than_seen") != std::string::npos);
  CHECK(HttpGet(port, "/healthz").status == 200);  // alive all the same
  server.Kill();

  // Started again on the shorter log: refused at start, naming both sizes.
  auto restarted = testing::Run("timeout 60 " + testing::ViaBinary() + " --home '" + home.string() +
                                "' serve --listen 127.0.0.1:0 2>&1 </dev/null");
  INFO(restarted.out);
  CHECK(restarted.exit_code == 6);
  CHECK(restarted.out.find("log_shorter_than_seen") != std::string::npos);
  // This home's read model last applied the log before the delivery.
  CHECK(restarted.out.find("holds " + std::to_string(keep) + " records") != std::string::npos);
  CHECK(restarted.out.find("applied " + std::to_string(size - 1)) != std::string::npos);
}
