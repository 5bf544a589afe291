// Tests of the file-level SQLite storage operations on real files in a
// temporary directory. Concurrency cases fork(): the child processes use only
// the SQLite C API and report through their exit code and pipes, never Catch.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "crypto/crypto.h"
#include "providers/sqlite/storage.h"

using namespace via;
using namespace via::providers::sqlite;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("via-storage-test-" + std::to_string(::getpid()) + "-" +
                                         HexEncode(crypto::RandomBytes(6)));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

fs::path Companion(const fs::path& db, const std::string& suffix) {
  return fs::path(db.native() + suffix);
}

// A test-side connection. Not for use in forked children (it REQUIREs).
class TestDb {
 public:
  explicit TestDb(const fs::path& path, int flags = SQLITE_OPEN_READWRITE) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    INFO(path << ": " << sqlite3_errstr(rc));
    REQUIRE(rc == SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~TestDb() { sqlite3_close_v2(db_); }
  TestDb(const TestDb&) = delete;
  TestDb& operator=(const TestDb&) = delete;

  sqlite3* get() const { return db_; }

  void Exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    std::string message = error != nullptr ? error : "";
    sqlite3_free(error);
    INFO(sql << ": " << message);
    REQUIRE(rc == SQLITE_OK);
  }

  std::vector<std::string> Column(const std::string& sql) {
    std::vector<std::string> rows;
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    INFO(sql << ": " << sqlite3_errmsg(db_));
    REQUIRE(rc == SQLITE_OK);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      rows.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "NULL");
    }
    sqlite3_finalize(stmt);
    REQUIRE(rc == SQLITE_DONE);
    return rows;
  }

  std::string Text(const std::string& sql) {
    auto rows = Column(sql);
    REQUIRE(rows.size() == 1);
    return rows.front();
  }
  std::int64_t Int(const std::string& sql) { return std::stoll(Text(sql)); }

  // Every table's schema, row count and a hash of its rows, in a canonical
  // order: equal dumps mean equal content.
  std::vector<std::string> Dump() {
    std::vector<std::string> out = Column(
        "SELECT type || ' ' || name || ' ' || ifnull(sql, '') FROM sqlite_schema ORDER BY name");
    for (const std::string& table :
         Column("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")) {
      auto rows = Column("SELECT rowid || '|' || " + RowExpression(table) + " FROM \"" + table +
                         "\" ORDER BY rowid");
      crypto::Sha256 sha;
      for (const std::string& row : rows) sha.Update(row).Update(std::string_view("\n", 1));
      out.push_back("table " + table + ": " + std::to_string(rows.size()) + " rows, sha256 " +
                    HexEncode(sha.Final()));
    }
    return out;
  }

 private:
  // quote(c1) || ',' || quote(c2) ... for every column of `table`.
  std::string RowExpression(const std::string& table) {
    std::string expr;
    for (const std::string& column :
         Column("SELECT name FROM pragma_table_info('" + table + "')")) {
      if (!expr.empty()) expr += " || ',' || ";
      expr += "quote(\"" + column + "\")";
    }
    return expr.empty() ? "''" : expr;
  }

  sqlite3* db_ = nullptr;
};

std::string ReadAll(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteAll(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::string RandomString(std::size_t n) { return std::string(AsChars(crypto::RandomBytes(n))); }

// Overwrites `length` bytes at `offset` of `file` with random bytes.
void Scribble(const fs::path& file, std::uint64_t offset, std::size_t length) {
  std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(static_cast<std::streamoff>(offset));
  std::string junk = RandomString(length);
  f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  REQUIRE(f.good());
}

// A WAL database made by CreateDatabase with `rows` rows in table t (an
// integer and ~100 bytes each) and `filler_kb` KiB of blobs in table filler.
void MakeDatabase(const fs::path& db, int rows, int filler_kb = 0) {
  REQUIRE(CreateDatabase(db).ok());
  TestDb conn(db);
  conn.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER, pad TEXT)");
  conn.Exec("CREATE TABLE filler(b BLOB)");
  conn.Exec("BEGIN");
  conn.Exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
            std::to_string(rows) + ") INSERT INTO t SELECT i, i * 7, hex(randomblob(50)) FROM n");
  if (filler_kb > 0) {
    conn.Exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
              std::to_string(filler_kb) + ") INSERT INTO filler SELECT randomblob(1000) FROM n");
  }
  conn.Exec("COMMIT");
}

std::string IntegrityOf(const fs::path& db) {
  TestDb conn(db, SQLITE_OPEN_READONLY);
  return conn.Text("PRAGMA integrity_check");
}

// Damage that only the index checks of integrity_check find: the schema of
// index `index` is rewritten to `create_index`, so its entries no longer match
// the rows it claims to index, while every b-tree stays well-formed
// (quick_check passes).
void MismatchIndex(const fs::path& db, const std::string& index, const std::string& create_index) {
  TestDb conn(db);
  conn.Exec("PRAGMA writable_schema=ON");
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(conn.get(), "UPDATE sqlite_schema SET sql = ?1 WHERE name = ?2", -1,
                             &stmt, nullptr) == SQLITE_OK);
  sqlite3_bind_text(stmt, 1, create_index.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 2, index.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  REQUIRE(rc == SQLITE_DONE);
  REQUIRE(sqlite3_changes(conn.get()) == 1);
  conn.Exec("PRAGMA writable_schema=OFF");
}

// Damage that only the whole-file checks of integrity_check find: the file
// grows by one zeroed page that no b-tree and no free list owns, and the
// header counts it (per-table checks pass). No connection may be open.
void AddUnusedPage(const fs::path& db) {
  std::string bytes = ReadAll(db);
  REQUIRE(bytes.size() >= 100);
  auto field = [&](std::size_t offset) {
    return (std::uint32_t{static_cast<std::uint8_t>(bytes[offset])} << 24) |
           (std::uint32_t{static_cast<std::uint8_t>(bytes[offset + 1])} << 16) |
           (std::uint32_t{static_cast<std::uint8_t>(bytes[offset + 2])} << 8) |
           std::uint32_t{static_cast<std::uint8_t>(bytes[offset + 3])};
  };
  REQUIRE(field(24) == field(92));  // the in-header page count is the one SQLite uses
  std::uint32_t pages = field(28) + 1;
  for (int i = 0; i < 4; ++i) bytes[28 + i] = static_cast<char>(pages >> (24 - 8 * i));
  REQUIRE(bytes.size() % 4096 == 0);
  bytes.append(4096, '\0');
  WriteAll(db, bytes);
}

// Restores `snapshot` into `db` and checks that the restore is refused as
// snapshot_corrupt and leaves the database's content exactly as it was.
void CheckRestoreRefused(const fs::path& snapshot, const fs::path& db) {
  std::vector<std::string> before = TestDb(db).Dump();
  Status restored = RestoreInto(snapshot, db);
  INFO(restored.ToString());
  CHECK(restored.code() == StatusCode::kDataLoss);
  CHECK(restored.reason() == "snapshot_corrupt");
  CHECK(TestDb(db).Dump() == before);
}

