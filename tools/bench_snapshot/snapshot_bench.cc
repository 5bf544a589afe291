// Snapshot, verify and restore throughput against the sqlite3 shell, in the
// same run (issue 14: a snapshot is usable once durable and hashed; verifying
// it is a separate, recorded step). Goals: snapshot >= 0.9x `.backup`,
// restore of a verified snapshot >= 0.9x `.restore`, verify >= 1.0x
// `PRAGMA integrity_check`.
//
// Builds, once (cached in --dir), a WAL database of app-like content: four
// tables with six secondary indexes, rows from ~60 bytes to ~25 KB (overflow
// chains), grown in interleaved rounds with a deletion in the middle, as a
// real database grows. Then for each run it measures, alternating which side
// goes first:
//   snapshot  `sqlite3 SRC '.backup DST'` (the sqlite3 shell as a process, to
//             a fresh file in the same directory) against TakeSnapshot(SRC, DST)
//             (copy, fsync and SHA-256, rename, folder fsync)
//   verify    `sqlite3 SNAP 'PRAGMA integrity_check'` against VerifySnapshot
//             (SHA-256 against the take's and integrity_check, two threads)
//   restore   into an add-on whose data was lost (a near-empty live
//             database): `sqlite3 LIVE '.restore SNAP'` against what `via
//             addon restore` does with a verified snapshot: SHA-256 of the
//             file, a safety snapshot of the live database, RestoreInto with
//             no integrity_check; and, as its own row, the safety snapshot a
//             restore over a full live database adds (a TakeSnapshot of it).
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

