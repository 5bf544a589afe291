#include "server/forward.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <pthread.h>

namespace via::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
// The read buffer: a whole header, or this much of the body at a time.
constexpr std::size_t kReadBufferBytes = kMaxHeaderBytes + 64 * 1024;

struct Endpoint {
  bool tls = false;
  std::string host;
  std::string port;
  std::string host_header;  // HOST[:PORT] as in the URL
};

Result<Endpoint> ParseBase(const std::string& base_url) {
  Endpoint out;
  std::string rest;
  if (base_url.rfind("https://", 0) == 0) {
    out.tls = true;
    rest = base_url.substr(8);
  } else if (base_url.rfind("http://", 0) == 0) {
    rest = base_url.substr(7);
  } else {
    return Unavailable("owner_bad_url", "the owner's public URL is not http:// or https://");
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find_first_of("/?#@") != std::string::npos) {
    return Unavailable("owner_bad_url", "the owner's public URL has more than a host and port");
  }
  const std::string default_port = out.tls ? "443" : "80";
  out.host_header = rest;
  if (!rest.empty() && rest.front() == '[') {
    const std::size_t close = rest.find(']');
    if (close == std::string::npos) return Unavailable("owner_bad_url", "bad IPv6 host");
    out.host = rest.substr(1, close - 1);
    out.port = rest.size() > close + 2 && rest[close + 1] == ':' ? rest.substr(close + 2)
                                                                  : default_port;
  } else {
    const std::size_t colon = rest.rfind(':');
    out.host = colon == std::string::npos ? rest : rest.substr(0, colon);
    out.port = colon == std::string::npos ? default_port : rest.substr(colon + 1);
  }
  if (out.host.empty() || out.port.empty()) return Unavailable("owner_bad_url", "no host");
  return out;
}

Status AnswerLost(const std::string& detail) {
  return Status(StatusCode::kInternal, "owner_answer_lost",
                detail + "; the owning node may have run the request, so its outcome is unknown");
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::int64_t CeilSeconds(std::int64_t ms) { return std::max<std::int64_t>(1, (ms + 999) / 1000); }

// How an exchange ended, for the owner's breaker.
enum class Outcome {
  kAnswered,   // the owner answered (even with an answer refused here)
  kUnreached,  // no connection, a timeout, a broken connection: counts as a failure
  kShutdown,   // ended by Shutdown(): says nothing about the owner
};

}  // namespace

class Forwarder::Impl {
 public:
  class Exchange;

  explicit Impl(ForwardOptions o) : options(std::move(o)), tls(ssl::context::tls_client) {}

  Status LoadTls() {
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    tls.set_verify_mode(ssl::verify_peer);
    beast::error_code ec;
    if (!options.ca_file.empty()) {
      tls.load_verify_file(options.ca_file, ec);
      if (ec) {
        return InvalidArgument("invalid_forward_ca", "cannot load the forward CA file '" +
                                                         options.ca_file.substr(0, 200) +
                                                         "': " + ec.message());
      }
    } else {
      tls.set_default_verify_paths(ec);  // no store: https owners fail to verify
    }
    return Status::Ok();
  }

  void Start() {
    guard.emplace(asio::make_work_guard(io));
    thread = std::thread([this] { io.run(); });
    pthread_setname_np(thread.native_handle(), "via-forward");
  }

  void Forward(const std::string& owner, const std::string& base_url, const HttpRequest& request,
               Done done);
  void Shutdown();
  // Called by an exchange once, on the forwarder's thread: the per-owner
  // count and breaker. Returns the Retry-After for a failure (0: the caller's).
  std::int64_t Finish(const std::string& owner, bool probe, Outcome outcome);

  ForwardOptions options;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  ssl::context tls;
  std::thread thread;
  std::atomic<bool> stopping{false};

