#include "server/http_server.h"

// GCC 12 reports Boost 1.74's awaitable frame allocator (a custom operator
// new/delete pair that matches) as mismatched: a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
// Boost 1.74 enables co_await for clang only with <experimental/coroutine>;
// clang >= 14 with libstdc++ has C++20 <coroutine>, which Asio supports.
#if defined(__clang__) && defined(__cpp_impl_coroutine) && !defined(BOOST_ASIO_HAS_CO_AWAIT)
#define BOOST_ASIO_HAS_CO_AWAIT 1
#endif

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "domain/time_text.h"
#include "server/body_stream.h"
#include "server/hrana_ws.h"
#include "server/utf8.h"

namespace via::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr auto kAwait = asio::use_awaitable;

// Connections over max_connections allowed while evicted ones are closing.
constexpr std::size_t kEvictionSlack = 64;

std::chrono::milliseconds Ms(std::int64_t ms) { return std::chrono::milliseconds(ms); }

std::int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Microseconds on the steady clock (time to answer a request).
std::int64_t SteadyUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string PathOnly(std::string_view target) {
  std::size_t q = target.find('?');
  return std::string(q == std::string_view::npos ? target : target.substr(0, q));
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// A malformed request (as opposed to a closed, reset or timed-out connection).
bool IsParseError(const error_code& ec) {
  return ec.category() == error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

HttpResponse ErrorResponse(int status, const std::string& code, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.error_code = code;
  r.body = nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump();
  return r;
}

// A request target is ASCII by definition (RFC 9112: non-ASCII characters are
// percent-encoded); raw bytes outside 0x21..0x7E are refused.
bool ValidTarget(std::string_view target) {
  for (char c : target) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x21 || b > 0x7E) return false;
  }
  return !target.empty();
}

// The answer to a request the handler never answered (see Pending).
HttpResponse ShuttingDown() {
  HttpResponse r = ErrorResponse(503, "shutting_down", "the server is shutting down; retry");
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

// The shared state behind one Responder: the coroutine's completion handler
// (resumed on the connection's strand), called once. It keeps the io_context
// from running out of work while the answer is pending. If every copy of the
// Responder is dropped without an answer, the destructor answers 503.
template <typename CompletionHandler>
class Pending {
 public:
  explicit Pending(CompletionHandler handler)
      : executor_(asio::get_associated_executor(handler)),
        work_(asio::prefer(executor_, asio::execution::outstanding_work.tracked)),
        handler_(std::move(handler)) {}
  ~Pending() { Complete(ShuttingDown()); }
  Pending(const Pending&) = delete;
  Pending& operator=(const Pending&) = delete;

  void Complete(HttpResponse response) {
    std::optional<CompletionHandler> handler;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!handler_) return;
      handler.emplace(std::move(*handler_));
      handler_.reset();
    }
    asio::post(executor_, [h = std::move(*handler), r = std::move(response)]() mutable {
      std::move(h)(std::move(r));
    });
    std::lock_guard<std::mutex> lock(mu_);
    work_ = asio::any_io_executor();
  }

 private:
  using Executor = asio::associated_executor_t<CompletionHandler>;
  const Executor executor_;
  std::mutex mu_;
  asio::any_io_executor work_;
  std::optional<CompletionHandler> handler_;
};

using TlsContext = asio::ssl::context;
using TlsStream = asio::ssl::stream<beast::tcp_stream&>;

