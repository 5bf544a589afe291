// Several `via serve` nodes on one PostgreSQL log (docs/operations.md
// "Several nodes"): a second home joins the log with the first one's keys and
// no second genesis; nodes announce themselves; an add-on is placed on the
// node whose home created it; descriptors point at the owner; a Hrana
// request (a transaction across requests, batons included) sent to the other
// node is forwarded to the owner; a revocation appended through one node's
// home is enforced by the other within 1 s, woken by LISTEN; pruning
// another node's snapshots is refused with owner_elsewhere; both homes verify
// one chain (owner work itself: pg_owner_work_test.cc).

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <signal.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "eventstore/postgres/pg_listener.h"
#include "eventstore/postgres/pg_log_store.h"
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
using via::testing::HttpCall;
using via::testing::HttpGet;
using via::testing::PortOf;
using via::testing::Via;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// One Hrana v2 pipeline of SQL texts on `port`, continuing `baton`.
json Pipeline(int port, const std::string& token, const std::vector<std::string>& sqls,
              const json& baton = nullptr) {
  json requests = json::array();
  for (const auto& sql : sqls) requests.push_back({{"type", "execute"}, {"stmt", {{"sql", sql}}}});
  auto r = HttpCall(port, "POST", "/v2/pipeline", token,
                    json{{"baton", baton}, {"requests", requests}}.dump());
  INFO(r.status << " " << r.body);
  json out = json::parse(r.body.empty() ? "{}" : r.body);
  out["http_status"] = r.status;
  return out;
}

}  // namespace

TEST_CASE("LISTEN via_log wakes a listener when another connection appends",
          "[postgres][nodes]") {
  testing::TestLogDatabase database;
  testing::TempDir dir;
  const auto home = dir.path() / "home";
  REQUIRE(Via(home, "init --log " + database.url() + " >/dev/null").exit_code == 0);
  auto listener = eventstore::postgres::PgListener::Open(database.url(), "via_log");
  REQUIRE(listener.ok());
  auto quiet = (*listener)->Wait(200);
  REQUIRE(quiet.ok());
  CHECK_FALSE(*quiet);  // nothing appended: a timeout
  REQUIRE(Via(home, "addon create sqlite app-db --app api >/dev/null").exit_code == 0);
  auto woke = (*listener)->Wait(5000);
  REQUIRE(woke.ok());
  CHECK(*woke);
  // The command appended more than once; once they are consumed, it is quiet.
  for (int i = 0; i < 50; ++i) {
    auto more = (*listener)->Wait(200);
    REQUIRE(more.ok());
    if (!*more) break;
  }

  SECTION("a broken connection is an error, and Reconnect listens again") {
    auto admin = eventstore::postgres::Conn::Connect(database.url());
    REQUIRE(admin.ok());
    REQUIRE(admin->Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE "
                        "'LISTEN%' AND datname = current_database()")
                .ok());
    // The server's goodbye may come in before the connection closes: wait
    // (at most 5 s) for the wait that reports the break.
    std::string reason;
    for (int i = 0; i < 50 && reason.empty(); ++i) {
      auto waited = (*listener)->Wait(100);
      if (!waited.ok()) reason = waited.status().reason();
    }
    CHECK(reason == "log_unreachable");
    REQUIRE((*listener)->Reconnect().ok());
    REQUIRE(Via(home, "addon create sqlite other --app api >/dev/null").exit_code == 0);
    auto woke_again = (*listener)->Wait(5000);
    REQUIRE(woke_again.ok());
    CHECK(*woke_again);
  }
}

