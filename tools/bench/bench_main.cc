// via_bench: the event log's speed, measured against raw SQLite baselines taken
// in the same run on the same machine and filesystem. Nothing here asserts a
// speed: every row prints the medians of several runs, their spread, and the
// ratio to its baseline next to the goal. The exit code is non-zero only when
// something failed (an append error, a log that does not verify), never for a
// ratio under its goal.
//
//   via_bench [--quick] [--rows append,verify] [--runs N] [--json] [--dir DIR]
//             [--appends N] [--events N] [--batch N]
//
// Rows:
//   append  durable single appends/s: EventLog::Append of one small event per
//           call (own BEGIN IMMEDIATE transaction, WAL, synchronous=FULL, one
//           signed checkpoint) vs one INSERT + COMMIT per row of the same byte
//           size into (seq INTEGER PRIMARY KEY, record BLOB, hash BLOB), WAL,
//           synchronous=FULL, SQLite's other defaults, same directory. goal >= 0.8x
//           Both sides are timed in steady state: the baseline after 1,100
//           untimed commits (its WAL has grown to SQLite's 1,000-page
//           auto-checkpoint and is being reused; while a WAL file grows, every
//           commit also writes its inode), ours after 200 untimed appends
//           (via checkpoints its WAL every 128 pages). The row also times
//           SignCheckpoint alone, the part of an append that must precede its
//           commit and that the baseline does not do.
//   verify  eventstore::VerifyLog of an N-event log vs a plain scan of the same
//           file (SELECT record FROM records ORDER BY seq) with one OpenSSL EVP
//           SHA-256 per row.                                        goal >= 0.5x
//           The log is written once through EventLog::Append, --batch events
//           per append (default 1: one signed checkpoint per record, as the
//           CLI writes it), and cached in DIR/verify-N-bB/ (regenerated when
//           this build cannot open it or it is of an older format). The
//           generator turns synchronous off on its connection: the bytes are
//           the same, only the fsyncs are skipped. VerifyLog runs with its
//           default threads (one per CPU); the baseline is one thread.

#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "crypto/crypto.h"
#include "domain/ids.h"
#include "eventstore/event_log.h"
#include "eventstore/sqlite_log_store.h"
#include "eventstore/log_store.h"
#include "eventstore/record_codec.h"
#include "eventstore/verify.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace via;
using namespace via::eventstore;

namespace {

using SteadyClock = std::chrono::steady_clock;

double SecondsSince(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

// CPU seconds (user + system) used so far by this process, all threads.
double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "via_bench: %s\n", what.c_str());
  std::exit(1);
}

// ---------------------------------------------------------------------------
// Options

struct Options {
  bool quick = false;
  bool json = false;
  std::set<std::string> rows = {"append", "verify"};
  int runs = 5;
  std::uint64_t appends = 2000;
  std::uint64_t events = 1000000;
  std::uint64_t batch = 1;
  fs::path dir = "via-bench-data";
};

void Usage() {
  std::fprintf(stderr,
               "usage: via_bench [--quick] [--rows append,verify] [--runs N] [--json]\n"
               "                 [--dir DIR] [--appends N] [--events N] [--batch N]\n");
}

std::uint64_t ParseCount(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v == 0) {
    Die(flag + " needs a positive integer, got '" + text + "'");
  }
  return v;
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  bool appends_set = false, events_set = false, runs_set = false;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::string {
      std::string name = a;
      if (auto eq = a.find('='); eq != std::string::npos) return a.substr(eq + 1);
      if (i + 1 >= args.size()) Die(name + " needs a value");
      return args[++i];
    };
    auto is = [&](const char* flag) {
      return a == flag || a.rfind(std::string(flag) + "=", 0) == 0;
    };
    if (a == "--quick") {
      o.quick = true;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "-h" || a == "--help") {
      Usage();
      std::exit(0);
    } else if (is("--rows")) {
      o.rows.clear();
      std::stringstream ss(value());
      std::string row;
      while (std::getline(ss, row, ',')) {
        if (row.empty()) continue;
        if (row != "append" && row != "verify") Die("unknown row '" + row + "' (append, verify)");
        o.rows.insert(row);
      }
      if (o.rows.empty()) Die("--rows selects nothing");
    } else if (is("--runs")) {
      o.runs = static_cast<int>(ParseCount("--runs", value()));
      runs_set = true;
    } else if (is("--dir")) {
      o.dir = value();
    } else if (is("--appends")) {
      o.appends = ParseCount("--appends", value());
      appends_set = true;
    } else if (is("--events")) {
      o.events = ParseCount("--events", value());
      events_set = true;
    } else if (is("--batch")) {
      o.batch = ParseCount("--batch", value());
    } else {
      Usage();
      Die("unknown argument '" + a + "'");
    }
  }
  if (o.quick) {
    if (!appends_set) o.appends = 200;
    if (!events_set) o.events = 20000;
    if (!runs_set) o.runs = 3;
  }
  if (o.events < 2) Die("--events must be at least 2 (seq 1 is LogInitialized)");
  return o;
}

