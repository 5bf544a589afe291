// via_pglog_bench: the event log on PostgreSQL (issue 16), each row against a
// baseline measured on the same server in the same run. Nothing here asserts
// a speed: rows print medians over the runs, the ratio and the goal; the exit
// code is non-zero only when something failed.
//
//   via_pglog_bench [--seconds S] [--runs N] [--rows append,commands]
//                   [--writers 1,8] [--dir DIR]
//
// It starts a throwaway cluster of its own with tools/pg_cluster.sh in
// DIR/cluster, durable (VIA_PG_CLUSTER_DURABLE=1: fsync on, unlike the test
// cluster), and stops it at the end.
//
// Rows:
//   append    K writer threads (K = 1 and 8) appending one event per append
//             (a WorkloadTokenIssued, with a command id, as `via serve` and
//             the commands append) for S seconds: events/s. With K = 1 the
//             thread calls LogStore::Append on its own connection. With K = 8
//             the goal row is what `via serve` does: the 8 threads submit to
//             one GroupCommitter (eventstore/group_commit.h) over one
//             connection, which commits the appends waiting at once in one
//             transaction (each append still with its own rows, command id
//             and signed note); a second row, without a goal, has 8
//             independent connections each calling Append, as 8 CLI
//             processes would. Baseline: K threads inserting the same rows
//             (read back from the log) into a plain table of the same
//             columns and index, one row per BEGIN; INSERT; COMMIT, each on
//             its own connection.   goal >= 0.5x, >= 2,000 events/s at K = 8
//   commands  `via --json addon status target` and `via addon
//             rotate-credentials target` on a home whose log is on this
//             PostgreSQL server against the same on a SQLite home: median
//             wall ms of N*10 runs each (no goal in the issue; printed).

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "eventstore/event_log.h"
#include "eventstore/group_commit.h"
#include "eventstore/postgres/pq.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace pg = via::eventstore::postgres;
using Clock = std::chrono::steady_clock;

class WallClock : public via::Clock {
 public:
  std::int64_t NowMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

class CountingIds : public via::IdGenerator {
 public:
  std::string NewId(const std::string& prefix) override {
    return prefix + "bench" + std::to_string(++n_);
  }

 private:
  std::atomic<int> n_{0};
};

// The command that stops the bench's cluster, also when it dies.
std::string g_stop_cluster;

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "via_pglog_bench: " << what << "\n";
  if (!g_stop_cluster.empty()) (void)std::system(g_stop_cluster.c_str());
  std::exit(1);
}

void Check(const via::Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void Row(const std::string& name, double ours, double base, const char* unit,
         const std::string& goal) {
  std::printf("%-62s %10.1f %s %10.1f %s %6.2fx  %s\n", name.c_str(), ours, unit, base, unit,
              base > 0 ? ours / base : 0.0, goal.c_str());
}

// Runs argv with stdout and stderr to /dev/null; wall ms; dies unless exit 0.
double Spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  const auto start = Clock::now();
  pid_t pid = 0;
  if (posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) {
    Die("cannot run " + args[0]);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  posix_spawn_file_actions_destroy(&actions);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string line;
    for (const auto& a : args) line += a + " ";
    Die("failed: " + line);
  }
  return ms;
}