  struct Owner {
    std::size_t in_flight = 0;
    int failures = 0;        // consecutive failures to reach it
    bool open = false;       // the breaker is open
    std::int64_t open_until_ms = 0;
    bool probing = false;    // a probe is in flight
  };
  mutable std::mutex mu;  // guards owners, in_flight, joined
  std::unordered_map<std::string, Owner> owners;
  std::size_t in_flight = 0;
  bool joined = false;
  // Exchanges started and not finished; only touched on the forwarder's thread.
  std::unordered_set<Exchange*> live;

  std::atomic<std::uint64_t> busy_refusals{0};
  std::atomic<std::uint64_t> breaker_refusals{0};
  std::atomic<std::uint64_t> breaker_opened{0};
  std::atomic<std::uint64_t> probes{0};
};

// One request and its answer, on one connection, all asynchronous on the
// forwarder's io_context. Kept alive by the handlers it has pending.
class Forwarder::Impl::Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(Impl* impl, std::string owner, bool probe, Endpoint endpoint,
           http::request<http::string_body> request, Done done)
      : impl_(impl),
        owner_(std::move(owner)),
        probe_(probe),
        endpoint_(std::move(endpoint)),
        request_(std::move(request)),
        done_(std::move(done)),
        resolver_(impl->io),
        timer_(impl->io),
        buffer_(kReadBufferBytes) {
    parser_.header_limit(kMaxHeaderBytes);
    parser_.body_limit(impl->options.max_body_bytes);
  }

  void Start() {
    impl_->live.insert(this);
    if (impl_->stopping) {
      shutdown_ = true;
      return Fail(asio::error::operation_aborted);
    }
    auto self = shared_from_this();
    timer_.expires_after(std::chrono::milliseconds(std::max<std::int64_t>(1, impl_->options.timeout_ms)));
    timer_.async_wait([self](beast::error_code ec) {
      if (!ec && !self->finished_) {
        self->timed_out_ = true;
        self->Abort();
      }
    });
    stage_ = "resolve";
    resolver_.async_resolve(endpoint_.host, endpoint_.port,
                            [self](beast::error_code ec, const tcp::resolver::results_type& r) {
                              self->OnResolve(ec, r);
                            });
  }

  // Cancels whatever runs; its handler then fails the exchange.
  void Abort() {
    resolver_.cancel();
    if (tcp_ || tls_) {
      beast::error_code ignored;
      Lowest().socket().close(ignored);
    }
  }
  void AbortForShutdown() {
    shutdown_ = true;
    Abort();
  }

 private:
  beast::tcp_stream& Lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *tcp_; }
  template <typename F>
  void WithStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*tcp_);
    }
  }

  void OnResolve(beast::error_code ec, const tcp::resolver::results_type& results) {
    if (ec || finished_) return Fail(ec);
    if (endpoint_.tls) {
      tls_.emplace(impl_->io, impl_->tls);
    } else {
      tcp_.emplace(impl_->io);
    }
    if (timed_out_ || shutdown_) return Fail(asio::error::operation_aborted);
    stage_ = "connect";
    auto self = shared_from_this();
    Lowest().async_connect(results, [self](beast::error_code ec, const tcp::endpoint&) {
      self->OnConnect(ec);
    });
  }

  void OnConnect(beast::error_code ec) {
    if (ec) return Fail(ec);
    beast::error_code ignored;
    Lowest().socket().set_option(tcp::no_delay(true), ignored);
    if (!tls_) return Send();
    SSL* ssl = tls_->native_handle();
    // The certificate must name the host: an IP address against its IP
    // SANs, a DNS name against its DNS SANs (no partial wildcards); SNI
    // carries DNS names only (RFC 6066).
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    beast::error_code not_ip;
    asio::ip::make_address(endpoint_.host, not_ip);
    // A name OpenSSL cannot check (an IPv6 zone id, say) fails the exchange:
    // without it any certificate of the CA would do.
    bool named = false;
    if (!not_ip) {
      named = X509_VERIFY_PARAM_set1_ip_asc(param, endpoint_.host.c_str()) == 1;
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      named = X509_VERIFY_PARAM_set1_host(param, endpoint_.host.c_str(), endpoint_.host.size()) == 1;
      SSL_set_tlsext_host_name(ssl, endpoint_.host.c_str());
    }
    if (!named) {
      return Complete(Unavailable("owner_tls_failed",
                                  "node " + owner_ + ": its host " + endpoint_.host +
                                      " cannot be checked against a certificate"),
                      Outcome::kUnreached);
    }
    stage_ = "tls";
    auto self = shared_from_this();
    tls_->async_handshake(ssl::stream_base::client,
                          [self](beast::error_code ec) { self->OnHandshake(ec); });
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      if (!timed_out_ && !shutdown_) {
        std::string reason = ec.message();
        const long verify = SSL_get_verify_result(tls_->native_handle());
        if (verify != X509_V_OK) {
          reason = std::string("certificate verify failed: ") +
                   X509_verify_cert_error_string(verify);
        }
        return Complete(Unavailable("owner_tls_failed",
                                    "TLS with the owning node failed: " + reason),
                        Outcome::kUnreached);
      }
      return Fail(ec);
    }
    Send();
  }

  void Send() {
    stage_ = "send";
    auto self = shared_from_this();
    WithStream([&](auto& stream) {
      http::async_write(stream, request_, [self](beast::error_code ec, std::size_t) {
        if (ec) return self->Fail(ec);
        self->stage_ = "receive";
        self->ReadMore();
      });
    });
  }

  void ReadMore() {
    auto self = shared_from_this();
    WithStream([&](auto& stream) {
      http::async_read_some(stream, buffer_, parser_,
                            [self](beast::error_code ec, std::size_t) { self->OnRead(ec); });
    });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::body_limit || ec == http::error::header_limit ||
        parser_.get().body().size() > impl_->options.max_body_bytes) {
      return Complete(AnswerLost("the owning node's answer was larger than " +
                                 std::to_string(impl_->options.max_body_bytes) + " bytes"),
                      Outcome::kAnswered);
    }
    if (ec && !timed_out_ && !shutdown_ && ec != http::error::end_of_stream &&
        ec.category() == http::make_error_code(http::error::bad_target).category()) {
      return Complete(AnswerLost("the owning node's answer was not HTTP: " + ec.message()),
                      Outcome::kAnswered);
    }
    if (ec) return Fail(ec);
    if (!parser_.is_done()) return ReadMore();
    http::response<http::string_body> answer = parser_.release();
    HttpResponse r;
    r.status = static_cast<int>(answer.result_int());
    r.content_type = std::string(answer[http::field::content_type]);
    if (r.content_type.empty()) r.content_type = "application/json";
    r.body = std::move(answer.body());
    // Cache-Control carries the owner's no-store on descriptors (credentials).
    for (const char* name : {"Retry-After", "WWW-Authenticate", "Cache-Control"}) {
      auto it = answer.find(name);
      if (it != answer.end()) r.headers.emplace_back(name, std::string(it->value()));
    }
    if (r.status >= 400) r.error_code = "forwarded";
    Complete(std::move(r), Outcome::kAnswered);
  }

  // A transport failure at stage_ (or the timeout, or shutdown).
  void Fail(beast::error_code ec) {
    if (shutdown_) {
      return Complete(Unavailable("shutting_down", "the server is shutting down"),
                      Outcome::kShutdown);
    }
    const bool may_have_run = stage_ == "send" || stage_ == "receive";
    const std::string what =
        timed_out_ ? "did not answer within " + std::to_string(impl_->options.timeout_ms) + " ms"
                   : "failed (" + stage_ + "): " + ec.message();
    if (may_have_run) {
      return Complete(AnswerLost("the owning node " + what), Outcome::kUnreached);
    }
    Complete(Unavailable("owner_unreachable", "the owning node could not be reached: " + what +
                                                  (timed_out_ ? " (" + stage_ + ")" : "")),
             Outcome::kUnreached);
  }

  void Complete(Result<HttpResponse> answer, Outcome outcome) {
    if (finished_) return;
    finished_ = true;
    impl_->live.erase(this);
    timer_.cancel();
    Abort();
    const std::int64_t retry_after = impl_->Finish(owner_, probe_, outcome);
    Done done = std::move(done_);
    try {
      done(std::move(answer), retry_after);
    } catch (...) {
      // A responder does not throw; nothing here may end the thread.
    }
  }

  Impl* impl_;
  const std::string owner_;
  const bool probe_;
  const Endpoint endpoint_;
  http::request<http::string_body> request_;
  Done done_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;
  std::optional<beast::tcp_stream> tcp_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
  std::string stage_ = "start";
  bool timed_out_ = false;
  bool shutdown_ = false;
  bool finished_ = false;
};

