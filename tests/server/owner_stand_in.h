#pragma once

// A stand-in for an owning node (server/forward.h) in tests: a listener on
// 127.0.0.1 that accepts every connection and, by mode, holds it open
// without sending a byte (kHold), answers 200 {"ok":true} once the request
// is read (kAnswer), or answers 200 with a chunked body that never ends
// (kEndless, until the connection breaks or 30 s pass; bytes_sent() counts
// what the kernel took).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace via::testing {

class OwnerStandIn {
 public:
  enum Mode { kHold, kAnswer, kEndless };
  OwnerStandIn() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    REQUIRE(::listen(fd_, 64) == 0);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~OwnerStandIn() {
    stop_ = true;
    acceptor_.join();
    for (auto& t : handlers_) t.join();
    for (int c : held_) ::close(c);
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void set_mode(Mode m) { mode_ = m; }
  int accepted() const { return accepted_; }
  std::uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int conn = ::accept(fd_, nullptr, nullptr);
      if (conn < 0) continue;
      ++accepted_;
      const Mode mode = mode_;
      if (mode == kHold) {
        held_.push_back(conn);  // closed at the end of the test
        continue;
      }
      handlers_.emplace_back([this, conn, mode] {
        ReadRequest(conn);
        if (mode == kAnswer) {
          const std::string body = R"({"ok":true})";
          const std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                    "Content-Length: " + std::to_string(body.size()) +
                                    "\r\nConnection: close\r\n\r\n" + body;
          (void)::send(conn, reply.data(), reply.size(), MSG_NOSIGNAL);
        } else {
          std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n";
          (void)::send(conn, head.data(), head.size(), MSG_NOSIGNAL);
          const std::string chunk = "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
          // Bounded in time so that a test that fails still ends.
          const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
          while (!stop_ && std::chrono::steady_clock::now() < until) {
            const ssize_t n = ::send(conn, chunk.data(), chunk.size(), MSG_NOSIGNAL);
            if (n <= 0) break;
            bytes_sent_ += static_cast<std::uint64_t>(n);
          }
        }
        ::close(conn);
      });
    }
  }

 public:
  // Reads one HTTP request (head and Content-Length body) from `conn`;
  // returns what arrived, whole or up to where the peer stopped.
  static std::string ReadRequest(int conn) {
    std::string got;
    char buf[4096];
    for (;;) {
      const std::size_t end = got.find("\r\n\r\n");
      if (end != std::string::npos) {
        const std::size_t cl = got.find("Content-Length: ");
        const std::size_t body = cl == std::string::npos ? 0 : std::stoul(got.substr(cl + 16));
        if (got.size() >= end + 4 + body) return got;
      }
      const ssize_t n = ::read(conn, buf, sizeof buf);
      if (n <= 0) return got;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<Mode> mode_{kHold};
  std::atomic<int> accepted_{0};
  std::atomic<std::uint64_t> bytes_sent_{0};
  std::vector<int> held_;               // the acceptor's only
  std::vector<std::thread> handlers_;   // the acceptor's only
  std::thread acceptor_;
};

}  // namespace via::testing
