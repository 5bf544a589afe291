#include "providers/sqlite/storage.h"

// Invariants kept by this file:
// - Every sqlite3*, sqlite3_stmt*, sqlite3_backup* and file descriptor lives in
//   an RAII type; every connection has a busy timeout and extended result codes.
// - A file that a later call trusts (a database made by CreateDatabase, a
//   snapshot made by TakeSnapshot) appears under its final name only complete
//   and fsynced: it is built under a temporary name and renamed into place
//   without replacing anything, then the directory is fsynced.
// - Nothing here deletes bytes it did not write itself: only its own temporary
//   files are ever removed. Quarantine renames, never unlinks.
// - Snapshots are single-file rollback-journal databases (header bytes 18 and
//   19 are 1), so opening one read-only never creates a -wal or -shm beside it,
//   and its bytes, hence its sha256, never change after TakeSnapshot returns.
// - The live database is only ever written through SQLite, so SQLite's locks
//   keep concurrent readers and writers consistent.
// - Only files that nobody writes meanwhile (a snapshot, the copy that becomes
//   one) are memory-mapped or read by more than one thread; every thread has
//   its own connections, and every thread started here is joined before the
//   function that started it returns.

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "crypto/crypto.h"
#include "eventstore/filenames.h"
#include "storage/file.h"
#include "storage/sqlite_db.h"
#include "domain/reasons.h"

namespace via::providers::sqlite {
namespace {

namespace fs = std::filesystem;

// How long a connection waits for a lock held by another connection.
constexpr int kBusyTimeoutMs = 5000;

// Pages copied per sqlite3_backup_step() call, between progress reports. The
// source stays in one read transaction and the destination in one write
// transaction across steps, so the size only trades progress granularity
// against per-step overhead (measured: no difference from 256 pages upwards).
// Nor does the page cache of the copy matter: on 1.09 GB the copy takes
// 1.0-1.2 s with 400 KB to 64 MB of cache, and more with 1 GB.
constexpr int kBackupStepPages = 1024;

// Memory mapping speeds up integrity_check (measured on a 200 MB database with
// an index: 1.04 s -> 0.52 s; on 1.09 GB with six indexes: 11.8-13.0 s of CPU
// with 2 MB to 2 GB of page cache, 8.5-9.0 s mapped). Used only for files no
// other process writes: snapshots and their temporaries. Never for the live
// database: other processes may truncate it under the mapping (a checkpoint
// after VACUUM does), and an I/O error on a mapped page kills the process
// (SIGBUS) instead of failing one call. (Mapping it would save the copy ~0.3 s
// of CPU per GB.) SQLite cuts the size to its compile-time maximum (2 GB in
// Debian's build) and reads the rest of a larger file with read().
constexpr const char* kMmapPrivateFile = "PRAGMA mmap_size=1099511627776";

// Threads, the caller's included, that share the integrity check of a file
// (see CheckFileIntegrity). integrity_check is single-threaded and costs
// several times the copy itself (measured on 1.09 GB: check 8.6 s CPU, copy
// 1.0 s, sha256 0.8 s), so a second thread is worth its start-up; more would
// crowd out the apps on a small host.
constexpr std::size_t kCheckThreads = 2;

// The first 16 bytes of every SQLite database file.
constexpr std::array<char, 16> kSqliteMagic = {'S', 'Q', 'L', 'i', 't', 'e', ' ', 'f',
                                               'o', 'r', 'm', 'a', 't', ' ', '3', '\0'};
constexpr std::size_t kHeaderSize = 100;
using Header = std::array<std::uint8_t, kHeaderSize>;

// The files SQLite may keep beside a database, in the order Quarantine moves
// them (the main file first, so that no opener finds companions without it).
constexpr std::array<const char*, 4> kDatabaseFileSuffixes = {"", "-journal", "-wal", "-shm"};

// --- RAII over SQLite handles (storage/sqlite_db.h) --------------------------

using sql::BackupHandle;
using sql::Connection;
using sql::StatementHandle;

fs::path WithSuffix(const fs::path& path, std::string_view suffix) {
  return eventstore::SideFile(path, suffix);
}

// Removes `path` and its -journal/-wal/-shm companions; for our own temporary
// files only. Missing files are fine.
void RemoveDatabaseFiles(const fs::path& path) {
  for (const char* suffix : kDatabaseFileSuffixes) ::unlink(WithSuffix(path, suffix).c_str());
}

// Removes a temporary database file (and companions) unless released.
class TemporaryDatabaseFile {
 public:
  explicit TemporaryDatabaseFile(fs::path path) : path_(std::move(path)) {}
  TemporaryDatabaseFile(const TemporaryDatabaseFile&) = delete;
  TemporaryDatabaseFile& operator=(const TemporaryDatabaseFile&) = delete;
  ~TemporaryDatabaseFile() {
    if (!released_) RemoveDatabaseFiles(path_);
  }
  void Release() { released_ = true; }