// --- child processes ---------------------------------------------------------

class Pipe {
 public:
  Pipe() { REQUIRE(::pipe(fds_) == 0); }
  ~Pipe() {
    CloseRead();
    CloseWrite();
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  void CloseRead() { Close(fds_[0]); }
  void CloseWrite() { Close(fds_[1]); }

 private:
  static void Close(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  int fds_[2] = {-1, -1};
};

// A forked child process running `body`, exiting with its result. Killed and
// reaped on destruction unless waited for, so a failed REQUIRE in the parent
// never leaves it running.
class ChildProcess {
 public:
  template <typename Body>
  explicit ChildProcess(Body body) {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) ::_exit(body());
  }
  ~ChildProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  void Kill() { ::kill(pid_, SIGKILL); }

  // Exit code, or 128 + signal.
  int Wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
};

void WaitForByte(int fd) {
  char byte;
  REQUIRE(::read(fd, &byte, 1) == 1);
}

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

// Child: inserts 1, 2, 3, ... into seq(id), one transaction each, until killed.
int InsertForever(const fs::path& db, int ready_fd) {
  sqlite3* conn = nullptr;
  if (sqlite3_open_v2(db.c_str(), &conn, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) return 10;
  sqlite3_busy_timeout(conn, 5000);
  sqlite3_exec(conn, "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
  sqlite3_stmt* insert = nullptr;
  if (sqlite3_prepare_v2(conn, "INSERT INTO seq(id) VALUES (?)", -1, &insert, nullptr) !=
      SQLITE_OK) {
    return 11;
  }
  for (sqlite3_int64 id = 1;; ++id) {
    sqlite3_bind_int64(insert, 1, id);
    int rc;
    while ((rc = sqlite3_step(insert)) == SQLITE_BUSY) sqlite3_reset(insert);
    if (rc != SQLITE_DONE) return 12;
    sqlite3_reset(insert);
    if (id == 1 && ::write(ready_fd, "r", 1) != 1) return 13;
  }
}

// The invariant kept by every transaction of the restore test: 100 accounts
// whose balances sum to 100000, and a filler row count that matches the epoch.
constexpr int kAccounts = 100;
constexpr std::int64_t kTotal = 100000;

// Child: checks the invariant in read transactions until `stop_fd` is
// readable. Writes to `ready_fd` after the first check. Exit codes: 0 ok,
// 20+ what went wrong. Reports the epochs seen on `report_fd`.
int ReadInvariantUntilStopped(const fs::path& db, int ready_fd, int stop_fd, int report_fd,
                              std::int64_t filler_epoch1, std::int64_t filler_epoch2) {
  sqlite3* conn = nullptr;
  if (sqlite3_open_v2(db.c_str(), &conn, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) return 20;
  sqlite3_busy_timeout(conn, 5000);
  sqlite3_stmt* query = nullptr;
  const char* sql =
      "SELECT (SELECT sum(balance) FROM accounts), (SELECT count(*) FROM accounts), "
      "(SELECT v FROM meta WHERE k = 'epoch'), (SELECT count(*) FROM filler)";
  if (sqlite3_prepare_v2(conn, sql, -1, &query, nullptr) != SQLITE_OK) return 21;
  std::int64_t last_epoch = 0, reads = 0, reads_epoch2 = 0, reads_epoch1 = 0;
  bool told = false;
  while (true) {
    bool stop = Readable(stop_fd);
    if (sqlite3_exec(conn, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) return 22;
    int rc = sqlite3_step(query);
    if ((rc & 0xff) == SQLITE_BUSY) {
      sqlite3_reset(query);
      sqlite3_exec(conn, "ROLLBACK", nullptr, nullptr, nullptr);
      continue;
    }
    if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) return 23;
    if (rc != SQLITE_ROW) return 24;
    std::int64_t sum = sqlite3_column_int64(query, 0);
    std::int64_t count = sqlite3_column_int64(query, 1);
    std::int64_t epoch = sqlite3_column_int64(query, 2);
    std::int64_t filler = sqlite3_column_int64(query, 3);
    sqlite3_reset(query);
    if (sqlite3_exec(conn, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return 25;
    ++reads;
    if (sum != kTotal || count != kAccounts) return 26;
    if (epoch == 1 && filler != filler_epoch1) return 27;
    if (epoch == 2 && filler != filler_epoch2) return 27;
    if (epoch != 1 && epoch != 2) return 28;
    // Before the restore the database is at epoch 2, after it at epoch 1 (the
    // snapshot's); never back.
    if (last_epoch == 1 && epoch == 2) return 29;
    last_epoch = epoch;
    (epoch == 1 ? reads_epoch1 : reads_epoch2)++;
    if (!told) {
      told = true;
      if (::write(ready_fd, "r", 1) != 1) return 30;
    }
    if (stop) break;
  }
  std::string report = std::to_string(reads) + " " + std::to_string(reads_epoch2) + " " +
                       std::to_string(reads_epoch1);
  if (::write(report_fd, report.data(), report.size()) != static_cast<ssize_t>(report.size())) {
    return 31;
  }
  sqlite3_finalize(query);
  sqlite3_close(conn);
  return 0;
}

// Child: moves money between random accounts, one short write transaction at
// a time, until it sees the restored content (epoch 1) inside its own write
// transaction, then stops without writing: the restored content stays equal
// to the snapshot. Exit codes: 0 ok, 40+ what went wrong. Reports
// "commits busy" on `report_fd`.
int TransferUntilRestored(const fs::path& db, int ready_fd, int stop_fd, int report_fd) {
  sqlite3* conn = nullptr;
  if (sqlite3_open_v2(db.c_str(), &conn, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) return 40;
  sqlite3_busy_timeout(conn, 50);  // short, so that the restore makes it see SQLITE_BUSY
  sqlite3_stmt* epoch = nullptr;
  sqlite3_stmt* move = nullptr;
  if (sqlite3_prepare_v2(conn, "SELECT v FROM meta WHERE k = 'epoch'", -1, &epoch, nullptr) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(conn,
                         "UPDATE accounts SET balance = balance + "
                         "CASE id WHEN ?1 THEN -?3 ELSE ?3 END WHERE id IN (?1, ?2)",
                         -1, &move, nullptr) != SQLITE_OK) {
    return 41;
  }
  std::mt19937 random(::getpid());
  std::int64_t commits = 0, busy = 0;
  while (!Readable(stop_fd)) {
    int rc = sqlite3_exec(conn, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if ((rc & 0xff) == SQLITE_BUSY) {
      ++busy;
      continue;
    }
    if (rc != SQLITE_OK) return 42;
    rc = sqlite3_step(epoch);
    if (rc != SQLITE_ROW) return 43;
    std::int64_t current = sqlite3_column_int64(epoch, 0);
    sqlite3_reset(epoch);
    if (current == 1) {
      sqlite3_exec(conn, "ROLLBACK", nullptr, nullptr, nullptr);
      break;
    }
    int from = 1 + static_cast<int>(random() % kAccounts);
    int to = 1 + static_cast<int>(random() % kAccounts);
    if (from == to) to = from % kAccounts + 1;
    sqlite3_bind_int(move, 1, from);
    sqlite3_bind_int(move, 2, to);
    sqlite3_bind_int(move, 3, 1 + static_cast<int>(random() % 10));
    rc = sqlite3_step(move);
    sqlite3_reset(move);
    if (rc != SQLITE_DONE) return 44;
    rc = sqlite3_exec(conn, "COMMIT", nullptr, nullptr, nullptr);
    if ((rc & 0xff) == SQLITE_BUSY) {
      ++busy;
      sqlite3_exec(conn, "ROLLBACK", nullptr, nullptr, nullptr);
      continue;
    }
    if (rc != SQLITE_OK) return 45;
    if (++commits == 1 && ::write(ready_fd, "w", 1) != 1) return 46;
    // Pause like an app between requests. (A writer that retakes the lock
    // the instant it drops it can starve the restore, which SQLite's busy
    // handler does not queue fairly: the restore then fails with Unavailable.)
    ::usleep(500);
  }
  std::string report = std::to_string(commits) + " " + std::to_string(busy);
  if (::write(report_fd, report.data(), report.size()) != static_cast<ssize_t>(report.size())) {
    return 47;
  }
  sqlite3_finalize(epoch);
  sqlite3_finalize(move);
  sqlite3_close(conn);
  return 0;
}

std::string ReadReport(int fd) {
  std::string text;
  char buffer[256];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0)
    text.append(buffer, static_cast<std::size_t>(n));
  return text;
}

// Sets or clears the immutable attribute (chattr +i); false when the file
// system or the process's capabilities do not allow it.
bool SetImmutable(const fs::path& path, bool on) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  int flags = 0;
  bool ok = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  if (ok) {
    flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
    ok = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  }
  ::close(fd);
  return ok;
}

std::vector<std::string> FilesIn(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

// --- CreateDatabase ----------------------------------------------------------

TEST_CASE("a created database probes ok and is in WAL mode", "[providers]") {
  TempDir dir;
  fs::path db = dir / "addons/ad_1/data.sqlite";
  REQUIRE(CreateDatabase(db).ok());

  Probe probe = ProbeDatabase(db);
  CHECK(probe.health == StorageHealth::kOk);
  CHECK(probe.detail == "ok");
  CHECK(HoldsSqliteBytes(db));
  TestDb conn(db);
  CHECK(conn.Text("PRAGMA journal_mode") == "wal");
}

TEST_CASE("a created database is a single file with no temporary left beside it", "[providers]") {
  TempDir dir;
  REQUIRE(CreateDatabase(dir / "data.sqlite").ok());
  CHECK(FilesIn(dir.path()) == std::vector<std::string>{"data.sqlite"});
}

TEST_CASE("creating a database twice fails with AlreadyExists", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  REQUIRE(CreateDatabase(db).ok());
  {
    TestDb conn(db);
    conn.Exec("CREATE TABLE kept(x); INSERT INTO kept VALUES (42)");
  }
  Status again = CreateDatabase(db);
  CHECK(again.code() == StatusCode::kAlreadyExists);
  TestDb conn(db);
  CHECK(conn.Int("SELECT x FROM kept") == 42);
}

TEST_CASE("creating a database over a non-database file fails and keeps its bytes", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  WriteAll(db, "precious");
  CHECK(CreateDatabase(db).code() == StatusCode::kAlreadyExists);
  CHECK(ReadAll(db) == "precious");
}

TEST_CASE("creating a database refuses a leftover -wal without its database", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  WriteAll(Companion(db, "-wal"), "frames of some other database");
  Status status = CreateDatabase(db);
  CHECK(status.code() == StatusCode::kFailedPrecondition);
  CHECK_FALSE(fs::exists(db));
}

// --- ProbeDatabase -------------------------------------------------------------

TEST_CASE("probing a missing file reports missing and creates nothing", "[providers]") {
  TempDir dir;
  fs::path db = dir / "absent.sqlite";
  CHECK(ProbeDatabase(db).health == StorageHealth::kMissing);
  CHECK(ProbeDatabase(dir / "no/such/dir/x.sqlite").health == StorageHealth::kMissing);
  CHECK(FilesIn(dir.path()).empty());
}

TEST_CASE("probing a file of random bytes reports it unreadable", "[providers]") {
  TempDir dir;
  fs::path file = dir / "random.sqlite";
  WriteAll(file, RandomString(8192));
  Probe probe = ProbeDatabase(file);
  // SQLite's verdict is SQLITE_NOTADB: it does not recognise the file at all.
  CHECK(probe.health == StorageHealth::kUnreadable);
  CHECK_THAT(probe.detail, Catch::Contains("not a database"));
}

// Page 1 holds the header and the root of sqlite_schema; with few tables the
// whole schema fits on it. Damage just past the 100-byte header hits the
// b-tree page header and cell pointers of the schema.
void DamageSchema(const fs::path& db) { Scribble(db, 100, 400); }

TEST_CASE("probing a database with a damaged schema page reports it corrupt", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 400);
  REQUIRE(ProbeDatabase(db).health == StorageHealth::kOk);
  DamageSchema(db);
  Probe probe = ProbeDatabase(db);
  INFO(probe.detail);
  CHECK(probe.health == StorageHealth::kCorrupt);
  CHECK_FALSE(probe.detail.empty());
  CHECK(HoldsSqliteBytes(db));
}

TEST_CASE("probing a file whose header is not SQLite's reports it unreadable", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 10);
  Scribble(db, 0, 16);  // the magic string
  Probe probe = ProbeDatabase(db);
  CHECK(probe.health == StorageHealth::kUnreadable);
  CHECK_THAT(probe.detail, Catch::Contains("not a database"));
}

TEST_CASE("the probe reads header and schema only, the full check finds a damaged table page",
          "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 400);
  REQUIRE(CheckDatabase(db).health == StorageHealth::kOk);
  Scribble(db, 4096, 4096);  // page 2: the root page of table t
  CHECK(ProbeDatabase(db).health == StorageHealth::kOk);
  Probe full = CheckDatabase(db);
  CHECK(full.health == StorageHealth::kCorrupt);
  CHECK_THAT(full.detail, Catch::Contains("integrity_check"));
}

TEST_CASE("the full check reports damage past the first pages as corrupt", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 400);
  fs::path pristine = dir / "pristine.sqlite";
  fs::copy_file(db, pristine);
  // Random junk surfaces as different SQLite errors (CORRUPT, ERROR, NOMEM, ...):
  // every one of them must read as corrupt, so try many.
  for (int i = 0; i < 50; ++i) {
    fs::copy_file(pristine, db, fs::copy_options::overwrite_existing);
    Scribble(db, 4096 * 5 + 100, 200);  // inside a leaf page of table t
    Probe probe = CheckDatabase(db);
    INFO(probe.detail);
    CHECK(probe.health == StorageHealth::kCorrupt);
  }
}

TEST_CASE("the probe costs the same whatever the size of the data", "[providers]") {
  // Counted, not timed: the pages SQLite reads for the probe (its page cache
  // misses) do not grow with the rows, while the full check's do.
  TempDir dir;
  fs::path small = dir / "small.sqlite";
  fs::path big = dir / "big.sqlite";
  MakeDatabase(small, 10);
  MakeDatabase(big, 50000, 4000);
  auto pages_read = [](const fs::path& db, const char* sql) {
    TestDb conn(db, SQLITE_OPEN_READONLY);
    conn.Column(sql);
    int current = 0, high = 0;
    sqlite3_db_status(conn.get(), SQLITE_DBSTATUS_CACHE_MISS, &current, &high, 0);
    return current;
  };
  // What ProbeDatabase runs (besides the open).
  const int probe_small = pages_read(small, "SELECT count(*) FROM sqlite_schema");
  const int probe_big = pages_read(big, "SELECT count(*) FROM sqlite_schema");
  CHECK(probe_big == probe_small);
  CHECK(probe_big <= 2);
  CHECK(pages_read(big, "PRAGMA integrity_check") > 100 * pages_read(small, "PRAGMA integrity_check"));
  CHECK(ProbeDatabase(big).health == StorageHealth::kOk);
}

TEST_CASE("probing never drops this process's SQLite locks on the database", "[providers]") {
  // A process's POSIX locks on a file go with any descriptor of it that it
  // closes. If the probe open()ed and close()d the file, a server holding
  // connections (and their shared lock) would lose that lock, and another
  // process closing its last connection would checkpoint and delete the WAL
  // under the server's connections (SQLITE_IOERR for apps during snapshots).
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 100);
  TestDb held(db);  // this process's connection, e.g. a pooled one of via serve
  held.Exec("INSERT INTO t(id, v) VALUES (100000, 1)");
  REQUIRE(fs::exists(Companion(db, "-wal")));
  REQUIRE(ProbeDatabase(db).health == StorageHealth::kOk);
  REQUIRE(CheckDatabase(db).health == StorageHealth::kOk);
  // Another process writes and closes its only connection: while this process
  // still holds its lock, that close must not delete the WAL.
  const std::string other = "sqlite3 '" + db.string() + "' 'INSERT INTO t(id, v) VALUES (100001, 2)'";
  REQUIRE(std::system(other.c_str()) == 0);
  CHECK(fs::exists(Companion(db, "-wal")));
  CHECK(held.Int("SELECT count(*) FROM t WHERE id >= 100000") == 2);
}

TEST_CASE("probing an empty file reports it corrupt", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  WriteAll(db, "");
  Probe probe = ProbeDatabase(db);
  CHECK(probe.health == StorageHealth::kCorrupt);
  CHECK_THAT(probe.detail, Catch::Contains("empty"));
}

TEST_CASE("probing a directory reports it unreadable", "[providers]") {
  TempDir dir;
  fs::create_directories(dir / "data.sqlite");
  CHECK(ProbeDatabase(dir / "data.sqlite").health == StorageHealth::kUnreadable);
}

TEST_CASE("probing never changes the database file's bytes", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 300);
  std::string before = ReadAll(db);
  CHECK(ProbeDatabase(db).health == StorageHealth::kOk);
  CHECK(ReadAll(db) == before);

  DamageSchema(db);
  std::string damaged = ReadAll(db);
  CHECK(ProbeDatabase(db).health == StorageHealth::kCorrupt);
  CHECK(CheckDatabase(db).health == StorageHealth::kCorrupt);
  CHECK(ReadAll(db) == damaged);
}

TEST_CASE("probing sees the content of the WAL of a database in use", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 300);
  TestDb writer(db);
  writer.Exec("PRAGMA wal_autocheckpoint=0");
  writer.Exec("INSERT INTO t(id, v) VALUES (1000, 1)");
  CHECK(fs::file_size(Companion(db, "-wal")) > 0);
  CHECK(ProbeDatabase(db).health == StorageHealth::kOk);
}

TEST_CASE("probing a file without read permission reports it unreadable", "[providers]") {
  if (::geteuid() == 0) {
    WARN("skipped: running as root, which reads files whatever their mode");
    return;
  }
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 10);
  fs::permissions(db, fs::perms::none);
  Probe probe = ProbeDatabase(db);
  fs::permissions(db, fs::perms::owner_read | fs::perms::owner_write);
  CHECK(probe.health == StorageHealth::kUnreadable);
  CHECK_THAT(probe.detail, Catch::Contains("Permission denied"));
}

