// Faults of the event log on PostgreSQL that change the whole server, on a
// throwaway cluster of their own (fixture "postgres_faults", one test at a
// time; tools/pg_cluster.sh): a COMMIT that lands on the server while its
// connection is cut off, and the server restarted under load from several
// `via` processes and a `via serve`.

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "domain/reasons.h"
#include "eventstore/event_log.h"
#include "eventstore/postgres/pg_log_store.h"
#include "eventstore/verify.h"
#include "log_backend.h"
#include "serve_process.h"
#include "server/http_get.h"
#include "testing.h"

using namespace via;
using namespace via::eventstore;
namespace pg = via::eventstore::postgres;
using Steady = std::chrono::steady_clock;

namespace {

AppendRequest Events(int n, const std::string& command_id) {
  AppendRequest request;
  request.actor = "tester";
  request.command_id = command_id;
  request.recorded_at_ms = 1732406400000;
  for (int i = 0; i < n; ++i) {
    request.events.push_back(WorkloadTokenIssued{"api", "v1", "tok" + std::to_string(i), 0});
  }
  return request;
}

// Runs `sql` on the cluster's admin database; REQUIREs success.
void Admin(const std::string& sql) {
  auto conn = pg::Conn::Connect(testing::PgClusterUrl());
  REQUIRE(conn.ok());
  Status done = conn->Exec(sql);
  INFO(sql << ": " << done.ToString());
  REQUIRE(done.ok());
}

std::string Show(const std::string& setting) {
  auto conn = pg::Conn::Connect(testing::PgClusterUrl());
  REQUIRE(conn.ok());
  auto r = conn->Query(("SELECT current_setting('" + setting + "')").c_str());
  REQUIRE(r.ok());
  return std::string(r->Text(0, 0));
}

// While it lives, every COMMIT that wrote something waits for a synchronous
// standby that never connects: the transaction is committed locally (in the
// WAL) and held there, as on a primary whose standby is gone. Sessions opened
// after the constructor returns see the setting.
class SynchronousStandbyMissing {
 public:
  SynchronousStandbyMissing() {
    Admin("ALTER SYSTEM SET synchronous_standby_names = 'via_absent_standby'");
    Admin("SELECT pg_reload_conf()");
    for (int i = 0; i < 500 && Show("synchronous_standby_names") != "via_absent_standby"; ++i) {
      ::usleep(10000);
    }
    REQUIRE(Show("synchronous_standby_names") == "via_absent_standby");
  }
  ~SynchronousStandbyMissing() {
    auto conn = pg::Conn::Connect(testing::PgClusterUrl());
    if (!conn.ok()) return;
    (void)conn->Exec("ALTER SYSTEM RESET synchronous_standby_names");
    (void)conn->Exec("SELECT pg_reload_conf()");
    for (int i = 0; i < 500; ++i) {
      auto r = conn->Query("SELECT current_setting('synchronous_standby_names')");
      // The admin session applies the reload before its next statement.
      if (r.ok() && r->Text(0, 0).empty()) break;
      ::usleep(10000);
    }
  }
};

}  // namespace

