#pragma once

// Forwarding a Hrana request to the node that owns the add-on (several nodes
// on one PostgreSQL log, docs/operations.md "Several nodes").
//
// The request goes on as it came (method, target, Authorization, body) to the
// owner's public URL, with a `Via-Forwarded-By: <node>` header, and the
// owner's answer comes back as it was sent (status, content type, body,
// Retry-After and WWW-Authenticate). Batons keep working across requests
// because every request names its add-on in its credential: a baton the owner
// issued always comes back to the owner, whichever node the client talks to.
// A request that already carries Via-Forwarded-By is never forwarded again.
//
// Bounds: one connection per request, connect + send + receive within
// `timeout_ms`, a response header of at most 16 KiB and a body of at most
// `max_body_bytes`; anything else is an error, never a partial answer.
// Only http:// owners are reached (an https:// public URL is refused with
// "forward_unsupported"; see docs/runtime.md).

#include <cstdint>
#include <string>

#include "domain/status.h"
#include "server/http_message.h"

namespace via::server {

// The request header that marks a forwarded request; its value names the
// node that forwarded it.
inline constexpr const char* kForwardedByHeader = "Via-Forwarded-By";

struct ForwardOptions {
  std::string from_node;  // this node's name (the header's value)
  std::int64_t timeout_ms = 30000;
  std::size_t max_body_bytes = 16 << 20;
};

// Sends `request` to `base_url` + request.target and returns the answer.
// Errors: Unavailable "owner_unreachable" (cannot resolve or connect, or the
// timeout passed before the request was written: the owner never saw it),
// Internal "owner_answer_lost" (the request was written, then the connection
// broke, the timeout passed or the answer was not HTTP or too large: the owner
// may have run it, so it is not retryable), Unavailable "forward_unsupported"
// (an https:// owner). The answer's Retry-After, WWW-Authenticate and
// Cache-Control headers are kept.
Result<HttpResponse> Forward(const std::string& base_url, const HttpRequest& request,
                             const ForwardOptions& options);

}  // namespace via::server
