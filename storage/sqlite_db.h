#pragma once

// The one RAII layer over the SQLite C API (storage/, below every layer that
// keeps SQLite files: the event log, the read model, the SQLite provider, the
// SQL proxy of server/).
//
// Two levels:
// - Owning handles (Connection, StatementHandle, BackupHandle) and OpenHandle:
//   unique_ptrs over the raw sqlite3*, sqlite3_stmt* and sqlite3_backup*,
//   for code that calls the C API itself on a hot path or uses calls the
//   wrapper below lacks (the Hrana proxy, the provider's backup and
//   integrity-check code). They add nothing per call.
// - Db, Stmt, ReadTransaction and Transaction: connections whose errors become
//   Status values with the SQLite message and a stable reason:
//   SQLITE_CORRUPT, SQLITE_NOTADB            DataLoss    "storage_corrupt"
//   SQLITE_BUSY, SQLITE_LOCKED               Unavailable "busy"
//   SQLITE_FULL, or an I/O error with ENOSPC Internal    "disk_full"
//   SQLITE_READONLY, or EACCES/EROFS/EPERM   Internal    "home_not_writable"
//   SQLITE_CONSTRAINT                        FailedPrecondition "constraint"
//   SQLITE_CANTOPEN (file missing)           NotFound    "cannot_open"
// Only corruption is an integrity failure: a full disk or a read-only
// directory is a fault of the machine, not of the data.
// Connections never checkpoint on close: a WAL database keeps its -wal and
// -shm files between processes. A commit that leaves the WAL at
// wal_truncate_frames or more checkpoints it and truncates it to nothing,
// without waiting for readers (if one holds the WAL, a later commit does it).
// Truncation, not SQLite's own auto-checkpoint, because a process that opens
// the file first rebuilds the WAL index by reading every frame of the WAL and
// counts them all as not yet copied: with one commit per process (a `via`
// command) the WAL never restarts and grows without bound.
// A Db is not thread-safe; use one per thread.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "domain/bytes.h"
#include "domain/status.h"

struct sqlite3;
struct sqlite3_stmt;
struct sqlite3_backup;

namespace via::sql {

// --- Owning handles ---------------------------------------------------------

// Closes with sqlite3_close_v2: statements still open keep the connection
// alive until they are finalized; an open transaction is rolled back.
struct ConnectionCloser {
  void operator()(sqlite3* db) const noexcept;
};
using Connection = std::unique_ptr<sqlite3, ConnectionCloser>;

struct StatementFinalizer {
  void operator()(sqlite3_stmt* stmt) const noexcept;
};
using StatementHandle = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

// Finishing a backup that did not reach SQLITE_DONE rolls its destination back.
struct BackupFinisher {
  void operator()(sqlite3_backup* backup) const noexcept;
};
using BackupHandle = std::unique_ptr<sqlite3_backup, BackupFinisher>;

// A connection from sqlite3_open_v2(path, flags) and its result code. The
// connection is set (so that its error message can be read) even when rc is
// not SQLITE_OK. On success it has extended result codes on and, when
// busy_timeout_ms > 0, that busy timeout.
struct Opened {
  Connection db;
  int rc = 0;
};
Opened OpenHandle(const std::string& path, int flags, int busy_timeout_ms);

// Closes `db` now with sqlite3_close, which fails (instead of deferring the
// close) while a statement or backup is unfinished: Internal naming it.
Status CloseChecked(Connection db);

// "database disk image is malformed (code 11)" for the last failed call on
// `db` (or for `rc` alone when `db` is null or has moved on); I/O errors also
// name the errno.
std::string ErrorText(sqlite3* db, int rc);

// --- Connections with Status errors -----------------------------------------

class Db;

// A prepared statement. Bind indexes are 1-based, column indexes 0-based.
class Stmt {
 public:
  Stmt() = default;
  Stmt(Stmt&& other) noexcept = default;
  Stmt& operator=(Stmt&& other) noexcept = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int index, std::int64_t value);
  Stmt& Bind(int index, std::string_view text);
  Stmt& Bind(int index, ByteView blob);
  Stmt& BindNull(int index);