// ---------------------------------------------------------------------------
// Machine description

std::string CpuModel(int* cpus) {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model = "unknown";
  *cpus = 0;
  while (std::getline(in, line)) {
    if (line.rfind("processor", 0) == 0) ++*cpus;
    if (model == "unknown" && line.rfind("model name", 0) == 0) {
      if (auto colon = line.find(':'); colon != std::string::npos) {
        model = line.substr(colon + 1);
        model.erase(0, model.find_first_not_of(" \t"));
      }
    }
  }
  return model;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string NowUtc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

// ---------------------------------------------------------------------------
// Statistics

struct Series {
  std::vector<double> values;
  double Median() const {
    std::vector<double> v = values;
    std::sort(v.begin(), v.end());
    if (v.empty()) return 0;
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  }
  double Min() const { return values.empty() ? 0 : *std::min_element(values.begin(), values.end()); }
  double Max() const { return values.empty() ? 0 : *std::max_element(values.begin(), values.end()); }
  json ToJson() const {
    return json{{"median", Median()}, {"min", Min()}, {"max", Max()}, {"runs", values}};
  }
};

struct Row {
  std::string id;
  std::string name;
  std::string unit;
  Series ours;
  Series baseline;
  double goal = 0;
  std::vector<std::pair<std::string, std::string>> notes;  // printed under the table
  json params = json::object();
  double Ratio() const {
    double b = baseline.Median();
    return b > 0 ? ours.Median() / b : 0;
  }
  // Each run's ours / baseline (the two sides of a run are measured back to
  // back), for judging the spread on a noisy machine. Not the headline ratio.
  std::string PairedRatios() const {
    std::string out;
    Series paired;
    for (std::size_t i = 0; i < ours.values.size() && i < baseline.values.size(); ++i) {
      if (baseline.values[i] <= 0) continue;
      paired.values.push_back(ours.values[i] / baseline.values[i]);
      char buf[16];
      std::snprintf(buf, sizeof buf, "%s%.2f", out.empty() ? "" : " ", paired.values.back());
      out += buf;
    }
    char median[32];
    std::snprintf(median, sizeof median, " (median %.2fx)", paired.Median());
    return out + median;
  }
};

// ---------------------------------------------------------------------------
// Deterministic clock and ids for the bench logs.

class BenchClock : public Clock {
 public:
  std::int64_t NowMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

class BenchIds : public IdGenerator {
 public:
  explicit BenchIds(Clock& clock) : clock_(clock) {}
  std::string NewId(const std::string& prefix) override {
    std::array<std::uint8_t, 10> r{};
    for (auto& b : r) b = static_cast<std::uint8_t>(rng_());
    return prefix + MakeUlid(clock_.NowMs(), r);
  }

 private:
  Clock& clock_;
  std::mt19937_64 rng_{0x5649414c};
};

constexpr const char* kActor = "operator@bench";

// The format of the logs this build creates (LogStore): a cached verify log of
// another format is regenerated.
constexpr int kNewestFormat = 3;

// A small event, the size a typical command appends.
Event SmallEvent(BenchIds& ids) {
  return BindingAttached{"api", "DATABASE", ids.NewId("ad_")};
}

// A mix of realistic events for the verify log.
Event MixedEvent(BenchIds& ids, std::uint64_t i) {
  std::string addon = ids.NewId("ad_");
  switch (i % 6) {
    case 0:
      return AddonCreated{addon, "app-db-" + std::to_string(i % 1000), "sqlite", "api", "DATABASE"};
    case 1:
      return StorageProvisioned{addon};
    case 2:
      return BindingAttached{"api", "DATABASE", addon};
    case 3: {
      Bytes fp(32, static_cast<std::uint8_t>(i));
      Bytes salt(16, static_cast<std::uint8_t>(i >> 8));
      return GenerationRotated{addon, static_cast<std::uint32_t>(i % 7 + 1), fp, salt};
    }
    case 4:
      return SnapshotTaken{addon, ids.NewId("sn_"), Bytes(32, static_cast<std::uint8_t>(i)),
                           4096 * (i % 100 + 1), i % 100 + 1};
    default:
      return WorkloadTokenIssued{"api", "v" + std::to_string(i % 50 + 1), ids.NewId("tk_"),
                                 1700000000000 + static_cast<std::int64_t>(i)};
  }
}

void RemoveDb(const fs::path& p) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    fs::remove(fs::path(p.string() + suffix), ec);
  }
}

