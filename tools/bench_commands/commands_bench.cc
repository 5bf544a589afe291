// via_commands_bench: what operator commands cost as the home grows (issue 12),
// each row against a baseline measured in the same run. Nothing here asserts
// a speed: rows print medians, the ratio and the goal; the exit code is
// non-zero only when a command failed.
//
//   via_commands_bench [--quick] [--rows scale,list,rotate,status,rebuild,writers]
//                      [--runs N] [--dir DIR] [--list-size N]
//
// Homes are generated once through the library (real events appended in
// batches, then the read model built by one command) and cached in DIR:
//   live-N   N live add-ons, each created, provisioned, bound to its own app,
//            every 4th rotated and every 10th snapshotted; plus "target", a
//            real add-on with a database file;
//   events-N a home whose log holds N events (add-on lifecycles).
//
// Rows:
//   scale    `create`, `rotate-credentials target` and `status --json target`
//            at 10,000 and 100,000 add-ons against the same at 10.  goal <= 1.3x
//   list     `addon list --json` of 100,000 add-ons (--list-size) against the
//            sqlite3 shell printing the same rows of the read model as JSON.
//            The list also answers each add-on's readiness, storage probed
//            (issue 17); the generated add-ons have no database file, so
//            their probe finds it missing.                          goal <= 3x
//   rotate   `rotate-credentials` against the sqlite3 shell making one durable
//            insert (WAL, synchronous=FULL) of a row of the same size.  <= 2x
//   status   `status --json` against a program that opens a SQLite file and
//            reads one row.                                         goal <= 2x
//   rebuild  the first command after deleting the read model of a 1,000,000-
//            event home: wall time and peak RSS.     goal <= 3 s, <= 200 MB
//   writers  K = 1, 2, 4, 8 processes rotating distinct add-ons for a few
//            seconds: events/s, p50 and p99 latency, errors. goal: throughput
//            never falls as K grows, p99 <= 50 ms at K = 8, no errors.

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "commands/addon.h"
#include "commands/context.h"
#include "providers/sqlite/provider.h"
#include "eventstore/event_log.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Outcome {
  double ms = 0;
  int exit_code = -1;
  long max_rss_kb = 0;
};

// Runs argv with stdout/stderr to /dev/null; wall ms, exit code and peak RSS.
Outcome Spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  auto start = Clock::now();
  pid_t pid = 0;
  Outcome out;
  if (posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) {
    std::cerr << "cannot run " << args[0] << "\n";
    std::exit(1);
  }
  int status = 0;
  struct rusage usage {};
  wait4(pid, &status, 0, &usage);
  out.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  posix_spawn_file_actions_destroy(&actions);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  out.max_rss_kb = usage.ru_maxrss;
  return out;
}