// `goal` 0: no goal (a baseline row).
void PrintRow(const Row& row, double megabytes, const Row* baseline, double goal = 0) {
  Summary s = Summarize(row.seconds);
  std::printf("%-9s %-18s %8.1f %7.1f %7.1f %8.3f %7.2f", row.operation.c_str(),
              row.program.c_str(), megabytes / s.median, megabytes / s.max, megabytes / s.min,
              s.median, Summarize(row.cpu).median);
  if (baseline != nullptr) {
    double ratio = Summarize(baseline->seconds).median / s.median;
    std::printf(" %6.2fx  >=%.2fx  %s", ratio, goal, ratio >= goal ? "met" : "not met");
  }
  std::printf("\n");
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

  const fs::path safety_snapshot = dir / "safety.sqlite";
  Row base_snap{"snapshot", "sqlite3 .backup", {}, {}};
  Row our_snap{"snapshot", "TakeSnapshot", {}, {}};
  Row base_verify{"verify", "integrity_check", {}, {}};
  Row our_verify{"verify", "VerifySnapshot", {}, {}};
  Row base_restore{"restore", "sqlite3 .restore", {}, {}};
  Row our_restore{"restore", "sha256+safety+copy", {}, {}};
  Row full_safety{"restore", "+ full safety", {}, {}};
  std::vector<double> snap_copy, snap_after, restore_copy, restore_after;

  // A near-empty live database (the add-on whose data was lost): one small
  // table, WAL, as CreateDatabase leaves it.
  auto near_empty = [&](const fs::path& live) {
    RemoveDatabase(live);
    via::Status created = storage::CreateDatabase(live);
    if (!created.ok()) Die(created.ToString());
    Db db(live, SQLITE_OPEN_READWRITE);
    db.Exec("CREATE TABLE lost(x); INSERT INTO lost VALUES (1)");
    db.Close();
  };

  for (int run = 0; run < runs; ++run) {
    bool ours_first = run % 2 == 1;
    std::cerr << "  run " << run + 1 << "/" << runs << "\n";

    // Snapshot: both write a fresh file beside the others.
    RemoveDatabase(base_snapshot);
    RemoveDatabase(our_snapshot);
    via::providers::sqlite::FileDigest taken;
    auto baseline_snapshot = [&] {
      Settle();
      base_snap.Add(TimeProcess(
          {sqlite3_shell, source.string(), ".backup " + Quoted(base_snapshot)}, shell_log));
    };
    auto our_snapshot_run = [&] {
      Settle();
      Timed t = TimeOperation(
          [&](const storage::Progress& p) {
            auto digest = storage::TakeSnapshot(source, our_snapshot, p);
            if (digest.ok()) taken = *digest;
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

    // Verify: `snapshots verify` (SHA-256 against the take's, and
    // integrity_check on two threads) against the shell's integrity_check.
    auto baseline_verify = [&] {
      Settle();
      base_verify.Add(
          TimeProcess({sqlite3_shell, our_snapshot.string(), "PRAGMA integrity_check"}, shell_log));
    };
    auto our_verify_run = [&] {
      Settle();
      our_verify.Add(TimeOperation(
          [&](const storage::Progress&) {
            auto check = storage::VerifySnapshot(our_snapshot, taken.sha256, taken.bytes);
            if (!check.ok()) return check.status();
            if (!check->ok) Die("verification failed: " + check->detail);
            return via::Status::Ok();
          },
          "VerifySnapshot"));
    };
    if (ours_first) {
      our_verify_run();
      baseline_verify();
    } else {
      baseline_verify();
      our_verify_run();
    }

    // Restore of the verified snapshot into an add-on whose data was lost:
    // ours is what `via addon restore` does for a verified snapshot (SHA-256
    // of the file, a safety snapshot of the live database, the page copy in
    // one transaction, no integrity_check); the baseline `.restore` into the
    // same near-empty database.
    near_empty(base_live);
    near_empty(our_live);
    auto baseline_restore = [&] {
      Settle();
      base_restore.Add(TimeProcess(
          {sqlite3_shell, base_live.string(), ".restore " + Quoted(our_snapshot)}, shell_log));
    };
    auto our_restore_run = [&] {
      RemoveDatabase(safety_snapshot);
      Settle();
      double copy_started = 0;
      auto started = Clock::now();
      Timed t = TimeOperation(
          [&](const storage::Progress& p) {
            auto digest = storage::DigestFile(our_snapshot);
            if (!digest.ok()) return digest.status();
            if (digest->sha256 != taken.sha256) Die("snapshot changed");
            auto safety = storage::TakeSnapshot(our_live, safety_snapshot);
            if (!safety.ok()) return safety.status();
            copy_started = SecondsSince(started);
            return storage::RestoreInto(our_snapshot, our_live, p, /*verified=*/true);
          },
          "restore");
      our_restore.Add(t);
      restore_copy.push_back(t.until_copied - copy_started);
      restore_after.push_back(t.total - t.until_copied);
    };
    if (ours_first) {
      our_restore_run();
      baseline_restore();
    } else {
      baseline_restore();
      our_restore_run();
    }
    // On a full live database the safety snapshot costs one snapshot more:
    // its own row (a TakeSnapshot of the full database just restored).
    RemoveDatabase(safety_snapshot);
    Settle();
    full_safety.Add(TimeOperation(
        [&](const storage::Progress& p) {
          auto digest = storage::TakeSnapshot(our_live, safety_snapshot, p);
          return digest.ok() ? via::Status::Ok() : digest.status();
        },
        "safety snapshot"));
  }
  for (const fs::path& file : {base_snapshot, our_snapshot, base_live, our_live, safety_snapshot}) {
    RemoveDatabase(file);
  }
  ::unlink(shell_log.c_str());

  std::printf("%-9s %-18s %8s %7s %7s %8s %7s %7s %7s\n", "", "", "MB/s", "min", "max", "wall s",
              "CPU s", "ratio", "goal");
  PrintRow(base_snap, mb, nullptr);
  PrintRow(our_snap, mb, &base_snap, 0.9);
  PrintRow(base_restore, mb, nullptr);
  PrintRow(our_restore, mb, &base_restore, 0.9);
  PrintRow(full_safety, mb, nullptr);
  PrintRow(base_verify, mb, nullptr);
  PrintRow(our_verify, mb, &base_verify, 1.0);
  std::printf(
      "(medians of %d runs; MB/s min/max from the slowest/fastest run; CPU s: all "
      "threads of the operation, or of the sqlite3 process; restore rows: into a near-empty "
      "live database; \"+ full safety\": the safety snapshot a restore over a full live "
      "database adds)\n",
      runs);
  std::printf("\nwhere the time goes (medians)\n");
  std::printf("  TakeSnapshot: %.3f s until the last page is copied, %.3f s after it (fsync and "
              "sha256 side by side, rename, folder fsync)\n",
              Summarize(snap_copy).median, Summarize(snap_after).median);
  std::printf("  restore: %.3f s copying pages, %.3f s after the last page (checkpoint)\n",
              Summarize(restore_copy).median, Summarize(restore_after).median);
  std::printf("\nload at the end: %s\n", LoadAverage().c_str());
  return 0;
}