// ---------------------------------------------------------------------------
// Raw SQLite helpers for the baselines.

struct RawDb {
  sqlite3* db = nullptr;
  RawDb(const fs::path& path, int flags) {
    if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
      Die("open " + path.string() + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
    }
  }
  ~RawDb() { sqlite3_close_v2(db); }
  void Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      Die(std::string(sql) + ": " + msg);
    }
  }
  sqlite3_stmt* Prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
      Die(std::string(sql) + ": " + sqlite3_errmsg(db));
    }
    return s;
  }
  void StepDone(sqlite3_stmt* s) {
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) Die(std::string("step: ") + sqlite3_errmsg(db));
    sqlite3_reset(s);
  }
};

// ---------------------------------------------------------------------------
// Row: durable single appends.

// Byte size of the record one SmallEvent append stores (canonical encoding; the
// size does not depend on the values of the fixed-width fields).
std::size_t SmallRecordBytes() {
  BenchClock clock;
  BenchIds ids(clock);
  Record r;
  r.seq = 1000;
  r.recorded_at_ms = clock.NowMs();
  r.actor = kActor;
  r.command_id = ids.NewId("cm_");
  r.event = SmallEvent(ids);
  return EncodeRecord(r).size();
}

// Untimed commits before each side is timed (see the file comment).
constexpr std::uint64_t kOursWarmup = 200;
constexpr std::uint64_t kBaselineWarmup = 1100;

// Appends/s of EventLog::Append, one event per call, into a fresh home, after
// kOursWarmup untimed appends.
double OursAppend(const fs::path& home_dir, std::uint64_t n, std::size_t* stored_bytes) {
  std::error_code ec;
  fs::remove_all(home_dir, ec);
  BenchClock clock;
  BenchIds ids(clock);
  EventLog::Options o;
  o.home.root = home_dir;
  o.clock = &clock;
  o.ids = &ids;
  o.actor = kActor;
  auto log = EventLog::Open(o);
  if (!log.ok()) Die("open bench log: " + log.status().ToString());
  auto head = (*log)->store().GetHead();
  if (!head.ok()) Die("head: " + head.status().ToString());
  Head expected = *head;

  auto t0 = SteadyClock::now();
  for (std::uint64_t i = 0; i < kOursWarmup + n; ++i) {
    if (i == kOursWarmup) t0 = SteadyClock::now();
    AppendRequest req;
    req.actor = kActor;
    req.command_id = ids.NewId("cm_");
    req.recorded_at_ms = clock.NowMs();
    req.expected_head = expected;
    req.events.push_back(SmallEvent(ids));
    auto r = (*log)->Append(req);
    if (!r.ok()) Die("append " + std::to_string(i) + ": " + r.status().ToString());
    expected = r->head;
  }
  double secs = SecondsSince(t0);

  auto row = (*log)->store().ReadRow(expected.seq);
  if (!row.ok()) Die("read back: " + row.status().ToString());
  *stored_bytes = row->bytes.size();
  log->reset();
  fs::remove_all(home_dir, ec);
  return static_cast<double>(n) / secs;
}

