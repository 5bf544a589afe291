#pragma once

// One Hrana stream's state: a dedicated SQLite connection and the SQL texts
// stored with store_sql. A Session runs stream requests (execute, batch,
// sequence, describe, store_sql, close_sql, get_autocommit, close) on its
// connection and turns every failure into a Hrana Error result; it never
// throws and never returns a partial result for a failed statement.
//
// Invariants:
// - Statements are finalized before Handle() returns, so between requests the
//   connection holds no statement, only (possibly) an open transaction.
// - Destroying a Session rolls back its open transaction and closes the
//   connection; so does a `close` request.
//
// The connection (sql::Connection, storage/sqlite_db.h: closing it rolls back
// an open transaction) has been configured by ConfigureConnection() (sql_policy.h)
// when the Session takes it; the Session installs the deny-by-default
// authorizer (sql_policy.h) and interrupts every statement after
// Limits::statement_timeout_ms; a statement that runs past
// Limits::long_statement_ms lowers the CPU priority of the thread running it
// (see WorkPool::Options::restore_priority). EXPLAIN (the bytecode listing,
// which prints heap addresses) is refused; EXPLAIN QUERY PLAN is allowed.
//
// Error codes of Error results (stable; SQLite failures use the name of the
// primary result code, as libsql-server does):
//   SQLITE_CONSTRAINT, SQLITE_ERROR, SQLITE_BUSY, ...  SQLite refused the statement
//   SQLITE_AUTH           the statement uses a function, PRAGMA or module that is
//                         not allowed (sql_policy.h), ATTACH, or EXPLAIN
//   SQLITE_TOOBIG         a value over the size limit, or a guarded function call
//                         that would do too much work (sql_policy.h)
//   SQLITE_NOMEM          the process-wide SQLite memory bound was reached
//   SQL_NO_STATEMENT      the SQL text holds no statement
//   SQL_MANY_STATEMENTS   execute/describe/batch step got more than one statement
//   SQL_PARSE_ERROR       the SQL text contains a NUL character
//   SQL_NOT_FOUND         sql_id was not stored on this stream
//   SQL_STORE_EXISTS      store_sql with an sql_id already in use
//   SQL_STORE_TOO_MANY    more than Limits::max_stored_sqls texts stored
//   ARGS_INVALID          arguments do not match the statement's parameters
//   RESPONSE_TOO_LARGE    more than max_result_rows rows or max_response_bytes
//   STATEMENT_TIMEOUT     a statement ran longer than statement_timeout_ms
//   STREAM_CLOSED         the stream was closed (by `close` or by Kill)
//
// Thread-safety: Handle() and the destructor must not run concurrently with
// each other; Kill() may be called from any thread at any time.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "domain/status.h"
#include "server/hrana_proto.h"
#include "server/sql_policy.h"
#include "storage/sqlite_db.h"

namespace via::server::hrana {

// Receives a cursor's entries in order; returns false when nobody reads them
// any more (the cursor then stops).
using CursorSink = std::function<bool(const CursorEntry&)>;

class Session {
 public:
  // Takes `db` (non-null) and configures it as described above. `clock`
  // returns milliseconds and must outlive the Session.
  Session(sql::Connection db, const Limits& limits, const std::function<std::int64_t()>* clock);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs one request. `response_budget` is the number of response bytes still
  // allowed in the current pipeline; rows returned reduce it.
  StreamResult Handle(const StreamRequest& request, std::size_t* response_budget);

  // Runs `batch` as a batch request would, but hands the results to `sink` as
  // Hrana 3 cursor entries while each statement runs (step_begin, rows,
  // step_end or step_error): rows are never collected, so max_result_rows and
  // max_response_bytes do not apply (the sink bounds memory by blocking); the
  // statement timeout does, and counts time spent waiting in the sink.
  // Returns false when `sink` refused an entry; the caller closes the stream.
  bool RunCursor(const Batch& batch, const CursorSink& sink);

  // True after a `close` request: the connection is closed.
  bool closed() const { return db_ == nullptr; }

  // True while the connection holds its database's write lock (a write
  // transaction is open).
  bool InWriteTransaction() const;

  // After a `close` request, the connection when it may serve another stream
  // of the same database: no transaction was left open, the stream was not
  // killed, and no statement changed per-connection state (any PRAGMA,
  // ATTACH/DETACH, anything in the "temp" database, virtual tables, savepoint
  // left open) and the connection has no TEMP object and no attached database
  // (checked with SQL when closing). Null otherwise (the
  // connection was closed). The caller pools it; a new Session reconfigures it.
  sql::Connection TakeReusableConnection() { return std::move(reusable_); }

  // Interrupts the running statement, if any, and makes every later request
  // fail with STREAM_CLOSED and `message`. Thread-safe.
  void Kill(const std::string& message);

 private:
  Result<StreamResponse> Dispatch(const StreamRequest& request, std::size_t* budget);
  // With `rows`, the statement's step_begin and rows go to rows->sink as they
  // come instead of into the result (see RunCursor).
  struct RowStream {
    std::uint32_t step = 0;
    const CursorSink* sink = nullptr;
    bool refused = false;  // the sink returned false
  };
  Result<StmtResult> Execute(const Stmt& stmt, std::size_t* budget, RowStream* rows = nullptr);
  Result<BatchResult> RunBatch(const Batch& batch, std::size_t* budget);
  Status RunSequence(std::string_view sql);
  Result<DescribeResult> Describe(std::string_view sql);
  Result<const std::string*> ResolveSql(const std::optional<std::string>& sql,
                                        const std::optional<std::int32_t>& sql_id) const;
  bool EvalCond(const BatchCond& cond, const BatchResult& so_far) const;
  void Close();

  // Arms the statement deadline; SqliteError() names an interruption by why it
  // happened (timeout or Kill).
  void StartStatement();
  Status SqliteError(int rc);
  static int ProgressCallback(void* self);

  const Limits limits_;
  const std::function<std::int64_t()>* clock_;
  std::map<std::int32_t, std::string> sqls_;
  std::int64_t deadline_ms_ = 0;  // 0: no statement running or no timeout
  // When the running statement counts as long (Limits::long_statement_ms);
  // 0: not (or no longer) pending.
  std::int64_t long_after_ms_ = 0;
  bool timed_out_ = false;

  std::atomic<bool> killed_{false};
  mutable std::mutex kill_mu_;  // guards db_ against Kill() and kill_message_
  sql::Connection db_;
  std::string kill_message_;
  AuthorizerState authorizer_;  // tainted: the connection's state changed
  sql::Connection reusable_;
};

}  // namespace via::server::hrana