// A server context with the certificate chain and key of `cert` and `key`
// (PEM), TLS 1.2 and newer. Errors: InvalidArgument "invalid_tls" naming the
// file that could not be used.
Result<std::shared_ptr<TlsContext>> LoadTls(const std::string& cert, const std::string& key) {
  auto ctx = std::make_shared<TlsContext>(TlsContext::tls_server);
  error_code ec;
  ctx->set_options(TlsContext::default_workarounds | TlsContext::no_sslv2 | TlsContext::no_sslv3 |
                       TlsContext::no_tlsv1 | TlsContext::no_tlsv1_1 | TlsContext::single_dh_use,
                   ec);
  if (!ec) ctx->use_certificate_chain_file(cert, ec);
  if (ec) return InvalidArgument("invalid_tls", "--tls-cert " + cert + ": " + ec.message());
  ctx->use_private_key_file(key, TlsContext::pem, ec);
  if (ec) return InvalidArgument("invalid_tls", "--tls-key " + key + ": " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return InvalidArgument("invalid_tls", "--tls-key " + key + " does not match --tls-cert " + cert);
  }
  return ctx;
}

}  // namespace

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, Handler handler,
       std::function<void(const std::string&)> on_listening)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        on_listening_(std::move(on_listening)),
        control_(asio::make_strand(ioc_)),
        acceptor_(control_),
        signals_(control_, SIGINT, SIGTERM),
        hangup_(control_, SIGHUP),
        drain_timer_(control_) {}

  Status Run();
  void Stop() {
    asio::post(control_, [this] { BeginDrain(); });
  }

 private:
  struct Conn {
    explicit Conn(tcp::socket socket) : stream(std::move(socket)) {}
    beast::tcp_stream stream;
    // A request is being handled. Written on the connection's strand; read by
    // the acceptor too (eviction), hence atomic.
    std::atomic<bool> busy{false};
    std::atomic<bool> evicted{false};  // chosen to make room for a new connection
    std::atomic<std::int64_t> idle_since_ms{0};  // when it started waiting for a request
    std::string remote;
    std::uint64_t id = 0;
    // With TLS: the context current when the connection was accepted (kept
    // alive across a reload) and the TLS layer over `stream`.
    std::shared_ptr<TlsContext> tls_context;
    std::unique_ptr<TlsStream> tls;
  };

  asio::awaitable<void> Accept();
  // The handler's answer to `request`, awaited without holding a thread.
  asio::awaitable<HttpResponse> Respond(HttpRequest request);
  void ErrorLog(const std::string& line) {
    if (options_.error_log) options_.error_log(line);
  }
  asio::awaitable<void> Serve(std::shared_ptr<Conn> conn);
  // The request loop and its writers over `io`: the connection's TCP stream,
  // or its TLS stream. Timeouts are always set on conn.stream (the TCP layer).
  template <class Stream>
  asio::awaitable<void> ServeRequests(Conn& conn, Stream& io);
  template <class Stream>
  asio::awaitable<void> Send(Conn& conn, Stream& io, const HttpResponse& response,
                             unsigned version, bool keep_alive, const std::string& method,
                             const std::string& path, std::int64_t started_us, error_code& ec);
  // Send() for a response whose body is a BodyStream.
  template <class Stream>
  asio::awaitable<void> SendStream(Conn& conn, Stream& io, const HttpResponse& response,
                                   unsigned version, bool keep_alive, const std::string& method,
                                   const std::string& path, std::int64_t started_us,
                                   error_code& ec);
  // Hrana over WebSocket (hrana_ws.h) on `GET /` with an upgrade, until the
  // connection ends; every request runs through the handler as an HTTP call.
  template <class Stream>
  asio::awaitable<void> ServeWebSocket(Conn& conn, Stream& io,
                                       http::request<http::string_body> request,
                                       std::int64_t started_us);
  // The TLS context for new connections (null: plain HTTP).
  std::shared_ptr<TlsContext> CurrentTls() {
    std::lock_guard lock(tls_mu_);
    return tls_;
  }
  void BeginDrain();
  // Waits for the next SIGHUP, calls on_reload, and waits again.
  void AwaitHangup();
  void Log(const std::string& remote, const std::string& method, const std::string& path,
           int status, std::size_t bytes, std::int64_t micros, const std::string& code);

  const HttpServerOptions options_;
  const Handler handler_;
  const std::function<void(const std::string&)> on_listening_;

  asio::io_context ioc_;
  asio::strand<asio::io_context::executor_type> control_;  // acceptor, signals, timers
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  asio::signal_set hangup_;
  asio::steady_timer drain_timer_;

  std::atomic<bool> draining_{false};
  std::mutex conns_mu_;  // guards conns_ and next_id_
  std::map<std::uint64_t, std::weak_ptr<Conn>> conns_;
  std::uint64_t next_id_ = 1;
  std::mutex tls_mu_;  // guards tls_ (swapped by a SIGHUP reload)
  std::shared_ptr<TlsContext> tls_;
};

