#pragma once

// A thin RAII layer over the SQLite C API, shared by the layers that keep
// SQLite files (event log, read model). Errors become Status values with the
// SQLite message; SQLITE_CORRUPT and SQLITE_NOTADB become DataLoss.
// A Db is not thread-safe; use one per thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "domain/bytes.h"
#include "domain/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace via::sql {

class Db;

// A prepared statement. Bind indexes are 1-based, column indexes 0-based.
class Stmt {
 public:
  Stmt() = default;
  ~Stmt();
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
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
  sqlite3_stmt* stmt_ = nullptr;
  sqlite3* db_ = nullptr;
};

struct OpenOptions {
  bool read_only = false;
  bool create = true;
  int busy_timeout_ms = 30000;
};

// An open database connection.
class Db {
 public:
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  static Result<std::unique_ptr<Db>> Open(const std::string& path, const OpenOptions& options);

  Status Exec(std::string_view sql);
  Result<Stmt> Prepare(std::string_view sql);
  std::int64_t Changes() const;
  sqlite3* raw() { return db_; }

  // Maps the connection's last error (for `rc`) to a Status with `what` as context.
  Status Error(int rc, std::string_view what) const;

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
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