double Must(const std::vector<std::string>& args) {
  Outcome o = Spawn(args);
  if (o.exit_code != 0) {
    std::string line;
    for (const auto& a : args) line += a + " ";
    std::cerr << "failed (exit " << o.exit_code << "): " << line << "\n";
    std::exit(1);
  }
  return o.ms;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

void Die(const via::Status& s) {
  std::cerr << "error: " << s.ToString() << "\n";
  std::exit(1);
}

std::vector<std::string> Via(const fs::path& home, std::vector<std::string> args) {
  std::vector<std::string> out = {VIA_BINARY, "--home", home.string()};
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

// Appends add-on lifecycles until the log holds `events` records (or there
// are `live` live add-ons), then makes "target" with a real database.
void Generate(const fs::path& home, std::uint64_t live, std::uint64_t events) {
  via::commands::SystemClock clock;
  via::commands::RandomIdGenerator ids(clock);
  via::eventstore::EventLog::Options options;
  options.home = via::eventstore::Home{home};
  options.clock = &clock;
  options.ids = &ids;
  options.actor = "bench";
  auto log = via::eventstore::EventLog::Open(options);
  if (!log.ok()) Die(log.status());
  std::uint64_t written = 1;
  std::uint64_t n = 0;
  auto start = Clock::now();
  const via::Bytes fingerprint(32, 1), salt(16, 2), sha(32, 3);
  auto done = [&] { return live ? n >= live : written >= events; };
  while (!done()) {
    via::eventstore::AppendRequest request;
    request.actor = "bench";
    request.recorded_at_ms = clock.NowMs();
    while (request.events.size() < 990 && !(live && n >= live)) {
      const std::string id = "ad_bench" + std::to_string(n);
      const std::string app = "app-" + std::to_string(n);
      request.events.push_back(via::AddonCreated{id, "db-" + std::to_string(n), "sqlite", app, "DATABASE"});
      request.events.push_back(via::GenerationRotated{id, 1, fingerprint, salt});
      request.events.push_back(via::BindingAttached{app, "DATABASE", id});
      request.events.push_back(via::StorageProvisioned{id});
      if (n % 4 == 0) request.events.push_back(via::GenerationRotated{id, 2, fingerprint, salt});
      if (n % 10 == 0) {
        const std::string sn = "sn_bench" + std::to_string(n);
        request.events.push_back(via::SnapshotRequested{id, sn, ""});
        request.events.push_back(via::SnapshotTaken{id, sn, sha, 4096, 1});
      }
      ++n;
    }
    auto appended = (*log)->Append(request);
    if (!appended.ok()) Die(appended.status());
    written = appended->last_seq;
    std::cerr << "\r  generating " << home.filename().string() << ": " << written << " events, "
              << n << " add-ons" << std::flush;
  }
  log->reset();
  via::providers::Registry registry;
  via::providers::sqlite::Register(registry);
  via::commands::Context ctx;
  ctx.providers = &registry;
  ctx.home = via::eventstore::Home{home};
  ctx.actor = "bench";
  ctx.clock = &clock;
  ctx.ids = &ids;
  auto created = via::commands::CreateAddon(ctx, {"target", "sqlite", "api", "DATABASE"});
  if (!created.ok()) Die(created.status());
  // A release of api claims the binding: status answers usable (exit 0).
  auto release = via::commands::CreateRelease(ctx, "api", "");
  if (!release.ok()) Die(release.status());
  for (int k = 0; k < 8; ++k) {  // the concurrent writers' add-ons
    auto w = via::commands::CreateAddon(ctx, {"writer-" + std::to_string(k), "sqlite", "w", ""});
    if (!w.ok()) Die(w.status());
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::cerr << "\r  generated " << home.filename().string() << ": " << written << " events, " << n
            << " add-ons in " << seconds << " s (read model included)\n";
  std::ofstream(home / "bench.v2.done") << written << "\n";
}

fs::path Home(const fs::path& dir, const std::string& name, std::uint64_t live,
              std::uint64_t events) {
  fs::path home = dir / name;
  if (!fs::exists(home / "bench.v2.done")) {  // v2: with a release
    fs::remove_all(home);
    Generate(home, live, events);
  }
  return home;
}

struct Measured {
  double create = 0, rotate = 0, status = 0;
};

// Medians of `runs` runs of create (a new name each time), rotate and status.
Measured MeasureCommands(const fs::path& home, int runs) {
  static int serial = 0;
  std::vector<double> create, rotate, status;
  Must(Via(home, {"--json", "addon", "status", "target"}));  // warm caches
  for (int r = 0; r < runs; ++r) {
    const std::string name = "new-" + std::to_string(::getpid()) + "-" + std::to_string(serial++);
    create.push_back(Must(Via(home, {"addon", "create", "sqlite", name, "--app", "bench"})));
    rotate.push_back(Must(Via(home, {"addon", "rotate-credentials", "target"})));
    status.push_back(Must(Via(home, {"--json", "addon", "status", "target"})));
  }
  return {Median(create), Median(rotate), Median(status)};
}

void Row(const char* name, double ours, double base, const char* unit, double goal,
         bool at_most) {
  const double ratio = base > 0 ? ours / base : 0;
  const bool met = at_most ? ratio <= goal : ratio >= goal;
  std::printf("%-44s %10.2f %s %10.2f %s %7.2fx  goal %s%.1fx%s\n", name, ours, unit, base, unit,
              ratio, at_most ? "<=" : ">=", goal, met ? "" : "  NOT MET");
}

}  // namespace

int main(int argc, char** argv) {
  std::set<std::string> rows = {"scale", "list", "rotate", "status", "rebuild", "writers"};
  std::vector<std::uint64_t> sizes = {10000, 100000};
  std::uint64_t list_size = 100000;
  std::uint64_t rebuild_events = 1000000;
  double writer_seconds = 5;
  int runs = 11;
  fs::path dir = fs::temp_directory_path() / "via-commands-bench";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      sizes = {2000};
      list_size = 2000;
      rebuild_events = 20000;
      writer_seconds = 1;
      runs = 3;
    } else if (arg == "--list-size" && i + 1 < argc) {
      list_size = std::max<std::uint64_t>(1, std::stoull(argv[++i]));
    } else if (arg == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::stoi(argv[++i]));
    } else if (arg == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (arg == "--rows" && i + 1 < argc) {
      rows.clear();
      std::stringstream list(argv[++i]);
      for (std::string item; std::getline(list, item, ',');) rows.insert(item);
    } else {
      std::cerr << "usage: via_commands_bench [--quick] [--rows scale,list,rotate,status,rebuild,"
                   "writers] [--runs N] [--dir DIR] [--list-size N]\n";
      return 2;
    }
  }
  fs::create_directories(dir);
  std::printf("via_commands_bench: %d runs per figure, medians; baselines in the same run\n", runs);
  const fs::path small = Home(dir, "live-10", 10, 0);

  if (rows.count("scale")) {
    Measured base = MeasureCommands(small, runs);
    for (std::uint64_t size : sizes) {
      const fs::path home = Home(dir, "live-" + std::to_string(size), size, 0);
      Measured big = MeasureCommands(home, runs);
      const std::string n = std::to_string(size);
      Row(("create at " + n + " add-ons vs at 10").c_str(), big.create, base.create, "ms", 1.3,
          true);
      Row(("rotate at " + n + " add-ons vs at 10").c_str(), big.rotate, base.rotate, "ms", 1.3,
          true);
      Row(("status at " + n + " add-ons vs at 10").c_str(), big.status, base.status, "ms", 1.3,
          true);
    }
  }

  if (rows.count("list")) {
    const fs::path home = Home(dir, "live-" + std::to_string(list_size), list_size, 0);
    const std::string model = (home / "state" / "projections.db").string();
    // The same rows, as JSON, by the sqlite3 shell (what `list --json` prints
    // per add-on: id, name, provider, app, state, generation and bindings).
    const std::string query =
        "SELECT a.id, a.name, a.provider, a.app, a.phase, (SELECT max(number) FROM generations g "
        "WHERE g.addon_id = a.id) AS generation, (SELECT json_group_array(json_object('app', "
        "b.app, 'name', b.binding)) FROM bindings b WHERE b.addon_id = a.id) AS bindings FROM "
        "addons a WHERE a.id IN (SELECT addon_id FROM names) ORDER BY a.name";
    std::vector<double> ours, base;
    Must(Via(home, {"--json", "addon", "list"}));
    for (int r = 0; r < runs; ++r) {
      ours.push_back(Must(Via(home, {"--json", "addon", "list"})));
      base.push_back(Must({"sqlite3", "-json", "-readonly", model, query}));
    }
    Row(("list --json of " + std::to_string(list_size) + " add-ons vs sqlite3 -json").c_str(),
        Median(ours), Median(base), "ms", 3, true);
  }

  if (rows.count("rotate")) {
    // A durable insert of a row of the size of a GenerationRotated record.
    const fs::path db = dir / "baseline.db";
    fs::remove(db);
    fs::remove(db.string() + "-wal");
    Must({"sqlite3", db.string(), "PRAGMA journal_mode=WAL; CREATE TABLE t(seq INTEGER PRIMARY KEY, "
                                  "record BLOB, hash BLOB)"});
    std::vector<double> ours, base;
    for (int r = 0; r < runs; ++r) {
      ours.push_back(Must(Via(small, {"addon", "rotate-credentials", "target"})));
      base.push_back(Must({"sqlite3", db.string(),
                           "PRAGMA synchronous=FULL; INSERT INTO t(record, hash) VALUES "
                           "(randomblob(200), randomblob(32))"}));
    }
    Row("rotate-credentials vs sqlite3 durable insert", Median(ours), Median(base), "ms", 2, true);
  }

  if (rows.count("status")) {
    const std::string model = (small / "state" / "projections.db").string();
    std::vector<double> ours, base;
    for (int r = 0; r < runs; ++r) {
      ours.push_back(Must(Via(small, {"--json", "addon", "status", "target"})));
      base.push_back(Must({VIA_MIN_READ, model}));
    }
    Row("status --json vs open and read one row", Median(ours), Median(base), "ms", 2, true);
  }

  if (rows.count("rebuild")) {
    const fs::path home = Home(dir, "events-" + std::to_string(rebuild_events), 0, rebuild_events);
    std::vector<double> ms;
    long rss = 0;
    for (int r = 0; r < std::min(runs, 3); ++r) {
      for (const char* suffix : {"", "-wal", "-shm"}) {
        fs::remove((home / "state" / "projections.db").string() + suffix);
      }
      Outcome o = Spawn(Via(home, {"--json", "addon", "status", "target"}));
      if (o.exit_code != 0) {
        std::cerr << "rebuild run failed: exit " << o.exit_code << "\n";
        return 1;
      }
      ms.push_back(o.ms);
      rss = std::max(rss, o.max_rss_kb);
    }
    std::printf("%-44s %10.2f s  peak RSS %ld MB  goal <= 3 s, <= 200 MB%s\n",
                ("rebuild of the read model, " + std::to_string(rebuild_events) + " events").c_str(),
                Median(ms) / 1000, rss / 1024,
                Median(ms) <= 3000 && rss / 1024 <= 200 ? "" : "  NOT MET");
  }

  if (rows.count("writers")) {
    std::printf("%-10s %12s %10s %10s %8s\n", "writers", "events/s", "p50 ms", "p99 ms", "errors");
    for (int k : {1, 2, 4, 8}) {
      std::vector<std::vector<double>> latencies(static_cast<std::size_t>(k));
      std::atomic<int> errors{0};
      const auto deadline = Clock::now() + std::chrono::duration<double>(writer_seconds);
      const auto started = Clock::now();
      std::vector<std::thread> threads;
      for (int w = 0; w < k; ++w) {
        threads.emplace_back([&, w] {
          while (Clock::now() < deadline) {
            Outcome o = Spawn(Via(small, {"addon", "rotate-credentials",
                                          "writer-" + std::to_string(w)}));
            if (o.exit_code != 0) ++errors;
            latencies[static_cast<std::size_t>(w)].push_back(o.ms);
          }
        });
      }
      for (auto& t : threads) t.join();
      const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      std::vector<double> all;
      for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
      std::printf("%-10d %12.1f %10.2f %10.2f %8d\n", k, static_cast<double>(all.size()) / seconds,
                  Median(all), Percentile(all, 0.99), errors.load());
    }
    std::printf("goal: events/s never falls as K grows, p99 <= 50 ms at K = 8, no errors\n");
  }
  return 0;
}
