// client/'s decoding of what servers send: malformed or hostile answers are
// clear errors, never crashes; HTTP statuses map to stable codes. The fake
// servers here answer with raw bytes over a real loopback socket.

#include <atomic>
#include <limits>
#include <thread>
#include <utility>

#include <boost/asio.hpp>
#include <catch2/catch.hpp>

#include "client/hrana_codec.h"
#include "client/http.h"
#include "client/sql.h"

using namespace via;
using namespace via::sql_internal;

namespace {

// Accepts connections on a loopback port and answers every request with
// `answer` (raw bytes), then closes. Stops and joins on destruction.
class FakeServer {
 public:
  explicit FakeServer(std::string answer)
      : answer_(std::move(answer)),
        acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] {
      while (!stop_) {
        boost::system::error_code ec;
        boost::asio::ip::tcp::socket socket(io_);
        acceptor_.accept(socket, ec);
        if (ec || stop_) break;
        // Read the request head (up to the blank line), then answer.
        std::string got;
        char buf[4096];
        while (got.find("\r\n\r\n") == std::string::npos) {
          std::size_t n = socket.read_some(boost::asio::buffer(buf), ec);
          if (ec) break;
          got.append(buf, n);
        }
        boost::asio::write(socket, boost::asio::buffer(answer_), ec);
        socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
      }
    });
  }
  ~FakeServer() {
    stop_ = true;
    boost::system::error_code ec;
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket poke(io);
    poke.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string answer_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string Http(int status, const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

SqlResult<Sql> ConnectTo(const FakeServer& server) {
  SqlOptions o;
  o.config_url = server.url();
  o.workload_token = "a.b.c";
  o.connect_timeout_ms = 2000;
  o.request_timeout_ms = 2000;
  return Sql::Connect("DATABASE", o);
}

}  // namespace

TEST_CASE("base64 round-trips every length and refuses bad text", "[client]") {
  for (std::size_t n = 0; n < 10; ++n) {
    SqlBlob b;
    for (std::size_t i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(250 - i * 37));
    auto text = Base64Encode(b);
    CHECK(text.find('=') == std::string::npos);
    CHECK(Base64Decode(text) == b);
  }
  CHECK(Base64Decode("AAEC") == SqlBlob{0, 1, 2});
  CHECK(Base64Decode("AA==") == SqlBlob{0});
  CHECK_FALSE(Base64Decode("A").has_value());
  CHECK_FALSE(Base64Decode("AA*C").has_value());
  CHECK_FALSE(Base64Decode("AB").has_value());  // non-zero leftover bits
}

TEST_CASE("integers are sent as decimal strings and floats as numbers", "[client]") {
  auto i = EncodeValue(std::numeric_limits<std::int64_t>::min());
  REQUIRE(i.ok());
  CHECK(i->dump() == R"({"type":"integer","value":"-9223372036854775808"})");
  auto f = EncodeValue(2.0);
  REQUIRE(f.ok());
  CHECK((*f)["type"] == "float");
  CHECK((*f)["value"].is_number_float());
  auto b = EncodeValue(SqlBlob{0xff});
  REQUIRE(b.ok());
  CHECK(*b == nlohmann::json::parse(R"({"type":"blob","base64":"/w"})"));
  CHECK_FALSE(EncodeValue(std::numeric_limits<double>::quiet_NaN()).ok());
}

TEST_CASE("a pipeline answer that is not the expected shape is a protocol_error", "[client]") {
  const char* bad[] = {
      "",
      "not json",
      "[]",
      R"({"baton":null})",
      R"({"baton":7,"results":[{"type":"ok","response":{"type":"close"}}]})",
      R"({"baton":null,"results":[]})",
      R"({"baton":null,"results":[{"type":"weird"}]})",
      R"({"baton":null,"results":[{"type":"ok"}]})",
      R"({"baton":null,"results":[{"type":"error","error":"x"}]})",
  };
  for (const char* body : bad) {
    INFO(body);
    auto r = DecodePipeline(body, 1);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == kSqlProtocolError);
  }
  std::string deep(100000, '[');
  auto r = DecodePipeline(deep, 1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == kSqlProtocolError);
}

