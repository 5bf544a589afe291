// Hrana 3 cursors (`POST /v3/cursor`, server/hrana_cursor.h): entries in
// order, batch conditions including is_autocommit, batons shared with
// pipelines, a reader that goes away, revocation while a cursor runs, and the
// bound on the memory a cursor over 100,000 rows holds while its reader is slow.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>

#include "hrana_harness.h"
#include "server/body_stream.h"
#include "server/hrana_cursor.h"
#include "server/hrana_json.h"

namespace via::server::hrana_test {
namespace {

hrana::CursorRequest Cursor(const std::optional<std::string>& baton, const json& steps) {
  json body = {{"batch", {{"steps", steps}}}};
  body["baton"] = baton ? json(*baton) : json(nullptr);
  auto parsed = hrana::ParseCursorRequest(body.dump(), hrana::Limits{});
  INFO(parsed.status().ToString());
  REQUIRE(parsed.ok());
  return *parsed;
}

json Step(const std::string& sql, json condition = nullptr) {
  json step = {{"stmt", Stmt(sql)}};
  if (!condition.is_null()) step["condition"] = std::move(condition);
  return step;
}

// What a client sees of a cursor: the header line and the entries.
struct CursorOutput {
  int status = 0;
  json header;
  std::vector<json> entries;
  std::size_t bytes = 0;
  std::size_t peak_buffered = 0;
};

// Runs a cursor through RunCursor and reads its body as the HTTP server
// would, `per_chunk` after each chunk (a slow reader), or abandons the body
// after `abandon_after` chunks.
CursorOutput RunAndRead(Harness& h, const std::string& key, const hrana::CursorRequest& request,
                        std::chrono::microseconds per_chunk = {}, int abandon_after = -1,
                        const std::function<void(int)>& on_chunk = nullptr) {
  CursorOutput out;
  std::mutex mu;
  std::condition_variable answered;
  std::optional<HttpResponse> response;
  std::thread worker([&] {
    RunCursor(h.engine(), key, request, hrana::Encoding::kJson, h.Open(key),
              [&](HttpResponse r) {
                std::lock_guard lock(mu);
                if (!response) response = std::move(r);
                answered.notify_all();
              },
              [](const Status& s) {
                HttpResponse r;
                r.status = 400;
                r.error_code = s.reason();
                return r;
              });
  });
  {
    std::unique_lock lock(mu);
    answered.wait(lock, [&] { return response.has_value(); });
  }
  out.status = response->status;
  std::string text;
  if (response->stream) {
    BodyStream& body = *response->stream;
    int chunks = 0;
    for (;;) {
      std::string chunk;
      bool done = false;
      std::atomic<bool> woken{false};
      if (!body.Read(&chunk, &done, [&woken] { woken = true; })) {
        if (done) break;
        while (!woken) std::this_thread::sleep_for(std::chrono::microseconds(100));
        continue;
      }
      text += chunk;
      out.bytes += chunk.size();
      ++chunks;
      if (on_chunk) on_chunk(chunks);
      if (chunks == abandon_after) {
        body.Abandon();
        break;
      }
      if (per_chunk.count() > 0) std::this_thread::sleep_for(per_chunk);
    }
    out.peak_buffered = body.peak_buffered_bytes();
  }
  worker.join();
  std::istringstream lines(text);
  std::string line;
  bool first = true;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (first) {
      out.header = json::parse(line);
      first = false;
    } else {
      out.entries.push_back(json::parse(line));
    }
  }
  return out;
}

TEST_CASE("a cursor streams step_begin, rows and step_end of every step that runs") {
  Harness h;
  h.Once("a", Execute("CREATE TABLE t(x INTEGER, y TEXT)"));
  h.Once("a", Execute("INSERT INTO t VALUES (1, 'one'), (2, 'two')"));
  CursorOutput out = RunAndRead(
      h, "a",
      Cursor(std::nullopt, json::array({Step("SELECT x, y FROM t ORDER BY x"),
                                        Step("INSERT INTO t VALUES (3, 'three')"),
                                        Step("SELECT nope FROM t"),
                                        Step("SELECT 1", {{"type", "ok"}, {"step", 2}})})));
  REQUIRE(out.status == 200);
  REQUIRE(out.header.at("baton").is_string());
  REQUIRE(out.entries.size() == 7);
  CHECK(out.entries[0] == json::parse(R"({"type":"step_begin","step":0,"cols":[
        {"name":"x","decltype":"INTEGER"},{"name":"y","decltype":"TEXT"}]})"));
  CHECK(out.entries[1].at("row").at(0).at("value") == "1");
  CHECK(out.entries[2].at("row").at(1).at("value") == "two");
  CHECK(out.entries[3].at("type") == "step_end");
  CHECK(out.entries[4].at("type") == "step_begin");
  CHECK(out.entries[4].at("step") == 1);
  CHECK(out.entries[5].at("type") == "step_end");
  CHECK(out.entries[5].at("affected_row_count") == 1);
  CHECK(out.entries[5].at("last_insert_rowid") == "3");
  // Step 2 fails before it begins; step 3 (ok of step 2) is skipped.
  CHECK(out.entries[6].at("type") == "step_error");
  CHECK(out.entries[6].at("step") == 2);
  CHECK(out.entries[6].at("error").at("code") == "SQLITE_ERROR");
  CHECK(h.CountRows("a", "t") == 3);
}

