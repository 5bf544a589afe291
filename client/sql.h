#pragma once

// The app-side SQL client (DESIGN.md section 8, docs/client.md):
//
//   auto db = via::Sql::Connect("DATABASE");      // VIA_CONFIG_URL, VIA_WORKLOAD_TOKEN
//   if (!db.ok()) { log(db.error().ToString()); return; }
//   auto rows = db->Execute("SELECT * FROM notes WHERE id = ?", {std::int64_t{7}});
//
// Connect() fetches the binding's descriptor from the config server with the
// workload token, then speaks Hrana over HTTP v2 (JSON) to the descriptor's
// `url` with its `auth_token`. The library depends on the wire contract only
// (no other project folder), so any app can link it.
//
// Errors are values: no function here throws (allocation failure aside). Every
// failure is an SqlError with a stable `code` (see kSqlError* below).
//
// Thread-safety: an Sql and its transactions are not thread-safe; use one Sql
// per thread (each holds its own keep-alive HTTP connection).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace via {

// ------------------------------------------------------------------ values

using SqlBlob = std::vector<std::uint8_t>;

// A Hrana value: null, integer, float, text (UTF-8) or blob.
// `SqlValue v = nullptr;`, `= std::int64_t{5}` (or `= 5`), `= 1.5`, `= "text"`,
// `= SqlBlob{...}`.
using SqlValue = std::variant<std::nullptr_t, std::int64_t, double, std::string, SqlBlob>;

// "null", "integer", "float", "text" or "blob".
const char* SqlTypeName(const SqlValue& value);

// ------------------------------------------------------------------ errors

// Stable error codes (SqlError::code).
inline constexpr const char* kSqlNotConfigured = "not_configured";        // env/options missing
inline constexpr const char* kSqlInvalidArgument = "invalid_argument";    // bad input to this API
inline constexpr const char* kSqlConnectionFailed = "connection_failed";  // DNS, TCP, timeout
// https: the server's certificate is not trusted (unknown CA, expired, for
// another host) or the TLS handshake failed. Not retryable: the same server
// answers the same way until someone fixes the certificate or the CA file.
inline constexpr const char* kSqlTlsError = "tls_error";
inline constexpr const char* kSqlProtocolError = "protocol_error";        // malformed server answer
inline constexpr const char* kSqlUnauthorized = "unauthorized";           // HTTP 401
inline constexpr const char* kSqlForbidden = "forbidden";                 // HTTP 403
inline constexpr const char* kSqlNotFound = "not_found";                  // HTTP 404
inline constexpr const char* kSqlNotUsable = "not_usable";                // HTTP 409 (blocker)
inline constexpr const char* kSqlUnavailable = "unavailable";             // HTTP 503, retryable
inline constexpr const char* kSqlServerError = "server_error";            // HTTP 5xx other than 503
inline constexpr const char* kSqlBadRequest = "bad_request";  // HTTP 400 (invalid pipeline)
inline constexpr const char* kSqlSqlError = "sql_error";      // SQLite refused a statement
inline constexpr const char* kSqlStreamClosed =
    "stream_closed";  // transaction lost (expired, killed)
inline constexpr const char* kSqlTransactionClosed =
    "transaction_closed";  // used after commit/rollback

struct SqlError {
  std::string code;     // one of the kSql* codes above
  std::string message;  // human-readable, with context
  // The server's own code when it gave one: "token_expired", "binding_not_claimed",
  // the §7 blocker ("addon_destroyed", "restore_in_progress", ...),
  // "credential_revoked", or the Hrana error code ("SQLITE_CONSTRAINT", ...).
  std::string server_code;
  std::string remediation;           // from a 409 descriptor answer, else empty
  int http_status = 0;               // 0 when no HTTP answer was received
  bool retryable = false;            // true for "unavailable" and "connection_failed"
  std::optional<int> retry_after_s;  // from Retry-After, when present
  // For a batch: the 0-based index of the statement that failed, when one did.
  std::optional<std::size_t> statement;

  // "code (server_code): message".
  std::string ToString() const;
};