TEST_CASE("values a server may send decode exactly, malformed ones are errors", "[client]") {
  using nlohmann::json;
  CHECK(DecodeValue(json::parse(R"({"type":"integer","value":"9223372036854775807"})")).value() ==
        SqlValue(std::numeric_limits<std::int64_t>::max()));
  CHECK(DecodeValue(json::parse(R"({"type":"blob","base64":""})")).value() == SqlValue(SqlBlob{}));
  for (const char* bad :
       {R"({"type":"integer","value":"9223372036854775808"})",
        R"({"type":"integer","value":"12x"})", R"({"type":"integer"})",
        R"({"type":"float","value":"1"})", R"({"type":"text","value":1})",
        R"({"type":"blob","base64":"***"})", R"({"type":"date"})", R"({})", R"("text")"}) {
    INFO(bad);
    auto v = DecodeValue(json::parse(bad));
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().code == kSqlProtocolError);
  }
  // Rows must match the columns.
  auto set = DecodeStmtResult(json::parse(
      R"({"cols":[{"name":"a"}],"rows":[[{"type":"null"},{"type":"null"}]],"affected_row_count":0})"));
  REQUIRE_FALSE(set.ok());
  CHECK(set.error().code == kSqlProtocolError);
}

TEST_CASE("infinite floats written as 1e999 decode as infinity", "[client]") {
  auto r = DecodePipeline(
      R"({"baton":null,"base_url":null,"results":[{"type":"ok","response":{"type":"execute","result":)"
      R"({"cols":[{"name":"a","decltype":null},{"name":"b","decltype":null}],)"
      R"("rows":[[{"type":"float","value":1e999},{"type":"float","value":-1e999}]],)"
      R"("affected_row_count":0,"last_insert_rowid":null}}}]})",
      1);
  REQUIRE(r.ok());
  auto set = DecodeStmtResult((*r->results[0].response)["result"]);
  REQUIRE(set.ok());
  CHECK(std::get<double>(set->rows[0][0]) == std::numeric_limits<double>::infinity());
  CHECK(std::get<double>(set->rows[0][1]) == -std::numeric_limits<double>::infinity());
}

TEST_CASE("HTTP statuses map to stable codes with the server's details", "[client]") {
  auto e401 = ErrorForStatus(401, R"({"error":{"code":"token_expired","message":"old"}})", {}, "d");
  CHECK(e401.code == kSqlUnauthorized);
  CHECK(e401.server_code == "token_expired");
  auto e409 = ErrorForStatus(
      409,
      R"({"error":{"code":"storage_missing","message":"m"},"blocking":"storage_missing","remediation":"via addon ensure"})",
      {}, "d");
  CHECK(e409.code == kSqlNotUsable);
  CHECK(e409.server_code == "storage_missing");
  CHECK(e409.remediation == "via addon ensure");
  auto e503 =
      ErrorForStatus(503, R"({"message":"restoring","code":"restore_in_progress"})", 1, "s");
  CHECK(e503.code == kSqlUnavailable);
  CHECK(e503.retryable);
  CHECK(e503.retry_after_s == 1);
  CHECK(e503.server_code == "restore_in_progress");
  CHECK(ErrorForStatus(400, R"({"message":"x","code":"stream_expired"})", {}, "s").code ==
        kSqlStreamClosed);
  // A stream closed by a restore or repair is final: never retried (issue 13).
  for (const char* code : {"stream_closed_by_restore", "stream_closed_by_repair"}) {
    auto closed = ErrorForStatus(
        400, std::string(R"({"message":"restored","code":")") + code + R"("})", {}, "s");
    CHECK(closed.code == kSqlStreamClosed);
    CHECK_FALSE(closed.retryable);
    CHECK(closed.server_code == code);
  }
  CHECK(ErrorForStatus(403, "garbage", {}, "s").code == kSqlForbidden);
  CHECK(ErrorForStatus(404, "", {}, "s").code == kSqlNotFound);
  CHECK(ErrorForStatus(500, "", {}, "s").code == kSqlServerError);
  CHECK(ErrorForStatus(302, "", {}, "s").code == kSqlProtocolError);
}

TEST_CASE("a descriptor answer that is not JSON is a protocol_error", "[client]") {
  FakeServer server(Http(200, "<html>hello</html>"));
  auto db = ConnectTo(server);
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().code == kSqlProtocolError);
}

TEST_CASE("a descriptor with missing fields is a protocol_error", "[client]") {
  FakeServer server(Http(200, R"({"binding":"DATABASE","url":"http://127.0.0.1:1"})"));
  auto db = ConnectTo(server);
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().code == kSqlProtocolError);
  CHECK(db.error().message.find("descriptor") != std::string::npos);
}

TEST_CASE("an answer that is not HTTP is a clear error", "[client]") {
  FakeServer server("SSH-2.0-OpenSSH\r\n\r\n");
  auto db = ConnectTo(server);
  REQUIRE_FALSE(db.ok());
  CHECK((db.error().code == kSqlProtocolError || db.error().code == kSqlConnectionFailed));
}

TEST_CASE("a 503 descriptor answer is unavailable with Retry-After", "[client]") {
  FakeServer server(
      Http(503, R"({"error":{"code":"log_unreadable","message":"busy"}})", "Retry-After: 7\r\n"));
  auto db = ConnectTo(server);
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().code == kSqlUnavailable);
  CHECK(db.error().retryable);
  CHECK(db.error().retry_after_s == 7);
}

