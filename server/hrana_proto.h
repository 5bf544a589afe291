#pragma once

// Plain values for the Hrana "HTTP API v2" pipeline protocol (JSON encoding), as
// specified in libsql's HTTP_V2_SPEC.md and the shared structures of
// HRANA_3_SPEC.md. Requests are what ParsePipelineRequest() produces from a
// request body; responses are what HranaEngine returns and
// EncodePipelineResponse() turns into a response body. No I/O here.
//
// Field names follow the wire names; `decltype` is spelled `decl_type` because
// it is a C++ keyword.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "domain/bytes.h"

namespace via::server::hrana {

// How Hrana 3 over HTTP bodies are encoded: JSON (/v2, /v3) or protobuf
// (/v3-protobuf).
enum class Encoding { kJson, kProtobuf };

// Size and time limits, all configurable; every one is enforced by the engine
// or the parser and reported with a stable error code. The HTTP layer enforces
// the body size before reading it; the parser checks it again.
struct Limits {
  // Parsing (violations make ParsePipelineRequest return InvalidArgument).
  std::size_t max_body_bytes = 1 << 20;    // request body
  std::size_t max_json_depth = 64;         // nesting of arrays and objects
  std::size_t max_requests = 1024;         // stream requests in one pipeline
  std::size_t max_batch_steps = 4096;      // steps in one batch
  std::size_t max_args = 32766;            // args + named_args of one statement
  std::size_t max_sql_bytes = 512 * 1024;  // one SQL text (also SQLITE_LIMIT_SQL_LENGTH)
  // Execution (violations become Hrana error results with the code in brackets).
  std::size_t max_stored_sqls = 256;          // store_sql texts per stream [SQL_STORE_TOO_MANY]
  std::size_t max_result_rows = 100000;       // rows of one statement [RESPONSE_TOO_LARGE]
  std::size_t max_response_bytes = 16 << 20;  // estimated encoded rows of one pipeline
                                              // [RESPONSE_TOO_LARGE]
  std::size_t max_value_bytes = 8 << 20;      // one text, blob or row (SQLITE_LIMIT_LENGTH)
  std::int64_t statement_timeout_ms = 30000;  // one statement [STATEMENT_TIMEOUT]; 0 = none
  // A statement that runs longer than this goes on at a lower CPU priority
  // (its thread's nice value + long_statement_nice), so that short
  // statements of other add-ons win the CPU; 0: never.
  std::int64_t long_statement_ms = 0;
  int long_statement_nice = 10;
  // Streams (violations make HranaEngine::Execute return a Status).
  std::size_t max_streams = 1024;               // open streams, all databases [too_many_streams]
  std::size_t max_streams_per_database =
      256;  // open streams of one database key [too_many_streams]
  std::int64_t stream_idle_timeout_ms = 10000;  // between requests [stream_expired]
  std::int64_t tombstone_ttl_ms = 300000;       // how long a dead baton still gets a precise error
  // Idle connections kept per database key for reuse by new streams (see
  // hrana.h); 0: every stream opens its own connection.
  std::size_t pooled_connections = 0;
};

// A SQLite value. Integers are 64-bit; text is UTF-8 and may hold NUL bytes.
using Value = std::variant<std::nullptr_t, std::int64_t, double, std::string, Bytes>;

struct NamedArg {
  std::string name;  // with or without the ':', '@' or '$' prefix
  Value value;
  bool operator==(const NamedArg&) const = default;
};

// One SQL statement. Exactly one of `sql` and `sql_id` is set (the parser
// checks it).
struct Stmt {
  std::optional<std::string> sql;
  std::optional<std::int32_t> sql_id;
  std::vector<Value> args;
  std::vector<NamedArg> named_args;
  bool want_rows = true;
  bool operator==(const Stmt&) const = default;
};

struct BatchCond {
  enum class Kind { kOk, kError, kNot, kAnd, kOr, kIsAutocommit };
  Kind kind = Kind::kOk;
  std::uint32_t step = 0;        // kOk, kError: an earlier step (the parser checks it)
  std::vector<BatchCond> conds;  // kNot: exactly one; kAnd, kOr: any number
  bool operator==(const BatchCond&) const = default;
};

struct BatchStep {
  std::optional<BatchCond> condition;
  Stmt stmt;
  bool operator==(const BatchStep&) const = default;
};

struct Batch {
  std::vector<BatchStep> steps;
  bool operator==(const Batch&) const = default;
};

struct CloseRequest {
  bool operator==(const CloseRequest&) const = default;
};
struct ExecuteRequest {
  Stmt stmt;
  bool operator==(const ExecuteRequest&) const = default;
};
struct BatchRequest {
  Batch batch;
  bool operator==(const BatchRequest&) const = default;
};
// Runs every statement of a semicolon-separated text, ignoring rows.
struct SequenceRequest {
  std::optional<std::string> sql;  // exactly one of sql and sql_id
  std::optional<std::int32_t> sql_id;
  bool operator==(const SequenceRequest&) const = default;
};
struct DescribeRequest {
  std::optional<std::string> sql;  // exactly one of sql and sql_id
  std::optional<std::int32_t> sql_id;
  bool operator==(const DescribeRequest&) const = default;
};
struct StoreSqlRequest {
  std::int32_t sql_id = 0;
  std::string sql;
  bool operator==(const StoreSqlRequest&) const = default;
};
struct CloseSqlRequest {
  std::int32_t sql_id = 0;
  bool operator==(const CloseSqlRequest&) const = default;
};
struct GetAutocommitRequest {
  bool operator==(const GetAutocommitRequest&) const = default;
};

using StreamRequest =
    std::variant<CloseRequest, ExecuteRequest, BatchRequest, SequenceRequest, DescribeRequest,
                 StoreSqlRequest, CloseSqlRequest, GetAutocommitRequest>;

struct PipelineRequest {
  std::optional<std::string> baton;  // absent or null: open a new stream
  std::vector<StreamRequest> requests;
  bool operator==(const PipelineRequest&) const = default;
};

// A Hrana error: a human message and a machine code ("SQLITE_CONSTRAINT",
// "ARGS_INVALID", ...; the codes are listed in hrana.h).
struct Error {
  std::string message;
  std::string code;
  bool operator==(const Error&) const = default;
};

struct Col {
  std::optional<std::string> name;
  std::optional<std::string> decl_type;
  bool operator==(const Col&) const = default;
};

struct StmtResult {
  std::vector<Col> cols;
  std::vector<std::vector<Value>> rows;           // empty when want_rows was false
  std::uint64_t affected_row_count = 0;           // rows changed by this statement, else 0
  std::optional<std::int64_t> last_insert_rowid;  // null for read-only statements
  // libsql-server extensions that newer clients read when present.
  std::uint64_t rows_read = 0;     // rows the statement returned
  std::uint64_t rows_written = 0;  // same as affected_row_count
  double query_duration_ms = 0;    // by the engine's clock
  bool operator==(const StmtResult&) const = default;
};

// step_results[i] is set when step i ran and succeeded, step_errors[i] when it
// ran and failed; both are empty when its condition was false.
struct BatchResult {
  std::vector<std::optional<StmtResult>> step_results;
  std::vector<std::optional<Error>> step_errors;
  bool operator==(const BatchResult&) const = default;
};

struct DescribeParam {
  std::optional<std::string> name;  // null for nameless '?' parameters
  bool operator==(const DescribeParam&) const = default;
};
struct DescribeCol {
  std::string name;
  std::optional<std::string> decl_type;
  bool operator==(const DescribeCol&) const = default;
};
struct DescribeResult {
  std::vector<DescribeParam> params;
  std::vector<DescribeCol> cols;
  bool is_explain = false;
  bool is_readonly = false;
  bool operator==(const DescribeResult&) const = default;
};

struct CloseResponse {
  bool operator==(const CloseResponse&) const = default;
};
struct ExecuteResponse {
  StmtResult result;
  bool operator==(const ExecuteResponse&) const = default;
};
struct BatchResponse {
  BatchResult result;
  bool operator==(const BatchResponse&) const = default;
};
struct SequenceResponse {
  bool operator==(const SequenceResponse&) const = default;
};
struct DescribeResponse {
  DescribeResult result;
  bool operator==(const DescribeResponse&) const = default;
};
struct StoreSqlResponse {
  bool operator==(const StoreSqlResponse&) const = default;
};
struct CloseSqlResponse {
  bool operator==(const CloseSqlResponse&) const = default;
};
struct GetAutocommitResponse {
  bool is_autocommit = true;
  bool operator==(const GetAutocommitResponse&) const = default;
};

// Alternatives in the same order as StreamRequest: a response always has the
// type of its request.
using StreamResponse =
    std::variant<CloseResponse, ExecuteResponse, BatchResponse, SequenceResponse, DescribeResponse,
                 StoreSqlResponse, CloseSqlResponse, GetAutocommitResponse>;

// {"type":"ok","response":...} or {"type":"error","error":...}.
using StreamResult = std::variant<StreamResponse, Error>;

struct PipelineResponse {
  std::optional<std::string> baton;  // null: the stream is closed
  std::optional<std::string> base_url;
  std::vector<StreamResult> results;  // one per request, in order
  bool operator==(const PipelineResponse&) const = default;
};

// ---------------------------------------------------------------- cursors (Hrana 3)

// The body of `POST /v3/cursor`: a batch run on the stream of `baton` (or a
// new stream), whose results come back as a sequence of entries.
struct CursorRequest {
  std::optional<std::string> baton;
  Batch batch;
  bool operator==(const CursorRequest&) const = default;
};

// A step that runs produces step_begin, its rows, then step_end, or
// step_error (before or after step_begin). `error` ends the cursor.
struct StepBeginEntry {
  std::uint32_t step = 0;
  std::vector<Col> cols;
};
struct StepEndEntry {
  std::uint64_t affected_row_count = 0;
  std::optional<std::int64_t> last_insert_rowid;
};
struct StepErrorEntry {
  std::uint32_t step = 0;
  Error error;
};
struct RowEntry {
  std::vector<Value> row;
};
struct ErrorEntry {
  Error error;
};
using CursorEntry = std::variant<StepBeginEntry, StepEndEntry, StepErrorEntry, RowEntry, ErrorEntry>;

}  // namespace via::server::hrana
