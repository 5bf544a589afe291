#include "server/hrana_session.h"

#include <sqlite3.h>

#include <algorithm>
#include <climits>
#include <limits>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "server/sql_policy.h"
#include "server/thread_priority.h"

namespace via::server::hrana {

namespace {

using StmtPtr = sql::StatementHandle;

// Inside a Session, a failed operation is a Status whose reason is the Hrana
// error code; Handle() turns it into an Error.
Status HranaError(std::string code, std::string message) {
  return Status(StatusCode::kFailedPrecondition, std::move(code), std::move(message));
}

Error ToError(const Status& status) { return Error{status.message(), status.reason()}; }

const char* PrimaryCodeName(int primary) {
  switch (primary) {
    case SQLITE_ERROR:
      return "SQLITE_ERROR";
    case SQLITE_INTERNAL:
      return "SQLITE_INTERNAL";
    case SQLITE_PERM:
      return "SQLITE_PERM";
    case SQLITE_ABORT:
      return "SQLITE_ABORT";
    case SQLITE_BUSY:
      return "SQLITE_BUSY";
    case SQLITE_LOCKED:
      return "SQLITE_LOCKED";
    case SQLITE_NOMEM:
      return "SQLITE_NOMEM";
    case SQLITE_READONLY:
      return "SQLITE_READONLY";
    case SQLITE_INTERRUPT:
      return "SQLITE_INTERRUPT";
    case SQLITE_IOERR:
      return "SQLITE_IOERR";
    case SQLITE_CORRUPT:
      return "SQLITE_CORRUPT";
    case SQLITE_NOTFOUND:
      return "SQLITE_NOTFOUND";
    case SQLITE_FULL:
      return "SQLITE_FULL";
    case SQLITE_CANTOPEN:
      return "SQLITE_CANTOPEN";
    case SQLITE_PROTOCOL:
      return "SQLITE_PROTOCOL";
    case SQLITE_EMPTY:
      return "SQLITE_EMPTY";
    case SQLITE_SCHEMA:
      return "SQLITE_SCHEMA";
    case SQLITE_TOOBIG:
      return "SQLITE_TOOBIG";
    case SQLITE_CONSTRAINT:
      return "SQLITE_CONSTRAINT";
    case SQLITE_MISMATCH:
      return "SQLITE_MISMATCH";
    case SQLITE_MISUSE:
      return "SQLITE_MISUSE";
    case SQLITE_NOLFS:
      return "SQLITE_NOLFS";
    case SQLITE_AUTH:
      return "SQLITE_AUTH";
    case SQLITE_FORMAT:
      return "SQLITE_FORMAT";
    case SQLITE_RANGE:
      return "SQLITE_RANGE";
    case SQLITE_NOTADB:
      return "SQLITE_NOTADB";
    default:
      return "SQLITE_UNKNOWN";
  }
}

// A second line of defence behind the authorizer's taint: a connection with
// any TEMP schema object or any database attached besides "main" and "temp"
// must not serve another stream.
bool StatelessBeyondMain(sqlite3* db) {
  if (sqlite3_db_name(db, 2) != nullptr) return false;
  sqlite3_stmt* raw = nullptr;
  const int rc =
      sqlite3_prepare_v2(db, "SELECT count(*) FROM temp.sqlite_master", -1, &raw, nullptr);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK) return false;
  return sqlite3_step(raw) == SQLITE_ROW && sqlite3_column_int64(raw, 0) == 0;
}

int ClampToInt(std::size_t n) { return static_cast<int>(std::min<std::size_t>(n, INT_MAX)); }

// True when `s` holds nothing but whitespace, comments and semicolons, i.e. no
// further statement (SQLite's lexical rules; an unterminated comment runs to
// the end).
bool OnlySpaceAndComments(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == ';') {
      ++i;
    } else if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      i = s.find('\n', i);
      if (i == std::string_view::npos) return true;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      i = s.find("*/", i + 2);
      if (i == std::string_view::npos) return true;
      i += 2;
    } else {
      return false;
    }
  }
  return true;
}