TEST_CASE("a second home joins a PostgreSQL log only with its keys, without a second genesis",
          "[postgres][nodes]") {
  testing::TestLogDatabase database;
  testing::TempDir dir;
  const auto a = dir.path() / "a";
  const auto b = dir.path() / "b";
  REQUIRE(Via(a, "init --log " + database.url() + " >/dev/null").exit_code == 0);

  auto refused = Via(b, "--json init --log " + database.url());
  CHECK(refused.exit_code == 4);
  CHECK(JsonOf(refused.out)["error"]["code"] == "keys_missing");
  CHECK_FALSE(fs::exists(b / "keys" / "log.key"));  // no key of its own was made
  CHECK_FALSE(fs::exists(b / "log.url"));

  fs::copy(a / "keys", b / "keys", fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  auto joined = Via(b, "--json init --log " + database.url());
  REQUIRE(joined.exit_code == 0);
  const json j = JsonOf(joined.out);
  CHECK(j["created"] == false);
  CHECK(j["size"] == 1);  // one LogInitialized, the first home's
  CHECK(j["verifier_key"] == JsonOf(Via(a, "--json init").out)["verifier_key"]);
  CHECK(Via(b, "audit verify >/dev/null").exit_code == 0);
}

TEST_CASE("two nodes on one PostgreSQL log: placement, descriptors, forwarding, revocation",
          "[postgres][nodes][server]") {
  testing::TestLogDatabase database;  // sets PGPASSFILE for `via`
  testing::TempDir dir;
  const auto home_a = dir.path() / "a";
  const auto home_b = dir.path() / "b";
  REQUIRE(Via(home_a, "init --log " + database.url() + " >/dev/null").exit_code == 0);
  fs::create_directories(home_b);
  fs::copy(home_a / "keys", home_b / "keys");
  REQUIRE(Via(home_b, "init --log " + database.url() + " >/dev/null").exit_code == 0);

  NodeServer a(home_a, "a");
  NodeServer b(home_b, "b");
  REQUIRE(!a.server.url().empty());
  REQUIRE(!b.server.url().empty());
  CHECK(ReadText(home_a / "node") == "a\n");
  CHECK(ReadText(home_b / "node") == "b\n");

  // An app on each node: each add-on is placed where its home is.
  REQUIRE(Via(home_a, "addon create sqlite db-a --app api --bind DATABASE >/dev/null").exit_code == 0);
  REQUIRE(Via(home_b, "addon create sqlite db-b --app web --bind DATABASE >/dev/null").exit_code == 0);
  const json addon_a = JsonOf(Via(home_a, "--json addon status db-a").out)["addon"];
  CHECK(addon_a["node"] == "a");
  CHECK(JsonOf(Via(home_b, "--json addon status db-b").out)["addon"]["node"] == "b");
  CHECK(fs::exists(home_a / "addons" / addon_a["id"].get<std::string>()));
  CHECK_FALSE(fs::exists(home_b / "addons" / addon_a["id"].get<std::string>()));

  // `--node` of another node: that node makes the files (owner work).
  auto elsewhere = Via(home_a, "--json addon create sqlite x --app api --node b");
  CHECK(elsewhere.exit_code == 0);
  const json made_on_b = JsonOf(elsewhere.out)["addon"];
  CHECK(made_on_b["node"] == "b");
  CHECK(fs::exists(home_b / "addons" / made_on_b["id"].get<std::string>()));
  CHECK_FALSE(fs::exists(home_a / "addons" / made_on_b["id"].get<std::string>()));

  REQUIRE(Via(home_a, "release create --app api >/dev/null").exit_code == 0);
  const std::string jwt =
      JsonOf(Via(home_a, "--json workload token --app api --release v1").out)["token"];

  // The descriptor, asked of node b, comes from the owner a (b forwards the
  // request: a probes the storage it holds) and points at a.
  auto described = HttpCall(b.port, "GET", "/v1/descriptors/DATABASE", jwt);
  REQUIRE(described.status == 200);
  const json descriptor = JsonOf(described.body);
  CHECK(descriptor["url"] == a.url);
  const std::string token = descriptor["auth_token"];

  // A transaction over three requests to node b, which forwards each to a:
  // the baton a issued keeps working through b.
  json r = Pipeline(b.port, token, {"CREATE TABLE t(x)"});
  REQUIRE(r["http_status"] == 200);
  r = Pipeline(b.port, token, {"BEGIN", "INSERT INTO t VALUES (1)"});
  REQUIRE(r["http_status"] == 200);
  REQUIRE(r["baton"].is_string());
  r = Pipeline(b.port, token, {"INSERT INTO t VALUES (2)", "COMMIT"}, r["baton"]);
  REQUIRE(r["http_status"] == 200);
  CHECK(r["results"][1]["type"] == "ok");
  // Asked of the owner directly: the rows are there, in a's file.
  r = Pipeline(a.port, token, {"SELECT count(*) FROM t"});
  REQUIRE(r["http_status"] == 200);
  CHECK(r["results"][0]["response"]["result"]["rows"][0][0]["value"] == "2");
  CHECK(Metric(b.port, "via_forwarded_requests_total") == 4);  // the descriptor and 3 pipelines
  CHECK(Metric(a.port, "via_forwarded_requests_total") == 0);
  // The access log of a shows the requests b forwarded.
  CHECK(ReadText(home_a / "access.log").find("/v2/pipeline") != std::string::npos);

  // Both nodes listen; a revocation appended through b's home is applied by
  // a within 1 s, with no request to a meanwhile.
  CHECK(Eventually([&] { return Metric(a.port, "via_log_listening") == 1; }));
  CHECK(Eventually([&] { return Metric(b.port, "via_log_listening") == 1; }));
  REQUIRE(Via(home_b, "addon rotate-credentials db-a >/dev/null").exit_code == 0);
  const std::uint64_t applied = Metric(a.port, "via_revocations_applied_total");
  REQUIRE(Via(home_b, "addon revoke-credentials db-a --generation 1 >/dev/null").exit_code == 0);
  const auto revoked_at = std::chrono::steady_clock::now();
  CHECK(Eventually([&] { return Metric(a.port, "via_revocations_applied_total") == applied + 1; },
                   1000));
  const auto took = std::chrono::steady_clock::now() - revoked_at;
  CHECK(took < std::chrono::seconds(1));
  // Refused on both nodes (b refuses itself, without forwarding).
  CHECK(Pipeline(a.port, token, {"SELECT 1"})["http_status"] == 401);
  r = Pipeline(b.port, token, {"SELECT 1"});
  CHECK(r["http_status"] == 401);
  CHECK(r["code"] == "credential_revoked");
  CHECK(Metric(b.port, "via_forwarded_requests_total") == 4);

  // Pruning a's snapshots (a's files) stays on a's home: from b's home it is
  // refused before anything is appended, and `recover` on b leaves a's add-on
  // alone. (Owner work: pg_owner_work_test.cc.)
  const std::uint64_t size_before = JsonOf(Via(home_b, "--json audit verify").out)["size"];
  auto prune = Via(home_b, "--json addon snapshots prune db-a");
  CHECK(prune.exit_code == 4);
  CHECK(JsonOf(prune.out)["error"]["code"] == "owner_elsewhere");
  CHECK(JsonOf(prune.out)["error"]["remediation"] == "via addon snapshots prune db-a");
  CHECK(JsonOf(Via(home_b, "--json audit verify").out)["size"] == size_before);
  CHECK(Via(home_a, "addon check db-a >/dev/null").exit_code == 0);
  CHECK(Via(home_b, "recover >/dev/null").exit_code == 0);
  CHECK(Via(home_a, "--json addon status db-a").exit_code == 0);  // usable, untouched

  // Four CLI processes at once, two on each home: creates (placed on their
  // home's node), snapshots of a's add-on (asked of a from b's home) and
  // rotations of b's add-on, colliding on one log. No command may fail.
  std::mutex failures_mu;
  std::vector<std::string> failures;
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      const fs::path home = w % 2 == 0 ? home_a : home_b;
      for (int i = 0; i < 3; ++i) {
        const std::string name = "w" + std::to_string(w) + "-" + std::to_string(i);
        for (const std::string& cmd :
             {"addon create sqlite " + name + " --app app" + std::to_string(w),
              std::string("addon snapshot db-a --owner-timeout 60s"),
              std::string("addon rotate-credentials db-b")}) {
          auto run = Via(home, cmd + " >/dev/null");
          if (run.exit_code != 0) {
            std::lock_guard lock(failures_mu);
            failures.push_back(home.filename().string() + ": " + cmd + " -> " +
                               std::to_string(run.exit_code));
          }
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  std::string failed;
  for (const auto& f : failures) failed += f + "\n";
  INFO(failed);
  CHECK(failures.empty());
  for (int w = 0; w < 4; ++w) {
    const json made = JsonOf(Via(home_a, "--json addon status w" + std::to_string(w) + "-2").out);
    CHECK(made["addon"]["node"] == (w % 2 == 0 ? "a" : "b"));
  }
  int taken = 0;
  const json snapshots = JsonOf(Via(home_b, "--json addon snapshots db-a").out)["snapshots"];
  for (const auto& snap : snapshots) {
    CHECK(snap["status"] == "taken");
    taken += snap["status"] == "taken";
    CHECK(fs::exists(home_a / "snapshots" / addon_a["id"].get<std::string>() /
                     (snap["id"].get<std::string>() + ".sqlite")));
  }
  CHECK(taken == 12);  // 4 workers x 3
  CHECK(Via(home_a, "audit verify >/dev/null").exit_code == 0);
  CHECK(Via(home_b, "audit verify >/dev/null").exit_code == 0);

  // The owner down: b answers 503 owner_unreachable, never a torn answer.
  described = HttpCall(b.port, "GET", "/v1/descriptors/DATABASE", jwt);
  REQUIRE(described.status == 200);
  const std::string token2 = JsonOf(described.body)["auth_token"];
  CHECK(JsonOf(described.body)["generation"] == 2);
  CHECK(Pipeline(b.port, token2, {"SELECT count(*) FROM t"})["http_status"] == 200);
  a.server.Kill();
  r = Pipeline(b.port, token2, {"SELECT 1"});
  CHECK(r["http_status"] == 503);
  CHECK(r["code"] == "owner_unreachable");
  described = HttpCall(b.port, "GET", "/v1/descriptors/DATABASE", jwt);
  CHECK(described.status == 503);
  CHECK(JsonOf(described.body)["error"]["code"] == "owner_unreachable");
  CHECK(Metric(b.port, "via_forward_failures_total") == 2);

  // One chain, verified from both homes.
  CHECK(Via(home_a, "audit verify >/dev/null").exit_code == 0);
  CHECK(Via(home_b, "audit verify >/dev/null").exit_code == 0);
}

TEST_CASE("a snapshot asked for on another node's home is taken by the owner's via serve, "
          "also after the owner was killed during one",
          "[postgres][nodes][server]") {
  testing::TestLogDatabase database;
  testing::TempDir dir;
  const auto home_a = dir.path() / "a";
  const auto home_b = dir.path() / "b";
  REQUIRE(Via(home_a, "init --log " + database.url() + " >/dev/null").exit_code == 0);
  fs::create_directories(home_b);
  fs::copy(home_a / "keys", home_b / "keys");
  REQUIRE(Via(home_b, "init --log " + database.url() + " >/dev/null").exit_code == 0);
  std::string id;
  {
    NodeServer a(home_a, "a");
    REQUIRE(!a.server.url().empty());
    REQUIRE(Via(home_a, "addon create sqlite db-a --app api --bind DATABASE >/dev/null").exit_code == 0);
    id = JsonOf(Via(home_a, "--json addon status db-a").out)["addon"]["id"];

    // Asked on b's home (b runs no server: the CLI alone), done by a.
    auto asked = Via(home_b, "--json addon snapshot db-a --owner-timeout 30s");
    REQUIRE(asked.exit_code == 0);
    const json snap = JsonOf(asked.out);
    CHECK(snap["status"] == "taken");
    const std::string sid = snap["id"];
    CHECK(fs::exists(home_a / "snapshots" / id / (sid + ".sqlite")));
    CHECK_FALSE(fs::exists(home_b / "snapshots" / id));
    CHECK(ReadText(home_a / "serve.err").find("snapshot " + sid) != std::string::npos);
  }  // a stops (SIGKILL)

  // The owner down: the command gives up after its timeout with owner_timeout;
  // the request stays, and a takes it when it comes back.
  auto timed_out = Via(home_b, "--json addon snapshot db-a --owner-timeout 1s");
  CHECK(timed_out.exit_code == 1);
  CHECK(JsonOf(timed_out.out)["error"]["code"] == "owner_timeout");
  CHECK(JsonOf(timed_out.out)["error"]["remediation"].get<std::string>().find("via serve --node a") !=
        std::string::npos);
  auto pending = [&](const std::string& status) {
    int n = 0;
    const json snapshots = JsonOf(Via(home_b, "--json addon snapshots db-a").out)["snapshots"];
    for (const auto& s : snapshots) {
      n += s["status"] == status;
    }
    return n;
  };
  CHECK(pending("requested") == 1);

  {
    // a comes back, but is killed (SIGKILL at a crash point) while it takes
    // the pending snapshot: the file is written, its completion is not.
    NodeServer a(home_a, "a", {"VIA_CRASH_AT=snapshot.after_file"});
    CHECK(Eventually([&] { return !a.server.alive(); }));
    CHECK(WTERMSIG(a.server.exit_status()) == SIGKILL);
  }
  CHECK(pending("requested") == 1);
  // Recovery on the owner's home settles the interrupted snapshot.
  REQUIRE(Via(home_a, "recover >/dev/null").exit_code == 0);
  CHECK(pending("requested") == 0);
  CHECK(pending("taken") == 2);

  // And the owner serves again: another asked snapshot is taken.
  NodeServer a(home_a, "a");
  REQUIRE(!a.server.url().empty());
  CHECK(Via(home_b, "addon snapshot db-a --owner-timeout 30s >/dev/null").exit_code == 0);
  CHECK(pending("taken") == 3);
  CHECK(Via(home_a, "audit verify >/dev/null").exit_code == 0);
  CHECK(Via(home_b, "audit verify >/dev/null").exit_code == 0);
}