  // Steps once: true when a row is available, false when done.
  Result<bool> Step();
  // Steps to completion, ignoring rows.
  Status Run();
  // Resets for reuse and clears bindings.
  void Reset();

  std::int64_t Int(int column) const;
  std::string Text(int column) const;
  ByteView Blob(int column) const;
  bool IsNull(int column) const;

 private:
  friend class Db;
  Stmt(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  StatementHandle stmt_;
  sqlite3* db_ = nullptr;
};

struct OpenOptions {
  bool read_only = false;
  bool create = true;
  int busy_timeout_ms = 30000;
  // Read-only only: when the WAL index cannot be created (a read-only
  // directory) and no WAL content exists, open the file as immutable, which
  // is exact because nothing can write it.
  bool immutable_fallback = false;
  // Writers only: the WAL size (in frames, a page each) past which a commit
  // checkpoints and truncates it; 0 leaves SQLite's auto-checkpoint.
  int wal_truncate_frames = 64;
};

// An open database connection.
class Db {
 public:
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  static Result<std::unique_ptr<Db>> Open(const std::string& path, const OpenOptions& options);

  Status Exec(std::string_view sql);
  // Exec, retried while SQLite reports a lock that its busy handler does not
  // wait for (switching a new file to WAL takes its exclusive lock without
  // it), for up to about the busy timeout.
  Status ExecRetryingLocks(std::string_view sql);
  Result<Stmt> Prepare(std::string_view sql);
  // The statement for `sql`, prepared on first use and kept for the
  // connection's lifetime (callers leave it reset: Run() and a Step() loop to
  // the end do). The pointer stays valid while the Db lives.
  Result<Stmt*> Cached(std::string_view sql);
  // True while a transaction is open on this connection.
  bool InTransaction() const;
  std::int64_t Changes() const;
  sqlite3* raw() { return db_.get(); }

  // Maps the connection's last error (for `rc`) to a Status with `what` as context.
  Status Error(int rc, std::string_view what) const;

 private:
  explicit Db(Connection db) : db_(std::move(db)) {}
  static int WalHook(void* self, sqlite3* db, const char* name, int frames);
  Connection db_;
  int busy_timeout_ms_ = 0;
  int wal_truncate_frames_ = 0;
  std::map<std::string, Stmt, std::less<>> cached_;  // finalized before db_ closes (~Db)
};

// A read transaction: every statement inside it reads one snapshot of the
// database (in WAL mode, the one current at its first read), however many
// other connections commit meanwhile. Ends when destroyed. Inside a
// transaction that is already open it does nothing (the outer one holds the
// snapshot), so functions that read several facts may take one regardless of
// their caller.
class ReadTransaction {
 public:
  static Result<ReadTransaction> Begin(Db& db);
  // A snapshot of another store that ends by calling `end` (the event log on
  // PostgreSQL: eventstore/postgres), so that callers holding a log's
  // snapshot need not know its backend. An empty `end`: nothing to end.
  static ReadTransaction Ending(std::function<void()> end) {
    ReadTransaction tx(nullptr);
    tx.end_ = std::move(end);
    return tx;
  }
  ~ReadTransaction();
  ReadTransaction(ReadTransaction&& other) noexcept
      : db_(other.db_), end_(std::move(other.end_)) {
    other.db_ = nullptr;
    other.end_ = nullptr;
  }
  ReadTransaction& operator=(ReadTransaction&&) = delete;
  ReadTransaction(const ReadTransaction&) = delete;

 private:
  explicit ReadTransaction(Db* db) : db_(db) {}
  Db* db_ = nullptr;  // null: nothing to end
  std::function<void()> end_;
};

// A write transaction that rolls back unless committed.
class Transaction {
 public:
  // BEGIN IMMEDIATE (takes the write lock now, waiting up to the busy timeout).
  static Result<Transaction> BeginImmediate(Db& db);
  static Result<Transaction> BeginDeferred(Db& db);
  ~Transaction();
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;

  Status Commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_ = nullptr;
};

}  // namespace via::sql