TEST_CASE("an answer larger than max_response_bytes is refused", "[client]") {
  FakeServer server(Http(200, std::string(4096, ' ') + "{}"));
  SqlOptions o;
  o.config_url = server.url();
  o.workload_token = "a.b.c";
  o.max_response_bytes = 1024;
  auto db = Sql::Connect("DATABASE", o);
  REQUIRE_FALSE(db.ok());
  INFO(db.error().ToString());
  CHECK(db.error().code == kSqlProtocolError);
  CHECK(db.error().message.find("max_response_bytes") != std::string::npos);
}

TEST_CASE("a server that never answers hits the request timeout", "[client]") {
  // Accepts but answers nothing until the client gives up.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  SqlOptions o;
  o.config_url = "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  o.workload_token = "a.b.c";
  o.request_timeout_ms = 300;
  auto start = std::chrono::steady_clock::now();
  auto db = Sql::Connect("DATABASE", o);  // the kernel completes the handshake (backlog)
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().code == kSqlConnectionFailed);
  CHECK(took < std::chrono::seconds(5));
}

TEST_CASE("a request that timed out on a reused connection is not sent again", "[client]") {
  // A keep-alive server that answers the descriptor and the first pipeline
  // request, then reads the second and never answers it. The client gives up
  // after its timeout; it must not resend that request on a new connection
  // (the server may be running it), so exactly two pipeline requests arrive.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const unsigned short port = acceptor.local_endpoint().port();
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  std::atomic<int> pipelines{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> handlers;
  std::thread acceptor_thread([&] {
    while (!stop) {
      auto socket = std::make_shared<boost::asio::ip::tcp::socket>(io);
      boost::system::error_code ec;
      acceptor.accept(*socket, ec);
      if (ec || stop) break;
      handlers.emplace_back([socket, url, &pipelines] {
        std::string got;
        char buf[4096];
        boost::system::error_code ec;
        while (true) {
          std::size_t end = got.find("\r\n\r\n");
          if (end == std::string::npos) {
            std::size_t n = socket->read_some(boost::asio::buffer(buf), ec);
            if (ec) return;  // the client closed
            got.append(buf, n);
            continue;
          }
          const std::string head = got.substr(0, end);
          got.erase(0, end + 4);
          std::string body;
          if (head.rfind("POST", 0) == 0) {
            std::size_t length_at = head.find("Content-Length: ");
            std::size_t length = std::stoul(head.substr(length_at + 16));
            while (got.size() < length) {
              std::size_t n = socket->read_some(boost::asio::buffer(buf), ec);
              if (ec) return;
              got.append(buf, n);
            }
            got.erase(0, length);
            if (++pipelines > 1) continue;  // never answered: read on until the client hangs up
            body = R"({"baton":null,"base_url":null,"results":[{"type":"ok","response":)"
                   R"({"type":"execute","result":{"cols":[],"rows":[],"affected_row_count":1,)"
                   R"("last_insert_rowid":"1"}}},{"type":"ok","response":{"type":"close"}}]})";
          } else {
            body = R"({"binding":"DATABASE","provider":"sqlite","addon_id":"ad_1",)"
                                   R"("url":")" + url + R"(","auth_token":"via1.x","generation":1,)"
                                   R"("app":"api","release":"v1"})";
          }
          const std::string answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                     "Content-Length: " + std::to_string(body.size()) +
                                     "\r\n\r\n" + body;
          boost::asio::write(*socket, boost::asio::buffer(answer), ec);
        }
      });
    }
  });
  {
    SqlOptions o;
    o.config_url = url;
    o.workload_token = "a.b.c";
    o.request_timeout_ms = 300;
    auto db = Sql::Connect("DATABASE", o);
    REQUIRE(db.ok());
    REQUIRE(db->Execute("INSERT INTO t VALUES (1)").ok());
    auto result = db->Execute("INSERT INTO t VALUES (2)");
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().code == kSqlConnectionFailed);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(pipelines == 2);
  stop = true;
  boost::system::error_code ec;
  boost::asio::ip::tcp::socket poke(io);
  poke.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
  acceptor_thread.join();
  poke.close(ec);
  for (std::thread& handler : handlers) handler.join();
}
