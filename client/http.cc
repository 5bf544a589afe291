#include "client/http.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <chrono>
#include <cstdlib>

namespace via::sql_internal {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace {

SqlError Error(const char* code, std::string message) {
  SqlError e;
  e.code = code;
  e.message = std::move(message);
  e.retryable = std::string_view(code) == kSqlConnectionFailed;
  return e;
}

// OpenSSL's reason for a failed handshake: the certificate verification
// result when that is what failed ("unable to get local issuer
// certificate", "hostname mismatch"), else the error's own text.
std::string TlsReason(SSL* ssl, const beast::error_code& ec) {
  if (ssl != nullptr) {
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      return std::string("certificate verify failed: ") +
             X509_verify_cert_error_string(verify);
    }
  }
  return ec.message();
}

std::optional<int> ParseRetryAfter(std::string_view value) {
  int seconds = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc() || ptr != value.data() + value.size() || seconds < 0) return std::nullopt;
  return seconds;
}

}  // namespace

SqlResult<Url> ParseUrl(std::string_view text) {
  const std::string shown(text.substr(0, 200));
  constexpr std::string_view kHttp = "http://";
  constexpr std::string_view kHttps = "https://";
  Url url;
  std::string_view rest;
  if (text.substr(0, kHttp.size()) == kHttp) {
    rest = text.substr(kHttp.size());
    url.port = "80";
  } else if (text.substr(0, kHttps.size()) == kHttps) {
    rest = text.substr(kHttps.size());
    url.tls = true;
    url.port = "443";
  } else {
    return Error(kSqlInvalidArgument, "URL '" + shown +
                                          "' is not supported: only http[s]://HOST[:PORT][/PATH] is");
  }
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (path.find_first_of("?#") != std::string_view::npos) {
    return Error(kSqlInvalidArgument, "URL '" + shown + "' must not carry a query or fragment");
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (authority.find('@') != std::string_view::npos) {
    return Error(kSqlInvalidArgument, "URL '" + shown + "' must not carry user info");
  }
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos)
      return Error(kSqlInvalidArgument, "URL '" + shown + "': bad IPv6 host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Error(kSqlInvalidArgument, "URL '" + shown + "': bad port");
      url.port = std::string(after.substr(1));
    }
  } else if (const std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    url.port = std::string(authority.substr(colon + 1));
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(url.port.data(), url.port.data() + url.port.size(), port);
  if (host.empty() || url.port.empty() || ec != std::errc() ||
      ptr != url.port.data() + url.port.size() || port == 0 || port > 65535) {
    return Error(kSqlInvalidArgument,
                 "URL '" + shown + "': expected http[s]://HOST[:PORT][/PATH]");
  }
  url.host = std::string(host);
  url.base_path = std::string(path);
  return url;
}

class HttpClient::Impl {
 public:
  explicit Impl(const HttpOptions& options) : options_(options) {}

  SqlResult<HttpReply> Send(const Url& url, std::string_view method, const std::string& path,
                            const std::string& bearer, const std::string* body) {
    const bool reused =
        Connected() && tls_now_ == url.tls && host_ == url.host && port_ == url.port;
    if (!reused) {
      if (auto opened = Open(url); !opened.ok()) return opened.error();
    }
    bool unread = false;
    auto reply = Exchange(url, method, path, bearer, body, &unread);
    if (!reply.ok() && reused && unread) {
      // The server closed the idle connection before it read this request, so
      // sending it again cannot run it twice.
      if (auto opened = Open(url); !opened.ok()) return opened.error();
      reply = Exchange(url, method, path, bearer, body, &unread);
    }
    if (!reply.ok()) Close();
    return reply;
  }

 private:
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  // Runs the one pending operation. Beast applies tcp_stream timeouts to
  // asynchronous operations only, hence async calls run to completion here.
  void Run() {
    io_.restart();
    io_.run();
  }

