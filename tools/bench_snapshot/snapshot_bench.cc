// Snapshot and restore throughput (issue: "Snapshot and restore of a 1 GiB
// database against `sqlite3 SRC '.backup DST'` in the same run. Goal: >= 0.9x
// its throughput").
//
// Builds, once (cached in --dir), a WAL database of app-like content: four
// tables with six secondary indexes, rows from ~60 bytes to ~25 KB (overflow
// chains), grown in interleaved rounds with a deletion in the middle, as a
// real database grows. Then for each run it measures, alternating which side
// goes first:
//   snapshot  `sqlite3 SRC '.backup DST'` (the sqlite3 shell as a process, to
//             a fresh file in the same directory) against TakeSnapshot(SRC, DST)
//   restore   `sqlite3 LIVE '.restore SNAP'` against RestoreInto(SNAP, LIVE),
//             each into its own fresh copy of SRC, from the same snapshot
// and, as a second baseline doing the same work as ours, each shell operation
// together with the integrity_check the issue requires of every snapshot
// (`sqlite3 DST 'PRAGMA integrity_check'` after .backup, of SNAP before
// .restore), so that the reader sees both what the goal asks and where the
// check leaves it;
// and, so that the reader sees where the time goes, runs the steps of both
// operations one after another with plain SQLite calls on the same files.
// Dirty pages are flushed (sync) before every timed operation and file copies
// happen outside the timings. MB/s is the database's bytes over wall time.
// Prints medians, min/max and the ratio to the baseline; never fails on a
// ratio (exit 1 only when something does not work at all).
//
//   via_snapshot_bench [--quick] [--mb N] [--runs N] [--dir DIR] [--sqlite3 PATH]

#include <fcntl.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "providers/sqlite/storage.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
namespace storage = via::providers::sqlite;

#ifndef VIA_BENCH_BUILD_TYPE
#define VIA_BENCH_BUILD_TYPE "unknown"
#endif

[[noreturn]] void Die(const std::string& message) {
  std::cerr << "via_snapshot_bench: " << message << "\n";
  std::exit(1);
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// User + system CPU seconds of this process (all threads) or of its waited-for
// children.
double CpuSeconds(int who) {
  rusage usage{};
  ::getrusage(who, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

struct Summary {
  double median = 0, min = 0, max = 0;
};

Summary Summarize(std::vector<double> values) {
  if (values.empty()) return {};
  std::sort(values.begin(), values.end());
  std::size_t n = values.size();
  double median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  return {median, values.front(), values.back()};
}

// --- SQLite, for building the source and for the step-by-step breakdown -------

// A connection whose every failure is fatal: this program measures, it does not
// recover.
class Db {
 public:
  Db(const fs::path& path, int flags) : path_(path) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) Die("open " + path.string() + ": " + sqlite3_errstr(rc));
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~Db() { Close(); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  sqlite3* get() const { return db_; }

  void Exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    if (rc != SQLITE_OK) {
      std::string text = error != nullptr ? error : sqlite3_errstr(rc);
      sqlite3_free(error);
      Die(path_.string() + ": " + sql.substr(0, 200) + ": " + text);
    }
  }

  // Every row's first column as text.
  std::vector<std::string> Column(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      Die(path_.string() + ": " + sql + ": " + sqlite3_errmsg(db_));
    }
    std::vector<std::string> rows;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      rows.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "");
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) Die(path_.string() + ": " + sql + ": " + sqlite3_errmsg(db_));
    return rows;
  }

  std::string Text(const std::string& sql) {
    auto rows = Column(sql);
    if (rows.empty()) Die(path_.string() + ": " + sql + ": no row");
    return rows.front();
  }
  std::int64_t Int(const std::string& sql) { return std::stoll(Text(sql)); }

  void Close() {
    if (db_ == nullptr) return;
    if (sqlite3_close(db_) != SQLITE_OK) Die("close " + path_.string() + ": busy");
    db_ = nullptr;
  }

 private:
  fs::path path_;
  sqlite3* db_ = nullptr;
};