Status HttpServer::Impl::Run() {
  if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
    VIA_ASSIGN_OR_RETURN(tls_, LoadTls(options_.tls_cert_file, options_.tls_key_file));
  }
  error_code ec;
  const auto address = asio::ip::make_address(options_.host, ec);
  if (ec) return InvalidArgument("invalid_listen", "not an IP address: " + options_.host);
  const tcp::endpoint endpoint(address, options_.port);
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("listen_failed", "cannot listen on " + where + ": " + ec.message());
  const tcp::endpoint bound = acceptor_.local_endpoint(ec);
  std::string host = bound.address().to_string();
  if (bound.address().is_v6()) host = "[" + host + "]";
  if (on_listening_) on_listening_(host + ":" + std::to_string(bound.port()));

  signals_.async_wait([this](const error_code& error, int) {
    if (!error) BeginDrain();
  });
  AwaitHangup();
  asio::co_spawn(control_, Accept(), asio::detached);

  std::vector<std::thread> threads;
  for (int i = 1; i < std::max(1, options_.threads); ++i) {
    threads.emplace_back([this] { ioc_.run(); });
  }
  ioc_.run();
  for (auto& t : threads) t.join();
  return Status::Ok();
}

void HttpServer::Impl::AwaitHangup() {
  // The signal stays caught until the server is destroyed (a SIGHUP while
  // no wait is pending is queued, not fatal); a drain stops the waiting.
  hangup_.async_wait([this](const error_code& error, int) {
    if (error || draining_) return;
    if (CurrentTls()) {
      // New connections get the new certificate; open ones keep theirs.
      auto reloaded = LoadTls(options_.tls_cert_file, options_.tls_key_file);
      if (reloaded.ok()) {
        std::lock_guard lock(tls_mu_);
        tls_ = std::move(reloaded).value();
      }
      ErrorLog(reloaded.ok() ? "via serve: SIGHUP: TLS certificate reloaded"
                             : "via serve: SIGHUP: TLS certificate not reloaded (still serving the "
                               "old one): " + reloaded.status().message());
    }
    if (options_.on_reload) options_.on_reload();
    AwaitHangup();
  });
}