  bool Connected() const { return tcp_.has_value() || tls_.has_value(); }
  beast::tcp_stream& Lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *tcp_; }
  // Calls `f` with the stream requests go through (TLS or plain).
  template <typename F>
  void WithStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*tcp_);
    }
  }

  // The TLS context, made once: peer verification on, the CA file (or the
  // system store) loaded. Errors: tls_error.
  SqlResult<ssl::context*> Context() {
    if (context_) return &*context_;
    ssl::context context(ssl::context::tls_client);
    context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                        ssl::context::no_tlsv1_1);
    context.set_verify_mode(ssl::verify_peer);
    beast::error_code ec;
    std::string ca_file = options_.ca_file;
    if (ca_file.empty()) {
      if (const char* env = std::getenv("VIA_CA_FILE"); env != nullptr) ca_file = env;
    }
    if (!ca_file.empty()) {
      context.load_verify_file(ca_file, ec);
      if (ec) {
        return Error(kSqlTlsError, "cannot load the CA file '" + ca_file.substr(0, 200) +
                                       "' (SqlOptions::ca_file, VIA_CA_FILE): " + ec.message());
      }
    } else {
      context.set_default_verify_paths(ec);
      if (ec) return Error(kSqlTlsError, "cannot load the system's CA store: " + ec.message());
    }
    context_.emplace(std::move(context));
    return &*context_;
  }

  SqlResult<void> Open(const Url& url) {
    Close();
    const std::string where = url.host + ":" + url.port;
    ssl::context* context = nullptr;
    if (url.tls) {
      auto made = Context();
      if (!made.ok()) return made.error();
      context = *made;
    }
    beast::error_code ec;
    tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) return Error(kSqlConnectionFailed, "cannot resolve " + where + ": " + ec.message());
    if (url.tls) {
      tls_.emplace(io_, *context);
    } else {
      tcp_.emplace(io_);
    }
    Lowest().expires_after(std::chrono::milliseconds(options_.connect_timeout_ms));
    Lowest().async_connect(endpoints, [&ec](beast::error_code e, const tcp::endpoint&) { ec = e; });
    Run();
    if (ec) {
      Close();
      return Error(kSqlConnectionFailed, "cannot connect to " + where + ": " + ec.message());
    }
    Lowest().socket().set_option(tcp::no_delay(true), ec);
    if (url.tls) {
      SSL* ssl = tls_->native_handle();
      // The certificate must name the host: an IP address is matched against
      // its IP SANs, a DNS name against its DNS SANs (no partial wildcards).
      // SNI carries DNS names only (RFC 6066).
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      beast::error_code not_ip;
      asio::ip::make_address(url.host, not_ip);
      if (!not_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str());
      } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), url.host.size());
        SSL_set_tlsext_host_name(ssl, url.host.c_str());
      }
      tls_->async_handshake(ssl::stream_base::client, [&ec](beast::error_code e) { ec = e; });
      Run();
      if (ec) {
        const bool timed_out = ec == beast::error::timeout;
        std::string reason = TlsReason(ssl, ec);
        Close();
        if (timed_out) {
          return Error(kSqlConnectionFailed, "TLS handshake with " + where + ": " + reason);
        }
        return Error(kSqlTlsError, "TLS handshake with " + where + " failed: " + reason);
      }
    }
    tls_now_ = url.tls;
    host_ = url.host;
    port_ = url.port;
    return {};
  }

  void Close() {
    if (Connected()) {
      // No TLS close_notify: the connection is dropped either way, and
      // waiting for the peer's answer could block.
      beast::error_code ec;
      Lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
      Lowest().socket().close(ec);
      tls_.reset();
      tcp_.reset();
    }
    buffer_.consume(buffer_.size());
    host_.clear();
    port_.clear();
  }

  SqlResult<HttpReply> Exchange(const Url& url, std::string_view method, const std::string& path,
                                const std::string& bearer, const std::string* body,
                                bool* unread) {
    // `*unread`: the exchange failed in a way that shows the server never
    // read the request (the write failed, or the connection was closed or
    // reset with no answer byte). Not after a timeout: the server may be
    // running the request, and a resend could apply it twice.
    *unread = false;
    const std::string where = (url.tls ? "https://" : "http://") + url.host + ":" + url.port;
    http::request<http::string_body> request;
    request.method_string(beast::string_view(method.data(), method.size()));
    request.target(url.base_path + path);
    request.version(11);
    request.set(http::field::host, url.host + ":" + url.port);
    request.set(http::field::user_agent, "via-client/0.1");
    request.set(http::field::accept, "application/json");
    request.keep_alive(true);
    if (!bearer.empty()) request.set(http::field::authorization, "Bearer " + bearer);
    if (body) {
      request.set(http::field::content_type, "application/json");
      request.body() = *body;
    }
    request.prepare_payload();

    beast::error_code ec;
    Lowest().expires_after(std::chrono::milliseconds(options_.request_timeout_ms));
    WithStream([&](auto& stream) {
      http::async_write(stream, request, [&ec](beast::error_code e, std::size_t) { ec = e; });
    });
    Run();
    if (ec) {
      *unread = true;
      return Error(kSqlConnectionFailed, "sending to " + where + ": " + ec.message());
    }

    http::response_parser<http::string_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(options_.max_response_bytes);
    // Boost 1.74 does not apply body_limit to a response's Content-Length,
    // so the header is read first and its length checked here.
    WithStream([&](auto& stream) {
      http::async_read_header(stream, buffer_, parser,
                              [&ec](beast::error_code e, std::size_t) { ec = e; });
    });
    Run();
    if (!ec && parser.content_length() && *parser.content_length() > options_.max_response_bytes) {
      ec = http::error::body_limit;
    }
    if (!ec) {
      WithStream([&](auto& stream) {
        http::async_read(stream, buffer_, parser,
                         [&ec](beast::error_code e, std::size_t) { ec = e; });
      });
      Run();
    }
    if (ec) {
      const bool no_answer = !parser.got_some() && buffer_.size() == 0;
      // A TLS peer that closes without close_notify reads as stream_truncated.
      *unread = no_answer && (ec == http::error::end_of_stream || ec == asio::error::eof ||
                              ec == asio::error::connection_reset ||
                              ec == asio::error::broken_pipe ||
                              ec == ssl::error::stream_truncated);
      buffer_.consume(buffer_.size());
      if (ec == http::error::body_limit) {
        return Error(kSqlProtocolError, "the answer of " + where + " is larger than " +
                                            std::to_string(options_.max_response_bytes) +
                                            " bytes (SqlOptions::max_response_bytes)");
      }
      if (ec.category() == http::make_error_code(http::error::bad_version).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        return Error(kSqlProtocolError,
                     "malformed HTTP answer from " + where + ": " + ec.message());
      }
      return Error(kSqlConnectionFailed, "reading from " + where + ": " + ec.message());
    }
    auto response = parser.release();
    HttpReply reply;
    reply.status = static_cast<int>(response.result_int());
    reply.body = std::move(response.body());
    if (auto it = response.find(http::field::retry_after); it != response.end()) {
      reply.retry_after_s =
          ParseRetryAfter(std::string_view(it->value().data(), it->value().size()));
    }
    if (!response.keep_alive()) Close();
    return reply;
  }

  const HttpOptions options_;
  asio::io_context io_;
  std::optional<ssl::context> context_;  // made at the first https URL
  // At most one of the two is open.
  std::optional<beast::tcp_stream> tcp_;
  std::optional<TlsStream> tls_;
  beast::flat_buffer buffer_;
  bool tls_now_ = false;
  std::string host_;
  std::string port_;
};

HttpClient::HttpClient(const HttpOptions& options) : impl_(std::make_unique<Impl>(options)) {}
HttpClient::~HttpClient() = default;

SqlResult<HttpReply> HttpClient::Send(const Url& url, std::string_view method,
                                      const std::string& path, const std::string& bearer,
                                      const std::string* body) {
  return impl_->Send(url, method, path, bearer, body);
}

}  // namespace via::sql_internal
