#pragma once

// One Boost.Beast HTTP/1.1 server: an io_context run by a few threads, one
// coroutine per connection on its own strand, keep-alive, and a limit on every
// read:
//   - request header bytes (431 beyond), request body bytes (413 beyond);
//   - idle timeout: a connection that sends no request header for this long is
//     closed (covers slow headers too); read timeout: the body and the response
//     write must finish within it (408 / close);
//   - at most max_connections connections: at the bound a new connection
//     makes the server close the connection idle the longest (one waiting for
//     a request); it gets 503 when every connection is busy, or when 64
//     evicted connections are still closing.
// Bytes: a request target with a byte outside visible ASCII (raw UTF-8 or any
// other non-ASCII byte, controls) gets 400 "invalid_target", a header value
// that is not UTF-8 400 "invalid_header", before the handler sees them.
// The handler never blocks an I/O thread: it answers at once or hands its
// Responder to a worker that answers later (the connection's coroutine waits
// without holding a thread). Responders may be called until the HttpServer is
// destroyed; whoever holds them must call or drop them before that.
// SIGINT/SIGTERM start a drain: the listener closes, idle connections close,
// requests in flight finish (their responses say Connection: close), and Run()
// returns once every connection is gone or drain_timeout_ms passed.
// SIGHUP never ends the process: it reloads the TLS certificate (if any) and
// calls on_reload (on the control strand, so it must be quick: reopen a
// file, say), as often as it arrives.
// Every response is logged as one JSON line (ts, remote, method, path, status,
// bytes, ms, code) to the access log and counted in `metrics`; no header or body is ever logged. A
// handler that throws gets a generic 500 "internal" answer; the exception's
// text goes to the error log only.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "domain/status.h"
#include "server/access_log.h"
#include "server/http_message.h"
#include "server/metrics.h"

namespace via::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7600;  // 0: any free port (see on_listening)
  int threads = 4;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 1 << 20;
  std::int64_t idle_timeout_ms = 60000;
  std::int64_t read_timeout_ms = 30000;
  std::size_t max_connections = 512;
  std::int64_t drain_timeout_ms = 10000;
  // TLS (HTTPS and WSS) with this PEM certificate chain and key; both empty:
  // plain HTTP. Loaded by Run() (InvalidArgument "invalid_tls" when they
  // cannot be used) and again on every SIGHUP: new connections get the new
  // certificate, a reload that fails keeps the old one (said on error_log).
  std::string tls_cert_file;
  std::string tls_key_file;
  AccessLog* access_log = nullptr;  // null: no access log; outlives the server
  // Every answered request is counted here (metrics.h); null: not counted.
  Metrics* metrics = nullptr;
  // SIGHUP (see above); null: the signal is ignored.
  std::function<void()> on_reload;
  // Called once when a drain begins (signal or Stop()), on the control strand.
  std::function<void()> on_drain;
  // Unexpected failures (a handler that threw), one line each; null: none.
  std::function<void(const std::string&)> error_log;
};

class HttpServer {
 public:
  // Runs on an I/O thread for every request and must not block: it calls
  // `respond` at once or passes it to another thread (see above).
  using Handler = std::function<void(HttpRequest request, Responder respond)>;

  // `on_listening` gets the bound "host:port" once listening.
  HttpServer(HttpServerOptions options, Handler handler,
             std::function<void(const std::string&)> on_listening);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and serves until SIGINT/SIGTERM (or Stop()) and a drain. Errors:
  // Unavailable "listen_failed" when the address cannot be bound;
  // InvalidArgument "invalid_tls" (see tls_cert_file).
  Status Run();

  // Starts a drain as a signal would. Thread-safe.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace via::server
