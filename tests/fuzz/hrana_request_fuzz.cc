// Fuzzes the Hrana pipeline parser and engine. Any body is either rejected
// with InvalidArgument, or parses, runs on an in-memory database (twice: on a
// new stream and then on the same stream through the returned baton) and
// encodes to valid JSON with one result of the right type per request.
// Never a crash, a hang, an exception or a leak.
#include <sqlite3.h>

#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "server/hrana.h"

namespace {

namespace hrana = via::server::hrana;

hrana::Limits FuzzLimits() {
  hrana::Limits limits;
  limits.max_body_bytes = 64 * 1024;
  limits.max_requests = 16;
  limits.max_batch_steps = 32;
  limits.max_args = 64;
  limits.max_sql_bytes = 4096;
  limits.max_stored_sqls = 8;
  limits.max_result_rows = 100;
  limits.max_response_bytes = 256 * 1024;
  limits.max_value_bytes = 64 * 1024;
  limits.statement_timeout_ms = 200;  // the fuzz clock ticks once per 1000 VM steps
  limits.max_streams = 4;
  limits.stream_idle_timeout_ms = std::int64_t{1} << 40;  // the clock ticks fast
  return limits;
}

via::Result<via::sql::Connection> OpenMemory() {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  via::sql::Connection db(raw);
  if (rc != SQLITE_OK) return via::Internal("cannot open :memory:");
  return via::Result<via::sql::Connection>(std::move(db));
}

// The encoder writes an infinite float as 1e999, which JavaScript reads but
// nlohmann rejects; swap it for a finite number before validating.
bool IsValidJson(std::string text) {
  for (const char* inf : {":1e999", ":-1e999"}) {
    for (std::size_t at = text.find(inf); at != std::string::npos; at = text.find(inf, at)) {
      text.replace(at, std::string_view(inf).size(), ":0");
    }
  }
  return nlohmann::json::accept(text);
}

void CheckResponse(const hrana::PipelineRequest& request, const hrana::PipelineResponse& response) {
  if (response.results.size() != request.requests.size()) std::abort();
  for (std::size_t i = 0; i < response.results.size(); ++i) {
    const auto* ok = std::get_if<hrana::StreamResponse>(&response.results[i]);
    if (ok && ok->index() != request.requests[i].index()) std::abort();
  }
  if (!IsValidJson(hrana::EncodePipelineResponse(response))) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sqlite3_hard_heap_limit64(256 << 20);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const hrana::Limits limits = FuzzLimits();
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto parsed = hrana::ParsePipelineRequest(body, limits);
  if (!parsed.ok()) {
    if (parsed.status().code() != via::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }

  std::int64_t now = 0;
  via::server::HranaEngine engine(limits, [&now] { return ++now; });
  hrana::PipelineRequest request = *parsed;
  request.baton.reset();
  auto first = engine.Execute("fuzz", request, OpenMemory);
  if (!first.ok()) std::abort();  // a new stream on a working database always opens
  CheckResponse(request, *first);

  if (first->baton) {
    request.baton = first->baton;
    auto second = engine.Execute("fuzz", request, OpenMemory);
    if (!second.ok()) std::abort();
    CheckResponse(request, *second);
  }
  // The parsed baton (if any) is unknown to this engine.
  if (parsed->baton) {
    auto unknown = engine.Execute("fuzz", *parsed, OpenMemory);
    if (unknown.ok()) std::abort();
  }
  return 0;
}
