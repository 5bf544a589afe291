// Connections to the PostgreSQL log notice a silently dead peer: every libpq
// connection Via opens sets TCP keepalives and tcp_user_timeout (checked on
// the socket itself), and `via serve`'s LISTEN connection, when its backend
// goes away, is opened again and keeps waking the node (a revocation is
// still applied within 1 s).

#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "eventstore/postgres/pq.h"
#include "log_backend.h"
#include "nodes_harness.h"
#include "serve_process.h"
#include "server/http_get.h"
#include "testing.h"

using namespace via;
using via::testing::Eventually;
using via::testing::FreePort;
using via::testing::JsonOf;
using via::testing::Metric;
using via::testing::NodeServer;
using via::testing::ReadText;
using via::testing::TwoHomes;
using via::testing::HttpGet;
using via::testing::PortOf;
using via::testing::Via;

namespace {

int IntOption(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof value;
  REQUIRE(::getsockopt(fd, level, name, &value, &len) == 0);
  return value;
}

// The pid of the backend that runs LISTEN in the database, or "".
std::string ListenBackend(eventstore::postgres::Conn& admin) {
  auto r = admin.Query("SELECT pid::text FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND "
                       "datname = current_database() AND pid <> pg_backend_pid()");
  REQUIRE(r.ok());
  return r->rows() > 0 ? std::string(r->Text(0, 0)) : std::string();
}

}  // namespace

TEST_CASE("a libpq connection to the log sets TCP keepalives and tcp_user_timeout",
          "[postgres][keepalive]") {
  testing::TestLogDatabase database;
  auto conn = eventstore::postgres::Conn::Connect(database.url());
  REQUIRE(conn.ok());
  // libpq is loaded by Conn::Connect (pq.h); PQsocket from the same library.
  void* lib = ::dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  REQUIRE(lib != nullptr);
  auto pq_socket = reinterpret_cast<int (*)(const PGconn*)>(::dlsym(lib, "PQsocket"));
  REQUIRE(pq_socket != nullptr);
  const int fd = pq_socket(conn->raw());
  REQUIRE(fd >= 0);
  CHECK(IntOption(fd, SOL_SOCKET, SO_KEEPALIVE) == 1);
  CHECK(IntOption(fd, IPPROTO_TCP, TCP_KEEPIDLE) == 5);
  CHECK(IntOption(fd, IPPROTO_TCP, TCP_KEEPINTVL) == 2);
  CHECK(IntOption(fd, IPPROTO_TCP, TCP_KEEPCNT) == 3);
  CHECK(IntOption(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == 10000);
  // The URL's own setting wins over Via's.
  auto own = eventstore::postgres::Conn::Connect(database.url() + "?keepalives_idle=42");
  REQUIRE(own.ok());
  CHECK(IntOption(pq_socket(own->raw()), IPPROTO_TCP, TCP_KEEPIDLE) == 42);
}

TEST_CASE("via serve's LISTEN connection is opened again when its backend is terminated, "
          "and a later revocation is applied within 1 s",
          "[postgres][keepalive][server]") {
  testing::TestLogDatabase database;
  testing::TempDir dir;
  const auto home = dir.path() / "home";
  REQUIRE(Via(home, "init --log " + database.url() + " >/dev/null").exit_code == 0);
  REQUIRE(Via(home, "addon create sqlite db --app api --bind DATABASE >/dev/null").exit_code == 0);
  testing::ServeProcess server(home);
  REQUIRE(!server.url().empty());
  const int port = PortOf(server.url());
  REQUIRE(Eventually([&] { return Metric(port, "via_log_listening") == 1; }));

  auto admin = eventstore::postgres::Conn::Connect(database.url());
  REQUIRE(admin.ok());
  std::string first;
  REQUIRE(Eventually([&] { return !(first = ListenBackend(*admin)).empty(); }));
  REQUIRE(admin->Exec("SELECT pg_terminate_backend(" + first + ")").ok());
  // A new backend LISTENs for the server.
  std::string second;
  REQUIRE(Eventually([&] {
    second = ListenBackend(*admin);
    return !second.empty() && second != first;
  }));
  CHECK(Eventually([&] { return Metric(port, "via_log_listening") == 1; }));

  REQUIRE(Via(home, "addon rotate-credentials db >/dev/null").exit_code == 0);
  const std::uint64_t applied = Metric(port, "via_revocations_applied_total");
  REQUIRE(Via(home, "addon revoke-credentials db --generation 1 >/dev/null").exit_code == 0);
  const auto revoked_at = std::chrono::steady_clock::now();
  CHECK(Eventually([&] { return Metric(port, "via_revocations_applied_total") == applied + 1; },
                   1000));
  CHECK(std::chrono::steady_clock::now() - revoked_at < std::chrono::seconds(1));
}