// Either a T or an SqlError.
template <typename T>
class [[nodiscard]] SqlResult {
 public:
  SqlResult(T value) : v_(std::move(value)) {}
  SqlResult(SqlError error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const SqlError& error() const { return std::get<1>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, SqlError> v_;
};

template <>
class [[nodiscard]] SqlResult<void> {
 public:
  SqlResult() = default;
  SqlResult(SqlError error) : error_(std::move(error)) {}
  bool ok() const { return !error_.has_value(); }
  const SqlError& error() const { return *error_; }

 private:
  std::optional<SqlError> error_;
};

// ------------------------------------------------------------------ statements

struct SqlStatement {
  SqlStatement() = default;
  // Implicit, so that `{"SELECT 1"}` and `{"... ?", {std::int64_t{1}}}` are statements.
  SqlStatement(std::string sql_text, std::vector<SqlValue> positional = {},
               std::vector<std::pair<std::string, SqlValue>> named = {})
      : sql(std::move(sql_text)), args(std::move(positional)), named_args(std::move(named)) {}

  std::string sql;                                           // exactly one statement
  std::vector<SqlValue> args;                                // ?, ?1, ...
  std::vector<std::pair<std::string, SqlValue>> named_args;  // ":name", "@name", "$name"
};

struct SqlColumn {
  std::string name;                      // "" for an unnamed column
  std::optional<std::string> decl_type;  // declared type, if any
};

struct SqlResultSet {
  std::vector<SqlColumn> columns;
  std::vector<std::vector<SqlValue>> rows;  // each row has columns.size() values
  std::int64_t affected_row_count = 0;
  std::optional<std::int64_t> last_insert_rowid;
};

// ------------------------------------------------------------------ connection

struct SqlOptions {
  // e.g. "http://127.0.0.1:7600" or "https://config.example:7600"; "" reads
  // VIA_CONFIG_URL. The descriptor's url may be http:// or https:// too.
  std::string config_url;
  std::string workload_token;  // workload JWT; "" reads VIA_WORKLOAD_TOKEN
  // https: the PEM file of the CA certificates to trust; "" reads
  // VIA_CA_FILE, and when that is unset too the system's store is used
  // (OpenSSL's default paths, which honour SSL_CERT_FILE/SSL_CERT_DIR). The
  // server's certificate must chain to one of them and name the URL's host
  // (DNS name or IP address); the host name goes in SNI.
  std::string ca_file;
  int connect_timeout_ms = 10000;
  int request_timeout_ms = 60000;             // one HTTP exchange
  std::size_t max_response_bytes = 64 << 20;  // larger answers: protocol_error
};

// The descriptor the config server handed out.
struct SqlDescriptor {
  std::string binding;
  std::string provider;
  std::string addon_id;
  std::string url;
  std::string auth_token;
  std::int64_t generation = 0;
  std::string app;
  std::string release;
};

class SqlTransaction;

namespace sql_internal {
class Session;
struct PipelineReply;
struct Requests;
}  // namespace sql_internal

// A connection to one binding. Move-only; destroying it closes its HTTP
// connection. Transactions borrow it: it must outlive them.
class Sql {
 public:
  // Reads VIA_CONFIG_URL and VIA_WORKLOAD_TOKEN (not_configured when unset)
  // and fetches the descriptor of `binding`. Errors: not_configured,
  // invalid_argument (bad URL), connection_failed, unauthorized (401),
  // forbidden (403: the release does not claim the binding), not_found (404),
  // not_usable (409; server_code is the blocker), unavailable (503,
  // retryable), protocol_error.
  static SqlResult<Sql> Connect(std::string_view binding);
  // The same with explicit settings; empty fields fall back to the env vars.
  static SqlResult<Sql> Connect(std::string_view binding, const SqlOptions& options);
  // The spelling of DESIGN.md section 8.
  static SqlResult<Sql> connect(std::string_view binding) { return Connect(binding); }

  Sql(Sql&&) noexcept;
  Sql& operator=(Sql&&) noexcept;
  ~Sql();

  // Runs one statement in autocommit mode. SQL failures are sql_error with the
  // Hrana code (SQLITE_ERROR, SQLITE_CONSTRAINT, ...) in server_code; the
  // connection stays usable. When the credential was revoked (401) the
  // descriptor is fetched again once and the statement retried with the new
  // generation; other failures are returned as they are.
  SqlResult<SqlResultSet> Execute(std::string_view sql, std::vector<SqlValue> args = {});
  SqlResult<SqlResultSet> Execute(const SqlStatement& statement);

  // Runs the statements atomically (BEGIN ... COMMIT in one request): either
  // all succeed and their results are returned, or the first failure is
  // returned and nothing is applied.
  SqlResult<std::vector<SqlResultSet>> Batch(const std::vector<SqlStatement>& statements);

  // Opens a transaction that spans requests (a Hrana stream with batons).
  // `begin_sql` is "BEGIN", "BEGIN IMMEDIATE" or "BEGIN EXCLUSIVE".
  SqlResult<SqlTransaction> Transaction(std::string_view begin_sql = "BEGIN");

  const SqlDescriptor& descriptor() const;

 private:
  friend class SqlTransaction;
  explicit Sql(std::unique_ptr<sql_internal::Session> session);
  std::unique_ptr<sql_internal::Session> session_;
};

// An open transaction on its own Hrana stream. Move-only. Destroying it
// without Commit() rolls it back (best effort: errors are dropped; the server
// also rolls back a stream left idle). After Commit() or Rollback() (whatever
// their outcome) every call returns transaction_closed. A stream_closed or
// unauthorized error means the server ended the stream: the transaction was
// rolled back there.
class SqlTransaction {
 public:
  SqlTransaction(SqlTransaction&&) noexcept;
  SqlTransaction& operator=(SqlTransaction&&) noexcept;
  ~SqlTransaction();

  SqlResult<SqlResultSet> Execute(std::string_view sql, std::vector<SqlValue> args = {});
  SqlResult<SqlResultSet> Execute(const SqlStatement& statement);
  // Runs the statements in order inside this transaction, stopping at the
  // first failure (earlier statements stay applied until Rollback()).
  SqlResult<std::vector<SqlResultSet>> Batch(const std::vector<SqlStatement>& statements);
  SqlResult<void> Commit();
  SqlResult<void> Rollback();
  // False after Commit(), Rollback(), or when the stream was lost.
  bool open() const { return !baton_.empty(); }

 private:
  friend class Sql;
  SqlTransaction(sql_internal::Session* session, std::string baton, std::string base_url);
  SqlResult<void> Finish(const char* sql);
  // Sends requests on this transaction's stream and keeps the new baton; a
  // failed exchange ends the transaction.
  SqlResult<sql_internal::PipelineReply> Send(const sql_internal::Requests& requests);

  sql_internal::Session* session_ = nullptr;  // borrowed from the Sql
  std::string baton_;                         // empty: closed
  std::string base_url_;
};

}  // namespace via
