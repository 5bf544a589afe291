#include "client/http.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>

namespace via::sql_internal {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

SqlError Error(const char* code, std::string message) {
  SqlError e;
  e.code = code;
  e.message = std::move(message);
  e.retryable = std::string_view(code) == kSqlConnectionFailed;
  return e;
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
  constexpr std::string_view kScheme = "http://";
  if (text.substr(0, kScheme.size()) != kScheme) {
    return Error(kSqlInvalidArgument,
                 "URL '" + shown + "' is not supported: only http://HOST[:PORT][/PATH] is");
  }
  std::string_view rest = text.substr(kScheme.size());
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
  Url url;
  url.port = "80";
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
    return Error(kSqlInvalidArgument, "URL '" + shown + "': expected http://HOST[:PORT][/PATH]");
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
    const bool reused = stream_ && host_ == url.host && port_ == url.port;
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
  // Runs the one pending operation. Beast applies tcp_stream timeouts to
  // asynchronous operations only, hence async calls run to completion here.
  void Run() {
    io_.restart();
    io_.run();
  }

  SqlResult<void> Open(const Url& url) {
    Close();
    const std::string where = url.host + ":" + url.port;
    beast::error_code ec;
    tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) return Error(kSqlConnectionFailed, "cannot resolve " + where + ": " + ec.message());
    stream_.emplace(io_);
    stream_->expires_after(std::chrono::milliseconds(options_.connect_timeout_ms));
    stream_->async_connect(endpoints, [&ec](beast::error_code e, const tcp::endpoint&) { ec = e; });
    Run();
    if (ec) {
      Close();
      return Error(kSqlConnectionFailed, "cannot connect to " + where + ": " + ec.message());
    }
    stream_->socket().set_option(tcp::no_delay(true), ec);
    host_ = url.host;
    port_ = url.port;
    return {};
  }

  void Close() {
    if (stream_) {
      beast::error_code ec;
      stream_->socket().shutdown(tcp::socket::shutdown_both, ec);
      stream_->socket().close(ec);
      stream_.reset();
    }
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
    const std::string where = "http://" + url.host + ":" + url.port;
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
    stream_->expires_after(std::chrono::milliseconds(options_.request_timeout_ms));
    http::async_write(*stream_, request, [&ec](beast::error_code e, std::size_t) { ec = e; });
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
    http::async_read_header(*stream_, buffer_, parser,
                            [&ec](beast::error_code e, std::size_t) { ec = e; });
    Run();
    if (!ec && parser.content_length() && *parser.content_length() > options_.max_response_bytes) {
      ec = http::error::body_limit;
    }
    if (!ec) {
      http::async_read(*stream_, buffer_, parser,
                       [&ec](beast::error_code e, std::size_t) { ec = e; });
      Run();
    }
    if (ec) {
      const bool no_answer = !parser.got_some() && buffer_.size() == 0;
      *unread = no_answer && (ec == http::error::end_of_stream || ec == asio::error::eof ||
                              ec == asio::error::connection_reset ||
                              ec == asio::error::broken_pipe);
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
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
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