int BindValue(sqlite3_stmt* stmt, int index, const Value& value) {
  if (std::holds_alternative<std::nullptr_t>(value)) return sqlite3_bind_null(stmt, index);
  if (const auto* i = std::get_if<std::int64_t>(&value)) return sqlite3_bind_int64(stmt, index, *i);
  if (const auto* d = std::get_if<double>(&value)) return sqlite3_bind_double(stmt, index, *d);
  if (const auto* s = std::get_if<std::string>(&value)) {
    return sqlite3_bind_text64(stmt, index, s->data(), s->size(), SQLITE_STATIC, SQLITE_UTF8);
  }
  const Bytes& b = std::get<Bytes>(value);
  if (b.empty()) return sqlite3_bind_zeroblob(stmt, index, 0);  // a null pointer would bind NULL
  return sqlite3_bind_blob64(stmt, index, b.data(), b.size(), SQLITE_STATIC);
}

Value ColumnValue(sqlite3_stmt* stmt, int col) {
  switch (sqlite3_column_type(stmt, col)) {
    case SQLITE_INTEGER:
      return static_cast<std::int64_t>(sqlite3_column_int64(stmt, col));
    case SQLITE_FLOAT:
      return sqlite3_column_double(stmt, col);
    case SQLITE_TEXT: {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
      int n = sqlite3_column_bytes(stmt, col);
      return text ? std::string(text, static_cast<std::size_t>(n)) : std::string();
    }
    case SQLITE_BLOB: {
      const auto* blob = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt, col));
      int n = sqlite3_column_bytes(stmt, col);
      return blob ? Bytes(blob, blob + n) : Bytes();
    }
    default:
      return nullptr;
  }
}

// An upper-bound-ish guess of the encoded size of a column of the current
// row, read before the value is copied, so that a pipeline stops before it
// builds (or copies) a response larger than the limit.
std::size_t EstimateEncodedSize(sqlite3_stmt* stmt, int col) {
  switch (sqlite3_column_type(stmt, col)) {
    case SQLITE_TEXT:
      return 32 + static_cast<std::size_t>(sqlite3_column_bytes(stmt, col));
    case SQLITE_BLOB:
      return 32 + (static_cast<std::size_t>(sqlite3_column_bytes(stmt, col)) + 2) / 3 * 4;
    default:
      return 48;
  }
}

std::optional<std::string> OptionalText(const char* text) {
  if (!text) return std::nullopt;
  return std::string(text);
}

}  // namespace

Session::Session(sql::Connection db, const Limits& limits,
                 const std::function<std::int64_t()>* clock)
    : limits_(limits), clock_(clock), db_(std::move(db)) {
  sqlite3* raw = db_.get();
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_set_authorizer(raw, &Authorize, &authorizer_);
  sqlite3_set_last_insert_rowid(raw, 0);  // a pooled connection starts afresh
  sqlite3_progress_handler(raw, 1000, &Session::ProgressCallback, this);
}

Session::~Session() { Close(); }

bool Session::InWriteTransaction() const {
  return db_ && sqlite3_txn_state(db_.get(), nullptr) == SQLITE_TXN_WRITE;
}

void Session::Close() {
  if (!db_) return;
  sqlite3* raw = db_.get();
  sqlite3_progress_handler(raw, 0, nullptr, nullptr);
  bool reusable =
      !authorizer_.tainted && !killed_.load() && sqlite3_next_stmt(raw, nullptr) == nullptr;
  if (!sqlite3_get_autocommit(raw)) {
    sqlite3_exec(raw, "ROLLBACK", nullptr, nullptr, nullptr);
    reusable = false;
  }
  sql::Connection closing;
  {
    std::lock_guard<std::mutex> lock(kill_mu_);
    closing = std::move(db_);
  }
  if (reusable) {
    sqlite3_set_authorizer(raw, nullptr, nullptr);  // it pointed into this Session
    reusable_ = std::move(closing);
    if (!StatelessBeyondMain(raw)) reusable_.reset();
  }
}

void Session::Kill(const std::string& message) {
  std::lock_guard<std::mutex> lock(kill_mu_);
  if (killed_.load()) return;
  kill_message_ = message;
  killed_.store(true);
  if (db_) sqlite3_interrupt(db_.get());
}