// Rows/s of one INSERT + COMMIT per row of `record_bytes` bytes, after
// kBaselineWarmup untimed ones.
double BaselineAppend(const fs::path& path, std::uint64_t n, std::size_t record_bytes) {
  RemoveDb(path);
  double rate = 0;
  {
    RawDb db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    db.Exec("PRAGMA journal_mode=WAL");
    db.Exec("PRAGMA synchronous=FULL");
    db.Exec("CREATE TABLE records(seq INTEGER PRIMARY KEY, record BLOB NOT NULL, hash BLOB NOT NULL)");
    sqlite3_stmt* begin = db.Prepare("BEGIN IMMEDIATE");
    sqlite3_stmt* insert = db.Prepare("INSERT INTO records(seq, record, hash) VALUES(?,?,?)");
    sqlite3_stmt* commit = db.Prepare("COMMIT");
    std::mt19937_64 rng(42);
    Bytes record(record_bytes);
    for (auto& b : record) b = static_cast<std::uint8_t>(rng());

    auto t0 = SteadyClock::now();
    for (std::uint64_t i = 0; i < kBaselineWarmup + n; ++i) {
      if (i == kBaselineWarmup) t0 = SteadyClock::now();
      std::memcpy(record.data(), &i, std::min(sizeof i, record.size()));
      Hash256 hash = crypto::Sha256::Digest(record);
      db.StepDone(begin);
      sqlite3_bind_int64(insert, 1, static_cast<sqlite3_int64>(i + 1));
      sqlite3_bind_blob(insert, 2, record.data(), static_cast<int>(record.size()), SQLITE_STATIC);
      sqlite3_bind_blob(insert, 3, hash.data(), static_cast<int>(hash.size()), SQLITE_STATIC);
      db.StepDone(insert);
      db.StepDone(commit);
    }
    rate = static_cast<double>(n) / SecondsSince(t0);
    for (auto* s : {begin, insert, commit}) sqlite3_finalize(s);
  }
  RemoveDb(path);
  return rate;
}

// Microseconds per SignCheckpoint of a note like an append's (median of runs).
double SignMicros() {
  auto key = crypto::Ed25519PrivateKey::FromSeed(Bytes(32, 7));
  if (!key) Die("Ed25519 key");
  Checkpoint checkpoint{"via.local/lg_01JDD0000000000000000000AB", 1000, Hash256{}, Hash256{}};
  Series runs;
  std::size_t sink = 0;
  for (int r = 0; r < 5; ++r) {
    auto t0 = SteadyClock::now();
    for (int i = 0; i < 200; ++i) {
      ++checkpoint.size;
      sink += SignCheckpoint(checkpoint, *key).size();
    }
    runs.values.push_back(SecondsSince(t0) / 200 * 1e6);
  }
  if (sink == 0) Die("no note signed");
  return runs.Median();
}

