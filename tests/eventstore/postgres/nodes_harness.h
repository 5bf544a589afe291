#pragma once

// What the tests of several `via serve` nodes on one PostgreSQL log share:
// free loopback ports, waiting for a condition, reading answers and
// /metrics, a node (`via serve --node NAME` on a port of its own) and two
// homes joined to one log (b with a copy of a's keys).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "log_backend.h"
#include "serve_process.h"
#include "server/http_get.h"
#include "testing.h"

namespace via::testing {

// A loopback port that was free a moment ago (a node's public URL is known
// before it listens).
inline int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Whether `ready()` holds within `ms` (checked every 20 ms).
template <typename F>
bool Eventually(F ready, int ms = 15000) {
  for (int waited = 0; waited < ms; waited += 20) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ready();
}

inline nlohmann::json JsonOf(const std::string& text) {
  INFO(text);
  return nlohmann::json::parse(text);
}

inline std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// An unlabelled counter or gauge of the server's /metrics (0 when absent).
inline std::uint64_t Metric(int port, const std::string& name) {
  const std::string body = HttpGet(port, "/metrics").body;
  const std::size_t at = body.find("\n" + name + " ");
  if (at == std::string::npos) return 0;
  return std::stoull(body.substr(at + name.size() + 2));
}

// A `via serve --node NAME` on its own port, public URL http://127.0.0.1:PORT.
struct NodeServer {
  NodeServer(const std::filesystem::path& home, const std::string& name,
             std::vector<std::string> env = {})
      : port(FreePort()),
        url("http://127.0.0.1:" + std::to_string(port)),
        server(home,
               {"--listen", "127.0.0.1:" + std::to_string(port), "--public-url", url, "--node",
                name, "--access-log", (home / "access.log").string(), "--snapshot-maintenance",
                "false"},
               ViaBinary(), /*default_flags=*/false, std::move(env)) {}
  int port;
  std::string url;
  ServeProcess server;
};

// Two homes on one PostgreSQL log: a initialized it, b joined it with a copy
// of a's keys.
struct TwoHomes {
  TwoHomes() {
    REQUIRE(Via(a, "init --log " + database.url() + " >/dev/null").exit_code == 0);
    std::filesystem::create_directories(b);
    std::filesystem::copy(a / "keys", b / "keys");
    REQUIRE(Via(b, "init --log " + database.url() + " >/dev/null").exit_code == 0);
  }
  TestLogDatabase database;  // sets PGPASSFILE for `via`
  TempDir dir;
  std::filesystem::path a = dir.path() / "a";
  std::filesystem::path b = dir.path() / "b";
};

}  // namespace via::testing
