#pragma once

// Forwarding a Hrana or descriptor request to the node that owns the add-on
// (several nodes on one PostgreSQL log, docs/operations.md "Several nodes").
//
// The request goes on as it came (method, target, Authorization, body) to the
// owner's public URL, with a `Via-Forwarded-By: <node>` header, and the
// owner's answer comes back as it was sent (status, content type, body,
// Retry-After, WWW-Authenticate and Cache-Control). Batons keep working across
// requests because every request names its add-on in its credential: a baton
// the owner issued always comes back to the owner, whichever node the client
// talks to. A request that already carries Via-Forwarded-By is never
// forwarded again.
//
// Where it runs. A Forwarder owns one io_context and one thread of its own
// ("via-forward"): every exchange is asynchronous there, so a forwarded
// request never holds a worker of the pools that serve local work (SQL,
// descriptors) while the owner answers; a dead or slow owner costs a socket
// and a timer per request in flight, nothing else.
//
// Bounds, so that one owner (dead, slow or hostile) cannot take the node down:
//   - per owner at most `per_owner_limit` requests in flight, and at most
//     `max_in_flight` over all owners; beyond, Unavailable "forward_busy";
//   - a circuit breaker per owner: after `breaker_failures` consecutive
//     failures to reach it (connect refused, timeout, connection broken),
//     requests for it fail at once with Unavailable "owner_unreachable" for
//     `breaker_cooldown_ms`; then one request goes through as a probe (the
//     others still fail at once) and its outcome closes the breaker or opens
//     it for another cool-down;
//   - one connection per request, connect + TLS + send + receive within
//     `timeout_ms`, a response header of at most 16 KiB and a body of at most
//     `max_body_bytes` (counted as it arrives: an endless body is cut off
//     there); anything else is an error, never a partial answer.
// http:// and https:// owners are reached; https:// verifies the owner's
// certificate against `ca_file` (or the system's store when empty) and its
// host name or IP address.
//
// Thread-safety: every method may be called from any thread at once.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
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
  std::size_t per_owner_limit = 16;  // at least 1
  std::size_t max_in_flight = 256;   // at least 1
  int breaker_failures = 3;          // 0: no breaker
  std::int64_t breaker_cooldown_ms = 5000;
  // PEM CA certificates that https:// owners' certificates must chain to;
  // "": the system's store.
  std::string ca_file;
};

class Forwarder {
 public:
  // Called once per Forward() with the owner's answer or an error, and the
  // Retry-After (seconds) a 503 for it should carry.
  using Done = std::function<void(Result<HttpResponse> answer, std::int64_t retry_after_s)>;

  struct Stats {
    std::uint64_t in_flight = 0;          // exchanges running now
    std::uint64_t busy_refusals = 0;      // forward_busy answers
    std::uint64_t breaker_refusals = 0;   // owner_unreachable without trying
    std::uint64_t breaker_opened = 0;     // times a breaker opened
    std::uint64_t probes = 0;             // requests let through after a cool-down
  };

  // Loads the CA file (InvalidArgument "invalid_forward_ca" when it cannot be
  // read) and starts the thread.
  static Result<std::unique_ptr<Forwarder>> Create(ForwardOptions options);
  // Shutdown().
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Forwards `request` to `base_url` + request.target on behalf of `owner`
  // (the key of the per-owner limit and breaker: the node's name). Never
  // blocks; `done` runs exactly once, on the forwarder's thread or (refused
  // at once) on the caller's. Errors: Unavailable "forward_busy" (the limits
  // above), Unavailable "owner_unreachable" (cannot resolve or connect, the
  // timeout passed before the request was written, or the owner's breaker is
  // open: the owner never saw it), Internal "owner_answer_lost" (the request
  // was written, then the connection broke, the timeout passed or the answer
  // was not HTTP or too large: the owner may have run it, so it is not
  // retryable), Unavailable "owner_bad_url", Unavailable "owner_tls_failed"
  // (the owner's certificate did not verify), Unavailable "shutting_down".
  void Forward(const std::string& owner, const std::string& base_url, const HttpRequest& request,
               Done done);

  // Refuses new requests, ends those in flight (their `done` gets
  // "shutting_down") and joins the thread. Idempotent; not from `done`.
  void Shutdown();

  Stats stats() const;

 private:
  class Impl;
  explicit Forwarder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One forward, waited for on the calling thread (tests, tools): a Forwarder
// of its own, without a breaker.
Result<HttpResponse> Forward(const std::string& base_url, const HttpRequest& request,
                             const ForwardOptions& options);

}  // namespace via::server