TEST_CASE("a COMMIT cut off after it landed is answered with its first result, appended once",
          "[postgres]") {
  // With a command id and without one: the retry recognises its own commit
  // by the chain hash of its last record, not by the id.
  const std::string command_id = GENERATE(std::string("second"), std::string(""));
  INFO("command id '" << command_id << "'");
  testing::TempDir home;
  testing::FakeClock clock;
  testing::CountingIds ids;
  testing::TestLogDatabase database;
  const std::string url = database.url();
  {
    auto setup = testing::OpenTestEventLog(home.path(), url, clock, ids);
    REQUIRE(setup->Append(Events(2, "first")).ok());
  }
  testing::FakeClock clock2;
  testing::CountingIds ids2;
  Head before;
  std::atomic<bool> terminated{false};
  std::thread killer;
  {
    SynchronousStandbyMissing standby_missing;
    std::unique_ptr<EventLog> log;
    bool armed = true;
    // Just before COMMIT is sent: a watcher ends the session once the server
    // has written the commit and waits for the standby (wait event SyncRep),
    // then lets commits through again. The client sees its connection close
    // in the middle of COMMIT; the server keeps the commit.
    auto crash = CrashPoints::Calling([&](std::string_view name) {
      if (name != "append.commit" || !armed) return;
      armed = false;
      const int pid = static_cast<pg::PgLogStore&>(log->store()).conn().backend_pid();
      killer = std::thread([&terminated, url, pid] {
        auto conn = pg::Conn::Connect(url);
        if (!conn.ok()) return;
        for (int i = 0; i < 3000; ++i) {
          auto r = conn->Query(
              "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND "
              "wait_event = 'SyncRep'",
              {pg::Param::Int8(pid)});
          if (r.ok() && r->rows() == 1) {
            terminated = true;
            // The standby "comes back": the retry's own COMMIT, which
            // confirms the landed append, waits for it.
            (void)conn->Exec("ALTER SYSTEM RESET synchronous_standby_names");
            (void)conn->Exec("SELECT pg_reload_conf()");
            return;
          }
          ::usleep(10000);
        }
      });
    });
    log = testing::OpenTestEventLog(home.path(), "", clock2, ids2, crash);
    before = *log->store().GetHead();
    auto appended = log->Append(Events(3, command_id));
    if (killer.joinable()) killer.join();
    INFO(appended.status().ToString());
    REQUIRE(terminated);  // the COMMIT really was cut off
    REQUIRE(appended.ok());
    CHECK_FALSE(appended->replayed);
    CHECK(appended->first_seq == before.seq + 1);
    CHECK(appended->last_seq == before.seq + 3);
    CHECK(appended->head.seq == before.seq + 3);
  }
  // Exactly one copy landed, and the log goes on from it.
  auto log = testing::OpenTestEventLog(home.path(), "", clock, ids);
  CHECK(log->store().GetHead()->seq == before.seq + 3);
  if (!command_id.empty()) {
    auto found = log->store().FindCommand(command_id);
    REQUIRE(found.ok());
    REQUIRE(found->has_value());
    CHECK((*found)->last_seq == before.seq + 3);
  }
  auto next = log->Append(Events(1, ""));
  REQUIRE(next.ok());
  CHECK(next->first_seq == before.seq + 4);
  VerifyReport report = VerifyLog(log->store(), {});
  CHECK(report.status.ok());
  CHECK(report.size == before.seq + 4);
}

namespace {

using json = nlohmann::json;

struct Command {
  std::string args;  // after --json --command-id ID
  std::string id;
  int exit_code = -1;
  std::string out;
  Steady::time_point started, ended;
};

json ParseLine(const std::string& out) {
  try {
    return json::parse(out);
  } catch (const std::exception&) {
    return json();
  }
}

}  // namespace