TEST_CASE("probing a WAL database in a read-only directory without its -shm reports unreadable",
          "[providers]") {
  TempDir dir;
  fs::path locked = dir / "locked";
  fs::path db = locked / "data.sqlite";
  MakeDatabase(db, 10);
  REQUIRE_FALSE(fs::exists(Companion(db, "-shm")));
  // chattr +i stops even root from creating the -shm.
  if (!SetImmutable(locked, true)) {
    WARN("skipped: cannot make a directory immutable here");
    return;
  }
  Probe probe = ProbeDatabase(db);
  SetImmutable(locked, false);
  CHECK(probe.health == StorageHealth::kUnreadable);
  CHECK_THAT(probe.detail, Catch::Contains("unable to open"));
}

// --- HoldsSqliteBytes --------------------------------------------------------

TEST_CASE("HoldsSqliteBytes is true for a database even when it is damaged", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 300);
  CHECK(HoldsSqliteBytes(db));
  Scribble(db, 4096, 3 * 4096);
  CHECK(HoldsSqliteBytes(db));
  // Only the 16-byte magic counts.
  WriteAll(dir / "header-only", std::string("SQLite format 3\0", 16));
  CHECK(HoldsSqliteBytes(dir / "header-only"));
}

TEST_CASE("HoldsSqliteBytes is false for empty, short, random and missing files", "[providers]") {
  TempDir dir;
  WriteAll(dir / "empty", "");
  WriteAll(dir / "short", "SQLite format");
  WriteAll(dir / "random", RandomString(4096));
  CHECK_FALSE(HoldsSqliteBytes(dir / "empty"));
  CHECK_FALSE(HoldsSqliteBytes(dir / "short"));
  CHECK_FALSE(HoldsSqliteBytes(dir / "random"));
  CHECK_FALSE(HoldsSqliteBytes(dir / "missing"));
  CHECK_FALSE(HoldsSqliteBytes(dir.path()));
}

