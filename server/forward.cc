#include "server/forward.h"

#include <algorithm>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

namespace via::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

constexpr std::size_t kMaxHeaderBytes = 16 * 1024;

struct Endpoint {
  std::string host;
  std::string port;
  std::string host_header;  // HOST[:PORT] as in the URL
};

Result<Endpoint> ParseBase(const std::string& base_url) {
  constexpr std::string_view kHttp = "http://";
  if (base_url.rfind("https://", 0) == 0) {
    return Unavailable("forward_unsupported",
                       "the owner's public URL is https://, which forwarding does not reach");
  }
  if (base_url.rfind(kHttp, 0) != 0) {
    return Unavailable("owner_bad_url", "the owner's public URL is not http://");
  }
  std::string rest = base_url.substr(kHttp.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  Endpoint out;
  out.host_header = rest;
  if (!rest.empty() && rest.front() == '[') {
    const std::size_t close = rest.find(']');
    if (close == std::string::npos) return Unavailable("owner_bad_url", "bad IPv6 host");
    out.host = rest.substr(1, close - 1);
    out.port = rest.size() > close + 2 && rest[close + 1] == ':' ? rest.substr(close + 2) : "80";
  } else {
    const std::size_t colon = rest.rfind(':');
    out.host = colon == std::string::npos ? rest : rest.substr(0, colon);
    out.port = colon == std::string::npos ? "80" : rest.substr(colon + 1);
  }
  if (out.host.empty() || out.port.empty()) return Unavailable("owner_bad_url", "no host");
  return out;
}

// Once the request has been written, the owner may have run it (an
// autocommit write, a step of a baton's transaction): a lost answer must not
// be retried blindly, so it is not Unavailable (503 with Retry-After).
bool RequestMayHaveRun(const std::string& stage) { return stage == "send" || stage == "receive"; }

Status AnswerLost(const std::string& detail) {
  return Status(StatusCode::kInternal, "owner_answer_lost",
                detail + "; the owning node may have run the request, so its outcome is unknown");
}

}  // namespace

Result<HttpResponse> Forward(const std::string& base_url, const HttpRequest& request,
                             const ForwardOptions& options) {
  VIA_ASSIGN_OR_RETURN(Endpoint endpoint, ParseBase(base_url));
  const http::verb verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown) return InvalidArgument("bad_method", "unknown HTTP method");

  http::request<http::string_body> out{verb, request.target, 11};
  out.set(http::field::host, endpoint.host_header);
  if (!request.authorization.empty()) out.set(http::field::authorization, request.authorization);
  out.set(kForwardedByHeader, options.from_node);
  out.set(http::field::content_type, request.target.rfind("/v3-protobuf/", 0) == 0
                                         ? "application/x-protobuf"
                                         : "application/json");
  out.keep_alive(false);
  out.body() = request.body;
  out.prepare_payload();

  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  parser.body_limit(options.max_body_bytes);
  const auto timeout = std::chrono::milliseconds(std::max<std::int64_t>(1, options.timeout_ms));
  stream.expires_after(timeout);

  bool done = false;
  beast::error_code failure;
  std::string stage = "resolve";
  resolver.async_resolve(
      endpoint.host, endpoint.port,
      [&](beast::error_code ec, const asio::ip::tcp::resolver::results_type& results) {
        if (ec) {
          failure = ec;
          done = true;
          return;
        }
        stage = "connect";
        stream.async_connect(results, [&](beast::error_code ec, const asio::ip::tcp::endpoint&) {
          if (ec) {
            failure = ec;
            done = true;
            return;
          }
          stage = "send";
          http::async_write(stream, out, [&](beast::error_code ec, std::size_t) {
            if (ec) {
              failure = ec;
              done = true;
              return;
            }
            stage = "receive";
            http::async_read(stream, buffer, parser, [&](beast::error_code ec, std::size_t) {
              failure = ec;
              done = true;
            });
          });
        });
      });
  io.run_for(timeout);
  if (!done) {
    // The resolver has no deadline of its own; cancel whatever still runs.
    resolver.cancel();
    beast::error_code ignored;
    stream.socket().close(ignored);
    io.restart();
    io.run();
    if (RequestMayHaveRun(stage)) {
      return AnswerLost("the owning node did not answer within " +
                        std::to_string(options.timeout_ms) + " ms");
    }
    return Unavailable("owner_unreachable", "the owning node did not answer within " +
                                                std::to_string(options.timeout_ms) + " ms (" +
                                                stage + ")");
  }
  if (failure) {
    if (failure == http::error::body_limit || failure == http::error::header_limit ||
        (stage == "receive" && failure != http::error::end_of_stream &&
         failure.category() == http::make_error_code(http::error::bad_target).category())) {
      return AnswerLost("the owning node's answer was refused: " + failure.message());
    }
    if (RequestMayHaveRun(stage)) {
      return AnswerLost("the connection to the owning node failed (" + stage +
                        "): " + failure.message());
    }
    return Unavailable("owner_unreachable",
                       "the owning node could not be reached (" + stage + "): " + failure.message());
  }
  http::response<http::string_body> answer = parser.release();
  // The parser's body_limit did not stop a too-large body read through
  // async_read here (tests/server/forward_test.cc); checked again.
  if (answer.body().size() > options.max_body_bytes) {
    return AnswerLost("the owning node's answer was larger than " +
                      std::to_string(options.max_body_bytes) + " bytes");
  }
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
  return r;
}

}  // namespace via::server