Row RunAppend(const Options& o) {
  Row row;
  row.id = "append";
  row.name = "durable single appends";
  row.unit = "appends/s";
  row.goal = 0.8;
  fs::path dir = o.dir / "append";
  fs::create_directories(dir);
  const std::size_t bytes = SmallRecordBytes();
  std::size_t stored = 0;
  for (int r = 0; r < o.runs; ++r) {
    std::fprintf(stderr, "append: run %d/%d (%llu appends each)\n", r + 1, o.runs,
                 static_cast<unsigned long long>(o.appends));
    // Alternate the order so that drift on a shared machine hits both sides.
    if (r % 2 == 0) {
      row.ours.values.push_back(OursAppend(dir / "home", o.appends, &stored));
      row.baseline.values.push_back(BaselineAppend(dir / "baseline.db", o.appends, bytes));
    } else {
      row.baseline.values.push_back(BaselineAppend(dir / "baseline.db", o.appends, bytes));
      row.ours.values.push_back(OursAppend(dir / "home", o.appends, &stored));
    }
  }
  if (stored != bytes) {
    std::fprintf(stderr, "append: warning: stored record is %zu bytes, baseline rows %zu bytes\n",
                 stored, bytes);
  }
  row.notes.push_back({"record size", std::to_string(stored) + " bytes (baseline rows " +
                                          std::to_string(bytes) + " bytes + 32-byte hash)"});
  row.notes.push_back(
      {"per run", std::to_string(o.appends) + " appends, each its own transaction, timed after " +
                      std::to_string(kOursWarmup) + " (ours) and " +
                      std::to_string(kBaselineWarmup) +
                      " (baseline) untimed ones; WAL, synchronous=FULL; dir " + dir.string()});
  row.notes.push_back({"paired ratios", row.PairedRatios()});
  const double sign_us = SignMicros();
  char buf[160];
  std::snprintf(buf, sizeof buf, "ours %.0f us, baseline %.0f us; signing a note alone %.0f us",
                1e6 / row.ours.Median(), 1e6 / row.baseline.Median(), sign_us);
  row.notes.push_back({"per append", buf});
  row.params = {{"appends", o.appends},
                {"record_bytes", stored},
                {"baseline_row_bytes", bytes},
                {"warmup_ours", kOursWarmup},
                {"warmup_baseline", kBaselineWarmup},
                {"sign_us", sign_us}};
  return row;
}

// ---------------------------------------------------------------------------
// Row: audit verify.

struct GeneratedLog {
  fs::path home;
  double generation_seconds = 0;
  bool cached = false;
  std::uint64_t checkpoints = 0;
  std::uint64_t db_bytes = 0;
  int format_version = 0;
};

GeneratedLog EnsureVerifyLog(const Options& o) {
  GeneratedLog g;
  g.home = o.dir / ("verify-" + std::to_string(o.events) + "-b" + std::to_string(o.batch));
  fs::path marker = g.home / "bench-complete.json";
  Home home{g.home};
  std::error_code ec;
  if (fs::exists(marker, ec) && fs::exists(home.log_db(), ec)) {
    std::ifstream in(marker);
    json m = json::parse(in, nullptr, false);
    LogStore::Options so;
    so.path = home.log_db().string();
    so.read_only = true;
    so.create_if_missing = false;
    // A log cached by a build with another format does not open, or opens as
    // an older format: regenerate it.
    auto cached = LogStore::Open(so);
    if (!m.is_discarded() && m.value("events", std::uint64_t{0}) == o.events && cached.ok() &&
        (*cached)->format_version() == kNewestFormat) {
      g.cached = true;
      g.format_version = (*cached)->format_version();
      g.generation_seconds = m.value("generation_seconds", 0.0);
      g.checkpoints = m.value("checkpoints", std::uint64_t{0});
      g.db_bytes = fs::file_size(home.log_db(), ec);
      return g;
    }
  }
  fs::remove_all(g.home, ec);
  std::fprintf(stderr, "verify: generating a %llu-event log in %s (batches of %llu)\n",
               static_cast<unsigned long long>(o.events), g.home.c_str(),
               static_cast<unsigned long long>(o.batch));
  auto t0 = SteadyClock::now();
  {
    BenchClock clock;
    BenchIds ids(clock);
    EventLog::Options opt;
    opt.home = home;
    opt.clock = &clock;
    opt.ids = &ids;
    opt.actor = kActor;
    auto log = EventLog::Open(opt);
    if (!log.ok()) Die("open verify log: " + log.status().ToString());
    // Only the generator skips fsyncs; the bytes it appends are the same.
    Status sync_off = static_cast<SqliteLogStore&>((*log)->store()).db().Exec("PRAGMA synchronous=OFF");
    if (!sync_off.ok()) Die("synchronous=OFF: " + sync_off.ToString());
    g.format_version = (*log)->store().format_version();
    auto head = (*log)->store().GetHead();
    if (!head.ok()) Die("head: " + head.status().ToString());
    std::uint64_t seq = head->seq;
    g.checkpoints = 1;
    std::uint64_t next_report = o.events / 10;
    while (seq < o.events) {
      std::uint64_t n = std::min(o.batch, o.events - seq);
      AppendRequest req;
      req.actor = kActor;
      req.command_id = ids.NewId("cm_");
      req.recorded_at_ms = clock.NowMs();
      req.events.reserve(n);
      for (std::uint64_t i = 0; i < n; ++i) req.events.push_back(MixedEvent(ids, seq + i));
      auto r = (*log)->Append(req);
      if (!r.ok()) Die("generate at seq " + std::to_string(seq) + ": " + r.status().ToString());
      seq = r->last_seq;
      ++g.checkpoints;
      if (seq >= next_report) {
        std::fprintf(stderr, "verify: generated %llu/%llu (%.0f s)\n",
                     static_cast<unsigned long long>(seq), static_cast<unsigned long long>(o.events),
                     SecondsSince(t0));
        next_report += o.events / 10;
      }
    }
  }
  g.generation_seconds = SecondsSince(t0);
  g.db_bytes = fs::file_size(home.log_db(), ec);
  std::ofstream(marker) << json{{"events", o.events},
                                {"batch", o.batch},
                                {"checkpoints", g.checkpoints},
                                {"generation_seconds", g.generation_seconds},
                                {"generated_at", NowUtc()}}
                               .dump(2)
                        << "\n";
  return g;
}