// --- DigestFile ----------------------------------------------------------------

TEST_CASE("DigestFile reports the sha256 and size of the bytes on disk", "[providers]") {
  TempDir dir;
  std::string bytes = RandomString(3 * 1024 * 1024 + 17);
  WriteAll(dir / "blob", bytes);
  auto digest = DigestFile(dir / "blob");
  REQUIRE(digest.ok());
  CHECK(digest->sha256 == crypto::Sha256::Digest(bytes));
  CHECK(digest->bytes == bytes.size());
  CHECK(digest->page_count == 0);  // not SQLite
}

TEST_CASE("DigestFile of a missing file is NotFound", "[providers]") {
  TempDir dir;
  CHECK(DigestFile(dir / "missing").status().code() == StatusCode::kNotFound);
}

// --- TakeSnapshot and RestoreInto ----------------------------------------------

TEST_CASE("a snapshot restored after changes brings the data back", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  fs::path snapshot = dir / "sn_1.sqlite";
  MakeDatabase(db, 500, 512);
  std::vector<std::string> original;
  std::int64_t original_pages;
  {
    TestDb conn(db);
    original = conn.Dump();
    original_pages = conn.Int("PRAGMA page_count");
  }

  auto taken = TakeSnapshot(db, snapshot);
  REQUIRE(taken.ok());
  CHECK(taken->page_count == static_cast<std::uint64_t>(original_pages));
  CHECK(taken->bytes == taken->page_count * 4096);

  {
    TestDb conn(db);
    conn.Exec("DELETE FROM t WHERE id % 3 = 0; UPDATE t SET v = -v; DELETE FROM filler");
    conn.Exec("CREATE TABLE added(x); INSERT INTO added VALUES (1)");
    REQUIRE(conn.Dump() != original);
  }

  Status restored = RestoreInto(snapshot, db);
  INFO(restored.ToString());
  REQUIRE(restored.ok());

  TestDb conn(db);
  CHECK(conn.Dump() == original);
  CHECK(conn.Text("PRAGMA integrity_check") == "ok");
  CHECK(conn.Text("PRAGMA journal_mode") == "wal");
  CHECK(conn.Int("PRAGMA page_count") == original_pages);
  auto after = DigestFile(snapshot);
  REQUIRE(after.ok());
  CHECK(*after == *taken);
  CHECK(ProbeDatabase(db).health == StorageHealth::kOk);
}

