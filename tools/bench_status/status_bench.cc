// Status latency benchmark (issue: `status --json` must not replay the log).
//
// For each size it builds (once, cached) a home whose log holds that many
// events — add-on lifecycles appended in batches, plus one real add-on with a
// database file — then times `via --json addon status target` as a whole
// process against the floor: a minimal program that opens a SQLite file and
// reads one row, also a whole process, measured alternately in the same run.
// Prints medians and the ratio; never fails on a ratio.
//
//   via_status_bench [--quick] [--sizes 100000,1000000] [--runs 21] [--dir DIR]

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "commands/addon.h"
#include "commands/context.h"
#include "providers/sqlite/provider.h"
#include "eventstore/event_log.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Runs argv as a process with stdout/stderr to /dev/null; returns wall ms.
double TimeProcess(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  auto start = Clock::now();
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) {
    std::cerr << "cannot run " << args[0] << "\n";
    std::exit(1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  auto end = Clock::now();
  posix_spawn_file_actions_destroy(&actions);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::cerr << args[0] << " exited " << WEXITSTATUS(status) << "\n";
    std::exit(1);
  }
  return std::chrono::duration<double, std::milli>(end - start).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

void Die(const via::Status& s) {
  std::cerr << "error: " << s.ToString() << "\n";
  std::exit(1);
}

// Builds a home whose log holds at least `events` events.
void Generate(const fs::path& home, std::uint64_t events) {
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
  while (written < events) {
    via::eventstore::AppendRequest request;
    request.actor = "bench";
    request.recorded_at_ms = clock.NowMs();
    while (request.events.size() < 996) {
      std::string id = "ad_bench" + std::to_string(n);
      std::string app = "app-" + std::to_string(n % 50);
      request.events.push_back(via::AddonCreated{id, "db-" + std::to_string(n), "sqlite", app, ""});
      request.events.push_back(via::GenerationRotated{id, 1, via::Bytes(32, 1), via::Bytes(16, 2)});
      request.events.push_back(via::StorageProvisioned{id});
      request.events.push_back(via::BindingAttached{app, "DATABASE", id});
      request.events.push_back(via::BindingDetached{app, "DATABASE", id});
      request.events.push_back(via::AddonDestroyed{id, "db-" + std::to_string(n) + "#destroyed#" + id});
      ++n;
    }
    auto appended = (*log)->Append(request);
    if (!appended.ok()) Die(appended.status());
    written = appended->last_seq;
    if (written % 100000 < 996) {
      std::cerr << "\r  generating: " << written << "/" << events << std::flush;
    }
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
  // Usable needs the app's latest release to claim it (issue 13).
  auto released = via::commands::CreateRelease(ctx, "api", "");
  if (!released.ok()) Die(released.status());
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::cerr << "\r  generated " << written << " events (" << n << " add-on lifecycles) in "
            << seconds << " s (read model built by the first create)\n";
  // v2: homes with a release claiming the target (generated before that, a
  // home would answer release_claim_missing, exit 3).
  std::ofstream(home / "bench.v2.done") << written << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::uint64_t> sizes = {100000, 1000000};
  int runs = 21;
  fs::path dir = fs::temp_directory_path() / "via-status-bench";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      sizes = {20000};
      runs = 7;
    } else if (arg == "--runs" && i + 1 < argc) {
      runs = std::stoi(argv[++i]);
    } else if (arg == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (arg == "--sizes" && i + 1 < argc) {
      sizes.clear();
      std::stringstream list(argv[++i]);
      for (std::string item; std::getline(list, item, ',');) sizes.push_back(std::stoull(item));
    } else {
      std::cerr << "usage: via_status_bench [--quick] [--sizes N,M] [--runs R] [--dir DIR]\n";
      return 2;
    }
  }
  std::printf("status latency: `via --json addon status target` vs open+read one row (%d runs, medians)\n",
              runs);
  std::printf("%-12s %14s %14s %14s %8s %8s\n", "events", "status ms", "status p90", "floor ms",
              "ratio", "goal");
  for (std::uint64_t size : sizes) {
    fs::path home = dir / ("home-" + std::to_string(size));
    if (!fs::exists(home / "bench.v2.done")) {
      fs::remove_all(home);
      Generate(home, size);
    }
    std::string state_db = (home / "state" / "projections.db").string();
    std::vector<std::string> status = {VIA_BINARY, "--home", home.string(), "--json", "addon",
                                       "status", "target"};
    std::vector<std::string> floor = {VIA_MIN_READ, state_db};
    TimeProcess(status);  // warm: the read model is caught up, caches are hot
    TimeProcess(floor);
    std::vector<double> ours, base;
    for (int r = 0; r < runs; ++r) {
      ours.push_back(TimeProcess(status));
      base.push_back(TimeProcess(floor));
    }
    double ratio = Median(ours) / Median(base);
    std::printf("%-12llu %14.2f %14.2f %14.2f %7.2fx %8s%s\n",
                static_cast<unsigned long long>(size), Median(ours), Percentile(ours, 0.9),
                Median(base), ratio, "<=3x", ratio <= 3.0 ? "" : "  ABOVE GOAL");
  }
  return 0;
}