 private:
  fs::path path_;
  bool released_ = false;
};

// --- Files (storage/file.h) -------------------------------------------------

using fileio::ErrnoText;
using fileio::Fd;

// Reads up to the first kHeaderSize bytes of `fd`; returns how many it read.
Result<std::size_t> ReadPrefix(int fd, const fs::path& path, Header& header) {
  std::size_t got = 0;
  while (got < header.size()) {
    ssize_t n = ::pread(fd, header.data() + got, header.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Internal("read " + path.string() + ": " + ErrnoText(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  return got;
}

bool HasSqliteMagic(const Header& header, std::size_t length) {
  return length >= kSqliteMagic.size() &&
         std::memcmp(header.data(), kSqliteMagic.data(), kSqliteMagic.size()) == 0;
}

std::uint32_t BigEndian32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

// Page count per the database header (SQLite file format, section 1.3): the
// in-header size when it is valid, else the file size over the page size; 0
// for a file that is not SQLite.
std::uint64_t PageCountFromHeader(const Header& header, std::size_t length, std::uint64_t bytes) {
  if (length < kHeaderSize || !HasSqliteMagic(header, length)) return 0;
  std::uint32_t page_size = (std::uint32_t{header[16]} << 8) | header[17];
  if (page_size == 1) page_size = 65536;
  if (page_size < 512 || (page_size & (page_size - 1)) != 0) return 0;
  std::uint32_t in_header_size = BigEndian32(&header[28]);
  std::uint32_t change_counter = BigEndian32(&header[24]);
  std::uint32_t version_valid_for = BigEndian32(&header[92]);
  if (in_header_size != 0 && change_counter == version_valid_for) return in_header_size;
  return bytes / page_size;
}

// --- SQLite -----------------------------------------------------------------

// Maps an SQLite result code to a Status. Corruption becomes DataLoss with
// `corrupt_reason`; lock contention becomes the retryable Unavailable.
Status SqliteStatus(int rc, const std::string& message,
                    const char* corrupt_reason = "storage_corrupt") {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable("database_busy", message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLoss(corrupt_reason, message);
    case SQLITE_FULL:
      return Status(StatusCode::kInternal, reason::kDiskFull, message);
    default:
      return Internal(message);
  }
}

struct OpenError {
  int rc;
  std::string message;
};

// Opens `path` with `flags`; never creates it unless `flags` says so.
std::variant<Connection, OpenError> OpenConnection(const fs::path& path, int flags) {
  sql::Opened opened = sql::OpenHandle(path.string(), flags, kBusyTimeoutMs);
  if (opened.rc != SQLITE_OK) {
    return OpenError{opened.rc,
                     "open " + path.string() + ": " + sql::ErrorText(opened.db.get(), opened.rc)};
  }
  return std::move(opened.db);
}

Result<Connection> Open(const fs::path& path, int flags,
                        const char* corrupt_reason = "storage_corrupt") {
  auto opened = OpenConnection(path, flags);
  if (auto* error = std::get_if<OpenError>(&opened)) {
    return SqliteStatus(error->rc, error->message, corrupt_reason);
  }
  return std::move(std::get<Connection>(opened));
}

// Closes `db` now and reports a failure to close (an unfinished statement).
Status Close(Connection db) { return sql::CloseChecked(std::move(db)); }

// The first column of every row of one statement, as text.
struct QueryResult {
  int rc = SQLITE_OK;
  std::string error;  // set when rc != SQLITE_OK
  std::vector<std::string> rows;
};

QueryResult Query(sqlite3* db, const char* statement) {
  QueryResult result;
  sqlite3_stmt* raw = nullptr;
  result.rc = sqlite3_prepare_v2(db, statement, -1, &raw, nullptr);
  StatementHandle stmt(raw);
  if (result.rc != SQLITE_OK) {
    result.error = sql::ErrorText(db, result.rc);
    return result;
  }
  while (true) {
    int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      result.rc = rc;
      result.error = sql::ErrorText(db, rc);
      return result;
    }
    const unsigned char* text = sqlite3_column_text(stmt.get(), 0);
    result.rows.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "");
  }
  return result;
}

// Runs `sql` and returns its single text value.
Result<std::string> QueryValue(sqlite3* db, const char* statement,
                               const char* corrupt_reason = "storage_corrupt") {
  QueryResult q = Query(db, statement);
  if (q.rc != SQLITE_OK) {
    return SqliteStatus(q.rc, std::string(statement) + ": " + q.error, corrupt_reason);
  }
  if (q.rows.empty()) return Internal(std::string(statement) + ": no result");
  return q.rows.front();
}

Status Exec(sqlite3* db, const char* statement, const char* corrupt_reason = "storage_corrupt") {
  QueryResult q = Query(db, statement);
  if (q.rc != SQLITE_OK) {
    return SqliteStatus(q.rc, std::string(statement) + ": " + q.error, corrupt_reason);
  }
  return Status::Ok();
}

// quick_check/integrity_check output: "ok", or the first problem and a count.
std::string DescribeCheck(const std::vector<std::string>& rows) {
  if (rows.empty()) return "no result";
  std::string text = rows.front();
  if (rows.size() > 1) text += " (and " + std::to_string(rows.size() - 1) + " more problems)";
  return text;
}

bool CheckPassed(const std::vector<std::string>& rows) {
  return rows.size() == 1 && rows.front() == "ok";
}

// Runs task(thread, 0) ... task(thread, count - 1), each once, on up to
// `threads` threads (the calling one included), starting them in index order
// as threads become free; `thread` (0 .. threads - 1) names the thread that
// runs a task. After the first failure no task starts, and `stop` (if given)
// is called once to cut the running ones short. Returns that first failure,
// else Ok. Runs everything on the calling thread when no other thread can be
// started.
Status RunTasks(std::size_t count, std::size_t threads,
                const std::function<Status(std::size_t thread, std::size_t index)>& task,
                const std::function<void()>& stop = nullptr) {
  std::vector<Status> results(count);
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> first_failed{count};
  auto work = [&](std::size_t thread) {
    while (first_failed.load() == count) {
      std::size_t index = next.fetch_add(1);
      if (index >= count) break;
      results[index] = task(thread, index);
      std::size_t none = count;
      if (!results[index].ok() && first_failed.compare_exchange_strong(none, index) && stop) {
        stop();  // after the failure is recorded: what it cuts short fails later
      }
    }
  };
  std::vector<std::thread> helpers;
  for (std::size_t thread = 1; thread < std::min(threads, count); ++thread) {
    try {
      helpers.emplace_back(work, thread);
    } catch (const std::system_error&) {
      break;  // no thread to spare (EAGAIN): the running ones do all the work
    }
  }
  work(0);
  for (std::thread& helper : helpers) helper.join();
  return first_failed == count ? Status::Ok() : std::move(results[first_failed]);
}

// `text` between two `quote` characters, with any inside doubled: an SQL
// string literal ('...') or identifier ("...").
std::string SqlQuoted(const std::string& text, char quote) {
  std::string quoted(1, quote);
  for (char c : text) {
    quoted += c;
    if (c == quote) quoted += c;
  }
  return quoted + quote;
}

// The parts of PRAGMA integrity_check on the database in `db`, biggest first,
// as statements that each return "ok" or the problems they found:
//   PRAGMA quick_check checks every b-tree's structure, the free list and
//     that every page is used exactly once, but not index content;
//   PRAGMA integrity_check(T) checks table T and its indexes, including that
//     every row has its index entries and that UNIQUE holds, but not the
//     free list or pages outside T (T = sqlite_master: the schema's rows).
// Together they check exactly what one integrity_check does (the tests hold
// damage that only one of the two kinds finds), so two threads can share the
// work. Virtual tables are skipped, as integrity_check skips them; their
// shadow tables are ordinary tables and get their own part.
Result<std::vector<std::string>> IntegrityCheckParts(sqlite3* db, const char* corrupt_reason) {
  QueryResult tables = Query(db,
                             "SELECT name FROM sqlite_schema WHERE type = 'table' AND "
                             "sql NOT LIKE 'CREATE VIRTUAL TABLE%'");
  if (tables.rc != SQLITE_OK) {
    return SqliteStatus(tables.rc, "integrity_check: list tables: " + tables.error, corrupt_reason);
  }
  QueryResult indexed = Query(db, "SELECT tbl_name FROM sqlite_schema WHERE type = 'index'");
  if (indexed.rc != SQLITE_OK) {
    return SqliteStatus(indexed.rc, "integrity_check: list indexes: " + indexed.error,
                        corrupt_reason);
  }
  // The cost of checking a table grows with rows x (1 + indexes); max(rowid)
  // costs one b-tree descent and is close to the row count. Tables without a
  // rowid (or whose last page is damaged) count as the biggest.
  std::vector<std::pair<double, std::string>> by_cost;
  for (const std::string& table : tables.rows) {
    double indexes =
        static_cast<double>(std::count(indexed.rows.begin(), indexed.rows.end(), table));
    QueryResult rows = Query(db, ("SELECT max(rowid) FROM " + SqlQuoted(table, '"')).c_str());
    double cost = std::numeric_limits<double>::infinity();
    if (rows.rc == SQLITE_OK && !rows.rows.empty()) {
      cost = std::strtod(rows.rows.front().c_str(), nullptr) * (1 + indexes);
    }
    by_cost.emplace_back(cost, "PRAGMA integrity_check(" + SqlQuoted(table, '\'') + ")");
  }
  std::stable_sort(by_cost.begin(), by_cost.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> parts;
  for (auto& [cost, statement] : by_cost) parts.push_back(std::move(statement));
  // The smaller parts go after the biggest table, so that it starts first.
  auto second = parts.begin() + (parts.empty() ? 0 : 1);
  parts.insert(second, {"PRAGMA quick_check", "PRAGMA integrity_check('sqlite_master')"});
  return parts;
}

// One part of integrity_check (see IntegrityCheckParts) on `db`.
Status CheckPart(sqlite3* db, const std::string& part, const char* corrupt_reason) {
  QueryResult q = Query(db, part.c_str());
  if (q.rc != SQLITE_OK) return SqliteStatus(q.rc, "integrity_check: " + q.error, corrupt_reason);
  if (!CheckPassed(q.rows)) {
    return DataLoss(corrupt_reason, "integrity_check: " + DescribeCheck(q.rows));
  }
  return Status::Ok();
}

// PRAGMA integrity_check of the database file at `path`, its parts (see
// IntegrityCheckParts) shared by kCheckThreads threads, each with its own
// read-only, memory-mapped connection. `beside`, when given, runs as one more
// task next to the biggest part. DataLoss with `corrupt_reason` unless every
// part says "ok"; the first failure stops the other parts. Nobody may write
// `path` meanwhile (a snapshot, or the copy that becomes one): the parts read
// it in separate transactions.
Status CheckFileIntegrity(const fs::path& path, const char* corrupt_reason,
                          const std::function<Status()>& beside = nullptr,
                          const std::function<void(std::size_t done, std::size_t total)>&
                              parts_done = nullptr) {
  // A library built without thread support must be used from one thread.
  const std::size_t threads = sqlite3_threadsafe() != 0 ? kCheckThreads : 1;
  // All opened here, so that a failed task can interrupt the parts running
  // on the others (sqlite3_interrupt may be called from any thread).
  std::vector<Connection> connections;
  for (std::size_t i = 0; i < threads; ++i) {
    VIA_ASSIGN_OR_RETURN(Connection db, Open(path, SQLITE_OPEN_READONLY, corrupt_reason));
    VIA_RETURN_IF_ERROR(Exec(db.get(), kMmapPrivateFile, corrupt_reason));
    connections.push_back(std::move(db));
  }
  VIA_ASSIGN_OR_RETURN(std::vector<std::string> parts,
                       IntegrityCheckParts(connections.front().get(), corrupt_reason));
  // Task `beside_index` is `beside`; the others are the parts, in order.
  const std::size_t beside_index = beside ? std::min<std::size_t>(1, parts.size()) : SIZE_MAX;
  const std::size_t count = parts.size() + (beside ? 1 : 0);
  std::atomic<std::size_t> finished{0};
  std::mutex report;
  auto run = [&](std::size_t thread, std::size_t index) -> Status {
    if (index == beside_index) return beside();
    const std::string& part = parts[index > beside_index ? index - 1 : index];
    Status status = CheckPart(connections[thread].get(), part, corrupt_reason);
    if (status.ok() && parts_done) {
      std::lock_guard<std::mutex> lock(report);
      parts_done(++finished, parts.size());
    }
    return status;
  };
  auto interrupt = [&] {
    for (const Connection& db : connections) sqlite3_interrupt(db.get());
  };
  return RunTasks(count, threads, run, interrupt);
}

// Copies every page of `from` into `to` with the backup API, in steps of
// kBackupStepPages, reporting progress after each step. A read transaction
// that the caller holds on `from` is used for every step (so the copy is one
// consistent state and never restarts); the write transaction on `to` lasts
// from the first step to the last, so other connections to `to` see the old
// content until the copy commits.
Status CopyPages(sqlite3* from, sqlite3* to, const Progress& progress, const char* corrupt_reason,
                 const PhaseProgress& phases = nullptr) {
  std::uint64_t page_size = 0;
  if (phases) {
    QueryResult size = Query(from, "PRAGMA page_size");
    if (size.rc == SQLITE_OK && !size.rows.empty()) page_size = std::strtoull(size.rows[0].c_str(), nullptr, 10);
  }
  BackupHandle backup(sqlite3_backup_init(to, "main", from, "main"));
  if (!backup) {
    int rc = sqlite3_extended_errcode(to);
    return SqliteStatus(rc, "backup init: " + sql::ErrorText(to, rc), corrupt_reason);
  }
  int rc;
  do {
    rc = sqlite3_backup_step(backup.get(), kBackupStepPages);
    if ((rc == SQLITE_OK || rc == SQLITE_DONE) && progress) {
      auto total = static_cast<std::uint64_t>(sqlite3_backup_pagecount(backup.get()));
      auto remaining = static_cast<std::uint64_t>(sqlite3_backup_remaining(backup.get()));
      progress(total - std::min(remaining, total), total);
    }
    if ((rc == SQLITE_OK || rc == SQLITE_DONE) && phases) {
      auto total = static_cast<std::uint64_t>(sqlite3_backup_pagecount(backup.get()));
      auto remaining = static_cast<std::uint64_t>(sqlite3_backup_remaining(backup.get()));
      phases("copy", (total - std::min(remaining, total)) * page_size, total * page_size);
    }
  } while (rc == SQLITE_OK);
  // finish() rolls the destination back unless the last step committed.
  int finish_rc = sqlite3_backup_finish(backup.release());
  if (rc != SQLITE_DONE) {
    return SqliteStatus(rc, "backup step: " + sql::ErrorText(to, rc), corrupt_reason);
  }
  if (finish_rc != SQLITE_OK) {
    return SqliteStatus(finish_rc, "backup finish: " + sql::ErrorText(to, finish_rc),
                        corrupt_reason);
  }
  return Status::Ok();
}

StorageHealth HealthFor(int rc) {
  // Errors of access (I/O, permissions, locking) and SQLITE_NOTADB ("file is
  // not a database": SQLite cannot even recognise the file) count as
  // unreadable. Any other error from a file SQLite recognised means its
  // content is damaged: damaged pages surface as SQLITE_CORRUPT, but also as
  // SQLITE_ERROR, SQLITE_NOMEM or SQLITE_RANGE from nonsense sizes and types.
  switch (rc & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
    case SQLITE_NOTADB:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return StorageHealth::kUnreadable;
    default:
      return StorageHealth::kCorrupt;
  }
}

Result<FileDigest> TakeSnapshotInto(const fs::path& db, const fs::path& dest, const fs::path& temp,
                                    const Progress& progress, const PhaseProgress& phases) {
  VIA_ASSIGN_OR_RETURN(Connection source, Open(db, SQLITE_OPEN_READWRITE));
  // One read transaction for the whole copy: every step sees the same state,
  // and writers in other processes go on appending to the WAL meanwhile.
  VIA_RETURN_IF_ERROR(Exec(source.get(), "BEGIN"));
  VIA_RETURN_IF_ERROR(Exec(source.get(), "SELECT count(*) FROM sqlite_schema"));

  VIA_ASSIGN_OR_RETURN(Connection copy, Open(temp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  // The copy is private until renamed and is fsynced below: no journal needed.
  VIA_RETURN_IF_ERROR(Exec(copy.get(), "PRAGMA journal_mode=OFF"));
  VIA_RETURN_IF_ERROR(Exec(copy.get(), "PRAGMA synchronous=OFF"));
  if (phases) phases("copy", 0, 0);
  VIA_RETURN_IF_ERROR(CopyPages(source.get(), copy.get(), progress, "storage_corrupt", phases));
  VIA_RETURN_IF_ERROR(Exec(source.get(), "COMMIT"));
  VIA_RETURN_IF_ERROR(Close(std::move(source)));

  // The copied header still says WAL (bytes 18/19 = 2). Reading opens the copy
  // in WAL mode; switching to DELETE rewrites the header and removes the
  // copy's -wal and -shm, leaving one self-contained file.
  VIA_RETURN_IF_ERROR(Exec(copy.get(), "SELECT count(*) FROM sqlite_schema"));
  VIA_ASSIGN_OR_RETURN(std::string mode, QueryValue(copy.get(), "PRAGMA journal_mode=DELETE"));
  if (mode != "delete") return Internal("snapshot copy stayed in journal mode " + mode);
  VIA_RETURN_IF_ERROR(Close(std::move(copy)));
  {
    // Before anything reads the copy: a rollback-journal header is what keeps
    // readers from creating companions or changing its bytes.
    VIA_ASSIGN_OR_RETURN(Fd fd, fileio::Open(temp, O_RDONLY));
    Header header{};
    VIA_ASSIGN_OR_RETURN(std::size_t length, ReadPrefix(fd.get(), temp, header));
    if (length < kHeaderSize || header[18] != 1 || header[19] != 1) {
      return Internal("snapshot copy is not a rollback-journal database");
    }
  }

  // The copy is final from here on and nothing else writes it: one thread
  // fsyncs it while this one hashes it (from the page cache the copy just
  // filled), so the hash costs no time beyond the fsync's. No integrity_check:
  // the snapshot is usable once durable and hashed, and verified later
  // (VerifySnapshot); a damaged live database gives a snapshot that fails
  // verification, which the log then records.
  FileDigest digest;
  auto sync_or_hash = [&](std::size_t, std::size_t index) -> Status {
    if (index == 0) return fileio::SyncFile(temp);
    VIA_ASSIGN_OR_RETURN(digest, DigestFile(temp, phases));
    return Status::Ok();
  };
  VIA_RETURN_IF_ERROR(RunTasks(2, 2, sync_or_hash));
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    VIA_ASSIGN_OR_RETURN(bool exists, fileio::Exists(WithSuffix(temp, suffix)));
    if (exists) return Internal("snapshot copy left a " + std::string(suffix) + " file");
  }

  Status renamed = fileio::RenameNoReplace(temp, dest);
  if (renamed.code() == StatusCode::kAlreadyExists) {
    return AlreadyExists("snapshot_exists", dest.string() + " already exists");
  }
  VIA_RETURN_IF_ERROR(renamed);
  return digest;
}

}  // namespace

Probe ProbeDatabase(const fs::path& db) {
  struct stat st;
  if (::stat(db.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return {StorageHealth::kMissing, "no file at " + db.string()};
    }
    return {StorageHealth::kUnreadable, "stat " + db.string() + ": " + ErrnoText(err)};
  }
  if (!S_ISREG(st.st_mode)) {
    return {StorageHealth::kUnreadable, db.string() + " is not a regular file"};
  }
  // SQLite reports a permission problem only as "unable to open database
  // file"; access(2) names it. Never open(2) and close(2) the file here: a
  // process's POSIX locks on a file go with ANY descriptor of it that it
  // closes, so this would drop the locks of every SQLite connection to the
  // database in this process (a server's pooled ones), and another process
  // could then checkpoint and delete the WAL under them (SQLITE_IOERR).
  if (::access(db.c_str(), R_OK) != 0) {
    return {StorageHealth::kUnreadable, "cannot read " + db.string() + ": " + ErrnoText(errno)};
  }
  if (st.st_size == 0) {
    // SQLite would accept it as an empty database, but a managed database
    // always has a header (CreateDatabase writes one): this one lost its bytes.
    return {StorageHealth::kCorrupt, db.string() + " is empty (0 bytes, no SQLite header)"};
  }

  // Read-only never writes the database file. For a WAL database SQLite may
  // create the (empty) -wal and -shm companions, as every reader does; when
  // it cannot (read-only directory) the open fails and the file is reported
  // unreadable, which is what an app would hit too.
  auto opened = OpenConnection(db, SQLITE_OPEN_READONLY);
  if (auto* error = std::get_if<OpenError>(&opened)) {
    return {HealthFor(error->rc), error->message};
  }
  Connection conn = std::move(std::get<Connection>(opened));
  // The header (SQLite checks the magic, page size and format on the first
  // read: SQLITE_NOTADB otherwise) and the whole schema, parsed: the cost
  // does not grow with the data. Damage inside tables and indexes is for the
  // full check (CheckDatabase, `via addon check`).
  QueryResult schema = Query(conn.get(), "SELECT count(*) FROM sqlite_schema");
  if (schema.rc != SQLITE_OK) return {HealthFor(schema.rc), "schema: " + schema.error};
  QueryResult parsed = Query(conn.get(), "PRAGMA schema_version");
  if (parsed.rc != SQLITE_OK) return {HealthFor(parsed.rc), "schema: " + parsed.error};
  return {StorageHealth::kOk, "ok"};
}

Probe CheckDatabase(const fs::path& db) {
  Probe probe = ProbeDatabase(db);
  if (probe.health != StorageHealth::kOk) return probe;
  auto opened = OpenConnection(db, SQLITE_OPEN_READONLY);
  if (auto* error = std::get_if<OpenError>(&opened)) {
    return {HealthFor(error->rc), error->message};
  }
  Connection conn = std::move(std::get<Connection>(opened));
  // One read transaction: the check sees one state while apps go on writing
  // to the WAL. Not memory-mapped: other processes may truncate a live file.
  QueryResult check = Query(conn.get(), "PRAGMA integrity_check");
  if (check.rc != SQLITE_OK) return {HealthFor(check.rc), "integrity_check: " + check.error};
  if (!CheckPassed(check.rows)) {
    return {StorageHealth::kCorrupt, "integrity_check: " + DescribeCheck(check.rows)};
  }
  return {StorageHealth::kOk, "ok"};
}

bool HoldsSqliteBytes(const fs::path& file) {
  auto fd = fileio::Open(file, O_RDONLY);
  if (!fd.ok()) return false;
  Header header{};
  auto length = ReadPrefix(fd->get(), file, header);
  return length.ok() && HasSqliteMagic(header, *length);
}

Status CreateDatabase(const fs::path& db) {
  if (db.filename().empty()) {
    return InvalidArgument("invalid_path", "no file name in " + db.string());
  }
  VIA_ASSIGN_OR_RETURN(bool exists, fileio::Exists(db));
  if (exists) return AlreadyExists("storage_exists", db.string() + " already exists");
  // A leftover journal would be replayed into the new database: refuse.
  for (const char* suffix : {"-wal", "-journal"}) {
    fs::path companion = WithSuffix(db, suffix);
    std::error_code ec;
    auto size = fs::file_size(companion, ec);
    if (!ec && size > 0) {
      std::string message = companion.string() + " is left over without its database; " +
                            "quarantine it before creating a new one";
      return FailedPrecondition("stale_journal", message);
    }
  }
  VIA_RETURN_IF_ERROR(fileio::CreateDirectories(db.parent_path()));

  // Built under a unique temporary name and renamed into place, so a crash
  // never leaves a headerless or non-WAL file under the real name.
  fs::path temp = eventstore::CreatingFile(db, HexEncode(crypto::RandomBytes(8)));
  TemporaryDatabaseFile temp_guard(temp);
  {
    VIA_ASSIGN_OR_RETURN(Connection conn, Open(temp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
    VIA_ASSIGN_OR_RETURN(std::string mode, QueryValue(conn.get(), "PRAGMA journal_mode=WAL"));
    if (mode != "wal") return Internal("create " + db.string() + ": journal mode stayed " + mode);
    // Closing the only connection checkpoints and removes the -wal and -shm.
    VIA_RETURN_IF_ERROR(Close(std::move(conn)));
  }
  VIA_RETURN_IF_ERROR(fileio::SyncFile(temp));
  Status renamed = fileio::RenameNoReplace(temp, db);
  if (renamed.code() == StatusCode::kAlreadyExists) {
    return AlreadyExists("storage_exists", db.string() + " already exists");
  }
  VIA_RETURN_IF_ERROR(renamed);
  temp_guard.Release();
  RemoveDatabaseFiles(temp);  // companions only: the main file was renamed
  return fileio::SyncParentDirectory(db);
}

Result<FileDigest> TakeSnapshot(const fs::path& db, const fs::path& dest,
                                const Progress& progress, const PhaseProgress& phases) {
  VIA_ASSIGN_OR_RETURN(bool dest_exists, fileio::Exists(dest));
  if (dest_exists) return AlreadyExists("snapshot_exists", dest.string() + " already exists");
  VIA_ASSIGN_OR_RETURN(bool db_exists, fileio::Exists(db));
  if (!db_exists) return NotFound("storage_missing", "no database at " + db.string());
  fs::path dir = dest.parent_path().empty() ? fs::path(".") : dest.parent_path();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return NotFound("directory_missing", "snapshot directory " + dir.string() + " does not exist");
  }

  // `dest.tmp` belongs to this snapshot alone (snapshot ids are unique), so a
  // leftover is an interrupted earlier attempt at the same snapshot.
  fs::path temp = fileio::TempPathFor(dest);
  RemoveDatabaseFiles(temp);
  TemporaryDatabaseFile temp_guard(temp);
  auto digest = TakeSnapshotInto(db, dest, temp, progress, phases);
  if (!digest.ok()) return digest.status().WithContext("snapshot " + db.string());
  temp_guard.Release();
  if (Status synced = fileio::SyncParentDirectory(dest); !synced.ok()) {
    ::unlink(dest.c_str());  // ours, just renamed: keep "no dest on error"
    return synced.WithContext("snapshot " + db.string());
  }
  return digest;
}

Result<FileDigest> DigestFile(const fs::path& file, const PhaseProgress& phases) {
  VIA_ASSIGN_OR_RETURN(fileio::Digest hashed, fileio::DigestFile(file, phases));
  VIA_ASSIGN_OR_RETURN(Fd fd, fileio::Open(file, O_RDONLY));
  Header header{};
  VIA_ASSIGN_OR_RETURN(std::size_t header_length, ReadPrefix(fd.get(), file, header));
  return FileDigest{hashed.sha256, hashed.bytes,
                    PageCountFromHeader(header, header_length, hashed.bytes)};
}

Status RestoreInto(const fs::path& snapshot, const fs::path& db, const Progress& progress,
                   bool verified, const PhaseProgress& phases) {
  const std::string context = "restore " + snapshot.string() + " into " + db.string();
  VIA_ASSIGN_OR_RETURN(bool snapshot_exists, fileio::Exists(snapshot));
  if (!snapshot_exists) {
    return NotFound("snapshot_not_found", "no snapshot at " + snapshot.string());
  }
  VIA_ASSIGN_OR_RETURN(bool db_exists, fileio::Exists(db));
  if (!db_exists) return NotFound("storage_missing", "no database at " + db.string());
  std::error_code ec;
  if (fs::equivalent(snapshot, db, ec)) {
    return InvalidArgument("same_file", context + ": the snapshot is the database itself");
  }
  // SQLite takes an empty (or header-less, zero-length) file for an empty
  // database, which would pass the check and wipe the live data: a snapshot
  // always starts with the SQLite header (TakeSnapshot only renames complete
  // copies into place).
  if (!HoldsSqliteBytes(snapshot)) {
    return DataLoss("snapshot_corrupt",
                    context + ": the snapshot does not start with a SQLite header");
  }

  auto opened = Open(snapshot, SQLITE_OPEN_READONLY, "snapshot_corrupt");
  if (!opened.ok()) return opened.status().WithContext(context);
  Connection source = std::move(opened).value();
  // The read transaction (a SHARED lock on the snapshot) starts before the
  // check and lasts until the last backup step, so nothing can change the file
  // in between: every step copies the state that the check passed. The check
  // is done before the live database is touched.
  Status checked = Exec(source.get(), kMmapPrivateFile, "snapshot_corrupt");
  if (checked.ok()) checked = Exec(source.get(), "BEGIN", "snapshot_corrupt");
  if (checked.ok()) {
    checked = Exec(source.get(), "SELECT count(*) FROM sqlite_schema", "snapshot_corrupt");
  }
  // A snapshot that VerifySnapshot passed, whose SHA-256 the caller has just
  // matched, holds the bytes that were checked: no second integrity_check.
  if (checked.ok() && !verified) checked = CheckFileIntegrity(snapshot, "snapshot_corrupt");
  if (!checked.ok()) return checked.WithContext(context + ": snapshot");
  auto source_page_size = QueryValue(source.get(), "PRAGMA page_size", "snapshot_corrupt");
  if (!source_page_size.ok()) return source_page_size.status().WithContext(context);

  auto opened_live = Open(db, SQLITE_OPEN_READWRITE);
  if (!opened_live.ok()) return opened_live.status().WithContext(context);
  Connection live = std::move(opened_live).value();
  // WAL keeps readers on the old content until the copy commits. A no-op for
  // every database CreateDatabase made.
  auto mode = QueryValue(live.get(), "PRAGMA journal_mode=WAL");
  if (!mode.ok()) return mode.status().WithContext(context + ": set WAL mode");
  if (*mode != "wal") {
    return FailedPrecondition("not_wal", context + ": database is in journal mode " + *mode);
  }
  auto live_page_size = QueryValue(live.get(), "PRAGMA page_size");
  if (!live_page_size.ok()) return live_page_size.status().WithContext(context);
  if (*live_page_size != *source_page_size) {
    return FailedPrecondition("page_size_mismatch",
                              context + ": snapshot page size " + *source_page_size +
                                  " differs from the database's " + *live_page_size);
  }

  // One write transaction on the live database from the first step to the
  // last (see CopyPages): a failure anywhere rolls back to the old content.
  Status copied = CopyPages(source.get(), live.get(), progress, "snapshot_corrupt", phases);
  if (!copied.ok()) return copied.WithContext(context);
  source.reset();
  // No second integrity_check here: the copy is page-exact from the state that
  // passed the check, and by now it is committed and visible, so a check could
  // only report, not prevent. (It used to run, through the WAL: 28.8 s of a
  // 45 s restore of 1.09 GB.)
  auto mode_after = QueryValue(live.get(), "PRAGMA journal_mode");
  if (!mode_after.ok()) return mode_after.status().WithContext(context);
  if (*mode_after != "wal") return Internal(context + ": left in journal mode " + *mode_after);
  // Fold the copy back into the database file if no reader needs the old
  // pages; PASSIVE never waits for or blocks anyone.
  Status checkpoint = Exec(live.get(), "PRAGMA wal_checkpoint(PASSIVE)");
  if (!checkpoint.ok()) return checkpoint.WithContext(context + ": checkpoint");
  return Status::Ok();
}

Result<SnapshotCheck> VerifySnapshot(const fs::path& file, ByteView expected_sha256,
                                     std::uint64_t expected_bytes, const PhaseProgress& phases) {
  VIA_ASSIGN_OR_RETURN(bool exists, fileio::Exists(file));
  if (!exists) return SnapshotCheck{false, "the snapshot file is missing: " + file.string()};
  // An empty or header-less file would pass integrity_check as an empty
  // database; its hash differs anyway, but say what is wrong.
  if (!HoldsSqliteBytes(file)) {
    return SnapshotCheck{false, "the snapshot file does not start with a SQLite header"};
  }
  std::uint64_t file_bytes = 0;
  {
    std::error_code ec;
    file_bytes = fs::file_size(file, ec);
  }
  // One phase for both threads: the mean of the bytes hashed and the share
  // of the check's parts done, in bytes.
  std::atomic<std::uint64_t> hashed{0}, check_bytes{0};
  std::mutex report;
  auto progress = [&] {
    if (!phases) return;
    std::lock_guard<std::mutex> lock(report);
    phases("sha256+integrity_check", (hashed.load() + check_bytes.load()) / 2, file_bytes);
  };
  // The hash runs beside the biggest part of the check; a mismatch stops the
  // check at once.
  auto hash = [&]() -> Status {
    PhaseProgress hash_progress = nullptr;
    if (phases) {
      hash_progress = [&](const char*, std::uint64_t done, std::uint64_t) {
        hashed = std::min(done, file_bytes);
        progress();
      };
    }
    VIA_ASSIGN_OR_RETURN(FileDigest digest, DigestFile(file, hash_progress));
    if (digest.bytes != expected_bytes ||
        !std::equal(digest.sha256.begin(), digest.sha256.end(), expected_sha256.begin(),
                    expected_sha256.end())) {
      return DataLoss("snapshot_hash_mismatch",
                      "the file's SHA-256 " + HexEncode(digest.sha256) + " (" +
                          std::to_string(digest.bytes) + " bytes) differs from the one recorded "
                          "when it was taken");
    }
    return Status::Ok();
  };
  auto parts_done = [&](std::size_t done, std::size_t total) {
    if (total > 0) check_bytes = file_bytes * done / total;
    progress();
  };
  progress();
  Status checked = CheckFileIntegrity(file, "snapshot_corrupt", hash, parts_done);
  if (checked.ok()) return SnapshotCheck{true, "ok"};
  if (checked.code() == StatusCode::kUnavailable) return checked;
  return SnapshotCheck{false, checked.message()};
}

Status ImportDatabase(const fs::path& source, const fs::path& db, bool source_verified,
                      const PhaseProgress& phases) {
  const std::string context = "import " + source.string();
  VIA_ASSIGN_OR_RETURN(bool exists, fileio::Exists(db));
  if (exists) return AlreadyExists("storage_exists", db.string() + " already exists");
  if (!HoldsSqliteBytes(source)) {
    return DataLoss("import_corrupt", context + ": not a SQLite database (no SQLite header)");
  }
  VIA_RETURN_IF_ERROR(fileio::CreateDirectories(db.parent_path()));
  auto opened = Open(source, SQLITE_OPEN_READONLY, "import_corrupt");
  if (!opened.ok()) return opened.status().WithContext(context);
  Connection from = std::move(opened).value();
  // One read transaction: the check and the copy see the same state, even if
  // someone writes the source meanwhile. Not memory-mapped: the operator's
  // file may be truncated by another process.
  Status begun = Exec(from.get(), "BEGIN", "import_corrupt");
  if (begun.ok()) begun = Exec(from.get(), "SELECT count(*) FROM sqlite_schema", "import_corrupt");
  if (!begun.ok()) return begun.WithContext(context);
  if (!source_verified) {
    if (phases) phases("integrity_check", 0, 0);
    QueryResult check = Query(from.get(), "PRAGMA integrity_check");
    if (check.rc != SQLITE_OK) {
      return SqliteStatus(check.rc, context + ": integrity_check: " + check.error, "import_corrupt");
    }
    if (!CheckPassed(check.rows)) {
      return DataLoss("import_corrupt", context + ": integrity_check: " + DescribeCheck(check.rows));
    }
    if (phases) phases("integrity_check", 1, 1);
  }
  fs::path temp = eventstore::CreatingFile(db, HexEncode(crypto::RandomBytes(8)));
  TemporaryDatabaseFile temp_guard(temp);
  {
    VIA_ASSIGN_OR_RETURN(Connection copy, Open(temp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
    VIA_RETURN_IF_ERROR(Exec(copy.get(), "PRAGMA journal_mode=OFF"));
    VIA_RETURN_IF_ERROR(Exec(copy.get(), "PRAGMA synchronous=OFF"));
    Status copied = CopyPages(from.get(), copy.get(), nullptr, "import_corrupt", phases);
    if (!copied.ok()) return copied.WithContext(context);
    VIA_RETURN_IF_ERROR(Close(std::move(copy)));
  }
  from.reset();
  {
    // As CreateDatabase leaves every managed database: in WAL mode.
    VIA_ASSIGN_OR_RETURN(Connection conn, Open(temp, SQLITE_OPEN_READWRITE));
    VIA_ASSIGN_OR_RETURN(std::string mode, QueryValue(conn.get(), "PRAGMA journal_mode=WAL"));
    if (mode != "wal") return Internal(context + ": journal mode stayed " + mode);
    VIA_RETURN_IF_ERROR(Close(std::move(conn)));
  }
  VIA_RETURN_IF_ERROR(fileio::SyncFile(temp));
  Status renamed = fileio::RenameNoReplace(temp, db);
  if (renamed.code() == StatusCode::kAlreadyExists) {
    return AlreadyExists("storage_exists", db.string() + " already exists");
  }
  VIA_RETURN_IF_ERROR(renamed);
  temp_guard.Release();
  RemoveDatabaseFiles(temp);  // companions only: the main file was renamed
  return fileio::SyncParentDirectory(db);
}

Result<fs::path> Quarantine(const fs::path& db, const std::string& suffix) {
  bool valid_suffix = !suffix.empty() && suffix.size() <= 128 &&
                      std::all_of(suffix.begin(), suffix.end(), [](char c) {
                        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                               (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                      });
  if (!valid_suffix) {
    return InvalidArgument("invalid_suffix",
                           "quarantine suffix must match [A-Za-z0-9._-]{1,128}: '" + suffix + "'");
  }
  const fs::path target = eventstore::QuarantineFile(db, suffix);

  std::vector<std::pair<fs::path, fs::path>> moves;
  for (const char* companion : kDatabaseFileSuffixes) {
    fs::path from = WithSuffix(db, companion);
    VIA_ASSIGN_OR_RETURN(bool exists, fileio::Exists(from));
    if (exists) moves.emplace_back(from, WithSuffix(target, companion));
  }
  if (moves.empty()) return NotFound("storage_missing", "no database at " + db.string());
  // Refuse before moving anything rather than stop halfway.
  for (const auto& [from, to] : moves) {
    VIA_ASSIGN_OR_RETURN(bool taken, fileio::Exists(to));
    if (taken) return AlreadyExists("quarantine_exists", to.string() + " already exists");
  }
  for (std::size_t i = 0; i < moves.size(); ++i) {
    Status moved = fileio::RenameNoReplace(moves[i].first, moves[i].second);
    if (!moved.ok()) {
      return moved.WithContext("quarantine " + db.string() + " (moved " + std::to_string(i) +
                               " of " + std::to_string(moves.size()) + " files)");
    }
  }
  VIA_RETURN_IF_ERROR(fileio::SyncParentDirectory(db));
  return target;
}

}  // namespace via::providers::sqlite