// Copies every page of `from` into `to` in steps of `pages`, as storage.cc does.
void BackupAll(Db& from, Db& to, int pages) {
  sqlite3_backup* backup = sqlite3_backup_init(to.get(), "main", from.get(), "main");
  if (backup == nullptr) Die(std::string("backup init: ") + sqlite3_errmsg(to.get()));
  int rc;
  while ((rc = sqlite3_backup_step(backup, pages)) == SQLITE_OK) {
  }
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) Die(std::string("backup step: ") + sqlite3_errstr(rc));
}

void Fsync(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0 || ::fsync(fd) != 0) Die("fsync " + path.string());
  ::close(fd);
}

// The database file and the companions SQLite may leave beside it.
void RemoveDatabase(const fs::path& path) {
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
    ::unlink((path.native() + suffix).c_str());
  }
}

// Writes back every dirty page of the machine, so that no operation pays for
// the write-back of files that an earlier one left behind.
void Settle() { ::sync(); }

// --- the source database --------------------------------------------------------

// Rows per round for a 1024 MiB database; other sizes scale linearly.
struct Mix {
  std::int64_t accounts;   // ~150 bytes with its two index entries
  std::int64_t orders;     // ~110 bytes with its two index entries
  std::int64_t events;     // ~330 bytes: a JSON-like payload of 60-540 bytes
  std::int64_t documents;  // 0.5-24.5 KB bodies: overflow chains
};
constexpr int kRounds = 16;
constexpr Mix kMixPerGiB = {250000, 2470000, 1470000, 24700};

