#pragma once

// Transport-independent HTTP request and response values: the Beast server
// (http_server.h) fills an HttpRequest from the wire and writes back the
// HttpResponse that the API (api.h) returns, so the API is testable without
// sockets.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace via::server {

class BodyStream;  // body_stream.h

struct HttpRequest {
  std::string method;         // "GET", "POST", ...
  std::string target;         // path and query, as sent
  std::string authorization;  // the Authorization header, "" when absent
  std::string body;
  std::string remote;         // peer address, for logs
  // The Via-Forwarded-By header (forward.h): the node that forwarded this
  // request to its owner; "" when it came from a client.
  std::string forwarded_by;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string error_code;  // stable reason for the access log; "" on success
  // When set, `body` is ignored and the body is read from `stream` while it
  // is produced, sent with chunked transfer encoding (HTTP/1.0: until the
  // connection closes).
  std::shared_ptr<BodyStream> stream;
};

// Delivers the response to one request, from any thread. The first call
// answers (later calls are ignored); a Responder whose copies are all
// destroyed without a call answers 503 "shutting_down" (see http_server.h).
using Responder = std::function<void(HttpResponse)>;

}  // namespace via::server