TEST_CASE("PostgreSQL restarted under load: one chain, every command done once or refused "
          "retryably",
          "[postgres][server]") {
  testing::TestLogDatabase database;  // sets PGPASSFILE for `via`
  const char* cluster = std::getenv("VIA_TEST_PG_DIR");
  REQUIRE(cluster != nullptr);
  testing::TempDir dir;
  const auto home = dir.path() / "home";
  auto via = [&](const std::string& args) { return testing::Via(home, args + " 2>/dev/null"); };
  REQUIRE(via("init --log " + database.url() + " >/dev/null").exit_code == 0);
  REQUIRE(via("addon create sqlite app-db --app api --bind DATABASE >/dev/null").exit_code == 0);
  constexpr int kReleases = 12;
  const std::vector<std::string> tokens = testing::ReleaseTokens(home, kReleases);
  testing::ServeProcess server(home, {"--snapshot-maintenance", "false"});
  REQUIRE(!server.url().empty());
  const int port = testing::PortOf(server.url());

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<Command> commands;
  // Three CLI processes at a time, each changing state under a command id.
  constexpr int kWorkers = 3;
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0; !stop; ++i) {
        Command c;
        c.id = "w" + std::to_string(w) + "-" + std::to_string(i);
        c.args = i % 2 == 0 ? "addon create sqlite db-" + c.id + " --app api"
                            : "workload token --app api --release v1 --ttl 30m";
        c.started = Steady::now();
        auto result = via("--json --command-id " + c.id + " " + c.args);
        c.ended = Steady::now();
        c.exit_code = result.exit_code;
        c.out = result.out;
        std::lock_guard lock(mu);
        commands.push_back(std::move(c));
      }
    });
  }
  // `via serve` answering descriptors meanwhile, a new release every 300 ms.
  std::map<int, int> http_statuses;
  std::thread client([&] {
    const auto start = Steady::now();
    while (!stop) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - start);
      const int r = std::min<int>(kReleases - 1, static_cast<int>(ms.count() / 300));
      auto got = testing::HttpCall(port, "GET", "/v1/descriptors/DATABASE", tokens[r]);
      std::lock_guard lock(mu);
      ++http_statuses[got.status];
    }
  });

  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const auto restart_begin = Steady::now();
  auto restarted =
      testing::Run(std::string(VIA_PG_CLUSTER_TOOL) + " restart " + cluster + " 2>&1");
  const auto restart_end = Steady::now();
  INFO(restarted.out);
  REQUIRE(restarted.exit_code == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  stop = true;
  for (auto& t : workers) t.join();
  client.join();

  // Every command succeeded, or failed with the retryable log_unreachable.
  int overlapping = 0, failed = 0;
  for (const Command& c : commands) {
    INFO(c.id << " " << c.args << " -> " << c.exit_code << ": " << c.out);
    if (c.exit_code != 0) {
      ++failed;
      CHECK(c.exit_code == 1);
      CHECK(ParseLine(c.out)["error"]["code"] == "log_unreachable");
    }
    if (c.started < restart_end && c.ended > restart_begin) ++overlapping;
  }
  std::string http;
  for (auto [status, count] : http_statuses) {
    http += " " + std::to_string(status) + " x" + std::to_string(count);
  }
  // One line of what happened, also when it passes.
  WARN("commands " << commands.size() << ", failed (log_unreachable) " << failed
                   << ", overlapping the restart " << overlapping << "; restart took "
                   << std::chrono::duration_cast<std::chrono::milliseconds>(restart_end -
                                                                            restart_begin)
                          .count()
                   << " ms; HTTP" << http);
  CHECK(overlapping > 0);  // the restart did happen under load
  CHECK(commands.size() > 6);
  // `via serve` answered throughout (200, or 503 while the log was away),
  // and answers again now.
  for (auto [status, count] : http_statuses) {
    INFO("HTTP " << status << " x" << count);
    CHECK((status == 200 || status == 503));
  }
  CHECK(testing::HttpCall(port, "GET", "/v1/descriptors/DATABASE", tokens[0]).status == 200);

  // Run again with the same command id, every command answers from its one
  // run: the first answer for those that succeeded, and a failed one now
  // completes exactly once, whether or not its first run landed.
  for (const Command& c : commands) {
    auto again = via("--json --command-id " + c.id + " " + c.args);
    INFO(c.id << " " << c.args << " -> " << c.out << " / again " << again.exit_code << ": "
              << again.out);
    REQUIRE(again.exit_code == 0);
    if (c.exit_code == 0) {
      if (c.args.rfind("workload token", 0) == 0) {
        CHECK(again.out == c.out);  // the same token
      } else {
        // The same add-on (the readiness report names it).
        const json first = ParseLine(c.out), second = ParseLine(again.out);
        const json none;
        const json& id = first.is_object() && first.contains("addon") ? first["addon"]["id"] : none;
        CHECK(id.is_string());
        CHECK((second.is_object() && second.contains("addon") && second["addon"]["id"] == id));
      }
    }
  }
  // One chain, verified; no command id twice; one record of each command.
  auto verified = via("--json audit verify");
  INFO(verified.out);
  CHECK(verified.exit_code == 0);
  auto conn = pg::Conn::Connect(database.url());
  REQUIRE(conn.ok());
  auto twice = conn->Query(
      "SELECT count(*) FROM (SELECT command_id FROM via.records WHERE command_id IS NOT NULL "
      "GROUP BY command_id HAVING count(*) > 1) AS d");
  REQUIRE(twice.ok());
  CHECK(twice->Int8(0, 0) == 0);
  std::map<std::string, int> types;
  auto log = via("--json audit log");
  std::istringstream lines(log.out);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) ++types[ParseLine(line)["type"].get<std::string>()];
  }
  std::size_t creates = 0;
  for (const Command& c : commands) creates += c.args.rfind("addon create", 0) == 0;
  CHECK(types["AddonCreated"] == static_cast<int>(1 + creates));
  CHECK(types["StorageProvisioned"] == static_cast<int>(1 + creates));
  CHECK(types["WorkloadTokenIssued"] == static_cast<int>(kReleases + commands.size() - creates));
  CHECK(types["GenerationDelivered"] >= 1);
  CHECK(types["GenerationDelivered"] <= kReleases);
}