std::vector<std::string> Via(const fs::path& home, std::vector<std::string> args) {
  std::vector<std::string> out = {VIA_BINARY, "--home", home.string()};
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

std::string ReadLine(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The cluster's admin URL with another database.
std::string WithDatabase(const std::string& url, const std::string& db) {
  return url.substr(0, url.rfind('/') + 1) + db;
}

std::string NewDatabase(const std::string& admin_url, const std::string& name) {
  auto conn = pg::Conn::Connect(admin_url);
  if (!conn.ok()) Die(conn.status().ToString());
  Check(conn->Exec("SET client_min_messages = warning"), "quiet notices");
  Check(conn->Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"), "drop database");
  Check(conn->Exec("CREATE DATABASE " + name), "create database");
  return WithDatabase(admin_url, name);
}

via::eventstore::EventLog::Options LogOptions(const fs::path& home, const std::string& url,
                                              via::Clock& clock, via::IdGenerator& ids) {
  via::eventstore::EventLog::Options options;
  options.home = via::eventstore::Home{home};
  options.clock = &clock;
  options.ids = &ids;
  options.actor = "bench";
  options.log_url = url;
  return options;
}

struct AppendRun {
  double via_per_s = 0;          // independent connections, Append each
  double via_grouped_per_s = 0;  // one GroupCommitter (writers > 1 only)
  double plain_per_s = 0;
};

// One run of the append row with `writers` threads for `seconds` each side.
AppendRun RunAppend(const std::string& admin_url, const fs::path& dir, int writers,
                    double seconds, int run) {
  const std::string db = "via_bench_" + std::to_string(run) + "_" + std::to_string(writers);
  const std::string url = NewDatabase(admin_url, db);
  const fs::path home = dir / db;
  fs::remove_all(home);
  fs::create_directories(home);
  WallClock clock;
  CountingIds ids;
  {
    auto log = via::eventstore::EventLog::Open(LogOptions(home, url, clock, ids));
    if (!log.ok()) Die(log.status().ToString());
  }
  const auto duration = std::chrono::duration<double>(seconds);

  // One append of writer `w`, its `n`-th.
  auto request_of = [](int w, std::uint64_t n, std::int64_t now_ms) {
    via::eventstore::AppendRequest request;
    request.actor = "bench";
    request.command_id = "bench/" + std::to_string(w) + "/" + std::to_string(n);
    request.recorded_at_ms = now_ms;
    request.events.push_back(via::WorkloadTokenIssued{
        "api", "v1", "wt_" + std::to_string(w) + "_" + std::to_string(n), now_ms + 600000});
    return request;
  };

  // grouped: the writers submit to one GroupCommitter over one connection
  // (as `via serve`); otherwise each has its own connection and appends.
  auto via_side = [&](bool grouped, int pass) {
    std::atomic<std::uint64_t> events{0};
    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    WallClock shared_clock;
    CountingIds shared_ids;
    std::unique_ptr<via::eventstore::EventLog> shared_log;
    std::unique_ptr<via::eventstore::GroupCommitter> committer;
    if (grouped) {
      auto log = via::eventstore::EventLog::Open(LogOptions(home, "", shared_clock, shared_ids));
      if (!log.ok()) Die(log.status().ToString());
      shared_log = std::move(log).value();
      committer = std::make_unique<via::eventstore::GroupCommitter>(shared_log->store(),
                                                                    shared_log->signer());
    }
    const auto start = Clock::now();
    for (int w = 0; w < writers; ++w) {
      threads.emplace_back([&, w] {
        WallClock c;
        CountingIds i;
        std::unique_ptr<via::eventstore::EventLog> own;
        if (!grouped) {
          auto log = via::eventstore::EventLog::Open(LogOptions(home, "", c, i));
          if (!log.ok()) {
            std::cerr << log.status().ToString() << "\n";
            failed = true;
            return;
          }
          own = std::move(log).value();
        }
        for (std::uint64_t n = 0; Clock::now() - start < duration; ++n) {
          auto request = request_of(w + pass * writers, n, c.NowMs());
          auto appended = grouped ? committer->Submit(request) : own->Append(request);
          if (!appended.ok() || appended->replayed) {
            std::cerr << appended.status().ToString() << "\n";
            failed = true;
            return;
          }
          ++events;
        }
      });
    }
    for (auto& t : threads) t.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    if (failed) Die("an append failed");
    if (committer) {
      std::printf("  (run %d: %llu appends in %llu transactions)\n", run,
                  static_cast<unsigned long long>(committer->submitted()),
                  static_cast<unsigned long long>(committer->batches()));
    }
    return static_cast<double>(events) / elapsed;
  };

  auto plain_side = [&] {
    // The rows the log holds, inserted again into a plain table.
    auto setup = pg::Conn::Connect(url);
    if (!setup.ok()) Die(setup.status().ToString());
    Check(setup->Exec("SET client_min_messages = warning; DROP TABLE IF EXISTS plain; CREATE TABLE plain(seq bigserial PRIMARY KEY, "
                      "record bytea NOT NULL, hash bytea NOT NULL, nodes bytea NOT NULL, "
                      "command_id text, checkpoint text); CREATE INDEX plain_by_command ON "
                      "plain(command_id) WHERE command_id IS NOT NULL"),
          "create plain table");
    struct PlainRow {
      std::string record, hash, nodes, command_id, checkpoint;
    };
    std::vector<PlainRow> rows;
    auto r = setup->Query(
        "SELECT record, hash, nodes, command_id, checkpoint FROM via.records ORDER BY seq "
        "LIMIT 4096");
    if (!r.ok()) Die(r.status().ToString());
    for (int i = 0; i < r->rows(); ++i) {
      auto bytes = [&](int col) {
        via::ByteView b = r->Bytes(i, col);
        return std::string(reinterpret_cast<const char*>(b.data()), b.size());
      };
      rows.push_back({bytes(0), bytes(1), bytes(2), std::string(r->Text(i, 3)),
                      std::string(r->Text(i, 4))});
    }
    if (rows.empty()) Die("no rows to insert");
    std::atomic<std::uint64_t> inserted{0};
    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    const auto start = Clock::now();
    for (int w = 0; w < writers; ++w) {
      threads.emplace_back([&, w] {
        auto conn = pg::Conn::Connect(url);
        if (!conn.ok()) {
          failed = true;
          return;
        }
        for (std::uint64_t n = 0; Clock::now() - start < duration; ++n) {
          const PlainRow& row = rows[(n * writers + w) % rows.size()];
          const std::string command_id = row.command_id + "/" + std::to_string(w) + "/" +
                                         std::to_string(n);
          auto as_bytes = [](const std::string& s) {
            return via::ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
          };
          if (!conn->Exec("BEGIN").ok() ||
              !conn->Query("INSERT INTO plain(record, hash, nodes, command_id, checkpoint) "
                           "VALUES ($1, $2, $3, $4, $5)",
                           {pg::Param::Bytea(as_bytes(row.record)),
                            pg::Param::Bytea(as_bytes(row.hash)),
                            pg::Param::Bytea(as_bytes(row.nodes)), pg::Param::Text(command_id),
                            pg::Param::Text(row.checkpoint)})
                   .ok() ||
              !conn->Exec("COMMIT").ok()) {
            failed = true;
            return;
          }
          ++inserted;
        }
      });
    }
    for (auto& t : threads) t.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    if (failed) Die("a plain insert failed");
    return static_cast<double>(inserted) / elapsed;
  };

  AppendRun out;
  // The log first (the baseline reuses its rows); the order of the runs'
  // sides does not alternate for that reason, and the server is warm for both.
  out.via_per_s = via_side(false, 0);
  if (writers > 1) out.via_grouped_per_s = via_side(true, 1);
  out.plain_per_s = plain_side();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::set<std::string> rows = {"append", "commands"};
  std::vector<int> writer_counts = {1, 8};
  double seconds = 5;
  int runs = 3;
  fs::path dir = fs::temp_directory_path() / "via-pglog-bench";
  auto list = [](const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');) out.push_back(item);
    return out;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--seconds") {
      seconds = std::stod(next());
    } else if (arg == "--runs") {
      runs = std::stoi(next());
    } else if (arg == "--rows") {
      rows.clear();
      for (auto& r : list(next())) rows.insert(r);
    } else if (arg == "--writers") {
      writer_counts.clear();
      for (auto& w : list(next())) writer_counts.push_back(std::stoi(w));
    } else if (arg == "--dir") {
      dir = next();
    } else {
      Die("unknown argument " + arg);
    }
  }
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path cluster = dir / "cluster";
  ::setenv("VIA_PG_CLUSTER_DURABLE", "1", 1);
  const std::string tool = VIA_PG_CLUSTER_TOOL;
  if (std::system((tool + " start " + cluster.string() + " >/dev/null").c_str()) != 0) {
    Die("cannot start the cluster");
  }
  g_stop_cluster = tool + " stop " + cluster.string() + " >/dev/null";
  struct StopCluster {
    ~StopCluster() { (void)std::system(g_stop_cluster.c_str()); }
  } stop;
  ::setenv("PGPASSFILE", (cluster / "pgpass").c_str(), 1);
  const std::string admin = ReadLine(cluster / "url");
  std::printf("via_pglog_bench: PostgreSQL 15 (fsync on) on loopback, %d runs of %.0f s, %u cpus\n",
              runs, seconds, std::thread::hardware_concurrency());

  if (rows.count("append")) {
    for (int writers : writer_counts) {
      std::vector<double> ours, grouped, base;
      for (int run = 0; run < runs; ++run) {
        AppendRun r = RunAppend(admin, dir, writers, seconds, run);
        ours.push_back(r.via_per_s);
        grouped.push_back(r.via_grouped_per_s);
        base.push_back(r.plain_per_s);
      }
      auto goal_of = [&](double m) {
        std::string goal = "goal >= 0.5x";
        if (m < 0.5 * Median(base)) goal += " (ratio NOT MET)";
        if (writers == 8) goal += m >= 2000 ? ", >= 2,000/s" : ", >= 2,000/s NOT MET";
        return goal;
      };
      if (writers == 1) {
        Row("durable appends, 1 writer vs INSERT+COMMIT", Median(ours), Median(base), "ev/s",
            goal_of(Median(ours)));
      } else {
        const std::string k = std::to_string(writers);
        Row("durable appends, " + k + " writers, group commit vs INSERT+COMMIT",
            Median(grouped), Median(base), "ev/s", goal_of(Median(grouped)));
        Row("durable appends, " + k + " independent connections vs INSERT+COMMIT", Median(ours),
            Median(base), "ev/s", "(no goal)");
      }
    }
  }
  if (rows.count("commands")) {
    const fs::path lite = dir / "home-sqlite";
    const fs::path pgh = dir / "home-pg";
    const std::string url = NewDatabase(admin, "via_bench_commands");
    Spawn(Via(lite, {"init"}));
    Spawn(Via(pgh, {"init", "--log", url}));
    for (const fs::path& h : {lite, pgh}) {
      // Bound and claimed by a release: usable, so status exits 0.
      Spawn(Via(h, {"addon", "create", "sqlite", "target", "--app", "api", "--bind", "DATABASE"}));
      Spawn(Via(h, {"release", "create", "--app", "api"}));
      Spawn(Via(h, {"--json", "addon", "status", "target"}));  // warm caches
    }
    std::vector<double> status_pg, status_lite, rotate_pg, rotate_lite;
    for (int i = 0; i < runs * 10; ++i) {
      status_pg.push_back(Spawn(Via(pgh, {"--json", "addon", "status", "target"})));
      status_lite.push_back(Spawn(Via(lite, {"--json", "addon", "status", "target"})));
      rotate_pg.push_back(Spawn(Via(pgh, {"addon", "rotate-credentials", "target"})));
      rotate_lite.push_back(Spawn(Via(lite, {"addon", "rotate-credentials", "target"})));
    }
    Row("addon status --json: PostgreSQL log vs SQLite log", Median(status_pg),
        Median(status_lite), "ms", "(no goal)");
    Row("addon rotate-credentials: PostgreSQL log vs SQLite log", Median(rotate_pg),
        Median(rotate_lite), "ms", "(no goal)");
  }
  return 0;
}