int Session::ProgressCallback(void* self) {
  auto* session = static_cast<Session*>(self);
  if (session->killed_.load(std::memory_order_relaxed)) return 1;
  if (session->long_after_ms_ > 0 && (*session->clock_)() >= session->long_after_ms_) {
    session->long_after_ms_ = 0;  // once per statement
    SetCurrentThreadNice(std::min(19, CurrentThreadNice() + session->limits_.long_statement_nice));
  }
  if (session->deadline_ms_ > 0 && (*session->clock_)() >= session->deadline_ms_) {
    session->timed_out_ = true;
    return 1;
  }
  return 0;
}

void Session::StartStatement() {
  timed_out_ = false;
  authorizer_.denied = false;
  const std::int64_t now = (*clock_)();
  deadline_ms_ = limits_.statement_timeout_ms > 0 ? now + limits_.statement_timeout_ms : 0;
  long_after_ms_ = limits_.long_statement_ms > 0 ? now + limits_.long_statement_ms : 0;
}

Status Session::SqliteError(int rc) {
  int primary = rc & 0xff;
  if (primary == SQLITE_INTERRUPT || primary == SQLITE_ABORT) {
    if (killed_.load()) {
      std::lock_guard<std::mutex> lock(kill_mu_);
      return HranaError("STREAM_CLOSED", kill_message_);
    }
    if (timed_out_) {
      return HranaError("STATEMENT_TIMEOUT", "statement ran longer than the limit of " +
                                                 std::to_string(limits_.statement_timeout_ms) +
                                                 " ms and was interrupted");
    }
  }
  // The authorizer refused something this statement needed (SQLite reports a
  // refused function as SQLITE_ERROR).
  if (authorizer_.denied) primary = SQLITE_AUTH;
  return HranaError(PrimaryCodeName(primary),
                    std::string("SQLite error: ") + sqlite3_errmsg(db_.get()));
}

StreamResult Session::Handle(const StreamRequest& request, std::size_t* response_budget) {
  if (killed_.load()) {
    std::lock_guard<std::mutex> lock(kill_mu_);
    return Error{kill_message_, "STREAM_CLOSED"};
  }
  if (closed()) {
    return Error{"the stream was closed by an earlier close request", "STREAM_CLOSED"};
  }
  Result<StreamResponse> response = Dispatch(request, response_budget);
  if (!response.ok()) return ToError(response.status());
  return std::move(response).value();
}

Result<StreamResponse> Session::Dispatch(const StreamRequest& request, std::size_t* budget) {
  if (std::holds_alternative<CloseRequest>(request)) {
    Close();
    return StreamResponse(CloseResponse{});
  }
  if (const auto* r = std::get_if<ExecuteRequest>(&request)) {
    VIA_ASSIGN_OR_RETURN(StmtResult result, Execute(r->stmt, budget));
    return StreamResponse(ExecuteResponse{std::move(result)});
  }
  if (const auto* r = std::get_if<BatchRequest>(&request)) {
    VIA_ASSIGN_OR_RETURN(BatchResult result, RunBatch(r->batch, budget));
    return StreamResponse(BatchResponse{std::move(result)});
  }
  if (const auto* r = std::get_if<SequenceRequest>(&request)) {
    VIA_ASSIGN_OR_RETURN(const std::string* sql, ResolveSql(r->sql, r->sql_id));
    VIA_RETURN_IF_ERROR(RunSequence(*sql));
    return StreamResponse(SequenceResponse{});
  }
  if (const auto* r = std::get_if<DescribeRequest>(&request)) {
    VIA_ASSIGN_OR_RETURN(const std::string* sql, ResolveSql(r->sql, r->sql_id));
    VIA_ASSIGN_OR_RETURN(DescribeResult result, Describe(*sql));
    return StreamResponse(DescribeResponse{std::move(result)});
  }
  if (const auto* r = std::get_if<StoreSqlRequest>(&request)) {
    if (sqls_.count(r->sql_id)) {
      return HranaError("SQL_STORE_EXISTS", "SQL text " + std::to_string(r->sql_id) +
                                                " is already stored; close_sql it first");
    }
    if (sqls_.size() >= limits_.max_stored_sqls) {
      return HranaError(
          "SQL_STORE_TOO_MANY",
          "the stream already stores " + std::to_string(sqls_.size()) + " SQL texts, the limit");
    }
    sqls_.emplace(r->sql_id, r->sql);
    return StreamResponse(StoreSqlResponse{});
  }
  if (const auto* r = std::get_if<CloseSqlRequest>(&request)) {
    sqls_.erase(r->sql_id);
    return StreamResponse(CloseSqlResponse{});
  }
  // GetAutocommitRequest.
  return StreamResponse(GetAutocommitResponse{sqlite3_get_autocommit(db_.get()) != 0});
}