TEST_CASE("not(is_autocommit) stops a cursor batch once SQLite rolled the transaction back") {
  // What @libsql/client sends for batch([...], "write") over Hrana 3.
  Harness h;
  h.Once("a", Execute("CREATE TABLE t(x INTEGER)"));
  const json not_autocommit = {{"type", "not"}, {"cond", {{"type", "is_autocommit"}}}};
  auto guarded = [&](std::uint32_t prev) {
    return json{{"type", "and"},
                {"conds", json::array({{{"type", "ok"}, {"step", prev}}, not_autocommit})}};
  };
  CursorOutput out = RunAndRead(
      h, "a",
      Cursor(std::nullopt,
             json::array({Step("BEGIN IMMEDIATE"),
                          Step("INSERT INTO t VALUES (1),(2),(3)", {{"type", "ok"}, {"step", 0}}),
                          Step("ROLLBACK", guarded(1)), Step("INSERT INTO t VALUES (4),(5)", guarded(2)),
                          Step("COMMIT", guarded(3)),
                          Step("ROLLBACK", {{"type", "not"}, {"cond", {{"type", "ok"}, {"step", 4}}}})})));
  REQUIRE(out.status == 200);
  std::vector<int> begun;
  for (const json& e : out.entries) {
    if (e.at("type") == "step_begin") begun.push_back(e.at("step").get<int>());
  }
  // ROLLBACK ran (step 2); steps 3 and 4 were skipped: autocommit again.
  CHECK(begun == std::vector<int>{0, 1, 2, 5});
  CHECK(h.CountRows("a", "t") == 0);
}

TEST_CASE("a cursor's baton continues the stream, also in a pipeline, with its transaction") {
  Harness h;
  h.Once("a", Execute("CREATE TABLE t(x INTEGER)"));
  CursorOutput first = RunAndRead(
      h, "a", Cursor(std::nullopt, json::array({Step("BEGIN"), Step("INSERT INTO t VALUES (7)")})));
  const std::string baton = first.header.at("baton");
  CursorOutput second =
      RunAndRead(h, "a", Cursor(baton, json::array({Step("SELECT count(*) FROM t")})));
  // The cursor's request baton was consumed.
  CHECK(h.Fail("a", Body(baton, json::array({Close()}))).reason() == "baton_reused");
  REQUIRE(second.entries.size() == 3);
  CHECK(second.entries[1].at("row").at(0).at("value") == "1");  // inside the transaction
  CHECK(h.CountRows("a", "t") == 0);                               // not committed yet
  json r = h.Run("a", Body(second.header.at("baton").get<std::string>(),
                           json::array({{{"type", "get_autocommit"}}, Execute("COMMIT"),
                                        {{"type", "get_autocommit"}}, Close()})));
  CHECK(ResultOf(r, 0).at("is_autocommit") == false);
  CHECK(ResultOf(r, 2).at("is_autocommit") == true);
  CHECK(h.CountRows("a", "t") == 1);
}