void Forwarder::Impl::Forward(const std::string& owner, const std::string& base_url,
                              const HttpRequest& request, Done done) {
  auto refuse = [&done](const Status& s, std::int64_t retry_after_s) {
    done(Result<HttpResponse>(s), retry_after_s);
  };
  auto endpoint = ParseBase(base_url);
  if (!endpoint.ok()) return refuse(endpoint.status(), 0);
  const http::verb verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown) return refuse(InvalidArgument("bad_method", "unknown HTTP method"), 0);

  http::request<http::string_body> out{verb, request.target, 11};
  out.set(http::field::host, endpoint->host_header);
  if (!request.authorization.empty()) out.set(http::field::authorization, request.authorization);
  out.set(kForwardedByHeader, options.from_node);
  out.set(http::field::content_type, request.target.rfind("/v3-protobuf/", 0) == 0
                                         ? "application/x-protobuf"
                                         : "application/json");
  out.keep_alive(false);
  out.body() = request.body;
  out.prepare_payload();

  // Decided under the lock, answered outside it (`done` may take other locks).
  std::optional<Status> refused;
  std::int64_t refused_retry_after = 0;
  {
    std::lock_guard lock(mu);
    Owner& o = owners[owner];
    const std::int64_t now = NowMs();
    bool probe = false;
    if (stopping || joined) {
      refused = Unavailable("shutting_down", "the server is shutting down");
    } else if (options.breaker_failures > 0 && o.open) {
      if (now < o.open_until_ms || o.probing) {
        breaker_refusals.fetch_add(1, std::memory_order_relaxed);
        refused = Unavailable("owner_unreachable",
                              "the owning node failed " + std::to_string(o.failures) +
                                  " times in a row; requests for it fail at once for " +
                                  std::to_string(options.breaker_cooldown_ms) +
                                  " ms before one is tried again");
        refused_retry_after =
            CeilSeconds(now < o.open_until_ms ? o.open_until_ms - now : options.breaker_cooldown_ms);
      } else {
        probe = true;
      }
    }
    if (!refused && (o.in_flight >= options.per_owner_limit || in_flight >= options.max_in_flight)) {
      busy_refusals.fetch_add(1, std::memory_order_relaxed);
      refused = Unavailable("forward_busy", o.in_flight >= options.per_owner_limit
                                                ? "as many requests as allowed (" +
                                                      std::to_string(options.per_owner_limit) +
                                                      ") are already forwarded to the owning node"
                                                : "as many requests as allowed (" +
                                                      std::to_string(options.max_in_flight) +
                                                      ") are already forwarded to other nodes");
    }
    if (!refused) {
      if (probe) {
        o.probing = true;
        probes.fetch_add(1, std::memory_order_relaxed);
      }
      ++o.in_flight;
      ++in_flight;
      // Posted under the lock: Shutdown() sets `stopping` under it too, so
      // every exchange posted before it is started (and aborted) before the
      // thread ends.
      auto exchange = std::make_shared<Exchange>(this, owner, probe, std::move(endpoint).value(),
                                                 std::move(out), std::move(done));
      asio::post(io, [exchange] { exchange->Start(); });
    }
  }
  if (refused) refuse(*refused, refused_retry_after);
}