// Opening a log reads seq 1 (the log's identity) and checks the tail (head
// row, its predecessor, the newest note, the Merkle root). A connection cut
// off during any of those reads is the retryable log_unreachable: it says
// nothing about the log's content, so it must never come out as an integrity
// failure (log_not_initialized, broken_tail: exit 6). Found by the restart
// test, where a command opening the log during the restart exited 6.
TEST_CASE("a connection cut off while the log is opened is log_unreachable, never an "
          "integrity failure",
          "[postgres]") {
  testing::TempDir home;
  testing::FakeClock clock;
  testing::CountingIds ids;
  testing::TestLogDatabase database;
  {
    auto log = testing::OpenTestEventLog(home.path(), database.url(), clock, ids);
    for (int i = 0; i < 20; ++i) REQUIRE(log->Append(Events(1 + i % 3, "c" + std::to_string(i))).ok());
  }
  const std::string db = database.url().substr(database.url().rfind('/') + 1);
  // Another connection ends every other session of the log's database, over
  // and over, while this thread opens the log.
  std::atomic<bool> stop{false};
  std::atomic<int> kills{0};
  const std::string admin_url = testing::PgClusterUrl();
  std::thread killer([&] {
    std::minstd_rand pause(16);
    // No REQUIRE on this thread (Catch is not thread-safe): without its
    // connection no session is ended, and the check below fails.
    auto conn = pg::Conn::Connect(admin_url);
    if (!conn.ok()) return;
    while (!stop) {
      auto r = conn->Query(("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = '" + db + "' AND pid <> pg_backend_pid()")
                               .c_str());
      if (r.ok()) kills += static_cast<int>(r->Int8(0, 0));
      // Pauses from 0 to 20 ms, so that cuts land anywhere in an open,
      // and some opens get through.
      ::usleep(static_cast<useconds_t>(pause() % 20000));
    }
  });
  std::map<std::string, int> outcomes;  // "ok", or the error's code and reason
  const auto until = Steady::now() + std::chrono::seconds(4);
  while (Steady::now() < until) {
    EventLog::Options options;
    options.home = Home{home.path()};
    options.clock = &clock;
    options.ids = &ids;
    auto log = EventLog::Open(options);
    if (log.ok()) {
      ++outcomes["ok"];
      continue;
    }
    INFO(log.status().ToString());
    CHECK(log.status().code() != StatusCode::kDataLoss);
    ++outcomes[std::string(log.status().reason())];
  }
  stop = true;
  killer.join();
  std::string seen;
  for (auto [what, n] : outcomes) seen += " " + what + " x" + std::to_string(n);
  INFO("outcomes:" << seen << "; sessions ended " << kills.load());
  // Both happened: opens that got through and opens cut off.
  CHECK(outcomes["ok"] > 0);
  CHECK(outcomes[reason::kLogUnreachable] > 0);
  // And the log is whole.
  auto log = testing::OpenTestEventLog(home.path(), "", clock, ids);
  VerifyReport report = VerifyLog(log->store(), {});
  CHECK(report.status.ok());
  CHECK(report.size == 40);
}