Result<const std::string*> Session::ResolveSql(const std::optional<std::string>& sql,
                                               const std::optional<std::int32_t>& sql_id) const {
  if (sql) return &*sql;
  if (!sql_id) return HranaError("SQL_NOT_FOUND", "neither sql nor sql_id was given");
  auto it = sqls_.find(*sql_id);
  if (it == sqls_.end()) {
    return HranaError("SQL_NOT_FOUND",
                      "SQL text " + std::to_string(*sql_id) + " is not stored on this stream");
  }
  return &it->second;
}

namespace {

// EXPLAIN lists the statement's bytecode, which names heap addresses (for
// instance "vtab:55FBDDD2A828"); EXPLAIN QUERY PLAN does not.
Status ExplainCheck(sqlite3_stmt* stmt) {
  if (sqlite3_stmt_isexplain(stmt) == 1) {
    return HranaError("SQLITE_AUTH", "EXPLAIN is not allowed; use EXPLAIN QUERY PLAN");
  }
  return Status::Ok();
}

Status NulCheck(std::string_view sql) {
  if (sql.find('\0') != std::string_view::npos) {
    return HranaError("SQL_PARSE_ERROR", "SQL text contains a NUL character");
  }
  return Status::Ok();
}

}  // namespace

Result<StmtResult> Session::Execute(const Stmt& stmt, std::size_t* budget, RowStream* rows) {
  if (killed_.load()) {
    std::lock_guard<std::mutex> lock(kill_mu_);
    return HranaError("STREAM_CLOSED", kill_message_);
  }
  VIA_ASSIGN_OR_RETURN(const std::string* sql, ResolveSql(stmt.sql, stmt.sql_id));
  VIA_RETURN_IF_ERROR(NulCheck(*sql));
  sqlite3* db = db_.get();
  StartStatement();
  const std::int64_t started_ms = (*clock_)();

  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db, sql->data(), ClampToInt(sql->size()), 0, &raw, &tail);
  StmtPtr prepared(raw);
  if (rc != SQLITE_OK) return SqliteError(rc);
  if (!prepared) return HranaError("SQL_NO_STATEMENT", "SQL text does not contain any statement");
  std::string_view rest(tail, static_cast<std::size_t>(sql->data() + sql->size() - tail));
  if (!OnlySpaceAndComments(rest)) {
    return HranaError("SQL_MANY_STATEMENTS",
                      "SQL text contains more than one statement; use a batch or a sequence");
  }
  sqlite3_stmt* s = prepared.get();
  VIA_RETURN_IF_ERROR(ExplainCheck(s));

  // Arguments: positional by index, named by name (with or without its
  // prefix); a named argument takes precedence over a positional one.
  const int param_count = sqlite3_bind_parameter_count(s);
  if (stmt.args.size() > static_cast<std::size_t>(param_count)) {
    return HranaError("ARGS_INVALID", std::to_string(stmt.args.size()) +
                                          " positional arguments, but the statement has " +
                                          std::to_string(param_count) + " parameters");
  }
  std::map<std::string_view, std::pair<const Value*, bool>> named;
  for (const NamedArg& arg : stmt.named_args) {
    if (!named.emplace(arg.name, std::make_pair(&arg.value, false)).second) {
      return HranaError("ARGS_INVALID", "named argument \"" + arg.name + "\" is given twice");
    }
  }
  const bool is_explain = sqlite3_stmt_isexplain(s) != 0;
  for (int i = 1; i <= param_count; ++i) {
    const char* name = sqlite3_bind_parameter_name(s, i);
    const Value* value = nullptr;
    if (name && name[0] != '?') {
      auto it = named.find(name);
      if (it == named.end()) it = named.find(name + 1);
      if (it != named.end()) {
        it->second.second = true;
        value = it->second.first;
      }
    }
    if (!value && static_cast<std::size_t>(i) <= stmt.args.size()) value = &stmt.args[i - 1];
    if (!value) {
      if (is_explain) continue;
      return HranaError("ARGS_INVALID",
                        "no value for parameter " + (name ? std::string(name) : std::to_string(i)));
    }
    rc = BindValue(s, i, *value);
    if (rc != SQLITE_OK) return SqliteError(rc);
  }
  for (const auto& [name, entry] : named) {
    if (!entry.second) {
      return HranaError("ARGS_INVALID", "named argument \"" + std::string(name) +
                                            "\" does not match any parameter of the statement");
    }
  }

  StmtResult result;
  const int col_count = sqlite3_column_count(s);
  result.cols.reserve(static_cast<std::size_t>(col_count));
  for (int c = 0; c < col_count; ++c) {
    result.cols.push_back(
        Col{OptionalText(sqlite3_column_name(s, c)), OptionalText(sqlite3_column_decltype(s, c))});
  }

  auto refused = [rows] {
    rows->refused = true;
    return HranaError("STREAM_CLOSED", "the client stopped reading the cursor");
  };
  if (rows && !(*rows->sink)(StepBeginEntry{rows->step, result.cols})) return refused();

  // Rows beyond the limits are not kept. A read-only statement stops there; a
  // writing one runs to completion so that it is never half applied, and then
  // fails all the same.
  const bool readonly = sqlite3_stmt_readonly(s) != 0;
  const std::int64_t changes_before = sqlite3_total_changes64(db);
  std::size_t used = 0;
  bool overflow = false;
  for (;;) {
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      *budget += used;
      return SqliteError(rc);
    }
    ++result.rows_read;
    if (!stmt.want_rows) continue;
    if (rows) {
      RowEntry entry;
      entry.row.reserve(static_cast<std::size_t>(col_count));
      for (int c = 0; c < col_count; ++c) entry.row.push_back(ColumnValue(s, c));
      if (!(*rows->sink)(entry)) return refused();
      continue;
    }
    if (!overflow && result.rows.size() >= limits_.max_result_rows) overflow = true;
    if (!overflow) {
      std::size_t size = 8;
      for (int c = 0; c < col_count; ++c) size += EstimateEncodedSize(s, c);
      if (size > *budget) {
        overflow = true;
      } else {
        std::vector<Value> row;
        row.reserve(static_cast<std::size_t>(col_count));
        for (int c = 0; c < col_count; ++c) row.push_back(ColumnValue(s, c));
        *budget -= size;
        used += size;
        result.rows.push_back(std::move(row));
      }
    }
    if (overflow && readonly) break;
  }
  if (overflow) {
    *budget += used;
    return HranaError("RESPONSE_TOO_LARGE",
                      "result is too large: more than " + std::to_string(limits_.max_result_rows) +
                          " rows or " + std::to_string(limits_.max_response_bytes) +
                          " bytes in the response");
  }
  if (sqlite3_total_changes64(db) != changes_before) {
    result.affected_row_count = static_cast<std::uint64_t>(sqlite3_changes64(db));
  }
  if (!readonly)
    result.last_insert_rowid = static_cast<std::int64_t>(sqlite3_last_insert_rowid(db));
  result.rows_written = result.affected_row_count;
  result.query_duration_ms = static_cast<double>((*clock_)() - started_ms);
  return result;
}