std::unique_ptr<LogStore> OpenForAudit(const fs::path& db) {
  LogStore::Options so;
  so.path = db.string();
  so.read_only = true;
  so.create_if_missing = false;
  auto store = LogStore::Open(so);
  if (!store.ok()) Die("open " + db.string() + ": " + store.status().ToString());
  return std::move(store).value();
}

// Rows/s of VerifyLog over the whole log; `signatures` gets how many
// signatures it checked.
double OursVerify(const fs::path& db, std::uint64_t events, std::uint64_t checkpoints,
                  std::uint64_t* signatures) {
  auto store = OpenForAudit(db);
  auto t0 = SteadyClock::now();
  VerifyReport report = VerifyLog(*store, VerifyOptions{});
  double secs = SecondsSince(t0);
  *signatures = report.signatures_verified;
  if (!report.status.ok()) {
    Die("VerifyLog failed at seq " + std::to_string(report.first_bad_seq) + ": " +
        report.status.ToString());
  }
  if (report.size != events) {
    Die("VerifyLog verified " + std::to_string(report.size) + " records, expected " +
        std::to_string(events));
  }
  if (checkpoints != 0 && report.checkpoints_verified != checkpoints) {
    Die("VerifyLog verified " + std::to_string(report.checkpoints_verified) +
        " checkpoints, expected " + std::to_string(checkpoints));
  }
  return static_cast<double>(events) / secs;
}

// Rows/s of a plain ordered scan of the records with one EVP SHA-256 per row.
double BaselineVerify(const fs::path& db_path, std::uint64_t events, std::uint64_t* bytes_out) {
  RawDb db(db_path, SQLITE_OPEN_READONLY);
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (md == nullptr || ctx == nullptr) Die("EVP SHA256 unavailable");
  std::uint64_t rows = 0, bytes = 0;
  unsigned char acc = 0;
  auto t0 = SteadyClock::now();
  db.Exec("BEGIN");
  sqlite3_stmt* s = db.Prepare("SELECT record FROM records ORDER BY seq");
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const void* p = sqlite3_column_blob(s, 0);
    int n = sqlite3_column_bytes(s, 0);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestInit_ex(ctx, md, nullptr) != 1 || EVP_DigestUpdate(ctx, p, n) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &len) != 1) {
      Die("EVP digest failed");
    }
    acc ^= out[0];
    ++rows;
    bytes += static_cast<std::uint64_t>(n);
  }
  if (rc != SQLITE_DONE) Die(std::string("scan: ") + sqlite3_errmsg(db.db));
  sqlite3_finalize(s);
  db.Exec("COMMIT");
  double secs = SecondsSince(t0);
  EVP_MD_CTX_free(ctx);
  EVP_MD_free(md);
  if (rows != events) Die("baseline scanned " + std::to_string(rows) + " rows");
  *bytes_out = bytes + (acc & 0);  // keeps the digests observable
  return static_cast<double>(rows) / secs;
}