void HttpServer::Impl::BeginDrain() {
  if (draining_.exchange(true)) return;
  error_code ec;
  acceptor_.close(ec);
  signals_.cancel(ec);
  hangup_.cancel(ec);
  if (options_.on_drain) options_.on_drain();
  std::vector<std::shared_ptr<Conn>> live;
  {
    std::lock_guard lock(conns_mu_);
    for (auto& [id, weak] : conns_) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  if (live.empty()) return;  // nothing to wait for: run() returns as work runs out
  for (auto& c : live) {
    // Idle connections close now; busy ones after their response.
    asio::post(c->stream.get_executor(), [c] {
      if (!c->busy) c->stream.cancel();
    });
  }
  drain_timer_.expires_after(Ms(options_.drain_timeout_ms));
  drain_timer_.async_wait([this](const error_code& error) {
    if (!error) ioc_.stop();  // connections that did not finish in time are dropped
  });
}

asio::awaitable<HttpResponse> HttpServer::Impl::Respond(HttpRequest request) {
  auto initiate = [this](auto completion, HttpRequest in) {
    auto pending = std::make_shared<Pending<decltype(completion)>>(std::move(completion));
    Responder respond = [pending](HttpResponse r) { pending->Complete(std::move(r)); };
    try {
      handler_(std::move(in), respond);
    } catch (const std::exception& e) {
      ErrorLog(std::string("via serve: request failed: ") + e.what());
      pending->Complete(ErrorResponse(500, "internal", "unexpected server error"));
    }
  };
  co_return co_await asio::async_initiate<decltype(kAwait), void(HttpResponse)>(initiate, kAwait,
                                                                                std::move(request));
}

asio::awaitable<void> HttpServer::Impl::Accept() {
  while (!draining_) {
    tcp::socket socket(asio::make_strand(ioc_));
    error_code ec;
    co_await acceptor_.async_accept(socket, asio::redirect_error(kAwait, ec));
    if (draining_) break;
    if (ec) {
      // Out of descriptors and the like: back off instead of spinning.
      asio::steady_timer pause(control_, Ms(50));
      co_await pause.async_wait(asio::redirect_error(kAwait, ec));
      continue;
    }
    // Responses are written whole; never wait for an ACK before sending.
    socket.set_option(tcp::no_delay(true), ec);
    std::string remote;
    if (auto peer = socket.remote_endpoint(ec); !ec) {
      remote = peer.address().to_string() + ":" + std::to_string(peer.port());
    }
    std::shared_ptr<Conn> conn;
    std::shared_ptr<Conn> victim;
    {
      std::lock_guard lock(conns_mu_);
      bool room = conns_.size() < options_.max_connections;
      if (!room && conns_.size() < options_.max_connections + kEvictionSlack) {
        // At the bound: the connection idle the longest (waiting for a request,
        // e.g. a keep-alive or a slow or silent client) is closed to make room,
        // so idle connections cannot lock out new clients. Evicted connections
        // close at once; kEvictionSlack bounds those not gone yet.
        for (auto& [id, weak] : conns_) {
          auto c = weak.lock();
          if (!c || c->busy.load() || c->evicted.load()) continue;
          if (!victim || c->idle_since_ms.load() < victim->idle_since_ms.load()) victim = c;
        }
        if (victim) {
          victim->evicted = true;
          room = true;
        }
      }
      if (room) {
        conn = std::make_shared<Conn>(std::move(socket));
        conn->id = next_id_++;
        conn->remote = remote;
        conn->tls_context = CurrentTls();
        // Idle from now: a connection that has not been served yet must not
        // look like the one idle longest (0) and be evicted first.
        conn->idle_since_ms = WallMs();
        conns_[conn->id] = conn;
      }
    }
    if (victim) {
      asio::post(victim->stream.get_executor(), [victim] {
        if (!victim->busy) victim->stream.cancel();
      });
    }
    if (!conn) {
      static constexpr std::string_view kBusy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
          "Retry-After: 1\r\nConnection: close\r\nContent-Length: 74\r\n\r\n"
          "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"connection limit\"}}\n";
      asio::write(socket, asio::buffer(kBusy.data(), kBusy.size()), ec);
      socket.close(ec);
      Log(remote, "", "", 503, kBusy.size(), 0, "too_many_connections");
      continue;
    }
    asio::co_spawn(conn->stream.get_executor(), Serve(conn), asio::detached);
  }
}

asio::awaitable<void> HttpServer::Impl::Serve(std::shared_ptr<Conn> conn) {
  try {
    if (conn->tls_context) {
      conn->tls = std::make_unique<TlsStream>(conn->stream, *conn->tls_context);
      error_code ec;
      conn->stream.expires_after(Ms(options_.read_timeout_ms));
      co_await conn->tls->async_handshake(asio::ssl::stream_base::server,
                                          asio::redirect_error(kAwait, ec));
      if (!ec) {
        co_await ServeRequests(*conn, *conn->tls);
        // close_notify, waiting briefly for the peer's.
        conn->stream.expires_after(Ms(std::min<std::int64_t>(1000, options_.read_timeout_ms)));
        co_await conn->tls->async_shutdown(asio::redirect_error(kAwait, ec));
      }
    } else {
      co_await ServeRequests(*conn, conn->stream);
    }
  } catch (const std::exception& e) {
    ErrorLog("via serve: connection " + conn->remote + ": " + e.what());
  }
  error_code ec;
  conn->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  conn->stream.close();
  std::size_t left = 0;
  {
    std::lock_guard lock(conns_mu_);
    conns_.erase(conn->id);
    left = conns_.size();
  }
  if (left == 0 && draining_) {
    asio::post(control_, [this] { drain_timer_.cancel(); });
  }
}

template <class Stream>
asio::awaitable<void> HttpServer::Impl::Send(Conn& conn, Stream& io, const HttpResponse& response,
                                             unsigned version, bool keep_alive,
                                             const std::string& method, const std::string& path,
                                             std::int64_t started_us, error_code& ec) {
  if (response.stream) {
    co_await SendStream(conn, io, response, version, keep_alive, method, path, started_us, ec);
    co_return;
  }
  http::response<http::string_body> out{static_cast<http::status>(response.status), version};
  out.set(http::field::server, "via");
  out.set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) out.set(name, value);
  out.body() = response.body;
  out.keep_alive(keep_alive);
  out.prepare_payload();
  conn.stream.expires_after(Ms(options_.read_timeout_ms));
  co_await http::async_write(io, out, asio::redirect_error(kAwait, ec));
  Log(conn.remote, method, path, response.status, response.body.size(), SteadyUs() - started_us,
      response.error_code);
}

