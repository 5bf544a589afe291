#include "eventstore/postgres/pq.h"
#include "domain/reasons.h"

#include <dlfcn.h>
#include <endian.h>
#include <poll.h>

#include <cstring>
#include <vector>

namespace via::eventstore::postgres {
namespace {

// libpq's messages end with a newline.
std::string Trimmed(const char* message) {
  std::string out = message == nullptr ? "" : message;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Libpq g_libpq;

}  // namespace

Result<const Libpq*> LoadLibpq() {
  static const std::string error = [] {
    void* lib = ::dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* why = ::dlerror();
      return std::string(why ? why : "dlopen failed");
    }
    std::string missing;
#define VIA_LIBPQ_LOAD(name)                                                        \
  g_libpq.name = reinterpret_cast<decltype(&::name)>(::dlsym(lib, #name));         \
  if (g_libpq.name == nullptr && missing.empty()) missing = "libpq lacks " #name;
    VIA_LIBPQ_FUNCTIONS(VIA_LIBPQ_LOAD)
#undef VIA_LIBPQ_LOAD
    return missing;
  }();
  if (!error.empty()) {
    return Unavailable("libpq_missing",
                       "the event log is on PostgreSQL, but libpq cannot be loaded: " + error)
        .WithRemediation("apt install libpq5");
  }
  return &g_libpq;
}

const Libpq& Pq() { return g_libpq; }

Status Unreachable(std::string_view detail) {
  return Unavailable(reason::kLogUnreachable,
                     "the event log's PostgreSQL server cannot be reached: " + std::string(detail))
      .WithRemediation("check that PostgreSQL is up and reachable, then retry");
}

Param Param::Int8(std::int64_t value) {
  Param p;
  p.type_ = kInt8Oid;
  p.is_int_ = true;
  const std::uint64_t be = htobe64(static_cast<std::uint64_t>(value));
  std::memcpy(p.int_.data(), &be, 8);
  p.length_ = 8;
  return p;
}

Param Param::Bytea(ByteView bytes) {
  Param p;
  p.type_ = kByteaOid;
  // A non-null pointer even for zero bytes: null means SQL NULL.
  static const char kEmpty = 0;
  p.data_ = bytes.empty() ? &kEmpty : reinterpret_cast<const char*>(bytes.data());
  p.length_ = static_cast<int>(bytes.size());
  return p;
}

Param Param::Text(std::string_view text) {
  Param p;
  p.type_ = kTextOid;
  static const char kEmpty = 0;
  p.data_ = text.empty() ? &kEmpty : text.data();
  p.length_ = static_cast<int>(text.size());
  return p;
}

Param Param::Null(Oid type) {
  Param p;
  p.type_ = type;
  return p;
}

Param Param::Binary(Oid type, std::string_view bytes) {
  Param p = Text(bytes);
  p.type_ = type;
  return p;
}

namespace {

void AppendBe32(std::string& out, std::uint32_t value) {
  const std::uint32_t be = htobe32(value);
  out.append(reinterpret_cast<const char*>(&be), 4);
}

Oid ArrayTypeOf(Oid element_type) {
  switch (element_type) {
    case kInt8Oid: return kInt8ArrayOid;
    case kByteaOid: return kByteaArrayOid;
    default: return kTextArrayOid;
  }
}

}  // namespace

ArrayParam::ArrayParam(Oid element_type) : element_type_(element_type) {}

void ArrayParam::AddInt8(std::int64_t value) {
  AppendBe32(elements_, 8);
  const std::uint64_t be = htobe64(static_cast<std::uint64_t>(value));
  elements_.append(reinterpret_cast<const char*>(&be), 8);
  ++count_;
}

void ArrayParam::Add(std::string_view bytes) {
  AppendBe32(elements_, static_cast<std::uint32_t>(bytes.size()));
  elements_.append(bytes);
  ++count_;
}

void ArrayParam::Add(ByteView bytes) {
  Add(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void ArrayParam::AddNull() {
  AppendBe32(elements_, 0xffffffffu);  // length -1
  has_null_ = true;
  ++count_;
}

Param ArrayParam::param() {
  // array_recv's input: dimensions, a has-null flag, the element type, then
  // per dimension its length and lower bound (1), then the elements.
  encoded_.clear();
  AppendBe32(encoded_, count_ == 0 ? 0 : 1);
  AppendBe32(encoded_, has_null_ ? 1 : 0);
  AppendBe32(encoded_, element_type_);
  if (count_ > 0) {
    AppendBe32(encoded_, static_cast<std::uint32_t>(count_));
    AppendBe32(encoded_, 1);
  }
  encoded_ += elements_;
  return Param::Binary(ArrayTypeOf(element_type_), encoded_);
}

std::int64_t PgResult::Int8(int row, int column) const {
  const char* value = Pq().PQgetvalue(result_.get(), row, column);
  if (Pq().PQgetlength(result_.get(), row, column) != 8) return 0;
  std::uint64_t be = 0;
  std::memcpy(&be, value, 8);
  return static_cast<std::int64_t>(be64toh(be));
}

ByteView PgResult::Bytes(int row, int column) const {
  return ByteView(reinterpret_cast<const std::uint8_t*>(Pq().PQgetvalue(result_.get(), row, column)),
                  static_cast<std::size_t>(Pq().PQgetlength(result_.get(), row, column)));
}

std::string_view PgResult::Text(int row, int column) const {
  return std::string_view(Pq().PQgetvalue(result_.get(), row, column),
                          static_cast<std::size_t>(Pq().PQgetlength(result_.get(), row, column)));
}

Result<Conn> Conn::Connect(const std::string& url, int connect_timeout_s) {
  const std::string timeout = std::to_string(connect_timeout_s);
  // A connection whose peer vanished without a FIN or RST (a dead machine, a
  // dropped route) would otherwise look idle for hours: TCP keepalives probe
  // an idle connection after kKeepalivesIdle s, every kKeepalivesInterval s,
  // and give up after kKeepalivesCount lost probes (~11 s), and
  // tcp_user_timeout drops it when data sent is not acknowledged within
  // 10 s. A LISTEN connection (pg_listener.h) then sees the break and
  // reconnects. libpq ignores all four on a Unix-domain socket.
  constexpr const char* kKeepalivesIdle = "5";
  constexpr const char* kKeepalivesInterval = "2";
  constexpr const char* kKeepalivesCount = "3";
  constexpr const char* kTcpUserTimeoutMs = "10000";
  // dbname last: the URI's own settings override ours.
  const char* keys[] = {"connect_timeout", "application_name", "client_encoding", "keepalives",
                        "keepalives_idle", "keepalives_interval", "keepalives_count",
                        "tcp_user_timeout", "dbname", nullptr};
  const char* values[] = {timeout.c_str(),     "via",         "UTF8",
                          "1",                 kKeepalivesIdle, kKeepalivesInterval,
                          kKeepalivesCount,    kTcpUserTimeoutMs, url.c_str(),
                          nullptr};
  VIA_RETURN_IF_ERROR(LoadLibpq().status());
  Conn conn;
  conn.conn_.reset(Pq().PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  if (!conn.conn_) return Unreachable("out of memory");
  if (Pq().PQstatus(conn.conn_.get()) != CONNECTION_OK) {
    return Unreachable(Trimmed(Pq().PQerrorMessage(conn.conn_.get())));
  }
  return conn;
}

Status Conn::Reset() {
  if (!conn_) return Unreachable("not connected");
  Pq().PQreset(conn_.get());
  broken_ = false;
  if (Pq().PQstatus(conn_.get()) != CONNECTION_OK) {
    return Unreachable(Trimmed(Pq().PQerrorMessage(conn_.get())));
  }
  return Status::Ok();
}

Status Conn::Check(PGresult* result, std::string_view what) {
  const ExecStatusType status = result ? Pq().PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return Status::Ok();
  const char* state = result ? Pq().PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string sqlstate = state ? state : "";
  std::string message =
      Trimmed(result ? Pq().PQresultErrorMessage(result) : Pq().PQerrorMessage(conn_.get()));
  if (message.empty()) message = Trimmed(Pq().PQerrorMessage(conn_.get()));
  if (Pq().PQstatus(conn_.get()) != CONNECTION_OK || sqlstate.rfind("08", 0) == 0 ||
      sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03") {
    broken_ = true;
    return Unreachable(std::string(what) + ": " + message);
  }
  if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03") {
    return Unavailable("log_busy", std::string(what) + ": " + message)
        .WithRemediation("retry");
  }
  return Internal(std::string(what) + ": " + message +
                  (sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")"));
}

Status Conn::Exec(const std::string& sql) {
  if (!conn_) return Unreachable("not connected");
  PgResult result(Pq().PQexec(conn_.get(), sql.c_str()));
  return Check(result.get(), sql.substr(0, sql.find_first_of(" \n")));
}

Result<PgResult> Conn::Query(const char* sql, std::initializer_list<Param> params) {
  if (!conn_) return Unreachable("not connected");
  std::vector<Oid> types;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (const Param& p : params) {
    types.push_back(p.type());
    values.push_back(p.data());
    lengths.push_back(p.length());
    formats.push_back(1);
  }
  PgResult result(Pq().PQexecParams(conn_.get(), sql, static_cast<int>(params.size()), types.data(),
                               values.data(), lengths.data(), formats.data(),
                               /*resultFormat=*/1));
  std::string_view what(sql);
  VIA_RETURN_IF_ERROR(Check(result.get(), what.substr(0, what.find(' '))));
  return result;
}

}  // namespace via::eventstore::postgres

namespace via::eventstore::postgres {

Status Conn::EnterPipeline() {
  if (!conn_) return Unreachable("not connected");
  if (Pq().PQenterPipelineMode(conn_.get()) != 1) {
    return Internal("enter pipeline mode: " + Trimmed(Pq().PQerrorMessage(conn_.get())));
  }
  return Status::Ok();
}

Status Conn::Send(const char* sql, std::span<const Param> params) {
  if (!conn_) return Unreachable("not connected");
  std::vector<Oid> types;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (const Param& p : params) {
    types.push_back(p.type());
    values.push_back(p.data());
    lengths.push_back(p.length());
    formats.push_back(1);
  }
  if (Pq().PQsendQueryParams(conn_.get(), sql, static_cast<int>(params.size()), types.data(),
                             values.data(), lengths.data(), formats.data(),
                             /*resultFormat=*/1) != 1) {
    std::string_view what(sql);
    return Check(nullptr, what.substr(0, what.find(' ')));
  }
  return Status::Ok();
}

Status Conn::SendSync() {
  if (!conn_) return Unreachable("not connected");
  if (Pq().PQpipelineSync(conn_.get()) != 1) return Check(nullptr, "sync");
  return Status::Ok();
}

Result<PgResult> Conn::Receive(std::string_view what) {
  if (!conn_) return Unreachable("not connected");
  PgResult result(Pq().PQgetResult(conn_.get()));
  if (result.get() == nullptr) {
    VIA_RETURN_IF_ERROR(Check(nullptr, what));
    return Internal(std::string(what) + ": no result in the pipeline");
  }
  const ExecStatusType status = Pq().PQresultStatus(result.get());
  if (status == PGRES_PIPELINE_ABORTED) {
    // Each statement's results end with a null.
    PgResult end(Pq().PQgetResult(conn_.get()));
    return Internal(std::string(what) + ": not run, an earlier statement failed");
  }
  if (status == PGRES_PIPELINE_SYNC) {
    return Internal(std::string(what) + ": the pipeline is out of step");
  }
  Status checked = Check(result.get(), what);
  if (!checked.ok()) {
    if (!broken_) PgResult end(Pq().PQgetResult(conn_.get()));
    return checked;
  }
  PgResult end(Pq().PQgetResult(conn_.get()));
  if (end.get() != nullptr) return Internal(std::string(what) + ": more than one result");
  return result;
}

Status Conn::ReceiveSync() {
  if (!conn_) return Unreachable("not connected");
  PgResult result(Pq().PQgetResult(conn_.get()));
  if (result.get() != nullptr && Pq().PQresultStatus(result.get()) == PGRES_PIPELINE_SYNC) {
    return Status::Ok();
  }
  VIA_RETURN_IF_ERROR(Check(result.get(), "sync"));
  return Internal("sync: the pipeline is out of step");
}

Status Conn::ExitPipeline() {
  if (!conn_) return Unreachable("not connected");
  if (Pq().PQexitPipelineMode(conn_.get()) != 1) {
    if (!ok()) return Unreachable(Trimmed(Pq().PQerrorMessage(conn_.get())));
    // Results left uncollected: the connection is out of step for good, so it
    // counts as broken and is reset before its next use.
    broken_ = true;
    return Internal("leave pipeline mode: " + Trimmed(Pq().PQerrorMessage(conn_.get())));
  }
  return Status::Ok();
}

bool Conn::PeerClosed() {
  if (!ok()) return true;
  // A server ending the session sends why, then closes: a few reads see both.
  for (int i = 0; i < 8; ++i) {
    pollfd p{Pq().PQsocket(conn_.get()), POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    if (Pq().PQconsumeInput(conn_.get()) != 1 || Pq().PQstatus(conn_.get()) != CONNECTION_OK) {
      broken_ = true;
      return true;
    }
  }
  return false;
}

}  // namespace via::eventstore::postgres