TEST_CASE("a snapshot is one rollback-journal file whose digest matches its bytes", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  fs::create_directories(dir / "snapshots");
  fs::path snapshot = dir / "snapshots/sn_1.sqlite";
  MakeDatabase(db, 200, 64);
  TestDb live(db);  // keeps the live database's WAL around
  live.Exec("PRAGMA wal_autocheckpoint=0");
  live.Exec("INSERT INTO t(id, v) VALUES (10000, 5)");  // only in the WAL

  auto taken = TakeSnapshot(db, snapshot);
  REQUIRE(taken.ok());
  CHECK(FilesIn(dir / "snapshots") == std::vector<std::string>{"sn_1.sqlite"});
  std::string bytes = ReadAll(snapshot);
  REQUIRE(bytes.size() > 100);
  CHECK(bytes[18] == 1);
  CHECK(bytes[19] == 1);
  CHECK(crypto::Sha256::Digest(bytes) == taken->sha256);
  CHECK(bytes.size() == taken->bytes);
  {
    TestDb copy(snapshot, SQLITE_OPEN_READONLY);
    CHECK(copy.Text("PRAGMA journal_mode") == "delete");
    CHECK(copy.Int("SELECT v FROM t WHERE id = 10000") == 5);
    CHECK(copy.Int("PRAGMA page_count") == static_cast<std::int64_t>(taken->page_count));
  }
  // Reading it opened no companions, so its bytes are still the same.
  CHECK(FilesIn(dir / "snapshots") == std::vector<std::string>{"sn_1.sqlite"});
  CHECK(*DigestFile(snapshot) == *taken);
}

TEST_CASE("snapshot and restore report progress up to the total page count", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 100, 6 * 1024);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> calls;
  auto record = [&](std::uint64_t done, std::uint64_t total) { calls.emplace_back(done, total); };

  auto taken = TakeSnapshot(db, dir / "sn.sqlite", record);
  REQUIRE(taken.ok());
  REQUIRE(calls.size() >= 2);
  CHECK(calls.back() == std::make_pair(taken->page_count, taken->page_count));
  for (std::size_t i = 1; i < calls.size(); ++i) CHECK(calls[i].first > calls[i - 1].first);

  calls.clear();
  REQUIRE(RestoreInto(dir / "sn.sqlite", db, record).ok());
  REQUIRE(calls.size() >= 2);
  CHECK(calls.back() == std::make_pair(taken->page_count, taken->page_count));
}