template <class Stream>
asio::awaitable<void> HttpServer::Impl::SendStream(Conn& conn, Stream& io,
                                                   const HttpResponse& response,
                                                   unsigned version, bool keep_alive,
                                                   const std::string& method,
                                                   const std::string& path,
                                                   std::int64_t started_us, error_code& ec) {
  BodyStream& body = *response.stream;
  const bool chunked = version >= 11;
  http::response<http::empty_body> out{static_cast<http::status>(response.status), version};
  out.set(http::field::server, "via");
  out.set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) out.set(name, value);
  out.keep_alive(keep_alive && chunked);  // HTTP/1.0: the body ends with the connection
  if (chunked) out.chunked(true);
  http::response_serializer<http::empty_body> header{out};
  conn.stream.expires_after(Ms(options_.read_timeout_ms));
  co_await http::async_write_header(io, header, asio::redirect_error(kAwait, ec));
  std::size_t bytes = 0;
  // Woken from the writer's thread through the connection's strand.
  auto ready = std::make_shared<asio::steady_timer>(conn.stream.get_executor());
  auto executor = conn.stream.get_executor();
  while (!ec) {
    std::string chunk;
    bool done = false;
    ready->expires_at(asio::steady_timer::time_point::max());
    auto wake = [executor, ready] { asio::post(executor, [ready] { ready->cancel(); }); };
    if (!body.Read(&chunk, &done, wake)) {
      if (done) break;
      error_code cancelled;
      co_await ready->async_wait(asio::redirect_error(kAwait, cancelled));
      continue;
    }
    conn.stream.expires_after(Ms(options_.read_timeout_ms));
    if (chunked) {
      co_await asio::async_write(io, http::make_chunk(asio::buffer(chunk)),
                                 asio::redirect_error(kAwait, ec));
    } else {
      co_await asio::async_write(io, asio::buffer(chunk), asio::redirect_error(kAwait, ec));
    }
    bytes += chunk.size();
  }
  if (!ec && chunked) {
    co_await asio::async_write(io, http::make_chunk_last(),
                               asio::redirect_error(kAwait, ec));
  }
  body.Abandon();  // unblocks the writer if the body did not end
  if (!ec && !chunked) ec = http::error::end_of_stream;  // close the connection
  Log(conn.remote, method, path, response.status, bytes, SteadyUs() - started_us,
      response.error_code);
}