TEST_CASE("a cursor over 100,000 rows holds a bounded buffer while its reader is slow") {
  Harness h;
  h.Once("a", Execute("CREATE TABLE t(x INTEGER, pad TEXT)"));
  h.Once("a", Execute("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < "
                      "100000) INSERT INTO t SELECT i, printf('%040d', i) FROM c"));
  // 100,000 rows are more rows than one pipeline may return (max_result_rows
  // is 100,000 and the response budget far less than these bytes) ...
  CursorOutput out = RunAndRead(h, "a",
                                Cursor(std::nullopt, json::array({Step("SELECT x, pad FROM t")})),
                                std::chrono::microseconds(200));
  REQUIRE(out.status == 200);
  REQUIRE(out.entries.size() == 100002);
  CHECK(out.entries[100000].at("row").at(0).at("value") == "100000");
  CHECK(out.entries.back().at("type") == "step_end");
  // ... and the body is over 100 times the bound on what waited in memory.
  CHECK(out.bytes > 100 * kCursorBufferBytes);
  CHECK(out.peak_buffered > 0);
  CHECK(out.peak_buffered <= kCursorBufferBytes + kCursorChunkBytes);
}

TEST_CASE("a reader that goes away closes the cursor's stream and rolls back") {
  Harness h;
  h.Once("a", Execute("CREATE TABLE t(x INTEGER)"));
  h.Once("a", Execute("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < "
                      "50000) INSERT INTO t SELECT i FROM c"));
  CursorOutput out = RunAndRead(
      h, "a",
      Cursor(std::nullopt, json::array({Step("BEGIN IMMEDIATE"), Step("DELETE FROM t WHERE x < 10"),
                                        Step("SELECT x FROM t")})),
      {}, /*abandon_after=*/2);
  REQUIRE(out.header.at("baton").is_string());
  CHECK(h.engine().open_streams() == 0);
  CHECK(h.CountRows("a", "t") == 50000);  // the DELETE was rolled back
  Status s = h.Fail("a", Body(out.header.at("baton").get<std::string>(), json::array({Close()})));
  CHECK(s.reason() == "cursor_abandoned");
}

TEST_CASE("closing a database's streams interrupts a running cursor") {
  Harness h;
  h.Once("a", Execute("CREATE TABLE t(x INTEGER)"));
  h.Once("a", Execute("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < "
                      "100000) INSERT INTO t SELECT i FROM c"));
  std::size_t closed = 0;
  // Revoked after the client got its first chunk: the cursor is running.
  CursorOutput out = RunAndRead(
      h, "a", Cursor(std::nullopt, json::array({Step("SELECT x FROM t")})),
      std::chrono::milliseconds(1), -1, [&](int chunks) {
        if (chunks != 1) return;
        closed = h.engine().CloseStreamsFor(
            [](std::string_view key) { return key == "a"; },
            Status(StatusCode::kUnauthenticated, "credential_revoked", "revoked"));
      });
  CHECK(closed == 1);
  REQUIRE_FALSE(out.entries.empty());
  const json& last = out.entries.back();
  INFO(last.dump());
  CHECK(last.at("type") == "step_error");
  CHECK(last.at("error").at("code") == "STREAM_CLOSED");
  CHECK(out.entries.size() < 100002);
  CHECK(h.Fail("a", Body(out.header.at("baton").get<std::string>(), json::array({Close()})))
            .reason() == "credential_revoked");
}

TEST_CASE("a body whose reader never reads gives up after its wait bound") {
  BodyStream body(8, std::chrono::milliseconds(50));
  CHECK(body.Write("12345678"));  // fits
  const auto started = std::chrono::steady_clock::now();
  CHECK_FALSE(body.Write("9"));  // no room, nobody reads
  CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(50));
  CHECK_FALSE(body.Write("again"));  // abandoned for good
  std::string chunk;
  bool done = false;
  CHECK_FALSE(body.Read(&chunk, &done, [] {}));
  CHECK(done);
}

TEST_CASE("cursor requests are parsed strictly") {
  hrana::Limits limits;
  CHECK(hrana::ParseCursorRequest(R"({"baton":null})", limits).status().reason() ==
        "invalid_pipeline");
  CHECK(hrana::ParseCursorRequest(R"({"batch":{"steps":[{"stmt":{}}]}})", limits)
            .status()
            .reason() == "invalid_pipeline");
  CHECK(hrana::ParseCursorRequest(R"({"baton":1,"batch":{"steps":[]}})", limits)
            .status()
            .reason() == "invalid_pipeline");
  CHECK(hrana::ParseCursorRequest(R"({"batch":{"steps":[]}})", limits).ok());
}

}  // namespace
}  // namespace via::server::hrana_test
