// Fuzzes the Hrana 3 protobuf parsers (server/hrana_protobuf.h) and what runs
// behind them. Any body is either rejected with InvalidArgument, or parses as
// a pipeline and runs on an in-memory database with one result of the
// request's type per request, encoding to protobuf; the same body is tried as
// a cursor request, whose entries must follow the spec's order (step_begin,
// rows, step_end or step_error; steps in increasing order). Never a crash, a
// hang, an exception or a leak.
#include <sqlite3.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/hrana.h"
#include "server/hrana_protobuf.h"

namespace {

namespace hrana = via::server::hrana;

hrana::Limits FuzzLimits() {
  hrana::Limits limits;
  limits.max_body_bytes = 64 * 1024;
  limits.max_requests = 16;
  limits.max_batch_steps = 32;
  limits.max_args = 64;
  limits.max_sql_bytes = 4096;
  limits.max_json_depth = 32;
  limits.max_stored_sqls = 8;
  limits.max_result_rows = 100;
  limits.max_response_bytes = 256 * 1024;
  limits.max_value_bytes = 64 * 1024;
  limits.statement_timeout_ms = 200;  // the fuzz clock ticks once per call
  limits.max_streams = 4;
  limits.stream_idle_timeout_ms = std::int64_t{1} << 40;
  return limits;
}

via::Result<via::sql::Connection> OpenMemory() {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  via::sql::Connection db(raw);
  if (rc != SQLITE_OK) return via::Internal("cannot open :memory:");
  return via::Result<via::sql::Connection>(std::move(db));
}

void FuzzPipeline(std::string_view body, const hrana::Limits& limits) {
  auto parsed = hrana::ParsePipelineRequestProtobuf(body, limits);
  if (!parsed.ok()) {
    if (parsed.status().code() != via::StatusCode::kInvalidArgument) std::abort();
    return;
  }
  std::int64_t now = 0;
  via::server::HranaEngine engine(limits, [&now] { return ++now; });
  hrana::PipelineRequest request = *parsed;
  request.baton.reset();
  auto response = engine.Execute("fuzz", request, OpenMemory);
  if (!response.ok()) std::abort();
  if (response->results.size() != request.requests.size()) std::abort();
  for (std::size_t i = 0; i < response->results.size(); ++i) {
    const auto* ok = std::get_if<hrana::StreamResponse>(&response->results[i]);
    if (ok && ok->index() != request.requests[i].index()) std::abort();
  }
  if (hrana::EncodePipelineResponseProtobuf(*response).empty() && !response->results.empty()) {
    std::abort();
  }
}

void FuzzCursor(std::string_view body, const hrana::Limits& limits) {
  auto parsed = hrana::ParseCursorRequestProtobuf(body, limits);
  if (!parsed.ok()) {
    if (parsed.status().code() != via::StatusCode::kInvalidArgument) std::abort();
    return;
  }
  std::int64_t now = 0;
  via::server::HranaEngine engine(limits, [&now] { return ++now; });
  hrana::CursorRequest request = *parsed;
  request.baton.reset();
  std::string encoded;
  bool started = false;
  bool in_step = false;
  std::int64_t last_step = -1;
  const std::size_t steps = request.batch.steps.size();
  via::Status s = engine.ExecuteCursor(
      "fuzz", request, OpenMemory,
      [&](const std::string& baton) {
        if (started || baton.empty()) std::abort();
        started = true;
        encoded = hrana::EncodeCursorHeaderProtobuf(baton);
        return true;
      },
      [&](const hrana::CursorEntry& entry) {
        if (!started) std::abort();
        if (const auto* b = std::get_if<hrana::StepBeginEntry>(&entry)) {
          if (in_step || b->step >= steps || static_cast<std::int64_t>(b->step) <= last_step) {
            std::abort();
          }
          in_step = true;
          last_step = b->step;
        } else if (std::holds_alternative<hrana::RowEntry>(entry)) {
          if (!in_step) std::abort();
        } else if (std::holds_alternative<hrana::StepEndEntry>(entry)) {
          if (!in_step) std::abort();
          in_step = false;
        } else if (const auto* e = std::get_if<hrana::StepErrorEntry>(&entry)) {
          if (e->step >= steps || (in_step && static_cast<std::int64_t>(e->step) != last_step) ||
              (!in_step && static_cast<std::int64_t>(e->step) <= last_step)) {
            std::abort();
          }
          in_step = false;
          last_step = e->step;
        }
        hrana::AppendCursorEntryProtobuf(encoded, entry);
        return encoded.size() < (1 << 20);  // a reader that stops after 1 MiB
      });
  if (!s.ok() || !started) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sqlite3_hard_heap_limit64(256 << 20);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const hrana::Limits limits = FuzzLimits();
  std::string_view body(reinterpret_cast<const char*>(data), size);
  FuzzPipeline(body, limits);
  FuzzCursor(body, limits);
  return 0;
}
