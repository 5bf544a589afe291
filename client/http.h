#pragma once

// Internal to client/: a synchronous HTTP/1.1 client over Boost.Beast that
// keeps one connection alive and reuses it while the scheme, host and port
// stay the same. http:// and https:// (Beast over OpenSSL: the server's
// certificate verified against the CA file or the system store, SNI, and the
// host name or IP address checked against the certificate).

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "client/sql.h"

namespace via::sql_internal {

struct Url {
  bool tls = false;       // https://
  std::string host;
  std::string port;       // decimal, default "80" (https: "443")
  std::string base_path;  // "" or "/prefix" (never a trailing '/')
};

// Parses "http[s]://host[:port][/path]". Errors: invalid_argument.
SqlResult<Url> ParseUrl(std::string_view text);

struct HttpReply {
  int status = 0;
  std::string body;
  std::optional<int> retry_after_s;  // Retry-After in seconds, when present
};

struct HttpOptions {
  int connect_timeout_ms = 10000;  // TCP connect and, for https, the TLS handshake
  int request_timeout_ms = 60000;
  std::size_t max_response_bytes = 64 << 20;
  std::string ca_file;  // https: PEM CA certificates; "" the system store
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
  // tls_error (https: untrusted certificate, failed handshake, unreadable CA
  // file), protocol_error (malformed or oversized answer).
  SqlResult<HttpReply> Send(const Url& url, std::string_view method, const std::string& path,
                            const std::string& bearer, const std::string* body);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace via::sql_internal