template <class Stream>
asio::awaitable<void> HttpServer::Impl::ServeWebSocket(Conn& conn, Stream& io,
                                                       http::request<http::string_body> request,
                                                       std::int64_t started_us) {
  namespace websocket = beast::websocket;
  const std::string path = PathOnly(std::string(request.target()));
  const unsigned version = request.version();
  const std::optional<std::string> subprotocol = HranaWsConnection::ChooseSubprotocol(
      std::string(request[http::field::sec_websocket_protocol]));
  error_code ec;
  if (path != "/") {
    co_await Send(conn, io, ErrorResponse(404, "not_found", "WebSocket upgrades are served on / only"),
                  version, false, "GET", path, started_us, ec);
    co_return;
  }
  if (!subprotocol) {
    co_await Send(conn, io, ErrorResponse(400, "unsupported_subprotocol",
                                      "supported WebSocket subprotocols: hrana3, hrana2, hrana1"),
                  version, false, "GET", path, started_us, ec);
    co_return;
  }
  websocket::stream<Stream&> ws(io);
  conn.stream.expires_never();  // the WebSocket's own timeouts from here on
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = Ms(options_.read_timeout_ms);
  timeouts.idle_timeout = Ms(options_.idle_timeout_ms);
  timeouts.keep_alive_pings = true;
  ws.set_option(timeouts);
  ws.set_option(websocket::stream_base::decorator([proto = *subprotocol](websocket::response_type& r) {
    r.set(http::field::server, "via");
    if (!proto.empty()) r.set(http::field::sec_websocket_protocol, proto);
  }));
  ws.read_message_max(options_.max_body_bytes);
  co_await ws.async_accept(request, asio::redirect_error(kAwait, ec));
  Log(conn.remote, "GET", path, ec ? 400 : 101, 0, SteadyUs() - started_us,
      ec ? "websocket_handshake" : "");
  if (ec) co_return;

  HranaWsConnection hrana{hrana::Limits{}};
  auto call = [&](const HranaWsConnection::Call& c) -> asio::awaitable<HttpResponse> {
    HttpRequest in;
    in.method = "POST";
    in.target = c.target;
    in.authorization = c.authorization;
    in.body = c.body;
    in.remote = conn.remote;
    HttpResponse answer = co_await Respond(std::move(in));
    if (answer.stream) answer.stream->Abandon();  // pipelines never stream
    co_return answer;
  };
  beast::flat_buffer buffer;
  for (;;) {
    conn.busy = false;
    if (draining_ || conn.evicted) {
      co_await ws.async_close(websocket::close_code::going_away, asio::redirect_error(kAwait, ec));
      break;
    }
    buffer.clear();
    co_await ws.async_read(buffer, asio::redirect_error(kAwait, ec));
    if (ec) break;  // closed by the peer, idle, too large a message, cancelled by a drain
    conn.busy = true;
    HranaWsConnection::Action action;
    if (!ws.got_text()) {
      action.close_code = 1003;  // unsupported data: JSON subprotocols only
      action.close_reason = "binary messages are not supported";
    } else {
      action = hrana.OnMessage(beast::buffers_to_string(buffer.data()));
    }
    bool closed = false;
    for (;;) {
      for (const std::string& reply : action.replies) {
        ws.text(true);
        co_await ws.async_write(asio::buffer(reply), asio::redirect_error(kAwait, ec));
        if (ec) break;
      }
      if (ec) break;
      if (action.close_code != 0) {
        websocket::close_reason reason(static_cast<std::uint16_t>(action.close_code));
        reason.reason = action.close_reason.substr(0, 120);
        co_await ws.async_close(reason, asio::redirect_error(kAwait, ec));
        closed = true;
        break;
      }
      if (!action.call) break;
      HttpResponse answer = co_await call(*action.call);
      action = hrana.OnAnswer(answer.status, answer.body);
    }
    if (ec || closed) break;
  }
  // Streams the client left open end now, rolling back their transactions.
  for (const HranaWsConnection::Call& c : hrana.CloseAll()) co_await call(c);
}