TEST_CASE("a snapshot taken during inserts holds exactly the rows committed before it",
          "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  fs::path snapshot = dir / "sn.sqlite";
  MakeDatabase(db, 10, 6 * 1024);  // several backup steps
  {
    TestDb conn(db);
    conn.Exec("CREATE TABLE seq(id INTEGER PRIMARY KEY)");
  }
  Pipe ready;
  ChildProcess writer([&] {
    ready.CloseRead();
    return InsertForever(db, ready.write_end());
  });
  ready.CloseWrite();
  WaitForByte(ready.read_end());

  TestDb observer(db, SQLITE_OPEN_READONLY);
  auto rows_now = [&] { return observer.Int("SELECT count(*) FROM seq"); };
  while (rows_now() < 200) std::this_thread::sleep_for(1ms);

  // Between backup steps, wait until the writer has committed more rows, so
  // that the copy demonstrably overlaps with commits.
  std::int64_t at_first_step = -1;
  int steps = 0;
  auto progress = [&](std::uint64_t, std::uint64_t) {
    std::int64_t now = rows_now();
    if (at_first_step < 0) at_first_step = now;
    ++steps;
    auto deadline = std::chrono::steady_clock::now() + 2s;
    while (rows_now() < now + 50 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
  };
  auto taken = TakeSnapshot(db, snapshot, progress);
  std::int64_t after = rows_now();
  writer.Kill();
  writer.Wait();
  INFO(taken.status().ToString());
  REQUIRE(taken.ok());

  CHECK(IntegrityOf(snapshot) == "ok");
  TestDb copy(snapshot, SQLITE_OPEN_READONLY);
  std::int64_t k = copy.Int("SELECT count(*) FROM seq");
  CHECK(copy.Int("SELECT ifnull(max(id), 0) FROM seq") == k);
  CHECK(copy.Int("SELECT ifnull(min(id), 1) FROM seq") == 1);
  CHECK(k >= 200);
  CHECK(k <= at_first_step);  // the state as of the start of the copy
  CHECK(steps >= 2);
  CHECK(after > at_first_step);  // the writer kept committing meanwhile
  CHECK(IntegrityOf(db) == "ok");
}

TEST_CASE("a restore is one transaction: until it commits others see the old content",
          "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 100, 6 * 1024);
  {
    TestDb conn(db);
    conn.Exec(
        "CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER); INSERT INTO meta VALUES ('epoch', 1)");
  }
  REQUIRE(TakeSnapshot(db, dir / "sn.sqlite").ok());
  {
    TestDb conn(db);
    conn.Exec("UPDATE meta SET v = 2");
  }

  TestDb other(db);
  sqlite3_busy_timeout(other.get(), 0);
  int mid_steps = 0;
  auto progress = [&](std::uint64_t done, std::uint64_t total) {
    if (done == total) return;
    ++mid_steps;
    CHECK(other.Int("SELECT v FROM meta") == 2);
    CHECK(other.Text("PRAGMA quick_check") == "ok");
    // The restore holds the write lock from its first step to its last.
    int rc = sqlite3_exec(other.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    CHECK((rc & 0xff) == SQLITE_BUSY);
    if (rc == SQLITE_OK) sqlite3_exec(other.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  };
  Status restored = RestoreInto(dir / "sn.sqlite", db, progress);
  INFO(restored.ToString());
  REQUIRE(restored.ok());
  CHECK(mid_steps >= 1);
  CHECK(other.Int("SELECT v FROM meta") == 1);
}

TEST_CASE("readers never see a torn database while a restore runs beside a writer", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  fs::path snapshot = dir / "sn.sqlite";
  REQUIRE(CreateDatabase(db).ok());
  std::int64_t filler_epoch1 = 6 * 1024, filler_epoch2 = 2 * 1024;
  {
    TestDb conn(db);
    conn.Exec("CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)");
    conn.Exec("CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER)");
    conn.Exec("CREATE TABLE filler(b BLOB)");
    conn.Exec("BEGIN");
    conn.Exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
              std::to_string(kAccounts) + ") INSERT INTO accounts SELECT i, " +
              std::to_string(kTotal / kAccounts) + " FROM n");
    conn.Exec("INSERT INTO meta VALUES ('epoch', 1)");
    conn.Exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
              std::to_string(filler_epoch1) +
              ") INSERT INTO filler SELECT randomblob(1000) FROM n");
    conn.Exec("COMMIT");
  }
  auto taken = TakeSnapshot(db, snapshot);
  REQUIRE(taken.ok());
  std::vector<std::string> snapshot_content;
  {
    TestDb copy(snapshot, SQLITE_OPEN_READONLY);
    snapshot_content = copy.Dump();
  }
  {
    TestDb conn(db);
    conn.Exec("BEGIN");
    conn.Exec("UPDATE meta SET v = 2");
    conn.Exec("DELETE FROM filler WHERE rowid > " + std::to_string(filler_epoch2));
    conn.Exec("UPDATE accounts SET balance = balance + CASE WHEN id % 2 = 0 THEN 7 ELSE -7 END");
    conn.Exec("COMMIT");
  }

  Pipe reader_ready, writer_ready, stop, reader_report, writer_report;
  ChildProcess reader([&] {
    stop.CloseWrite();
    return ReadInvariantUntilStopped(db, reader_ready.write_end(), stop.read_end(),
                                     reader_report.write_end(), filler_epoch1, filler_epoch2);
  });
  ChildProcess writer([&] {
    stop.CloseWrite();
    return TransferUntilRestored(db, writer_ready.write_end(), stop.read_end(),
                                 writer_report.write_end());
  });
  reader_report.CloseWrite();
  writer_report.CloseWrite();
  WaitForByte(reader_ready.read_end());
  WaitForByte(writer_ready.read_end());

  // Slow steps widen the window in which the reader runs during the restore.
  auto progress = [](std::uint64_t, std::uint64_t) { std::this_thread::sleep_for(30ms); };
  std::this_thread::sleep_for(50ms);  // both at work before the restore starts
  Status restored = RestoreInto(snapshot, db, progress);
  std::this_thread::sleep_for(50ms);  // let the reader see the new content
  REQUIRE(::write(stop.write_end(), "s", 1) == 1);
  int reader_exit = reader.Wait();
  int writer_exit = writer.Wait();
  std::string reader_stats = ReadReport(reader_report.read_end());
  std::string writer_stats = ReadReport(writer_report.read_end());
  INFO("restore: " << restored.ToString());
  INFO("reader (reads, at epoch 2, at epoch 1): " << reader_stats);
  INFO("writer (commits, busy): " << writer_stats);
  REQUIRE(restored.ok());
  CHECK(reader_exit == 0);
  CHECK(writer_exit == 0);

  std::int64_t reads = 0, reads_epoch2 = 0, reads_epoch1 = 0;
  std::istringstream(reader_stats) >> reads >> reads_epoch2 >> reads_epoch1;
  CHECK(reads_epoch2 > 0);
  CHECK(reads_epoch1 > 0);

  TestDb conn(db);
  CHECK(conn.Text("PRAGMA integrity_check") == "ok");
  CHECK(conn.Text("PRAGMA journal_mode") == "wal");
  CHECK(conn.Dump() == snapshot_content);
  CHECK(*DigestFile(snapshot) == *taken);
}

TEST_CASE("a snapshot into a missing directory fails and leaves no file", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 10);
  auto taken = TakeSnapshot(db, dir / "snapshots/ad_1/sn_1.sqlite");
  CHECK(taken.status().code() == StatusCode::kNotFound);
  CHECK_FALSE(fs::exists(dir / "snapshots"));
  CHECK(FilesIn(dir.path()) == std::vector<std::string>{"data.sqlite"});
}

TEST_CASE("a snapshot of a missing database is NotFound and creates nothing", "[providers]") {
  TempDir dir;
  auto taken = TakeSnapshot(dir / "data.sqlite", dir / "sn.sqlite");
  CHECK(taken.status().code() == StatusCode::kNotFound);
  CHECK(FilesIn(dir.path()).empty());
}

TEST_CASE("a snapshot never replaces an existing file", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 10);
  WriteAll(dir / "sn.sqlite", "an earlier snapshot");
  auto taken = TakeSnapshot(db, dir / "sn.sqlite");
  CHECK(taken.status().code() == StatusCode::kAlreadyExists);
  CHECK(ReadAll(dir / "sn.sqlite") == "an earlier snapshot");
}

// Taking a snapshot runs no integrity_check (it is usable once durable and
// hashed); VerifySnapshot finds the damage later, by the recorded hash.
SnapshotCheck TakeThenVerify(const fs::path& db, const fs::path& snapshot) {
  auto taken = TakeSnapshot(db, snapshot);
  INFO(taken.status().ToString());
  REQUIRE(taken.ok());
  CHECK(*DigestFile(snapshot) == *taken);
  auto check = VerifySnapshot(snapshot, taken->sha256, taken->bytes);
  REQUIRE(check.ok());
  return *check;
}

TEST_CASE("a snapshot of a damaged database is taken, and its verification fails",
          "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 400);
  Scribble(db, 4096 * 5 + 100, 200);
  SnapshotCheck check = TakeThenVerify(db, dir / "sn.sqlite");
  CHECK_FALSE(check.ok);
  CHECK_FALSE(fs::exists(dir / "sn.sqlite.tmp"));
}