bool Session::EvalCond(const BatchCond& cond, const BatchResult& so_far) const {
  switch (cond.kind) {
    case BatchCond::Kind::kOk:
      return cond.step < so_far.step_results.size() && so_far.step_results[cond.step].has_value();
    case BatchCond::Kind::kError:
      return cond.step < so_far.step_errors.size() && so_far.step_errors[cond.step].has_value();
    case BatchCond::Kind::kNot:
      return cond.conds.size() == 1 && !EvalCond(cond.conds[0], so_far);
    case BatchCond::Kind::kAnd:
      return std::all_of(cond.conds.begin(), cond.conds.end(),
                         [&](const BatchCond& c) { return EvalCond(c, so_far); });
    case BatchCond::Kind::kOr:
      return std::any_of(cond.conds.begin(), cond.conds.end(),
                         [&](const BatchCond& c) { return EvalCond(c, so_far); });
    case BatchCond::Kind::kIsAutocommit:
      return sqlite3_get_autocommit(db_.get()) != 0;
  }
  return false;
}

Result<BatchResult> Session::RunBatch(const Batch& batch, std::size_t* budget) {
  BatchResult result;
  result.step_results.resize(batch.steps.size());
  result.step_errors.resize(batch.steps.size());
  for (std::size_t i = 0; i < batch.steps.size(); ++i) {
    const BatchStep& step = batch.steps[i];
    if (step.condition && !EvalCond(*step.condition, result)) continue;
    Result<StmtResult> r = Execute(step.stmt, budget);
    if (r.ok()) {
      result.step_results[i] = std::move(r).value();
    } else {
      result.step_errors[i] = ToError(r.status());
    }
  }
  return result;
}

