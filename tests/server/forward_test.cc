// server/forward: what a node answers when the owning node it forwards to
// cannot be reached, loses the answer after the request was written, or
// answers. The owner here is a real TCP listener on loopback that behaves
// each way.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <thread>

#include "server/forward.h"

namespace via::server {
namespace {

// A listener on 127.0.0.1:<free port> that accepts one connection, reads the
// whole request (headers and the Content-Length body) and then does `then`
// with the connected socket.
class FakeOwner {
 public:
  template <typename Then>
  explicit FakeOwner(Then then) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    REQUIRE(::listen(fd_, 1) == 0);
    thread_ = std::thread([this, then] {
      const int conn = ::accept(fd_, nullptr, nullptr);
      if (conn < 0) return;
      std::string got;
      char buf[4096];
      for (;;) {
        const std::size_t end = got.find("\r\n\r\n");
        if (end != std::string::npos) {
          const std::size_t cl = got.find("Content-Length: ");
          const std::size_t body = cl == std::string::npos ? 0 : std::stoul(got.substr(cl + 16));
          if (got.size() >= end + 4 + body) break;
        }
        const ssize_t n = ::read(conn, buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
      }
      request_ = got;
      then(conn);
      ::close(conn);
    });
  }
  ~FakeOwner() {
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& request() const { return request_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::string request_;
};

HttpRequest Pipeline() {
  HttpRequest r;
  r.method = "POST";
  r.target = "/v2/pipeline";
  r.authorization = "Bearer token";
  r.body = R"js({"baton":null,"requests":[{"type":"execute","stmt":{"sql":"INSERT INTO t VALUES (1)"}}]})js";
  return r;
}

ForwardOptions Options(std::int64_t timeout_ms) {
  ForwardOptions o;
  o.from_node = "b";
  o.timeout_ms = timeout_ms;
  o.max_body_bytes = 1 << 16;
  return o;
}

TEST_CASE("forward: an owner that closes after reading the request: answer lost, not retryable",
          "[forward]") {
  FakeOwner owner([](int) {});
  auto answer = Forward(owner.url(), Pipeline(), Options(5000));
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.status().reason() == "owner_answer_lost");
  // Not Unavailable: that would be 503 with Retry-After, and the insert may have run.
  CHECK(answer.status().code() != StatusCode::kUnavailable);
  CHECK(owner.request().find("INSERT INTO t") != std::string::npos);
  CHECK(owner.request().find("Via-Forwarded-By: b") != std::string::npos);
}

TEST_CASE("forward: an owner that never answers: answer lost at the timeout", "[forward]") {
  FakeOwner owner([](int) { std::this_thread::sleep_for(std::chrono::milliseconds(1500)); });
  auto answer = Forward(owner.url(), Pipeline(), Options(300));
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.status().reason() == "owner_answer_lost");
}

TEST_CASE("forward: an owner that answers too much: answer lost", "[forward]") {
  FakeOwner owner([](int conn) {
    const std::string body(100000, 'x');
    const std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
    (void)::write(conn, reply.data(), reply.size());
  });
  auto answer = Forward(owner.url(), Pipeline(), Options(5000));
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.status().reason() == "owner_answer_lost");
}

TEST_CASE("forward: nobody listening: owner_unreachable, retryable", "[forward]") {
  int port = 0;
  {
    FakeOwner gone([](int) {});
    port = std::stoi(gone.url().substr(gone.url().rfind(':') + 1));
    // Connect once so the fake owner's thread ends, then the port is closed.
    auto ignored = Forward(gone.url(), Pipeline(), Options(2000));
    (void)ignored;
  }
  auto answer = Forward("http://127.0.0.1:" + std::to_string(port), Pipeline(), Options(2000));
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.status().reason() == "owner_unreachable");
  CHECK(answer.status().code() == StatusCode::kUnavailable);
}

TEST_CASE("forward: the owner's answer keeps its status, body and Cache-Control", "[forward]") {
  FakeOwner owner([](int conn) {
    const std::string body = R"({"url":"http://a","auth_token":"secret"})";
    const std::string reply =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
        "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    (void)::write(conn, reply.data(), reply.size());
  });
  HttpRequest descriptor;
  descriptor.method = "GET";
  descriptor.target = "/v1/descriptors/DATABASE";
  descriptor.authorization = "Bearer token";
  auto answer = Forward(owner.url(), descriptor, Options(5000));
  REQUIRE(answer.ok());
  CHECK(answer->status == 200);
  CHECK(answer->body.find("auth_token") != std::string::npos);
  bool no_store = false;
  for (const auto& [name, value] : answer->headers) {
    no_store |= name == "Cache-Control" && value == "no-store";
  }
  CHECK(no_store);
}

}  // namespace
}  // namespace via::server