TEST_CASE("verification checks the hash recorded at the take: a changed byte fails it",
          "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 400);
  auto taken = TakeSnapshot(db, dir / "sn.sqlite");
  REQUIRE(taken.ok());
  auto good = VerifySnapshot(dir / "sn.sqlite", taken->sha256, taken->bytes);
  REQUIRE(good.ok());
  CHECK(good->ok);
  CHECK(good->detail == "ok");
  // One bit of the last page flipped.
  {
    std::fstream f(dir / "sn.sqlite", std::ios::binary | std::ios::in | std::ios::out);
    f.seekg(-10, std::ios::end);
    char c = 0;
    f.read(&c, 1);
    f.seekp(-10, std::ios::end);
    c = static_cast<char>(c ^ 1);
    f.write(&c, 1);
  }
  auto bad = VerifySnapshot(dir / "sn.sqlite", taken->sha256, taken->bytes);
  REQUIRE(bad.ok());
  CHECK_FALSE(bad->ok);
  CHECK_THAT(bad->detail, Catch::Contains("SHA-256"));
  fs::remove(dir / "sn.sqlite");
  auto gone = VerifySnapshot(dir / "sn.sqlite", taken->sha256, taken->bytes);
  REQUIRE(gone.ok());
  CHECK_FALSE(gone->ok);
  CHECK_THAT(gone->detail, Catch::Contains("missing"));
}

TEST_CASE("a snapshot of a database whose index disagrees with its rows fails verification",
          "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 400, 64);
  {
    TestDb conn(db);
    conn.Exec("CREATE INDEX t_v ON t(v)");
  }
  MismatchIndex(db, "t_v", "CREATE INDEX t_v ON t(pad)");
  {
    TestDb conn(db, SQLITE_OPEN_READONLY);
    REQUIRE(conn.Text("PRAGMA quick_check") == "ok");  // only the index checks see it
  }
  SnapshotCheck check = TakeThenVerify(db, dir / "sn.sqlite");
  CHECK_FALSE(check.ok);
  CHECK_THAT(check.detail, Catch::Contains("missing from index t_v"));
}

TEST_CASE("a snapshot of a database with a page that nothing uses fails verification",
          "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 400, 64);
  AddUnusedPage(db);
  {
    TestDb conn(db, SQLITE_OPEN_READONLY);
    // Every table on its own passes: only the whole-file check sees it.
    REQUIRE(conn.Text("PRAGMA integrity_check('t')") == "ok");
    REQUIRE(conn.Text("PRAGMA integrity_check('filler')") == "ok");
  }
  SnapshotCheck check = TakeThenVerify(db, dir / "sn.sqlite");
  CHECK_FALSE(check.ok);
  CHECK_THAT(check.detail, Catch::Contains("never used"));
}

TEST_CASE("a snapshot checks tables of every kind: quoted names, WITHOUT ROWID, virtual",
          "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 50);
  const std::string odd = "\"it's \"\"odd\"\"\"";  // the table it's "odd"
  {
    TestDb conn(db);
    conn.Exec("CREATE TABLE " + odd + "(k INTEGER PRIMARY KEY, v TEXT UNIQUE)");
    conn.Exec("CREATE INDEX odd_v ON " + odd + "(v, k)");
    conn.Exec("CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID");
    conn.Exec("CREATE INDEX kv_v ON kv(v)");
    conn.Exec("CREATE VIRTUAL TABLE notes USING fts5(body)");
    conn.Exec("CREATE TABLE \"100\"(x INTEGER)");  // integrity_check(100) means "100 errors"
    conn.Exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) " +
              ("INSERT INTO " + odd + " SELECT i, 'v' || i FROM n"));
    conn.Exec("INSERT INTO kv SELECT 'k' || k, k FROM " + odd);
    conn.Exec("INSERT INTO notes SELECT v FROM " + odd);
  }
  SnapshotCheck check = TakeThenVerify(db, dir / "sn.sqlite");
  CHECK(check.ok);
  CHECK(IntegrityOf(dir / "sn.sqlite") == "ok");

  // Damage in the oddly named table is found too.
  MismatchIndex(db, "odd_v", "CREATE INDEX odd_v ON " + odd + "(k, v)");
  SnapshotCheck damaged = TakeThenVerify(db, dir / "sn2.sqlite");
  CHECK_FALSE(damaged.ok);
  CHECK_THAT(damaged.detail, Catch::Contains("odd_v"));
}

TEST_CASE("a snapshot that runs out of space leaves neither the file nor its temporary",
          "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  fs::create_directories(dir / "snapshots");
  MakeDatabase(db, 100, 4 * 1024);
  // A child whose file size limit is 1 MiB: writing the copy fails with EFBIG,
  // as it would on a full disk.
  ChildProcess child([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{1 << 20, 1 << 20};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 2;
    auto taken = TakeSnapshot(db, dir / "snapshots/sn.sqlite");
    return taken.ok() ? 1 : 0;
  });
  CHECK(child.Wait() == 0);
  CHECK(FilesIn(dir / "snapshots").empty());
  CHECK(ProbeDatabase(db).health == StorageHealth::kOk);
}

TEST_CASE("a snapshot replaces a leftover temporary of an interrupted attempt", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 50);
  WriteAll(dir / "sn.sqlite.tmp", "half of an interrupted copy");
  WriteAll(dir / "sn.sqlite.tmp-journal", "its journal");
  auto taken = TakeSnapshot(db, dir / "sn.sqlite");
  REQUIRE(taken.ok());
  CHECK(FilesIn(dir.path()) == std::vector<std::string>{"data.sqlite", "sn.sqlite"});
}

TEST_CASE("a restore refuses a damaged snapshot and leaves the database untouched", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 400);
  REQUIRE(TakeSnapshot(db, dir / "sn.sqlite").ok());
  Scribble(dir / "sn.sqlite", 4096 * 5 + 100, 200);
  TestDb(db).Exec("UPDATE t SET v = 0 WHERE id = 1");
  CheckRestoreRefused(dir / "sn.sqlite", db);
}

TEST_CASE("a restore refuses a snapshot whose index disagrees with its rows", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 400);
  {
    TestDb conn(db);
    conn.Exec("CREATE INDEX t_v ON t(v)");
  }
  REQUIRE(TakeSnapshot(db, dir / "sn.sqlite").ok());
  MismatchIndex(dir / "sn.sqlite", "t_v", "CREATE INDEX t_v ON t(pad)");
  TestDb(db).Exec("UPDATE t SET v = 0 WHERE id = 1");
  CheckRestoreRefused(dir / "sn.sqlite", db);
}

TEST_CASE("a restore refuses a snapshot with a page that nothing uses", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 400);
  REQUIRE(TakeSnapshot(db, dir / "sn.sqlite").ok());
  AddUnusedPage(dir / "sn.sqlite");
  TestDb(db).Exec("UPDATE t SET v = 0 WHERE id = 1");
  CheckRestoreRefused(dir / "sn.sqlite", db);
}

TEST_CASE("a restore refuses an empty or header-less snapshot file", "[providers]") {
  // Found by the snapshot_file_fuzz target: SQLite opens a 0-byte file as an
  // empty database, which passes integrity_check and would wipe the data.
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 50);
  for (const std::string& content : {std::string(), std::string("SQLite format"),
                                     std::string(4096, '\0')}) {
    INFO(content.size() << " bytes");
    WriteAll(dir / "sn.sqlite", content);
    CheckRestoreRefused(dir / "sn.sqlite", db);
  }
}

