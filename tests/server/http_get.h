#pragma once

// A blocking HTTP/1.1 request on a fresh loopback connection, for tests of a
// real `via serve`: the status, the header block and the body as sent.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace via::testing {

struct HttpResult {
  int status = 0;  // 0: no answer
  std::string headers;
  std::string body;
};

// "http://127.0.0.1:PORT" -> PORT (0 when there is none).
inline int PortOf(const std::string& url) {
  const std::size_t colon = url.rfind(':');
  if (colon == std::string::npos) return 0;
  return std::atoi(url.c_str() + colon + 1);
}

// `method` on `target`, with a Bearer token and a JSON body when given.
inline HttpResult HttpCall(int port, const std::string& method, const std::string& target,
                           const std::string& bearer = "", const std::string& body = "",
                           int timeout_ms = 10000) {
  HttpResult result;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return result;
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!bearer.empty()) request += "Authorization: Bearer " + bearer + "\r\n";
  if (method == "POST") {
    request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n";
  }
  request += "\r\n" + body;
  std::string data;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) data.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const std::size_t split = data.find("\r\n\r\n");
  if (data.rfind("HTTP/1.1 ", 0) != 0 || split == std::string::npos) return result;
  result.status = std::stoi(data.substr(9, 3));
  result.headers = data.substr(0, split);
  result.body = data.substr(split + 4);
  return result;
}

inline HttpResult HttpGet(int port, const std::string& target, int timeout_ms = 10000) {
  return HttpCall(port, "GET", target, "", "", timeout_ms);
}

}  // namespace via::testing
