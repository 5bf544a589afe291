// server/forward: what a node answers when the owning node it forwards to
// cannot be reached, loses the answer after the request was written, or
// answers. The owner here is a real TCP listener on loopback that behaves
// each way.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/forward.h"
#include "server/owner_stand_in.h"

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
      request_ = testing::OwnerStandIn::ReadRequest(conn);
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

// What one Forwarder::Forward call answered, once it has.
struct Answer {
  std::promise<std::pair<Result<HttpResponse>, std::int64_t>> promise;
  std::future<std::pair<Result<HttpResponse>, std::int64_t>> future = promise.get_future();
  Forwarder::Done done() {
    return [this](Result<HttpResponse> r, std::int64_t retry_after) {
      promise.set_value({std::move(r), retry_after});
    };
  }
  bool ready() { return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }
};

std::unique_ptr<Forwarder> MakeForwarder(const ForwardOptions& options) {
  auto made = Forwarder::Create(options);
  REQUIRE(made.ok());
  return std::move(made).value();
}

template <typename F>
bool Eventually(F ready, int ms = 10000) {
  for (int waited = 0; waited < ms; waited += 10) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ready();
}

TEST_CASE("forwarder: the per-owner cap refuses the excess at once, other owners still answer, "
          "shutdown ends what hangs",
          "[forward]") {
  testing::OwnerStandIn dead;  // accepts and never answers
  testing::OwnerStandIn alive;
  alive.set_mode(testing::OwnerStandIn::kAnswer);
  ForwardOptions o = Options(60000);
  o.per_owner_limit = 2;
  auto forwarder = MakeForwarder(o);
  Answer first, second, third, other;
  forwarder->Forward("dead", dead.url(), Pipeline(), first.done());
  forwarder->Forward("dead", dead.url(), Pipeline(), second.done());
  forwarder->Forward("dead", dead.url(), Pipeline(), third.done());
  // The third is refused before anything is sent, on the caller's thread.
  REQUIRE(third.ready());
  auto refused = third.future.get();
  REQUIRE_FALSE(refused.first.ok());
  CHECK(refused.first.status().reason() == "forward_busy");
  CHECK(refused.first.status().code() == StatusCode::kUnavailable);
  REQUIRE(Eventually([&] { return dead.accepted() == 2; }));
  CHECK(forwarder->stats().in_flight == 2);
  CHECK(forwarder->stats().busy_refusals == 1);
  // Another owner is not held up by the hanging ones.
  forwarder->Forward("alive", alive.url(), Pipeline(), other.done());
  auto answered = other.future.get();
  REQUIRE(answered.first.ok());
  CHECK(answered.first->status == 200);
  CHECK(answered.first->body == R"({"ok":true})");
  CHECK_FALSE(first.ready());
  CHECK_FALSE(second.ready());
  // Shutdown ends both at once (not at the 60 s timeout).
  forwarder->Shutdown();
  REQUIRE(first.ready());
  REQUIRE(second.ready());
  CHECK(first.future.get().first.status().reason() == "shutting_down");
  CHECK(second.future.get().first.status().reason() == "shutting_down");
  Answer late;
  forwarder->Forward("alive", alive.url(), Pipeline(), late.done());
  REQUIRE(late.ready());
  CHECK(late.future.get().first.status().reason() == "shutting_down");
}

TEST_CASE("forwarder: repeated failures open the breaker, after the cool-down one probe goes "
          "and its outcome reopens or closes it",
          "[forward]") {
  testing::OwnerStandIn owner;  // holds every connection: each forward times out
  ForwardOptions o = Options(1000);
  o.breaker_failures = 2;
  o.breaker_cooldown_ms = 700;
  auto forwarder = MakeForwarder(o);
  auto forward = [&] {
    Answer a;
    forwarder->Forward("b", owner.url(), Pipeline(), a.done());
    return a.future.get();
  };
  for (int i = 0; i < 2; ++i) {
    auto lost = forward();
    REQUIRE_FALSE(lost.first.ok());
    CHECK(lost.first.status().reason() == "owner_answer_lost");
  }
  CHECK(forwarder->stats().breaker_opened == 1);
  // Open: refused at once, nothing sent, with the cool-down as Retry-After.
  auto fast = forward();
  REQUIRE_FALSE(fast.first.ok());
  CHECK(fast.first.status().reason() == "owner_unreachable");
  CHECK(fast.first.status().code() == StatusCode::kUnavailable);
  CHECK(fast.second == 1);
  CHECK(owner.accepted() == 2);
  CHECK(forwarder->stats().breaker_refusals == 1);

  // After the cool-down: one probe; while it hangs, others are still refused.
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  Answer probe;
  forwarder->Forward("b", owner.url(), Pipeline(), probe.done());
  REQUIRE(Eventually([&] { return owner.accepted() == 3; }));
  auto during = forward();
  CHECK(during.first.status().reason() == "owner_unreachable");
  CHECK(owner.accepted() == 3);
  // The probe failed: open again for a cool-down.
  CHECK(probe.future.get().first.status().reason() == "owner_answer_lost");
  CHECK(forwarder->stats().breaker_opened == 2);
  CHECK(forward().first.status().reason() == "owner_unreachable");
  CHECK(owner.accepted() == 3);

  // The owner recovers: the next probe succeeds and the breaker closes.
  owner.set_mode(testing::OwnerStandIn::kAnswer);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  auto probed = forward();
  REQUIRE(probed.first.ok());
  CHECK(probed.first->status == 200);
  CHECK(forwarder->stats().probes == 2);
  auto after = forward();
  REQUIRE(after.first.ok());
  CHECK(owner.accepted() == 5);
}

TEST_CASE("forward: an endless body is cut off at the bound, before the timeout", "[forward]") {
  testing::OwnerStandIn owner;
  owner.set_mode(testing::OwnerStandIn::kEndless);
  ForwardOptions o = Options(60000);
  o.max_body_bytes = 1 << 20;
  const auto started = std::chrono::steady_clock::now();
  auto answer = Forward(owner.url(), Pipeline(), o);
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.status().reason() == "owner_answer_lost");
  CHECK(answer.status().message().find("larger than 1048576 bytes") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(60));
  CHECK(owner.bytes_sent() > (1u << 20));
}

TEST_CASE("forward: a declared Content-Length beyond the bound is refused from the header",
          "[forward]") {
  FakeOwner owner([](int conn) {
    const std::string reply =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n{";
    (void)::write(conn, reply.data(), reply.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  });
  auto answer = Forward(owner.url(), Pipeline(), Options(30000));
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.status().reason() == "owner_answer_lost");
  CHECK(answer.status().message().find("larger than") != std::string::npos);
}

TEST_CASE("forward: a URL that is not http(s) is refused, and so is a CA file that cannot be read",
          "[forward]") {
  auto answer = Forward("ftp://127.0.0.1:1", Pipeline(), Options(1000));
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.status().reason() == "owner_bad_url");
  ForwardOptions o = Options(1000);
  o.ca_file = "/nonexistent/ca.pem";
  auto made = Forwarder::Create(o);
  REQUIRE_FALSE(made.ok());
  CHECK(made.status().reason() == "invalid_forward_ca");
}

}  // namespace
}  // namespace via::server