bool Session::RunCursor(const Batch& batch, const CursorSink& sink) {
  // Conditions look only at which steps succeeded or failed, so the results
  // kept here hold no rows.
  BatchResult outcome;
  outcome.step_results.resize(batch.steps.size());
  outcome.step_errors.resize(batch.steps.size());
  for (std::size_t i = 0; i < batch.steps.size(); ++i) {
    const BatchStep& step = batch.steps[i];
    if (killed_.load() || closed()) {
      std::string message = "the stream was closed";
      if (killed_.load()) {
        std::lock_guard<std::mutex> lock(kill_mu_);
        message = kill_message_;
      }
      return sink(ErrorEntry{Error{message, "STREAM_CLOSED"}});
    }
    if (step.condition && !EvalCond(*step.condition, outcome)) continue;
    RowStream rows{static_cast<std::uint32_t>(i), &sink, false};
    std::size_t unlimited = std::numeric_limits<std::size_t>::max();
    Result<StmtResult> r = Execute(step.stmt, &unlimited, &rows);
    if (rows.refused) return false;
    if (r.ok()) {
      if (!sink(StepEndEntry{r->affected_row_count, r->last_insert_rowid})) return false;
      outcome.step_results[i] = StmtResult{};
    } else {
      Error error = ToError(r.status());
      if (!sink(StepErrorEntry{static_cast<std::uint32_t>(i), error})) return false;
      outcome.step_errors[i] = std::move(error);
    }
  }
  return true;
}

Status Session::RunSequence(std::string_view sql) {
  VIA_RETURN_IF_ERROR(NulCheck(sql));
  sqlite3* db = db_.get();
  const char* p = sql.data();
  const char* end = sql.data() + sql.size();
  while (p < end) {
    if (killed_.load()) {
      std::lock_guard<std::mutex> lock(kill_mu_);
      return HranaError("STREAM_CLOSED", kill_message_);
    }
    StartStatement();
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    int rc =
        sqlite3_prepare_v3(db, p, ClampToInt(static_cast<std::size_t>(end - p)), 0, &raw, &tail);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) return SqliteError(rc);
    if (!stmt || tail <= p) break;  // only whitespace and comments were left
    VIA_RETURN_IF_ERROR(ExplainCheck(stmt.get()));
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) return SqliteError(rc);
    p = tail;
  }
  return Status::Ok();
}

Result<DescribeResult> Session::Describe(std::string_view sql) {
  VIA_RETURN_IF_ERROR(NulCheck(sql));
  StartStatement();
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql.data(), ClampToInt(sql.size()), 0, &raw, &tail);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK) return SqliteError(rc);
  if (!stmt) return HranaError("SQL_NO_STATEMENT", "SQL text does not contain any statement");
  if (!OnlySpaceAndComments(
          std::string_view(tail, static_cast<std::size_t>(sql.data() + sql.size() - tail)))) {
    return HranaError("SQL_MANY_STATEMENTS", "SQL text contains more than one statement");
  }
  sqlite3_stmt* s = stmt.get();
  DescribeResult result;
  const int params = sqlite3_bind_parameter_count(s);
  for (int i = 1; i <= params; ++i) {
    result.params.push_back(DescribeParam{OptionalText(sqlite3_bind_parameter_name(s, i))});
  }
  const int cols = sqlite3_column_count(s);
  for (int c = 0; c < cols; ++c) {
    const char* name = sqlite3_column_name(s, c);
    result.cols.push_back(
        DescribeCol{name ? name : "", OptionalText(sqlite3_column_decltype(s, c))});
  }
  result.is_explain = sqlite3_stmt_isexplain(s) != 0;
  result.is_readonly = sqlite3_stmt_readonly(s) != 0;
  return result;
}

}  // namespace via::server::hrana