Row RunVerify(const Options& o) {
  Row row;
  row.id = "verify";
  row.name = "audit verify";
  row.unit = "rows/s";
  row.goal = 0.5;
  fs::create_directories(o.dir);
  GeneratedLog g = EnsureVerifyLog(o);
  fs::path db = Home{g.home}.log_db();
  std::uint64_t record_bytes = 0;
  std::uint64_t signatures = 0;
  // Warm the page cache for both sides (untimed).
  std::fprintf(stderr, "verify: warming the page cache\n");
  BaselineVerify(db, o.events, &record_bytes);
  // CPU seconds per run of each side, next to the wall-clock rates: on a
  // shared machine the threads of ours may not get a core each.
  Series ours_cpu, baseline_cpu;
  auto ours = [&] {
    const double cpu0 = CpuSeconds();
    row.ours.values.push_back(OursVerify(db, o.events, g.checkpoints, &signatures));
    ours_cpu.values.push_back(CpuSeconds() - cpu0);
  };
  auto baseline = [&] {
    const double cpu0 = CpuSeconds();
    row.baseline.values.push_back(BaselineVerify(db, o.events, &record_bytes));
    baseline_cpu.values.push_back(CpuSeconds() - cpu0);
  };
  for (int r = 0; r < o.runs; ++r) {
    std::fprintf(stderr, "verify: run %d/%d (%llu events)\n", r + 1, o.runs,
                 static_cast<unsigned long long>(o.events));
    if (r % 2 == 0) {
      ours();
      baseline();
    } else {
      baseline();
      ours();
    }
  }
  char buf[256];
  std::snprintf(buf, sizeof buf, "%.1f s%s", g.generation_seconds,
                g.cached ? " (earlier run; cached log reused)" : "");
  row.notes.push_back({"log generation", buf});
  std::snprintf(buf, sizeof buf,
                "%llu events, %llu per append, %llu checkpoints, format %d, avg record %.0f bytes, "
                "file %.0f MB",
                static_cast<unsigned long long>(o.events), static_cast<unsigned long long>(o.batch),
                static_cast<unsigned long long>(g.checkpoints), g.format_version,
                static_cast<double>(record_bytes) / static_cast<double>(o.events),
                static_cast<double>(g.db_bytes) / 1e6);
  row.notes.push_back({"log", buf});
  std::snprintf(buf, sizeof buf, "%.3f s per full verify (median), %.0f rows/s",
                static_cast<double>(o.events) / row.ours.Median(), row.ours.Median());
  row.notes.push_back({"verify absolute", buf});
  row.notes.push_back({"signatures", std::to_string(signatures) + " checked per verify"});
  std::snprintf(buf, sizeof buf,
                "ours %.3f s (all threads), baseline %.3f s per run (medians); their ratio %.2f",
                ours_cpu.Median(), baseline_cpu.Median(),
                ours_cpu.Median() > 0 ? baseline_cpu.Median() / ours_cpu.Median() : 0.0);
  row.notes.push_back({"cpu time", buf});
  row.notes.push_back({"verify threads",
                       std::to_string(std::max(1u, std::thread::hardware_concurrency())) +
                           " (VerifyLog's default: one per CPU)"});
  row.notes.push_back({"paired ratios", row.PairedRatios()});
  row.params = {
      {"events", o.events},
      {"batch", o.batch},
      {"checkpoints", g.checkpoints},
      {"format_version", g.format_version},
      {"signatures_verified", signatures},
      {"ours_cpu_seconds_median", ours_cpu.Median()},
      {"baseline_cpu_seconds_median", baseline_cpu.Median()},
      {"avg_record_bytes", static_cast<double>(record_bytes) / static_cast<double>(o.events)},
      {"db_bytes", g.db_bytes},
      {"generation_seconds", g.generation_seconds},
      {"generation_cached", g.cached},
      {"verify_seconds_median", static_cast<double>(o.events) / row.ours.Median()}};
  return row;
}

// ---------------------------------------------------------------------------
// Output