std::int64_t Forwarder::Impl::Finish(const std::string& owner, bool probe, Outcome outcome) {
  std::lock_guard lock(mu);
  Owner& o = owners[owner];
  --o.in_flight;
  --in_flight;
  if (probe) o.probing = false;
  switch (outcome) {
    case Outcome::kAnswered:
      o.failures = 0;
      o.open = false;
      return 0;
    case Outcome::kUnreached:
      ++o.failures;
      if (options.breaker_failures > 0 &&
          (probe || (!o.open && o.failures >= options.breaker_failures))) {
        o.open = true;
        o.open_until_ms = NowMs() + options.breaker_cooldown_ms;
        breaker_opened.fetch_add(1, std::memory_order_relaxed);
      }
      return o.open ? CeilSeconds(std::max<std::int64_t>(0, o.open_until_ms - NowMs())) : 0;
    case Outcome::kShutdown:
      return 0;
  }
  return 0;
}

void Forwarder::Impl::Shutdown() {
  {
    std::lock_guard lock(mu);
    if (joined) return;
    stopping = true;
    asio::post(io, [this] {
      // Copied: an exchange leaves `live` only from its own handlers.
      std::vector<Exchange*> running(live.begin(), live.end());
      for (Exchange* e : running) e->AbortForShutdown();
    });
  }
  guard.reset();
  if (thread.joinable()) thread.join();
  std::lock_guard lock(mu);
  joined = true;
}