TEST_CASE("a restore from or into a missing file is NotFound", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 10);
  REQUIRE(TakeSnapshot(db, dir / "sn.sqlite").ok());
  CHECK(RestoreInto(dir / "missing.sqlite", db).code() == StatusCode::kNotFound);
  CHECK(RestoreInto(dir / "sn.sqlite", dir / "missing.sqlite").code() == StatusCode::kNotFound);
  CHECK_FALSE(fs::exists(dir / "missing.sqlite"));
}

TEST_CASE("a restore into a freshly created database fills it with the snapshot", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 300, 100);
  std::vector<std::string> original;
  {
    TestDb conn(db);
    original = conn.Dump();
  }
  REQUIRE(TakeSnapshot(db, dir / "sn.sqlite").ok());
  fs::path fresh = dir / "fresh.sqlite";
  REQUIRE(CreateDatabase(fresh).ok());
  REQUIRE(RestoreInto(dir / "sn.sqlite", fresh).ok());
  TestDb conn(fresh);
  CHECK(conn.Dump() == original);
  CHECK(conn.Text("PRAGMA journal_mode") == "wal");
}

TEST_CASE("a restore waits for a writer's transaction to finish", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 100);
  REQUIRE(TakeSnapshot(db, dir / "sn.sqlite").ok());
  TestDb writer(db);
  writer.Exec("BEGIN IMMEDIATE");
  writer.Exec("INSERT INTO t(id, v) VALUES (5000, 1)");
  std::thread commit_later([&] {
    std::this_thread::sleep_for(200ms);
    sqlite3_exec(writer.get(), "COMMIT", nullptr, nullptr, nullptr);
  });
  Status restored = RestoreInto(dir / "sn.sqlite", db);
  commit_later.join();
  INFO(restored.ToString());
  REQUIRE(restored.ok());
  TestDb conn(db);
  CHECK(conn.Int("SELECT count(*) FROM t WHERE id = 5000") == 0);
}

TEST_CASE("a restore refuses a snapshot with another page size", "[providers]") {
  TempDir dir;
  fs::path other = dir / "other.sqlite";
  {
    TestDb conn(other, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    conn.Exec("PRAGMA page_size=8192; PRAGMA journal_mode=WAL; CREATE TABLE x(y)");
  }
  REQUIRE(TakeSnapshot(other, dir / "sn.sqlite").ok());
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 10);
  Status restored = RestoreInto(dir / "sn.sqlite", db);
  CHECK(restored.code() == StatusCode::kFailedPrecondition);
  CHECK(restored.reason() == "page_size_mismatch");
  CHECK(ProbeDatabase(db).health == StorageHealth::kOk);
}

TEST_CASE("a restore of a database into itself is refused", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 10);
  CHECK(RestoreInto(db, db).code() == StatusCode::kInvalidArgument);
}

// --- Quarantine ------------------------------------------------------------------

TEST_CASE("quarantine moves the database and its companions aside byte for byte", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 300);
  Scribble(db, 4096, 4096);
  WriteAll(Companion(db, "-wal"), "wal bytes");
  WriteAll(Companion(db, "-shm"), "shm bytes");
  std::string main_bytes = ReadAll(db);

  auto moved = Quarantine(db, "20241124T1946Z");
  REQUIRE(moved.ok());
  CHECK(*moved == dir / "data.sqlite.corrupt-20241124T1946Z");
  CHECK(FilesIn(dir.path()) == std::vector<std::string>{"data.sqlite.corrupt-20241124T1946Z",
                                                        "data.sqlite.corrupt-20241124T1946Z-shm",
                                                        "data.sqlite.corrupt-20241124T1946Z-wal"});
  CHECK(ReadAll(*moved) == main_bytes);
  CHECK(ReadAll(Companion(*moved, "-wal")) == "wal bytes");
  CHECK(ReadAll(Companion(*moved, "-shm")) == "shm bytes");
  CHECK(ProbeDatabase(db).health == StorageHealth::kMissing);
}

TEST_CASE("quarantine never overwrites an earlier quarantine", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  WriteAll(db, "second");
  WriteAll(Companion(db, "-wal"), "second wal");
  WriteAll(dir / "data.sqlite.corrupt-x-wal", "first wal");
  auto moved = Quarantine(db, "x");
  CHECK(moved.status().code() == StatusCode::kAlreadyExists);
  // Nothing moved: the refusal comes before the first rename.
  CHECK(ReadAll(db) == "second");
  CHECK(ReadAll(Companion(db, "-wal")) == "second wal");
  CHECK(ReadAll(dir / "data.sqlite.corrupt-x-wal") == "first wal");
}

TEST_CASE("quarantine of a missing database is NotFound", "[providers]") {
  TempDir dir;
  CHECK(Quarantine(dir / "data.sqlite", "x").status().code() == StatusCode::kNotFound);
}

TEST_CASE("quarantine rejects a suffix that is not a plain name", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  WriteAll(db, "bytes");
  CHECK(Quarantine(db, "../elsewhere").status().code() == StatusCode::kInvalidArgument);
  CHECK(Quarantine(db, "").status().code() == StatusCode::kInvalidArgument);
  CHECK(ReadAll(db) == "bytes");
}

TEST_CASE("a database can be created again after its corrupt file was quarantined", "[providers]") {
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  MakeDatabase(db, 300);
  Scribble(db, 4096, 4096);
  REQUIRE(Quarantine(db, "q1").ok());
  REQUIRE(CreateDatabase(db).ok());
  CHECK(ProbeDatabase(db).health == StorageHealth::kOk);
}

// --- measurement (hidden: run with "[.bench]") ---------------------------------

TEST_CASE("snapshot throughput of a large database", "[.bench]") {
  // VIA_BENCH_DB=FILE measures a copy of FILE; else a VIA_BENCH_MB (200) MB
  // database is made.
  const char* size_env = std::getenv("VIA_BENCH_MB");
  const char* db_env = std::getenv("VIA_BENCH_DB");
  int megabytes = size_env != nullptr ? std::atoi(size_env) : 200;
  TempDir dir;
  fs::path db = dir / "data.sqlite";
  if (db_env != nullptr) {
    fs::copy_file(db_env, db);
  } else {
    MakeDatabase(db, 1000, megabytes * 1024);
  }
  auto seconds_since = [](auto start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  auto start = std::chrono::steady_clock::now();
  auto taken = TakeSnapshot(db, dir / "sn.sqlite");
  double seconds = seconds_since(start);
  REQUIRE(taken.ok());
  double megabytes_taken = static_cast<double>(taken->bytes) / 1e6;
  WARN("TakeSnapshot: " << megabytes_taken << " MB in " << seconds
                        << " s = " << megabytes_taken / seconds << " MB/s");
  start = std::chrono::steady_clock::now();
  REQUIRE(RestoreInto(dir / "sn.sqlite", db).ok());
  seconds = seconds_since(start);
  WARN("RestoreInto: " << megabytes_taken / seconds << " MB/s (" << seconds << " s)");
  start = std::chrono::steady_clock::now();
  REQUIRE(DigestFile(dir / "sn.sqlite").ok());
  seconds = seconds_since(start);
  WARN("DigestFile: " << megabytes_taken / seconds << " MB/s (" << seconds << " s)");
}