constexpr const char* kSchema = R"sql(
CREATE TABLE accounts(id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
                      plan TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX accounts_created ON accounts(created_at);
CREATE TABLE orders(id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, status TEXT NOT NULL,
                    total_cents INTEGER NOT NULL, created_at INTEGER NOT NULL, note TEXT);
CREATE INDEX orders_account ON orders(account_id, created_at);
CREATE INDEX orders_status ON orders(status, created_at);
CREATE TABLE events(id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, kind TEXT NOT NULL,
                    at INTEGER NOT NULL, payload TEXT NOT NULL);
CREATE INDEX events_account ON events(account_id, at);
CREATE TABLE documents(id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, title TEXT NOT NULL,
                       body BLOB NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX documents_account ON documents(account_id);
)sql";

std::string Series(std::int64_t first, std::int64_t last) {
  return "WITH RECURSIVE n(i) AS (SELECT " + std::to_string(first) +
         " UNION ALL SELECT i + 1 FROM n WHERE i < " + std::to_string(last) + ") ";
}

// Builds the source database at `path` (under a temporary name first, so that
// an interrupted build is never reused).
void BuildSource(const fs::path& path, int megabytes) {
  double scale = megabytes / 1024.0;
  auto per_round = [&](std::int64_t per_gib) {
    return std::max<std::int64_t>(1, static_cast<std::int64_t>(per_gib * scale / kRounds));
  };
  Mix mix = {per_round(kMixPerGiB.accounts), per_round(kMixPerGiB.orders),
             per_round(kMixPerGiB.events), per_round(kMixPerGiB.documents)};
  fs::path building = path.native() + ".building";
  RemoveDatabase(building);
  auto start = Clock::now();
  {
    Db db(building, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    db.Exec("PRAGMA page_size=4096");
    if (db.Text("PRAGMA journal_mode=WAL") != "wal") Die("cannot build a WAL database");
    db.Exec("PRAGMA synchronous=OFF; PRAGMA cache_size=-262144");
    db.Exec(kSchema);
    for (int round = 0; round < kRounds; ++round) {
      std::int64_t accounts_so_far = mix.accounts * (round + 1);
      std::string a = std::to_string(accounts_so_far);
      db.Exec("BEGIN");
      db.Exec(Series(mix.accounts * round + 1, accounts_so_far) +
              "INSERT INTO accounts SELECT i, lower(hex(randomblob(6))) || '.' || i || "
              "'@example.com', 'User ' || hex(randomblob(5)), CASE abs(random()) % 3 WHEN 0 THEN "
              "'free' WHEN 1 THEN 'team' ELSE 'enterprise' END, 1700000000 + i * 60 FROM n");
      db.Exec(Series(1, mix.orders) +
              "INSERT INTO orders(account_id, status, total_cents, created_at, note) SELECT 1 + "
              "abs(random()) % " +
              a +
              ", CASE abs(random()) % 4 WHEN 0 THEN 'pending' WHEN 1 "
              "THEN 'paid' WHEN 2 THEN 'shipped' ELSE 'refunded' END, abs(random()) % 100000, "
              "1700000000 + abs(random()) % 100000000, CASE WHEN abs(random()) % 4 = 0 THEN "
              "hex(randomblob(1 + abs(random()) % 40)) END FROM n");
      db.Exec(Series(1, mix.events) +
              "INSERT INTO events(account_id, kind, at, payload) SELECT 1 + abs(random()) % " + a +
              ", CASE abs(random()) % 5 WHEN 0 THEN 'login' WHEN 1 THEN 'view' WHEN 2 THEN "
              "'click' WHEN 3 THEN 'purchase' ELSE 'logout' END, 1700000000 + abs(random()) % "
              "100000000, '{\"ip\":\"10.' || (abs(random()) % 256) || '.' || (abs(random()) % 256) "
              "|| '.1\",\"agent\":\"bench/1.0\",\"data\":\"' || hex(randomblob(10 + abs(random()) "
              "% 240)) || '\"}' FROM n");
      db.Exec(Series(1, mix.documents) +
              "INSERT INTO documents(account_id, title, body, updated_at) SELECT 1 + "
              "abs(random()) % " +
              a +
              ", 'Document ' || hex(randomblob(8)), randomblob(512 + "
              "abs(random()) % 24000), 1700000000 + abs(random()) % 100000000 FROM n");
      if (round == kRounds / 2) {
        // Old rows go away and their pages are reused: free pages and a free
        // list, as in any database that lived for a while.
        db.Exec("DELETE FROM documents WHERE id % 10 = 0");
        db.Exec("DELETE FROM events WHERE id % 20 = 0");
      }
      db.Exec("COMMIT");
      std::cerr << "\r  building " << path.filename().string() << ": round " << round + 1 << "/"
                << kRounds << std::flush;
    }
    db.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
  Fsync(building, false);
  fs::rename(building, path);
  Fsync(path.parent_path(), true);
  std::cerr << "\r  built " << path.string() << " in " << SecondsSince(start) << " s\n";
}

struct SourceInfo {
  std::uint64_t bytes = 0;
  std::int64_t pages = 0, page_size = 0, tables = 0, indexes = 0, free_pages = 0;
  std::string rows;  // "accounts 200000, orders ..."
};

SourceInfo Describe(const fs::path& path) {
  Db db(path, SQLITE_OPEN_READONLY);
  SourceInfo info;
  info.pages = db.Int("PRAGMA page_count");
  info.page_size = db.Int("PRAGMA page_size");
  info.free_pages = db.Int("PRAGMA freelist_count");
  info.bytes = static_cast<std::uint64_t>(info.pages * info.page_size);
  info.tables = db.Int("SELECT count(*) FROM sqlite_schema WHERE type = 'table'");
  info.indexes = db.Int("SELECT count(*) FROM sqlite_schema WHERE type = 'index'");
  for (const std::string& table :
       db.Column("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY rootpage")) {
    if (!info.rows.empty()) info.rows += ", ";
    info.rows += table + " " + db.Text("SELECT count(*) FROM \"" + table + "\"");
  }
  return info;
}

// --- the baseline: the sqlite3 shell as a process ---------------------------------

// Wall time and CPU time (all threads, or the child process) of one operation.
struct Timed {
  double total = 0;
  double cpu = 0;
  double until_copied = 0;  // ours: from the call to the progress report of the last page
};

// Runs `args` with stdout to /dev/null and stderr to `log`.
Timed TimeProcess(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  double cpu_before = CpuSeconds(RUSAGE_CHILDREN);
  auto start = Clock::now();
  int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) Die("cannot run " + args[0] + " (use --sqlite3 PATH)");
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  Timed timed;
  timed.total = SecondsSince(start);
  timed.cpu = CpuSeconds(RUSAGE_CHILDREN) - cpu_before;
  timed.until_copied = timed.total;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die(args[0] + " " + args[1] + " \"" + args[2] + "\" failed; see " + log.string());
  }
  // The shell exits 0 after some failed dot-commands: it printed to stderr then.
  std::error_code ec;
  if (fs::file_size(log, ec) > 0) Die(args[0] + " reported an error; see " + log.string());
  return timed;
}

std::string Quoted(const fs::path& path) { return "'" + path.string() + "'"; }

// --- our operations -------------------------------------------------------------

// One TakeSnapshot or RestoreInto, its wall time split by its progress
// callback into the part up to the last copied page and the part after it.
Timed TimeOperation(const std::function<via::Status(const storage::Progress&)>& run,
                    const std::string& what) {
  double cpu_before = CpuSeconds(RUSAGE_SELF);
  auto start = Clock::now();
  double copied_at = -1;
  storage::Progress progress = [&](std::uint64_t done, std::uint64_t total) {
    if (done == total) copied_at = SecondsSince(start);
  };
  via::Status status = run(progress);
  Timed timed;
  timed.total = SecondsSince(start);
  timed.cpu = CpuSeconds(RUSAGE_SELF) - cpu_before;
  if (!status.ok()) Die(what + ": " + status.ToString());
  timed.until_copied = copied_at < 0 ? timed.total : copied_at;
  return timed;
}

// --- the breakdown: each step alone -----------------------------------------------

// Named durations, in the order the steps first ran.
class Steps {
 public:
  // Runs `step` and records its wall time under `name`.
  void Time(const std::string& name, const std::function<void()>& step) {
    auto start = Clock::now();
    step();
    Add(name, SecondsSince(start));
  }
  void Add(const std::string& name, double seconds) {
    auto it = std::find_if(steps_.begin(), steps_.end(),
                           [&](const auto& step) { return step.first == name; });
    if (it == steps_.end()) {
      steps_.emplace_back(name, std::vector<double>{seconds});
    } else {
      it->second.push_back(seconds);
    }
  }
  const std::vector<std::pair<std::string, std::vector<double>>>& all() const { return steps_; }

 private:
  std::vector<std::pair<std::string, std::vector<double>>> steps_;
};

// As in storage.cc: pages per backup step, and memory mapping of the files
// that nobody else writes (snapshots and their temporaries).
constexpr int kStepPages = 1024;
constexpr const char* kMmap = "PRAGMA mmap_size=1099511627776";

// The steps of TakeSnapshot (storage.cc) one after another on one thread,
// with the same SQLite calls. TakeSnapshot itself overlaps the last three.
void SnapshotStepByStep(const fs::path& source, const fs::path& dest, Steps& steps) {
  fs::path temp = dest.native() + ".tmp";
  RemoveDatabase(temp);
  steps.Time("backup steps (+ header to rollback mode)", [&] {
    Db from(source, SQLITE_OPEN_READWRITE);
    from.Exec("BEGIN; SELECT count(*) FROM sqlite_schema");
    Db copy(temp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    copy.Exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF");
    BackupAll(from, copy, kStepPages);
    from.Exec("COMMIT");
    from.Close();
    copy.Exec("SELECT count(*) FROM sqlite_schema");
    if (copy.Text("PRAGMA journal_mode=DELETE") != "delete") Die("copy stayed in WAL mode");
  });
  steps.Time("fsync", [&] { Fsync(temp, false); });
  steps.Time("integrity_check (one statement)", [&] {
    Db check(temp, SQLITE_OPEN_READONLY);
    check.Exec(kMmap);
    if (check.Text("PRAGMA integrity_check") != "ok") Die("integrity_check of the copy failed");
  });
  steps.Time("sha256 (DigestFile)", [&] {
    auto digest = storage::DigestFile(temp);
    if (!digest.ok()) Die(digest.status().ToString());
  });
  steps.Time("rename + dir fsync", [&] {
    fs::rename(temp, dest);
    Fsync(dest.parent_path(), true);
  });
}

// The parts into which storage.cc splits integrity_check to share it between
// two threads, each timed alone: quick_check (structure, free list, page
// accounting) and integrity_check(T) for each table (rows against indexes).
void IntegrityPartsOneByOne(const fs::path& file, Steps& steps) {
  Db db(file, SQLITE_OPEN_READONLY);
  db.Exec(kMmap);
  std::vector<std::string> parts = {"quick_check", "integrity_check('sqlite_master')"};
  for (const std::string& table :
       db.Column("SELECT name FROM sqlite_schema WHERE type = 'table' AND "
                 "sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY rootpage")) {
    parts.push_back("integrity_check('" + table + "')");
  }
  for (const std::string& part : parts) {
    steps.Time(part, [&] {
      if (db.Text("PRAGMA " + part) != "ok") Die(part + " failed");
    });
  }
}

// The steps of RestoreInto (storage.cc) one after another.
void RestoreStepByStep(const fs::path& snapshot, const fs::path& live, Steps& steps) {
  Db source(snapshot, SQLITE_OPEN_READONLY);
  source.Exec(kMmap);
  source.Exec("BEGIN; SELECT count(*) FROM sqlite_schema");
  steps.Time("integrity_check of the snapshot (one statement)", [&] {
    Db check(snapshot, SQLITE_OPEN_READONLY);
    check.Exec(kMmap);
    if (check.Text("PRAGMA integrity_check") != "ok") Die("snapshot fails integrity_check");
  });
  Db db(live, SQLITE_OPEN_READWRITE);
  steps.Time("backup steps (into the WAL, one transaction)", [&] {
    if (db.Text("PRAGMA journal_mode=WAL") != "wal") Die("live copy is not WAL");
    BackupAll(source, db, kStepPages);
  });
  source.Close();
  steps.Time("checkpoint + close", [&] {
    db.Exec("PRAGMA wal_checkpoint(PASSIVE)");
    db.Close();
  });
}

// --- report -----------------------------------------------------------------------

struct Row {
  std::string operation, program;
  std::vector<double> seconds, cpu;
  void Add(const Timed& timed) {
    seconds.push_back(timed.total);
    cpu.push_back(timed.cpu);
  }
  // Two processes one after the other, as one operation.
  void Add(const Timed& first, const Timed& second) {
    seconds.push_back(first.total + second.total);
    cpu.push_back(first.cpu + second.cpu);
  }
};

// `goal` empty: the issue's goal (>= 0.9x); else a label printed instead.
void PrintRow(const Row& row, double megabytes, const Row* baseline, const char* goal = "") {
  Summary s = Summarize(row.seconds);
  std::printf("%-9s %-17s %8.1f %7.1f %7.1f %8.3f %7.2f", row.operation.c_str(),
              row.program.c_str(), megabytes / s.median, megabytes / s.max, megabytes / s.min,
              s.median, Summarize(row.cpu).median);
  if (baseline != nullptr) {
    double ratio = Summarize(baseline->seconds).median / s.median;
    if (*goal != '\0') {
      std::printf(" %6.2fx  %s", ratio, goal);
    } else {
      std::printf(" %6.2fx %7s  %s", ratio, ">=0.90x", ratio >= 0.9 ? "met" : "not met");
    }
  }
  std::printf("\n");
}

// Prints each step's median and share; returns the sum of the medians.
double PrintSteps(const std::string& title, const Steps& steps) {
  double sum = 0;
  for (const auto& [name, seconds] : steps.all()) sum += Summarize(seconds).median;
  std::printf("  %s: sum %.3f s\n", title.c_str(), sum);
  for (const auto& [name, seconds] : steps.all()) {
    Summary s = Summarize(seconds);
    std::printf("    %-46s %7.3f s %5.1f%%  (min %.3f, max %.3f)\n", name.c_str(), s.median,
                100.0 * s.median / sum, s.min, s.max);
  }
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  int megabytes = 1024;
  int runs = 5;
  fs::path dir = "/tmp/via-snapshot-bench";
  std::string sqlite3_shell = "/usr/bin/sqlite3";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool has_value = i + 1 < argc;
    if (arg == "--quick") {
      megabytes = 64;
      runs = 3;
    } else if (arg == "--mb" && has_value) {
      megabytes = std::max(8, std::atoi(argv[++i]));
    } else if (arg == "--runs" && has_value) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--dir" && has_value) {
      dir = argv[++i];
    } else if (arg == "--sqlite3" && has_value) {
      sqlite3_shell = argv[++i];
    } else {
      std::cerr << "usage: via_snapshot_bench [--quick] [--mb N (1024)] [--runs N (5)] "
                   "[--dir DIR (/tmp/via-snapshot-bench)] [--sqlite3 PATH (/usr/bin/sqlite3)]\n"
                   "  --quick: --mb 64 --runs 3\n";
      return 2;
    }
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) Die("create " + dir.string() + ": " + ec.message());
  dir = fs::absolute(dir);

  const fs::path source = dir / ("source-" + std::to_string(megabytes) + "mb.sqlite");
  if (!fs::exists(source)) BuildSource(source, megabytes);
  const SourceInfo info = Describe(source);
  const double mb = static_cast<double>(info.bytes) / 1e6;

  const fs::path base_snapshot = dir / "baseline-snapshot.sqlite";
  const fs::path our_snapshot = dir / "snapshot.sqlite";
  const fs::path base_live = dir / "baseline-live.sqlite";
  const fs::path our_live = dir / "live.sqlite";
  const fs::path step_snapshot = dir / "steps-snapshot.sqlite";
  const fs::path shell_log = dir / "sqlite3.stderr";

  std::printf("via_snapshot_bench (%s build; baseline %s, SQLite %s; %u CPUs; load %s)\n",
              VIA_BENCH_BUILD_TYPE, sqlite3_shell.c_str(), sqlite3_libversion(),
              std::thread::hardware_concurrency(), LoadAverage().c_str());
  std::printf("source %s: %.1f MB, %lld pages of %lld B, WAL\n", source.c_str(), mb,
              static_cast<long long>(info.pages), static_cast<long long>(info.page_size));
  std::printf("  %lld tables, %lld indexes; rows: %s\n", static_cast<long long>(info.tables),
              static_cast<long long>(info.indexes), info.rows.c_str());
  std::printf(
      "%d runs, alternating which side goes first; page cache warm, dirty pages written "
      "back before each operation\n\n",
      runs);
  std::fflush(stdout);

  Row base_snap{"snapshot", "sqlite3 .backup", {}, {}};
  Row our_snap{"snapshot", "TakeSnapshot", {}, {}};
  Row base_restore{"restore", "sqlite3 .restore", {}, {}};
  // The same work as ours in the shell: the integrity_check the issue asks
  // of every snapshot (of the copy after .backup, of the snapshot before
  // .restore), as a second sqlite3 process.
  Row base_snap_checked{"snapshot", "+ integrity_check", {}, {}};
  Row base_restore_checked{"restore", "integrity_check +", {}, {}};
  Row our_restore{"restore", "RestoreInto", {}, {}};
  std::vector<double> snap_copy, snap_after, restore_copy, restore_after;
  Steps snapshot_steps, check_parts, restore_steps;

  for (int run = 0; run < runs; ++run) {
    bool ours_first = run % 2 == 1;
    std::cerr << "  run " << run + 1 << "/" << runs << "\n";

    // Snapshot: both write a fresh file beside the others.
    RemoveDatabase(base_snapshot);
    RemoveDatabase(our_snapshot);
    auto baseline_snapshot = [&] {
      Settle();
      Timed backup = TimeProcess(
          {sqlite3_shell, source.string(), ".backup " + Quoted(base_snapshot)}, shell_log);
      base_snap.Add(backup);
      Settle();
      base_snap_checked.Add(
          backup,
          TimeProcess({sqlite3_shell, base_snapshot.string(), "PRAGMA integrity_check"}, shell_log));
    };
    auto our_snapshot_run = [&] {
      Settle();
      Timed t = TimeOperation(
          [&](const storage::Progress& p) {
            auto digest = storage::TakeSnapshot(source, our_snapshot, p);
            return digest.ok() ? via::Status::Ok() : digest.status();
          },
          "TakeSnapshot");
      our_snap.Add(t);
      snap_copy.push_back(t.until_copied);
      snap_after.push_back(t.total - t.until_copied);
    };
    if (ours_first) {
      our_snapshot_run();
      baseline_snapshot();
    } else {
      baseline_snapshot();
      our_snapshot_run();
    }

    // Restore: each into its own fresh copy of the source, from our snapshot.
    RemoveDatabase(base_live);
    RemoveDatabase(our_live);
    fs::copy_file(source, base_live);
    fs::copy_file(source, our_live);
    auto baseline_restore = [&] {
      Settle();
      Timed check =
          TimeProcess({sqlite3_shell, our_snapshot.string(), "PRAGMA integrity_check"}, shell_log);
      Settle();
      Timed restore = TimeProcess(
          {sqlite3_shell, base_live.string(), ".restore " + Quoted(our_snapshot)}, shell_log);
      base_restore.Add(restore);
      base_restore_checked.Add(check, restore);
    };
    auto our_restore_run = [&] {
      Settle();
      Timed t = TimeOperation(
          [&](const storage::Progress& p) {
            return storage::RestoreInto(our_snapshot, our_live, p);
          },
          "RestoreInto");
      our_restore.Add(t);
      restore_copy.push_back(t.until_copied);
      restore_after.push_back(t.total - t.until_copied);
    };
    if (ours_first) {
      our_restore_run();
      baseline_restore();
    } else {
      baseline_restore();
      our_restore_run();
    }

    // The same steps one after another, for the breakdown.
    RemoveDatabase(step_snapshot);
    Settle();
    SnapshotStepByStep(source, step_snapshot, snapshot_steps);
    IntegrityPartsOneByOne(step_snapshot, check_parts);
    Settle();
    RestoreStepByStep(our_snapshot, our_live, restore_steps);
  }
  for (const fs::path& file : {base_snapshot, our_snapshot, base_live, our_live, step_snapshot}) {
    RemoveDatabase(file);
  }
  ::unlink(shell_log.c_str());

  std::printf("%-9s %-17s %8s %7s %7s %8s %7s %7s %7s\n", "", "", "MB/s", "min", "max", "wall s",
              "CPU s", "ratio", "goal");
  PrintRow(base_snap, mb, nullptr);
  PrintRow(our_snap, mb, &base_snap);
  PrintRow(base_snap_checked, mb, nullptr);
  PrintRow(our_snap, mb, &base_snap_checked, "(same checks)");
  PrintRow(base_restore, mb, nullptr);
  PrintRow(our_restore, mb, &base_restore);
  PrintRow(base_restore_checked, mb, nullptr);
  PrintRow(our_restore, mb, &base_restore_checked, "(same checks)");
  std::printf(
      "(medians of %d runs; MB/s min/max from the slowest/fastest run; CPU s: all "
      "threads of the operation, or of the sqlite3 process)\n",
      runs);

  std::printf("\nwhere the time goes (medians)\n");
  std::printf("  TakeSnapshot: %.3f s until the last page is copied, %.3f s after it\n",
              Summarize(snap_copy).median, Summarize(snap_after).median);
  std::printf("  RestoreInto:  %.3f s until the last page is copied, %.3f s after it\n",
              Summarize(restore_copy).median, Summarize(restore_after).median);
  PrintSteps("TakeSnapshot's steps one after another, one thread", snapshot_steps);
  double parts_sum = PrintSteps(
      "integrity_check's parts, each alone (TakeSnapshot and RestoreInto share them between "
      "two threads)",
      check_parts);
  double largest = 0;
  for (const auto& [name, seconds] : check_parts.all()) {
    largest = std::max(largest, Summarize(seconds).median);
  }
  auto step = [&](const std::string& name) {
    for (const auto& [step_name, seconds] : snapshot_steps.all()) {
      if (step_name == name) return Summarize(seconds).median;
    }
    return 0.0;
  };
  // TakeSnapshot at best with these step times and two free cores: the copy,
  // then the check's parts, fsync and sha256 spread perfectly over two threads
  // (a part cannot be split).
  double beside = step("fsync") + step("sha256 (DigestFile)");
  double floor = step("backup steps (+ header to rollback mode)") +
                 std::max({largest, beside, (parts_sum + beside) / 2});
  std::printf(
      "    => TakeSnapshot with these step times on two free cores: at least %.3f s = %.2fx the "
      "baseline (copy, then max(largest part, (parts + fsync + sha256) / 2))\n",
      floor, Summarize(base_snap.seconds).median / floor);
  PrintSteps("RestoreInto's steps one after another, one thread", restore_steps);
  std::printf("\nload at the end: %s\n", LoadAverage().c_str());
  return 0;
}