std::string Rate(double v) {
  char buf[64];
  if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  } else if (v >= 1e4) {
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  }
  return buf;
}

std::string Cell(const Series& s) {
  return Rate(s.Median()) + " [" + Rate(s.Min()) + "-" + Rate(s.Max()) + "]";
}

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseOptions(argc, argv);
  std::error_code ec;
  fs::create_directories(o.dir, ec);
  if (ec) Die("create " + o.dir.string() + ": " + ec.message());
  o.dir = fs::absolute(o.dir);

  int cpus = 0;
  std::string cpu = CpuModel(&cpus);
  struct utsname uts{};
  uname(&uts);
  json header = {{"date", NowUtc()},
                 {"cpu", cpu},
                 {"cpus", cpus},
                 {"load_average_at_start", LoadAverage()},
                 {"kernel", std::string(uts.sysname) + " " + uts.release},
                 {"sqlite", sqlite3_libversion()},
                 {"openssl", OPENSSL_VERSION_TEXT},
                 {"build_type", VIA_BENCH_BUILD_TYPE},
                 {"compiler", __VERSION__},
                 {"quick", o.quick},
                 {"runs", o.runs},
                 {"data_dir", o.dir.string()}};
  std::string build_type = VIA_BENCH_BUILD_TYPE;
  if (build_type != "Release") {
    std::fprintf(stderr, "via_bench: note: build type is '%s', not Release\n", build_type.c_str());
  }

  std::vector<Row> rows;
  if (o.rows.count("append")) rows.push_back(RunAppend(o));
  if (o.rows.count("verify")) rows.push_back(RunVerify(o));

  if (o.json) {
    json out = header;
    out["rows"] = json::array();
    for (const Row& r : rows) {
      json notes = json::object();
      for (const auto& [k, v] : r.notes) notes[k] = v;
      out["rows"].push_back({{"id", r.id},
                             {"name", r.name},
                             {"unit", r.unit},
                             {"ours", r.ours.ToJson()},
                             {"baseline", r.baseline.ToJson()},
                             {"ratio", r.Ratio()},
                             {"goal", r.goal},
                             {"meets_goal", r.Ratio() >= r.goal},
                             {"params", r.params},
                             {"notes", notes}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }

  std::printf("via_bench  %s\n", header["date"].get<std::string>().c_str());
  std::printf("  cpu      %s (%d cpus), load %s\n", cpu.c_str(), cpus,
              header["load_average_at_start"].get<std::string>().c_str());
  std::printf("  sqlite   %s, %s, %s build, %s\n", sqlite3_libversion(), OPENSSL_VERSION_TEXT,
              VIA_BENCH_BUILD_TYPE, header["kernel"].get<std::string>().c_str());
  std::printf("  runs     %d per row, medians [min-max]%s; data in %s\n\n", o.runs,
              o.quick ? ", --quick sizes" : "", o.dir.c_str());
  std::printf("%-24s %-10s %-26s %-26s %-7s %-6s %s\n", "row", "unit", "ours median [min-max]",
              "baseline median [min-max]", "ratio", "goal", "");
  for (const Row& r : rows) {
    char ratio[32], goal[32];
    std::snprintf(ratio, sizeof ratio, "%.2fx", r.Ratio());
    std::snprintf(goal, sizeof goal, ">=%.1fx", r.goal);
    std::printf("%-24s %-10s %-26s %-26s %-7s %-6s %s\n", r.name.c_str(), r.unit.c_str(),
                Cell(r.ours).c_str(), Cell(r.baseline).c_str(), ratio, goal,
                r.Ratio() >= r.goal ? "meets goal" : "BELOW GOAL");
  }
  for (const Row& r : rows) {
    std::printf("\n%s:\n", r.name.c_str());
    for (const auto& [k, v] : r.notes) std::printf("  %-16s %s\n", k.c_str(), v.c_str());
  }
  std::printf(
      "\nbaselines: append = raw SQLite, one INSERT+COMMIT per same-size row, WAL, "
      "synchronous=FULL, same dir, steady state;\n"
      "           verify = SELECT record FROM records ORDER BY seq + one EVP SHA-256 per "
      "row, same file.\n");
  return 0;
}