Result<std::unique_ptr<Forwarder>> Forwarder::Create(ForwardOptions options) {
  options.per_owner_limit = std::max<std::size_t>(1, options.per_owner_limit);
  options.max_in_flight = std::max<std::size_t>(1, options.max_in_flight);
  options.breaker_cooldown_ms = std::max<std::int64_t>(1, options.breaker_cooldown_ms);
  auto impl = std::make_unique<Impl>(std::move(options));
  VIA_RETURN_IF_ERROR(impl->LoadTls());
  impl->Start();
  return std::unique_ptr<Forwarder>(new Forwarder(std::move(impl)));
}

Forwarder::Forwarder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Forwarder::~Forwarder() { Shutdown(); }

void Forwarder::Forward(const std::string& owner, const std::string& base_url,
                        const HttpRequest& request, Done done) {
  impl_->Forward(owner, base_url, request, std::move(done));
}

void Forwarder::Shutdown() { impl_->Shutdown(); }

Forwarder::Stats Forwarder::stats() const {
  Stats s;
  {
    std::lock_guard lock(impl_->mu);
    s.in_flight = impl_->in_flight;
  }
  s.busy_refusals = impl_->busy_refusals.load(std::memory_order_relaxed);
  s.breaker_refusals = impl_->breaker_refusals.load(std::memory_order_relaxed);
  s.breaker_opened = impl_->breaker_opened.load(std::memory_order_relaxed);
  s.probes = impl_->probes.load(std::memory_order_relaxed);
  return s;
}

Result<HttpResponse> Forward(const std::string& base_url, const HttpRequest& request,
                             const ForwardOptions& options) {
  ForwardOptions one = options;
  one.breaker_failures = 0;
  VIA_ASSIGN_OR_RETURN(std::unique_ptr<Forwarder> forwarder, Forwarder::Create(one));
  std::promise<Result<HttpResponse>> answered;
  std::future<Result<HttpResponse>> answer = answered.get_future();
  forwarder->Forward("owner", base_url, request,
                     [&answered](Result<HttpResponse> r, std::int64_t) {
                       answered.set_value(std::move(r));
                     });
  return answer.get();
}

}  // namespace via::server