template <class Stream>
asio::awaitable<void> HttpServer::Impl::ServeRequests(Conn& conn, Stream& io) {
  beast::flat_buffer buffer(options_.max_header_bytes + 16 * 1024);
  const auto header_limit = static_cast<std::uint32_t>(
      std::min<std::size_t>(options_.max_header_bytes, std::numeric_limits<std::uint32_t>::max()));
  for (;;) {
    conn.busy = false;
    if (draining_ || conn.evicted) co_return;
    conn.idle_since_ms = WallMs();
    http::request_parser<http::string_body> parser;
    parser.header_limit(header_limit);
    parser.body_limit(options_.max_body_bytes);
    error_code ec;
    conn.stream.expires_after(Ms(options_.idle_timeout_ms));
    co_await http::async_read_header(io, buffer, parser, asio::redirect_error(kAwait, ec));
    const std::int64_t started = SteadyUs();
    if (ec) {
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        co_await Send(conn, io, ErrorResponse(431, "header_too_large", "request header larger than " + std::to_string(options_.max_header_bytes) + " bytes"),
                      11, false, "", "", started, ec);
      } else if (ec == http::error::body_limit) {  // Content-Length over the limit
        co_await Send(conn, io, ErrorResponse(413, "body_too_large", "request body larger than " + std::to_string(options_.max_body_bytes) + " bytes"),
                      11, false, "", "", started, ec);
      } else if (IsParseError(ec)) {
        co_await Send(conn, io, ErrorResponse(400, "bad_request", "malformed HTTP request"), 11, false,
                      "", "", started, ec);
      }
      co_return;  // end of stream, idle timeout, cancelled by a drain, reset
    }
    conn.busy = true;
    const unsigned version = parser.get().version();
    const std::string method(parser.get().method_string());
    const std::string path = PathOnly(std::string(parser.get().target()));
    conn.stream.expires_after(Ms(options_.read_timeout_ms));
    if (IEquals(std::string(parser.get()[http::field::expect]), "100-continue")) {
      http::response<http::empty_body> go_on{http::status::continue_, version};
      co_await http::async_write(io, go_on, asio::redirect_error(kAwait, ec));
      if (ec) co_return;
    }
    if (!parser.is_done()) {
      co_await http::async_read(io, buffer, parser, asio::redirect_error(kAwait, ec));
    }
    if (ec == http::error::body_limit) {
      co_await Send(conn, io, ErrorResponse(413, "body_too_large", "request body larger than " + std::to_string(options_.max_body_bytes) + " bytes"),
                    version, false, method, path, started, ec);
      co_return;
    }
    if (ec == beast::error::timeout) {
      co_await Send(conn, io, ErrorResponse(408, "request_timeout", "request not received in time"),
                    version, false, method, path, started, ec);
      co_return;
    }
    if (ec) {
      if (IsParseError(ec)) {
        co_await Send(conn, io, ErrorResponse(400, "bad_request", "malformed HTTP request"), version,
                      false, method, path, started, ec);
      }
      co_return;
    }
    http::request<http::string_body> request = parser.release();
    HttpResponse out;
    const auto target = request.target();
    if (!ValidTarget(std::string_view(target.data(), target.size()))) {
      out = ErrorResponse(400, "invalid_target",
                          "the request target must be visible ASCII (percent-encode other bytes)");
    } else if (std::any_of(request.begin(), request.end(), [](const auto& field) {
                 const auto value = field.value();
                 return !IsValidUtf8(std::string_view(value.data(), value.size()));
               })) {
      out = ErrorResponse(400, "invalid_header", "a header value is not valid UTF-8");
    } else if (beast::websocket::is_upgrade(request)) {
      co_await ServeWebSocket(conn, io, std::move(request), started);
      co_return;
    } else {
      HttpRequest in;
      in.method = method;
      in.target = std::string(request.target());
      in.authorization = std::string(request[http::field::authorization]);
      in.forwarded_by = std::string(request["Via-Forwarded-By"]);
      in.body = std::move(request.body());
      in.remote = conn.remote;
      out = co_await Respond(std::move(in));
    }
    const bool keep_alive = request.keep_alive() && !draining_ && !conn.evicted;
    co_await Send(conn, io, out, version, keep_alive, method, path, started, ec);
    if (ec || !keep_alive) co_return;
  }
}

void HttpServer::Impl::Log(const std::string& remote, const std::string& method,
                           const std::string& path, int status, std::size_t bytes,
                           std::int64_t micros, const std::string& code) {
  if (options_.metrics != nullptr) options_.metrics->ObserveRequest(path, status, micros);
  if (options_.access_log == nullptr) return;
  // docs/cli.md "JSON conventions": the time as RFC 3339 UTC, the duration
  // in whole milliseconds under a `_ms` name.
  nlohmann::json line = {{"ts", Rfc3339Ms(WallMs())}, {"remote", remote}, {"method", method},
                         {"path", path},              {"status", status}, {"bytes", bytes},
                         {"duration_ms", micros / 1000}};
  if (!code.empty()) line["code"] = code;
  // Paths come from clients: dump with replacement so bad UTF-8 cannot throw.
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  options_.access_log->Write(text);
}

HttpServer::HttpServer(HttpServerOptions options, Handler handler,
                       std::function<void(const std::string&)> on_listening)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler),
                                   std::move(on_listening))) {}

HttpServer::~HttpServer() = default;

Status HttpServer::Run() { return impl_->Run(); }

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace via::server
