#pragma once

// Transport-independent HTTP request and response values: the Beast server
// (http_server.h) fills an HttpRequest from the wire and writes back the
// HttpResponse that the API (api.h) returns, so the API is testable without
// sockets.

#include <string>
#include <utility>
#include <vector>

namespace via::server {

struct HttpRequest {
  std::string method;         // "GET", "POST", ...
  std::string target;         // path and query, as sent
  std::string authorization;  // the Authorization header, "" when absent
  std::string body;
  std::string remote;         // peer address, for logs
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string error_code;  // stable reason for the access log; "" on success
};

}  // namespace via::server
