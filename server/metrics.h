#pragma once

// What `via serve` counts for GET /metrics, and its rendering in the
// Prometheus text exposition format (version 0.0.4).
//
// Label values come from fixed sets only, so the number of series is bounded
// whatever clients send: a request's `route` is one of kRoutes (a template:
// "/v1/descriptors/{binding}", never the binding a client asked for; any
// unknown path is "other"), its `status` a number from 100 to 599 that the
// server itself chose. No add-on id, app, binding or raw path ever becomes a
// label value.
//
// Thread-safety: every method may be called from any thread at once; the
// counters are atomics, never behind a lock that a request waits for.

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace via::server {

class Metrics {
 public:
  // The route templates, "other" last.
  static constexpr std::array<std::string_view, 15> kRoutes = {
      "/",
      "/healthz",
      "/readyz",
      "/metrics",
      "/.well-known/jwks.json",
      "/v1/descriptors/{binding}",
      "/v2",
      "/v3",
      "/v3-protobuf",
      "/v2/pipeline",
      "/v3/pipeline",
      "/v3/cursor",
      "/v3-protobuf/pipeline",
      "/v3-protobuf/cursor",
      "other"};
  // Upper bounds (seconds) of the latency histograms' buckets.
  static constexpr std::array<double, 14> kLatencyBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

  // The index in kRoutes of a request path (the target without its query).
  static std::size_t RouteOf(std::string_view path);

  // One answered request: its path, status and time to answer.
  void ObserveRequest(std::string_view path, int status, std::int64_t micros);
  // A SQL pipeline waited this long for a worker.
  void ObserveSqlWait(std::int64_t micros);
  // A request refused because its credential's generation was revoked.
  void CountRevokedRequest() { revoked_requests_.fetch_add(1, std::memory_order_relaxed); }
  // The server applied a revocation (GenerationRevoked) it read from the log.
  void CountRevocationApplied() { revocations_applied_.fetch_add(1, std::memory_order_relaxed); }
  // A Hrana request forwarded to the add-on's owning node: answered by it, or not.
  void CountForwarded(bool answered) {
    (answered ? forwarded_ : forward_failures_).fetch_add(1, std::memory_order_relaxed);
  }
  // Streams the server closed because of a revocation.
  void CountStreamsClosedByRevocation(std::uint64_t n) {
    streams_closed_by_revocation_.fetch_add(n, std::memory_order_relaxed);
  }

  // Values read when scraped, from their owners.
  struct Gauges {
    std::uint64_t log_seq = 0;           // the newest record folded
    double catch_up_age_seconds = 0;     // since the last successful catch-up began
    bool log_readable = true;            // the last catch-up succeeded
    bool log_listening = false;          // LISTEN via_log is up (a log on PostgreSQL)
    bool ready = true;                   // /readyz answers 200
    std::size_t open_streams = 0;
    std::size_t pooled_connections = 0;  // idle SQLite connections kept
    std::size_t sql_workers = 0, sql_running = 0, sql_queued = 0, sql_queue_limit = 0;
    std::size_t control_workers = 0, control_running = 0, control_queued = 0;
    // Forwarding to owning nodes (forward.h): exchanges in flight, and
    // counts kept by the forwarder since the server started.
    std::uint64_t forwards_in_flight = 0;
    std::uint64_t forward_busy = 0;              // forward_busy answers
    std::uint64_t forward_breaker_refusals = 0;  // owner_unreachable without trying
    std::uint64_t forward_breaker_opened = 0;
    std::uint64_t forward_probes = 0;
    // The group committer of the server's appends (eventstore/group_commit.h).
    std::uint64_t appends_submitted = 0;
    std::uint64_t append_batches = 0;
  };
  // The whole exposition: # HELP and # TYPE lines, then samples.
  std::string Render(const Gauges& gauges) const;

 private:
  struct Histogram {
    std::array<std::atomic<std::uint64_t>, kLatencyBuckets.size()> buckets{};  // not cumulative
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> sum_micros{0};
    void Observe(std::int64_t micros);
    void Render(std::string* out, std::string_view name, std::string_view labels) const;
  };
  static constexpr int kMinStatus = 100, kMaxStatus = 599;

  std::array<std::array<std::atomic<std::uint64_t>, kMaxStatus - kMinStatus + 1>, kRoutes.size()>
      requests_{};
  std::array<Histogram, kRoutes.size()> latency_{};
  Histogram sql_wait_;
  std::atomic<std::uint64_t> revoked_requests_{0};
  std::atomic<std::uint64_t> revocations_applied_{0};
  std::atomic<std::uint64_t> streams_closed_by_revocation_{0};
  std::atomic<std::uint64_t> forwarded_{0};
  std::atomic<std::uint64_t> forward_failures_{0};
};

}  // namespace via::server
