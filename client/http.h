#pragma once

// Internal to client/: a synchronous HTTP/1.1 client over Boost.Beast that
// keeps one connection alive and reuses it while the host stays the same.
// Only http:// URLs are supported (the config server and SQL proxy listen on
// loopback or behind a TLS-terminating proxy).

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "client/sql.h"

namespace via::sql_internal {

struct Url {
  std::string host;
  std::string port;       // decimal, default "80"
  std::string base_path;  // "" or "/prefix" (never a trailing '/')
};

// Parses "http://host[:port][/path]". Errors: invalid_argument.
SqlResult<Url> ParseUrl(std::string_view text);

struct HttpReply {
  int status = 0;
  std::string body;
  std::optional<int> retry_after_s;  // Retry-After in seconds, when present
};

struct HttpOptions {
  int connect_timeout_ms = 10000;
  int request_timeout_ms = 60000;
  std::size_t max_response_bytes = 64 << 20;
};

class HttpClient {
 public:
  explicit HttpClient(const HttpOptions& options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request (`body` null: no body) to url.base_path + path and reads
  // the answer. A reused keep-alive connection that turns out closed by the
  // server before any answer byte is reopened and the request sent once more
  // (the server never saw it). Errors: connection_failed (retryable),
  // protocol_error (malformed or oversized answer).
  SqlResult<HttpReply> Send(const Url& url, std::string_view method, const std::string& path,
                            const std::string& bearer, const std::string* body);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace via::sql_internal
