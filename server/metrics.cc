#include "server/metrics.h"

#include <cstdio>

namespace via::server {
namespace {

// A sample value as Prometheus reads it (integers without an exponent).
std::string Number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void Header(std::string* out, std::string_view name, std::string_view type,
            std::string_view help) {
  out->append("# HELP ").append(name).append(" ").append(help).append("\n");
  out->append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void Sample(std::string* out, std::string_view name, std::string_view labels, double value) {
  out->append(name);
  if (!labels.empty()) out->append("{").append(labels).append("}");
  out->append(" ").append(Number(value)).append("\n");
}

void Gauge(std::string* out, std::string_view name, std::string_view help, double value) {
  Header(out, name, "gauge", help);
  Sample(out, name, "", value);
}

// A counter without labels.
void Counter(std::string* out, std::string_view name, std::string_view help,
             const std::atomic<std::uint64_t>& value) {
  Header(out, name, "counter", help);
  Sample(out, name, "", static_cast<double>(value.load(std::memory_order_relaxed)));
}

}  // namespace

std::size_t Metrics::RouteOf(std::string_view path) {
  constexpr std::string_view kDescriptors = "/v1/descriptors/";
  if (path.size() > kDescriptors.size() && path.substr(0, kDescriptors.size()) == kDescriptors) {
    return 5;
  }
  for (std::size_t i = 0; i + 1 < kRoutes.size(); ++i) {
    if (i != 5 && kRoutes[i] == path) return i;
  }
  return kRoutes.size() - 1;
}

void Metrics::Histogram::Observe(std::int64_t micros) {
  if (micros < 0) micros = 0;
  const double seconds = static_cast<double>(micros) / 1e6;
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) {
      buckets[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  sum_micros.fetch_add(static_cast<std::uint64_t>(micros), std::memory_order_relaxed);
  count.fetch_add(1, std::memory_order_relaxed);
}

void Metrics::Histogram::Render(std::string* out, std::string_view name,
                                std::string_view labels) const {
  // Read the count first: buckets observed later only make +Inf >= the
  // finite buckets, never the other way round.
  const std::uint64_t total = count.load(std::memory_order_relaxed);
  const std::string prefix = labels.empty() ? "" : std::string(labels) + ",";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    cumulative += buckets[i].load(std::memory_order_relaxed);
    Sample(out, std::string(name) + "_bucket",
           prefix + "le=\"" + Number(kLatencyBuckets[i]) + "\"",
           static_cast<double>(std::min(cumulative, total)));
  }
  Sample(out, std::string(name) + "_bucket", prefix + "le=\"+Inf\"", static_cast<double>(total));
  Sample(out, std::string(name) + "_sum", labels,
         static_cast<double>(sum_micros.load(std::memory_order_relaxed)) / 1e6);
  Sample(out, std::string(name) + "_count", labels, static_cast<double>(total));
}

void Metrics::ObserveRequest(std::string_view path, int status, std::int64_t micros) {
  const std::size_t route = RouteOf(path);
  if (status < kMinStatus || status > kMaxStatus) status = 500;
  requests_[route][static_cast<std::size_t>(status - kMinStatus)].fetch_add(
      1, std::memory_order_relaxed);
  latency_[route].Observe(micros);
}

void Metrics::ObserveSqlWait(std::int64_t micros) { sql_wait_.Observe(micros); }

std::string Metrics::Render(const Gauges& g) const {
  std::string out;
  out.reserve(16 * 1024);
  Header(&out, "via_http_requests_total", "counter",
         "HTTP requests answered, by route template and status.");
  for (std::size_t r = 0; r < kRoutes.size(); ++r) {
    for (int s = kMinStatus; s <= kMaxStatus; ++s) {
      const std::uint64_t n =
          requests_[r][static_cast<std::size_t>(s - kMinStatus)].load(std::memory_order_relaxed);
      if (n == 0) continue;
      Sample(&out, "via_http_requests_total",
             "route=\"" + std::string(kRoutes[r]) + "\",status=\"" + std::to_string(s) + "\"",
             static_cast<double>(n));
    }
  }
  Header(&out, "via_http_request_duration_seconds", "histogram",
         "Time from a request's header to its answer, by route template.");
  for (std::size_t r = 0; r < kRoutes.size(); ++r) {
    if (latency_[r].count.load(std::memory_order_relaxed) == 0) continue;
    latency_[r].Render(&out, "via_http_request_duration_seconds",
                       "route=\"" + std::string(kRoutes[r]) + "\"");
  }
  Header(&out, "via_sql_queue_wait_seconds", "histogram",
         "Time a SQL pipeline waited for a SQL worker.");
  sql_wait_.Render(&out, "via_sql_queue_wait_seconds", "");
  Gauge(&out, "via_sql_queue_length", "SQL pipelines waiting for a worker.",
        static_cast<double>(g.sql_queued));
  Gauge(&out, "via_sql_queue_limit", "SQL pipelines that may wait (--sql-queue).",
        static_cast<double>(g.sql_queue_limit));
  Gauge(&out, "via_sql_workers", "Threads that run SQL.", static_cast<double>(g.sql_workers));
  Gauge(&out, "via_sql_workers_busy", "SQL workers running a pipeline.",
        static_cast<double>(g.sql_running));
  Gauge(&out, "via_control_workers", "Threads that answer descriptor requests.",
        static_cast<double>(g.control_workers));
  Gauge(&out, "via_control_workers_busy", "Control workers running a request.",
        static_cast<double>(g.control_running));
  Gauge(&out, "via_control_queue_length", "Descriptor requests waiting for a control worker.",
        static_cast<double>(g.control_queued));
  Gauge(&out, "via_hrana_open_streams", "Hrana streams (batons) open.",
        static_cast<double>(g.open_streams));
  Gauge(&out, "via_sqlite_pooled_connections", "Idle SQLite connections kept for new streams.",
        static_cast<double>(g.pooled_connections));
  Gauge(&out, "via_log_seq", "Sequence number of the newest event log record the server folded.",
        static_cast<double>(g.log_seq));
  Gauge(&out, "via_log_catch_up_age_seconds",
        "Seconds since the last successful log catch-up began (the state's staleness bound).",
        g.catch_up_age_seconds);
  Gauge(&out, "via_log_readable", "1 when the last log catch-up succeeded.",
        g.log_readable ? 1 : 0);
  Gauge(&out, "via_log_listening",
        "1 while a LISTEN connection wakes the catch-up on every append (log on PostgreSQL).",
        g.log_listening ? 1 : 0);
  Gauge(&out, "via_ready", "1 when /readyz answers 200.", g.ready ? 1 : 0);
  Counter(&out, "via_revocations_applied_total",
          "Credential revocations (GenerationRevoked) the server read from the log and enforced.",
          revocations_applied_);
  Counter(&out, "via_revoked_requests_total",
          "SQL requests refused because their credential was revoked.",
          revoked_requests_);
  Counter(&out, "via_forwarded_requests_total",
          "Requests forwarded to the add-on's owning node that it answered.",
          forwarded_);
  Counter(&out, "via_forward_failures_total",
          "Requests for another node's add-on that could not be forwarded (503, or 502 when "
          "the answer was lost).",
          forward_failures_);
  Gauge(&out, "via_forwards_in_flight",
        "Requests forwarded to owning nodes whose answer is awaited.",
        static_cast<double>(g.forwards_in_flight));
  Header(&out, "via_forward_busy_total", "counter",
         "Requests for another node's add-on refused with 503 forward_busy (per-owner or total "
         "limit of forwards in flight).");
  Sample(&out, "via_forward_busy_total", "", static_cast<double>(g.forward_busy));
  Header(&out, "via_forward_breaker_refusals_total", "counter",
         "Requests for another node's add-on answered 503 owner_unreachable at once, because "
         "that node's circuit breaker is open.");
  Sample(&out, "via_forward_breaker_refusals_total", "",
         static_cast<double>(g.forward_breaker_refusals));
  Header(&out, "via_forward_breaker_opened_total", "counter",
         "Times a circuit breaker opened after repeated failures to reach an owning node.");
  Sample(&out, "via_forward_breaker_opened_total", "", static_cast<double>(g.forward_breaker_opened));
  Header(&out, "via_forward_breaker_probes_total", "counter",
         "Requests let through to an owning node after its breaker's cool-down.");
  Sample(&out, "via_forward_breaker_probes_total", "", static_cast<double>(g.forward_probes));
  Header(&out, "via_log_appends_total", "counter",
         "Appends via serve submitted to its group committer (deliveries, owner work, "
         "scheduled snapshot work).");
  Sample(&out, "via_log_appends_total", "", static_cast<double>(g.appends_submitted));
  Header(&out, "via_log_append_batches_total", "counter",
         "Transactions the group committer wrote them in (several appends each under load).");
  Sample(&out, "via_log_append_batches_total", "", static_cast<double>(g.append_batches));
  Counter(&out, "via_streams_closed_by_revocation_total",
          "Hrana streams closed because their credential was revoked.",
          streams_closed_by_revocation_);
  return out;
}

}  // namespace via::server
