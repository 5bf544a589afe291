#pragma once

// Small RAII wrappers over libpq for the event log's PostgreSQL backend: a
// connection, a result, and parameters sent in binary. Every query asks for
// binary results, so bytea columns arrive as their bytes, bigint as 8
// big-endian bytes and text as its UTF-8 bytes.
//
// Errors map to Status: a connection that cannot be made or breaks, and a
// server shutting down, are Unavailable("log_unreachable") (retryable); a
// serialization failure or deadlock is Unavailable("log_busy"); anything
// else is Internal with the server's message and SQLSTATE.

#include <libpq-fe.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "domain/bytes.h"
#include "domain/status.h"

namespace via::eventstore::postgres {

// libpq is loaded with dlopen when a home's log is on PostgreSQL, never
// linked: linked, it and the libraries it needs (Kerberos, LDAP, GnuTLS, SASL:
// 22 shared objects) were mapped and relocated by every `via` command, which
// more than doubled the CPU time of `status` on a SQLite home.
#define VIA_LIBPQ_FUNCTIONS(X)                                                          \
  X(PQconnectdbParams) X(PQstatus) X(PQerrorMessage) X(PQfinish) X(PQreset) X(PQexec) \
  X(PQexecParams) X(PQresultStatus) X(PQresultErrorField) X(PQresultErrorMessage)      \
  X(PQclear) X(PQntuples) X(PQgetvalue) X(PQgetlength) X(PQgetisnull) X(PQbackendPID)      \
  X(PQenterPipelineMode) X(PQexitPipelineMode) X(PQpipelineSync) X(PQsendQueryParams)   \
  X(PQgetResult) X(PQconsumeInput) X(PQsocket)

struct Libpq {
#define VIA_LIBPQ_MEMBER(name) decltype(&::name) name = nullptr;
  VIA_LIBPQ_FUNCTIONS(VIA_LIBPQ_MEMBER)
#undef VIA_LIBPQ_MEMBER
};

// Loads libpq.so.5 once. Error: Unavailable("libpq_missing"), naming the
// Debian package, when it cannot be loaded.
Result<const Libpq*> LoadLibpq();
// The loaded functions; only after LoadLibpq() succeeded (every PGconn and
// PGresult comes from a connection made after it).
const Libpq& Pq();

struct PgResultDeleter {
  void operator()(PGresult* r) const { if (r) Pq().PQclear(r); }
};
struct PgConnDeleter {
  void operator()(PGconn* c) const { if (c) Pq().PQfinish(c); }
};

// PostgreSQL type oids of the parameters we send (pg_type.h).
inline constexpr Oid kInt8Oid = 20;
inline constexpr Oid kTextOid = 25;
inline constexpr Oid kByteaOid = 17;
inline constexpr Oid kInt8ArrayOid = 1016;
inline constexpr Oid kTextArrayOid = 1009;
inline constexpr Oid kByteaArrayOid = 1001;

// One query parameter, sent in binary. Views must outlive the query.
class Param {
 public:
  static Param Int8(std::int64_t value);
  static Param Bytea(ByteView bytes);
  static Param Text(std::string_view text);
  static Param Null(Oid type);
  // Bytes already in the binary form of `type` (ArrayParam).
  static Param Binary(Oid type, std::string_view bytes);

  Oid type() const { return type_; }
  // Null for SQL NULL.
  const char* data() const { return is_int_ ? int_.data() : data_; }
  int length() const { return length_; }

 private:
  Oid type_ = 0;
  const char* data_ = nullptr;
  int length_ = 0;
  bool is_int_ = false;
  std::array<char, 8> int_{};
};

// A one-dimensional array parameter (int8[], text[] or bytea[]) in
// PostgreSQL's binary array format, built element by element. It owns its
// bytes: it must outlive the Param it gives. Lets one statement carry a
// whole batch (`unnest($1::int8[], ...)`, `= ANY($1)`), so a batch costs
// one statement for the server to parse and plan, not one per row.
class ArrayParam {
 public:
  // `element_type` is kInt8Oid, kTextOid or kByteaOid.
  explicit ArrayParam(Oid element_type);

  void AddInt8(std::int64_t value);
  // A text or bytea element.
  void Add(std::string_view bytes);
  void Add(ByteView bytes);
  void AddNull();

  int size() const { return count_; }
  // The whole array, valid until the next Add.
  Param param();

 private:
  Oid element_type_;
  std::string elements_;  // each: 4-byte big-endian length (-1: NULL), bytes
  std::string encoded_;
  int count_ = 0;
  bool has_null_ = false;
};

class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* result) : result_(result) {}

  int rows() const { return Pq().PQntuples(result_.get()); }
  bool IsNull(int row, int column) const { return Pq().PQgetisnull(result_.get(), row, column) != 0; }
  // A bigint (int8) column.
  std::int64_t Int8(int row, int column) const;
  ByteView Bytes(int row, int column) const;
  std::string_view Text(int row, int column) const;
  PGresult* get() const { return result_.get(); }

 private:
  std::unique_ptr<PGresult, PgResultDeleter> result_;
};

class Conn {
 public:
  // Connects to a libpq URI or conninfo string. The password comes from
  // PGPASSFILE (or ~/.pgpass), never from Via. `connect_timeout` applies
  // unless the URI sets its own.
  static Result<Conn> Connect(const std::string& url, int connect_timeout_s = 10);

  Conn() = default;
  Conn(Conn&&) noexcept = default;
  Conn& operator=(Conn&&) noexcept = default;

  // Whether the connection is up: libpq has not seen it break, and no query
  // on it failed for want of a connection.
  bool ok() const { return conn_ && !broken_ && Pq().PQstatus(conn_.get()) == CONNECTION_OK; }
  // Reconnects a broken connection with the same parameters.
  Status Reset();

  // Runs SQL without parameters (one or more statements), ignoring rows.
  Status Exec(const std::string& sql);
  // Runs one statement with binary parameters and binary results.
  Result<PgResult> Query(const char* sql, std::initializer_list<Param> params = {});

  // Pipeline mode (libpq 14+): statements sent together and answered in one
  // round trip. Used only between EnterPipeline and ExitPipeline, during which
  // Exec and Query are not allowed. Each statement sent is answered by one
  // Receive, in order, and each SendSync by one ReceiveSync. After a
  // statement fails, the ones after it up to the next sync are not run and
  // Receive answers them with Internal. A connection
  // that breaks is log_unreachable, as in Query; the pipeline is then over.
  Status EnterPipeline();
  Status Send(const char* sql, std::span<const Param> params);
  // Sends a sync point and flushes everything sent.
  Status SendSync();
  Result<PgResult> Receive(std::string_view what);
  Status ReceiveSync();
  // Leaves pipeline mode; every result must have been received.
  Status ExitPipeline();

  // Whether the server has closed this connection (or said why it will)
  // while nothing was asked of it: reads what has arrived without waiting.
  // False when nothing has arrived. A connection found closed is broken.
  bool PeerClosed();

  // The server's process id (tests).
  int backend_pid() const { return conn_ ? Pq().PQbackendPID(conn_.get()) : 0; }
  PGconn* raw() { return conn_.get(); }

 private:
  Status Check(PGresult* result, std::string_view what);
  std::unique_ptr<PGconn, PgConnDeleter> conn_;
  bool broken_ = false;
};

// The Status for a failed connection attempt or a broken connection.
Status Unreachable(std::string_view detail);

}  // namespace via::eventstore::postgres
