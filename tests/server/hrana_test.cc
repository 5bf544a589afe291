// The Hrana pipeline engine on real SQLite files: requests go in as JSON
// bodies, the way @libsql/client sends them, and responses are read back as
// JSON.

#include "server/hrana.h"

#include <sqlite3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "crypto/crypto.h"
#include "hrana_harness.h"
#include "server/thread_priority.h"
#include "testing.h"

using namespace via;
using namespace via::server;
using json = nlohmann::json;

using namespace via::server::hrana_test;

// ---------------------------------------------------------------- values

TEST_CASE("hrana execute round-trips every value type exactly", "[server]") {
  Harness h;
  const std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  const std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  const std::string unicode = "h\xC3\xA9llo \xF0\x9F\x98\x80 \xE4\xB8\xAD \"quoted\" \\ \n\t";
  const std::string with_nul("a\0b", 3);
  const Bytes blob = {0x00, 0xff, 0x10, 0x80, 0x7f};

  h.Once("a", Execute("CREATE TABLE v(k INTEGER PRIMARY KEY, x ANY) STRICT"));
  json values = json::array({Int(kMin), Int(kMax), Int(0), Int(-1), Float(0.5), Float(1e300),
                             Float(-2.25e-300), Text(unicode), Text(with_nul), Text(""), Blob(blob),
                             Blob({}), Null()});
  json inserts = json::array();
  for (std::size_t i = 0; i < values.size(); ++i) {
    inserts.push_back(
        Execute("INSERT INTO v(k, x) VALUES (?, ?)", json::array({Int(i), values[i]})));
  }
  json inserted = h.Run("a", Body(std::nullopt, inserts));
  for (std::size_t i = 0; i < values.size(); ++i) {
    const json& result = ResultOf(inserted, i).at("result");
    CHECK(result.at("affected_row_count") == 1);
    CHECK(result.at("last_insert_rowid") == std::to_string(i));
  }

  json selected = h.Once("a", Execute("SELECT x, typeof(x) FROM v ORDER BY k"));
  const json& rows = Rows(selected, 0);
  REQUIRE(rows.size() == values.size());
  CHECK(rows[0][0] == Int(kMin));
  CHECK(rows[0][0].at("value") == "-9223372036854775808");
  CHECK(rows[1][0].at("value") == "9223372036854775807");
  CHECK(rows[2][0] == Int(0));
  CHECK(rows[3][0] == Int(-1));
  CHECK(rows[4][0].at("type") == "float");
  CHECK(rows[4][0].at("value").get<double>() == 0.5);
  CHECK(rows[5][0].at("value").get<double>() == 1e300);
  CHECK(rows[6][0].at("value").get<double>() == -2.25e-300);
  CHECK(rows[7][0] == Text(unicode));
  CHECK(rows[8][0].at("value").get<std::string>() == with_nul);
  CHECK(rows[9][0] == Text(""));
  CHECK(rows[10][0].at("type") == "blob");
  CHECK(hrana::DecodeBlobBase64(rows[10][0].at("base64").get<std::string>()) == blob);
  CHECK(rows[11][0].at("type") == "blob");
  CHECK(rows[11][0].at("base64") == "");
  CHECK(rows[12][0] == Null());
  CHECK(rows[10][1] == Text("blob"));
  CHECK(rows[8][1] == Text("text"));
}

TEST_CASE("hrana writes blobs as unpadded base64 and reads them with or without padding",
          "[server]") {
  Harness h;
  json padded = {{"type", "blob"}, {"base64", "AAE="}};
  json unpadded = {{"type", "blob"}, {"base64", "AAE"}};
  json r = h.Once("a", Execute("SELECT ?, ?", json::array({padded, unpadded})));
  CHECK(Rows(r, 0)[0][0] == unpadded);
  CHECK(Rows(r, 0)[0][1] == unpadded);
}

TEST_CASE("hrana accepts a float written as a JSON integer, as JavaScript writes 1.0", "[server]") {
  Harness h;
  json r = h.Once("a", Execute("SELECT typeof(?), ?", json::array({Float(1), Float(1)})));
  CHECK(Rows(r, 0)[0][0] == Text("real"));
  CHECK(Rows(r, 0)[0][1].at("type") == "float");
  CHECK(Rows(r, 0)[0][1].at("value").get<double>() == 1.0);
}

TEST_CASE("hrana reports columns, decltypes and statement counters", "[server]") {
  Harness h;
  h.Once("a", Execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL)"));
  json ins = h.Once("a", Execute("INSERT INTO t(name) VALUES ('x'), ('y') RETURNING id"));
  const json& result = ResultOf(ins, 0).at("result");
  CHECK(result.at("affected_row_count") == 2);
  CHECK(result.at("last_insert_rowid") == "2");
  CHECK(result.at("rows").size() == 2);
  CHECK(result.at("rows_written") == 2);
  CHECK(result.at("rows_read") == 2);
  CHECK(result.at("query_duration_ms").is_number());

  json sel = h.Once("a", Execute("SELECT id, name AS n, 1 + 1 FROM t"));
  const json& cols = ResultOf(sel, 0).at("result").at("cols");
  CHECK(cols[0] == json({{"name", "id"}, {"decltype", "INTEGER"}}));
  CHECK(cols[1] == json({{"name", "n"}, {"decltype", "TEXT"}}));
  CHECK(cols[2] == json({{"name", "1 + 1"}, {"decltype", nullptr}}));
  CHECK(ResultOf(sel, 0).at("result").at("affected_row_count") == 0);
  CHECK(ResultOf(sel, 0).at("result").at("last_insert_rowid").is_null());

  json ddl = h.Once("a", Execute("CREATE TABLE u(x)"));
  CHECK(ResultOf(ddl, 0).at("result").at("affected_row_count") == 0);
}

TEST_CASE("hrana want_rows false keeps the columns and drops the rows", "[server]") {
  Harness h;
  json request = Execute("SELECT 1 AS one");
  request["stmt"]["want_rows"] = false;
  json r = h.Once("a", request);
  CHECK(ResultOf(r, 0).at("result").at("rows").empty());
  CHECK(ResultOf(r, 0).at("result").at("cols").size() == 1);
}

// ---------------------------------------------------------------- arguments

TEST_CASE("hrana binds named arguments with or without their prefix", "[server]") {
  Harness h;
  json request = {{"type", "execute"},
                  {"stmt",
                   {{"sql", "SELECT :a, @b, $c, :a"},
                    {"named_args", json::array({{{"name", "a"}, {"value", Int(1)}},
                                                {{"name", "@b"}, {"value", Text("two")}},
                                                {{"name", "$c"}, {"value", Null()}}})}}}};
  json r = h.Once("a", request);
  CHECK(Rows(r, 0)[0] == json::array({Int(1), Text("two"), Null(), Int(1)}));
}

TEST_CASE("hrana binds positional arguments by index, including ?NNN", "[server]") {
  Harness h;
  json r = h.Once("a", Execute("SELECT ?, ?3, ?2", json::array({Int(1), Int(2), Int(3)})));
  CHECK(Rows(r, 0)[0] == json::array({Int(1), Int(3), Int(2)}));
}

TEST_CASE("hrana lets a named argument take precedence over a positional one", "[server]") {
  Harness h;
  json request = Execute("SELECT :x", json::array({Int(1)}));
  request["stmt"]["named_args"] = json::array({{{"name", ":x"}, {"value", Int(2)}}});
  json r = h.Once("a", request);
  CHECK(Rows(r, 0)[0][0] == Int(2));
}

TEST_CASE("hrana refuses arguments that do not match the parameters", "[server]") {
  Harness h;
  json unknown_name = Execute("SELECT :x");
  unknown_name["stmt"]["named_args"] = json::array({{{"name", "y"}, {"value", Int(1)}}});
  json r = h.Run("a", Body(std::nullopt, json::array({
                                             Execute("SELECT ?, ?", json::array({Int(1)})),
                                             Execute("SELECT 1", json::array({Int(1)})),
                                             unknown_name,
                                             Execute("SELECT 'still running'"),
                                         })));
  CHECK(ErrorOf(r, 0).at("code") == "ARGS_INVALID");
  CHECK(ErrorOf(r, 1).at("code") == "ARGS_INVALID");
  CHECK(ErrorOf(r, 2).at("code") == "ARGS_INVALID");
  CHECK(Rows(r, 3)[0][0] == Text("still running"));
}

// ---------------------------------------------------------------- stored SQL

TEST_CASE("hrana store_sql lets statements use sql_id until close_sql", "[server]") {
  Harness h;
  json by_id = {{"type", "execute"}, {"stmt", {{"sql_id", 7}, {"args", json::array({Int(5)})}}}};
  json r = h.Run(
      "a", Body(std::nullopt, json::array({
                                  {{"type", "store_sql"}, {"sql_id", 7}, {"sql", "SELECT ? * 2"}},
                                  by_id,
                                  {{"type", "store_sql"}, {"sql_id", 7}, {"sql", "SELECT 0"}},
                                  {{"type", "describe"}, {"sql_id", 7}},
                                  {{"type", "close_sql"}, {"sql_id", 7}},
                                  by_id,
                                  {{"type", "close_sql"}, {"sql_id", 7}},
                              })));
  CHECK(ResultOf(r, 0) == json({{"type", "store_sql"}}));
  CHECK(Rows(r, 1)[0][0] == Int(10));
  CHECK(ErrorOf(r, 2).at("code") == "SQL_STORE_EXISTS");
  CHECK(ResultOf(r, 3).at("result").at("params").size() == 1);
  CHECK(ResultOf(r, 4) == json({{"type", "close_sql"}}));
  CHECK(ErrorOf(r, 5).at("code") == "SQL_NOT_FOUND");
  CHECK(ResultOf(r, 6) == json({{"type", "close_sql"}}));  // closing an unknown id is fine
}

TEST_CASE("hrana keeps stored SQL per stream", "[server]") {
  Harness h;
  json first =
      h.Run("a", Body(std::nullopt,
                      json::array({{{"type", "store_sql"}, {"sql_id", 1}, {"sql", "SELECT 1"}}})));
  json by_id = {{"type", "execute"}, {"stmt", {{"sql_id", 1}}}};
  json same = h.Run("a", Body(first.at("baton").get<std::string>(), json::array({by_id})));
  CHECK(Rows(same, 0)[0][0] == Int(1));
  json other = h.Once("a", by_id);
  CHECK(ErrorOf(other, 0).at("code") == "SQL_NOT_FOUND");
}

TEST_CASE("hrana limits the number of stored SQL texts", "[server]") {
  hrana::Limits limits;
  limits.max_stored_sqls = 2;
  Harness h(limits);
  json requests = json::array();
  for (int i = 0; i < 3; ++i) {
    requests.push_back({{"type", "store_sql"}, {"sql_id", i}, {"sql", "SELECT 1"}});
  }
  json r = h.Run("a", Body(std::nullopt, requests));
  CHECK(ResultOf(r, 1).at("type") == "store_sql");
  CHECK(ErrorOf(r, 2).at("code") == "SQL_STORE_TOO_MANY");
}

// ---------------------------------------------------------------- batches

TEST_CASE("hrana batch skips the dependents of a failed step and runs the rollback step",
          "[server]") {
  Harness h;
  h.Once("a", Execute("CREATE TABLE t(id INTEGER PRIMARY KEY)"));
  h.Once("a", Execute("INSERT INTO t VALUES (1)"));
  // The shape of @libsql/client's client.batch(): BEGIN, statements chained on
  // `ok`, COMMIT, and a ROLLBACK that runs when COMMIT did not succeed.
  auto step = [](const std::string& sql, json condition) {
    json s = {{"stmt", Stmt(sql)}};
    if (!condition.is_null()) s["condition"] = std::move(condition);
    return s;
  };
  json batch = {
      {"type", "batch"},
      {"batch",
       {{"steps", json::array({
                      step("BEGIN DEFERRED", nullptr),
                      step("INSERT INTO t VALUES (2)", {{"type", "ok"}, {"step", 0}}),
                      step("INSERT INTO t VALUES (1)", {{"type", "ok"}, {"step", 1}}),
                      step("INSERT INTO t VALUES (3)", {{"type", "ok"}, {"step", 2}}),
                      step("COMMIT", {{"type", "ok"}, {"step", 3}}),
                      step("ROLLBACK", {{"type", "not"}, {"cond", {{"type", "ok"}, {"step", 4}}}}),
                  })}}}};
  json r = h.Once("a", batch);
  const json& result = ResultOf(r, 0).at("result");
  const json& results = result.at("step_results");
  const json& errors = result.at("step_errors");
  REQUIRE(results.size() == 6);
  REQUIRE(errors.size() == 6);
  CHECK(results[0].is_object());
  CHECK(results[1].is_object());
  CHECK(results[2].is_null());
  CHECK(errors[2].at("code") == "SQLITE_CONSTRAINT");
  CHECK(results[3].is_null());  // skipped: both null
  CHECK(errors[3].is_null());
  CHECK(results[4].is_null());
  CHECK(errors[4].is_null());
  CHECK(results[5].is_object());  // ROLLBACK ran
  CHECK(errors[5].is_null());
  CHECK(h.CountRows("a", "t") == 1);
}

TEST_CASE("hrana batch evaluates error, and, or, not and is_autocommit conditions", "[server]") {
  Harness h;
  auto step = [](const std::string& sql, json condition) {
    return json({{"stmt", Stmt(sql)}, {"condition", std::move(condition)}});
  };
  json okc = {{"type", "ok"}, {"step", 0}};
  json steps = json::array({
      {{"stmt", Stmt("SELECT nope")}},                              // 0 fails
      {{"stmt", Stmt("SELECT 1")}},                                 // 1 ok
      step("SELECT 'error(0)'", {{"type", "error"}, {"step", 0}}),  // runs
      step("SELECT 'and'",
           {{"type", "and"}, {"conds", json::array({okc, {{"type", "ok"}, {"step", 1}}})}}),
      step("SELECT 'or'",
           {{"type", "or"}, {"conds", json::array({okc, {{"type", "ok"}, {"step", 1}}})}}),
      step("SELECT 'and()'", {{"type", "and"}, {"conds", json::array()}}),  // true
      step("SELECT 'or()'", {{"type", "or"}, {"conds", json::array()}}),    // false
      step("SELECT 'autocommit'", {{"type", "is_autocommit"}}),             // true
      {{"stmt", Stmt("BEGIN")}},                                            // 8
      step("SELECT 'autocommit in txn'", {{"type", "is_autocommit"}}),      // false
      step("SELECT 'not autocommit'", {{"type", "not"}, {"cond", {{"type", "is_autocommit"}}}}),
      {{"stmt", Stmt("ROLLBACK")}},
  });
  json r = h.Once("a", {{"type", "batch"}, {"batch", {{"steps", steps}}}});
  const json& results = ResultOf(r, 0).at("result").at("step_results");
  const json& errors = ResultOf(r, 0).at("result").at("step_errors");
  CHECK(errors[0].at("code") == "SQLITE_ERROR");
  CHECK(results[2].is_object());
  CHECK(results[3].is_null());
  CHECK(results[4].is_object());
  CHECK(results[5].is_object());
  CHECK(results[6].is_null());
  CHECK(results[7].is_object());
  CHECK(results[9].is_null());
  CHECK(results[10].is_object());
  CHECK(results[11].is_object());
}

// ---------------------------------------------------------------- sequence

TEST_CASE("hrana execute refuses several statements and sequence runs them all", "[server]") {
  Harness h;
  json r =
      h.Run("a", Body(std::nullopt, json::array({
                                        Execute("CREATE TABLE x(a); INSERT INTO x VALUES (1)"),
                                        Execute("SELECT 1; -- a trailing comment is fine\n"),
                                        Execute("  /* nothing */ "),
                                        {{"type", "sequence"},
                                         {"sql",
                                          "CREATE TABLE s(a); INSERT INTO s VALUES (1);\n"
                                          "INSERT INTO s VALUES (2); -- done"}},
                                        {{"type", "sequence"},
                                         {"sql",
                                          "INSERT INTO s VALUES (3); INSERT INTO nope VALUES (1); "
                                          "INSERT INTO s VALUES (4)"}},
                                        Execute("SELECT group_concat(a) FROM s"),
                                    })));
  CHECK(ErrorOf(r, 0).at("code") == "SQL_MANY_STATEMENTS");
  CHECK(Rows(r, 1)[0][0] == Int(1));
  CHECK(ErrorOf(r, 2).at("code") == "SQL_NO_STATEMENT");
  CHECK(ResultOf(r, 3) == json({{"type", "sequence"}}));
  CHECK(ErrorOf(r, 4).at("code") == "SQLITE_ERROR");
  CHECK(Rows(r, 5)[0][0] == Text("1,2,3"));  // stopped at the failing statement
}

// ---------------------------------------------------------------- errors

TEST_CASE("hrana returns SQLite errors as error results and runs the rest of the pipeline",
          "[server]") {
  Harness h;
  json r = h.Run("a", Body(std::nullopt, json::array({
                                             Execute("CREATE TABLE t(id INTEGER PRIMARY KEY)"),
                                             Execute("INSERT INTO t VALUES (1)"),
                                             Execute("INSERT INTO t VALUES (1)"),
                                             Execute("SELEC 1"),
                                             Execute("SELECT * FROM missing"),
                                             Execute("SELECT count(*) FROM t"),
                                         })));
  CHECK(ErrorOf(r, 2).at("code") == "SQLITE_CONSTRAINT");
  CHECK(ErrorOf(r, 2).at("message").get<std::string>().find("UNIQUE constraint failed") !=
        std::string::npos);
  CHECK(ErrorOf(r, 3).at("code") == "SQLITE_ERROR");
  CHECK(ErrorOf(r, 3).at("message").get<std::string>().find("syntax error") != std::string::npos);
  CHECK(ErrorOf(r, 4).at("message").get<std::string>().find("no such table") != std::string::npos);
  CHECK(Rows(r, 5)[0][0] == Int(1));
  CHECK(r.at("baton").is_string());
}

TEST_CASE("hrana fails a statement whose result exceeds the row limit", "[server]") {
  hrana::Limits limits;
  limits.max_result_rows = 10;
  Harness h(limits);
  const std::string rows_sql =
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 11) SELECT x FROM "
      "c";
  json r =
      h.Run("a", Body(std::nullopt, json::array({Execute(rows_sql), Execute("SELECT 'next'")})));
  CHECK(ErrorOf(r, 0).at("code") == "RESPONSE_TOO_LARGE");
  CHECK(Rows(r, 1)[0][0] == Text("next"));
}

TEST_CASE("hrana fails a statement whose result exceeds the response byte limit", "[server]") {
  hrana::Limits limits;
  limits.max_response_bytes = 4096;
  Harness h(limits);
  json r = h.Run("a", Body(std::nullopt, json::array({
                                             Execute("SELECT randomblob(1000)"),
                                             Execute("SELECT randomblob(1000)"),
                                             Execute("SELECT randomblob(3000)"),
                                             Execute("SELECT 'small'"),
                                         })));
  CHECK(ResultOf(r, 0).at("type") == "execute");
  CHECK(ResultOf(r, 1).at("type") == "execute");
  CHECK(ErrorOf(r, 2).at("code") == "RESPONSE_TOO_LARGE");
  CHECK(Rows(r, 3)[0][0] == Text("small"));
}

TEST_CASE("hrana runs a writing statement to completion even when its rows are too many",
          "[server]") {
  hrana::Limits limits;
  limits.max_result_rows = 2;
  Harness h(limits);
  h.Once("a", Execute("CREATE TABLE t(x)"));
  json r = h.Once("a", Execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                               "WHERE x < 5) INSERT INTO t SELECT x FROM c RETURNING x"));
  CHECK(ErrorOf(r, 0).at("code") == "RESPONSE_TOO_LARGE");
  CHECK(h.CountRows("a", "t") == 5);
}

TEST_CASE("hrana interrupts a statement that runs longer than the timeout", "[server]") {
  hrana::Limits limits;
  limits.statement_timeout_ms = 50;
  Harness h(limits);
  h.set_clock_step(1);  // every clock reading advances time by 1 ms
  json r = h.Run(
      "a", Body(std::nullopt, json::array({
                                  Execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
                                          "FROM c) SELECT count(*) FROM c"),
                                  Execute("SELECT 'after'"),
                              })));
  CHECK(ErrorOf(r, 0).at("code") == "STATEMENT_TIMEOUT");
  CHECK(Rows(r, 1)[0][0] == Text("after"));
}

TEST_CASE("hrana runs a statement past long_statement_ms at a lower CPU priority", "[server]") {
  hrana::Limits limits;
  limits.long_statement_ms = 5;
  limits.long_statement_nice = 3;
  Harness h(limits);
  h.set_clock_step(1);  // every clock reading advances time by 1 ms
  int before = 0, after = 0;
  std::thread worker([&] {  // a thread of its own: its priority stays lowered
    before = CurrentThreadNice();
    h.Once("a", Execute("SELECT 1"));
    CHECK(CurrentThreadNice() == before);  // short: unchanged
    h.Once("a", Execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                        "LIMIT 200000) SELECT count(*) FROM c"));
    after = CurrentThreadNice();
  });
  worker.join();
  CHECK(after == std::min(19, before + 3));
}

TEST_CASE("hrana refuses ATTACH, VACUUM INTO and VACUUM", "[server]") {
  Harness h;
  json r = h.Run("a", Body(std::nullopt, json::array({
                                             Execute("ATTACH 'b.db' AS b"),
                                             Execute("VACUUM INTO 'copy.db'"),
                                             Execute("VACUUM"),
                                             Execute("PRAGMA hard_heap_limit = 1"),
                                             Execute("PRAGMA writable_schema = ON"),
                                             Execute("PRAGMA writable_schema"),
                                         })));
  CHECK(ErrorOf(r, 0).at("code") == "SQLITE_AUTH");
  CHECK(ErrorOf(r, 1).at("code") == "SQLITE_AUTH");
  CHECK(ErrorOf(r, 2).at("code") == "SQLITE_AUTH");
  CHECK(ErrorOf(r, 3).at("code") == "SQLITE_AUTH");
  CHECK(ErrorOf(r, 4).at("code") == "SQLITE_AUTH");
  CHECK(ErrorOf(r, 5).at("code") == "SQLITE_AUTH");
  CHECK_FALSE(std::filesystem::exists(h.dir() / "b.db"));
  CHECK_FALSE(std::filesystem::exists(h.dir() / "copy.db"));
}

TEST_CASE("hrana writes valid JSON for text that is not UTF-8 and for infinite floats",
          "[server]") {
  Harness h;
  Result<std::string> out = h.Raw(
      "a", Body(std::nullopt,
                json::array({Execute("SELECT CAST(x'ff41' AS TEXT), 1e999, -1e999"), Close()}))
               .dump());
  REQUIRE(out.ok());
  CHECK(out->find("\"value\":\"\xEF\xBF\xBD"
                  "A\"") != std::string::npos);
  CHECK(out->find(R"({"type":"float","value":1e999})") != std::string::npos);
  CHECK(out->find(R"({"type":"float","value":-1e999})") != std::string::npos);
}

// ---------------------------------------------------------------- describe, autocommit

TEST_CASE("hrana describe reports parameters, columns and statement flags", "[server]") {
  Harness h;
  h.Once("a", Execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)"));
  json r = h.Run(
      "a",
      Body(std::nullopt,
           json::array({
               {{"type", "describe"},
                {"sql", "SELECT id, name AS n FROM t WHERE id = ? OR name = :name OR id = ?5"}},
               {{"type", "describe"}, {"sql", "INSERT INTO t(name) VALUES (@v)"}},
               {{"type", "describe"}, {"sql", "EXPLAIN SELECT 1"}},
               {{"type", "describe"}, {"sql", "SELECT 1; SELECT 2"}},
           })));
  const json& select = ResultOf(r, 0).at("result");
  CHECK(select.at("params").size() == 5);
  CHECK(select.at("params")[0].at("name").is_null());
  CHECK(select.at("params")[1].at("name") == ":name");
  CHECK(select.at("params")[2].at("name").is_null());  // not referenced
  CHECK(select.at("params")[4].at("name") == "?5");
  CHECK(select.at("cols") == json::array({{{"name", "id"}, {"decltype", "INTEGER"}},
                                          {{"name", "n"}, {"decltype", "TEXT"}}}));
  CHECK(select.at("is_readonly") == true);
  CHECK(select.at("is_explain") == false);
  const json& insert = ResultOf(r, 1).at("result");
  CHECK(insert.at("params") == json::array({{{"name", "@v"}}}));
  CHECK(insert.at("is_readonly") == false);
  CHECK(ResultOf(r, 2).at("result").at("is_explain") == true);
  CHECK(ErrorOf(r, 3).at("code") == "SQL_MANY_STATEMENTS");
  CHECK(h.CountRows("a", "t") == 0);  // describe does not execute
}

TEST_CASE("hrana get_autocommit is true outside a transaction and false inside", "[server]") {
  Harness h;
  json get = {{"type", "get_autocommit"}};
  json r =
      h.Run("a", Body(std::nullopt,
                      json::array({get, Execute("BEGIN"), get, Execute("COMMIT"), get, Close()})));
  CHECK(ResultOf(r, 0) == json({{"type", "get_autocommit"}, {"is_autocommit", true}}));
  CHECK(ResultOf(r, 2).at("is_autocommit") == false);
  CHECK(ResultOf(r, 4).at("is_autocommit") == true);
}

// ---------------------------------------------------------------- streams and batons

TEST_CASE(
    "hrana transaction spans two pipelines and stays invisible to other streams until "
    "commit",
    "[server]") {
  Harness h;
  h.Once("a", Execute("CREATE TABLE t(x)"));
  json first = h.Run(
      "a",
      Body(std::nullopt, json::array({Execute("BEGIN"), Execute("INSERT INTO t VALUES (1)")})));
  std::string baton = first.at("baton").get<std::string>();
  CHECK(h.CountRows("a", "t") == 0);  // another stream does not see it

  json second = h.Run("a", Body(baton, json::array({Execute("INSERT INTO t VALUES (2)"),
                                                    Execute("SELECT count(*) FROM t")})));
  CHECK(Rows(second, 1)[0][0] == Int(2));  // the stream sees its own writes
  std::string baton2 = second.at("baton").get<std::string>();
  CHECK(baton2 != baton);
  CHECK(h.CountRows("a", "t") == 0);

  json third = h.Run("a", Body(baton2, json::array({Execute("COMMIT"), Close()})));
  CHECK(third.at("baton").is_null());
  CHECK(h.CountRows("a", "t") == 2);
}

TEST_CASE("hrana batons are unguessable base64url strings", "[server]") {
  Harness h;
  json a = h.Run("a", Body(std::nullopt, json::array()));
  json b = h.Run("a", Body(std::nullopt, json::array()));
  std::string baton = a.at("baton").get<std::string>();
  CHECK(baton.size() == 43);  // 32 random bytes
  CHECK(
      baton.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
      std::string::npos);
  CHECK(baton != b.at("baton").get<std::string>());
  CHECK(a.at("base_url").is_null());
}

TEST_CASE("hrana refuses a baton after it was used", "[server]") {
  Harness h;
  json first = h.Run("a", Body(std::nullopt, json::array({Execute("SELECT 1")})));
  std::string old_baton = first.at("baton").get<std::string>();
  json second = h.Run("a", Body(old_baton, json::array({Execute("SELECT 2")})));
  Status reused = h.Fail("a", Body(old_baton, json::array({Execute("SELECT 3")})));
  CHECK(reused.code() == StatusCode::kInvalidArgument);
  CHECK(reused.reason() == "baton_reused");
  // The newest baton still works.
  json third = h.Run("a", Body(second.at("baton").get<std::string>(), json::array({Close()})));
  CHECK(third.at("baton").is_null());
  CHECK(h.engine().open_streams() == 0);
}

TEST_CASE("hrana refuses an unknown baton", "[server]") {
  Harness h;
  Status forged = h.Fail("a", Body(std::string("AAAA"), json::array({Execute("SELECT 1")})));
  CHECK(forged.code() == StatusCode::kInvalidArgument);
  CHECK(forged.reason() == "baton_invalid");
  CHECK(h.opened() == 0);
}

TEST_CASE("hrana close ends the stream: a null baton and errors for later requests", "[server]") {
  Harness h;
  json first = h.Run("a", Body(std::nullopt, json::array({Execute("SELECT 1")})));
  json closed = h.Run(
      "a", Body(first.at("baton").get<std::string>(), json::array({Close(), Execute("SELECT 2")})));
  CHECK(ResultOf(closed, 0) == json({{"type", "close"}}));
  CHECK(ErrorOf(closed, 1).at("code") == "STREAM_CLOSED");
  CHECK(closed.at("baton").is_null());
  CHECK(h.engine().open_streams() == 0);
}

TEST_CASE("hrana expires an idle stream and rolls back its transaction", "[server]") {
  hrana::Limits limits;
  limits.stream_idle_timeout_ms = 10000;
  Harness h(limits);
  h.Once("a", Execute("CREATE TABLE t(x)"));
  json first = h.Run(
      "a",
      Body(std::nullopt, json::array({Execute("BEGIN"), Execute("INSERT INTO t VALUES (1)")})));
  std::string baton = first.at("baton").get<std::string>();

  h.Advance(9999);
  json kept = h.Run("a", Body(baton, json::array({Execute("INSERT INTO t VALUES (2)")})));
  baton = kept.at("baton").get<std::string>();

  h.Advance(10000);
  Status expired = h.Fail("a", Body(baton, json::array({Execute("COMMIT")})));
  CHECK(expired.code() == StatusCode::kInvalidArgument);
  CHECK(expired.reason() == "stream_expired");
  CHECK(h.engine().open_streams() == 0);
  // The write lock is released and nothing was committed.
  json after =
      h.Run("a", Body(std::nullopt, json::array({Execute("INSERT INTO t VALUES (3)"),
                                                 Execute("SELECT count(*) FROM t"), Close()})));
  CHECK(Rows(after, 1)[0][0] == Int(1));
}

TEST_CASE("hrana SweepIdle closes abandoned streams", "[server]") {
  hrana::Limits limits;
  limits.stream_idle_timeout_ms = 1000;
  Harness h(limits);
  h.Run("a", Body(std::nullopt, json::array({Execute("BEGIN IMMEDIATE")})));
  h.Run("b", Body(std::nullopt, json::array()));
  CHECK(h.engine().open_streams() == 2);
  CHECK(h.engine().SweepIdle() == 0);
  h.Advance(1000);
  CHECK(h.engine().SweepIdle() == 2);
  CHECK(h.engine().open_streams() == 0);
}

TEST_CASE("hrana CloseStreamsFor closes the streams of a database at once", "[server]") {
  Harness h;
  h.Once("a", Execute("CREATE TABLE t(x)"));
  json a = h.Run("a", Body(std::nullopt,
                           json::array({Execute("BEGIN"), Execute("INSERT INTO t VALUES (1)")})));
  json b = h.Run("b", Body(std::nullopt, json::array({Execute("SELECT 1")})));
  Status revoked(StatusCode::kUnauthenticated, "credential_revoked", "generation 1 was revoked");
  CHECK(h.engine().CloseStreamsFor([](std::string_view key) { return key == "a"; }, revoked) == 1);
  CHECK(h.engine().open_streams() == 1);

  Status refused =
      h.Fail("a", Body(a.at("baton").get<std::string>(), json::array({Execute("COMMIT")})));
  CHECK(refused == revoked);
  CHECK(h.CountRows("a", "t") == 0);  // rolled back
  json still =
      h.Run("b", Body(b.at("baton").get<std::string>(), json::array({Execute("SELECT 2")})));
  CHECK(Rows(still, 0)[0][0] == Int(2));
}

TEST_CASE("hrana refuses a second request on a running stream and CloseStreamsFor interrupts it",
          "[server]") {
  Harness h;
  h.Once("a", Execute("CREATE TABLE t(x)"));
  std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  // Statement tracing signals the test thread once the long statement starts
  // (the SQL policy refuses application-defined functions).
  struct Signal {
    std::mutex* mu;
    std::condition_variable* cv;
    bool* started;
  } signal{&mu, &cv, &started};
  h.set_on_open([&signal](sqlite3* db) {
    sqlite3_trace_v2(
        db, SQLITE_TRACE_STMT,
        [](unsigned, void* context, void*, void* sql) {
          if (std::string_view(static_cast<const char*>(sql)).find("RECURSIVE") ==
              std::string_view::npos) {
            return 0;
          }
          auto* s = static_cast<Signal*>(context);
          {
            std::lock_guard<std::mutex> lock(*s->mu);
            *s->started = true;
          }
          s->cv->notify_all();
          return 0;
        },
        &signal);
  });
  json opened = h.Run(
      "a",
      Body(std::nullopt, json::array({Execute("BEGIN"), Execute("INSERT INTO t VALUES (1)")})));
  std::string baton = opened.at("baton").get<std::string>();

  json running;
  std::thread runner([&] {
    running = h.Run("a", Body(baton, json::array({
                                         Execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION "
                                                 "ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"),
                                         Execute("COMMIT"),
                                     })));
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return started; });
  }
  // The same baton while its pipeline runs: refused, not queued.
  Result<std::string> concurrent =
      h.engine().HandlePipeline("a", Body(baton, json::array()).dump(), h.Open("a"));
  REQUIRE_FALSE(concurrent.ok());
  CHECK(concurrent.status().code() == StatusCode::kAborted);
  CHECK(concurrent.status().reason() == "stream_busy");

  Status destroyed(StatusCode::kFailedPrecondition, "addon_destroyed", "the add-on was destroyed");
  CHECK(h.engine().CloseStreamsFor([](std::string_view) { return true; }, destroyed) == 1);
  runner.join();

  CHECK(ErrorOf(running, 0).at("code") == "STREAM_CLOSED");
  CHECK(ErrorOf(running, 0).at("message") == "the add-on was destroyed");
  CHECK(ErrorOf(running, 1).at("code") == "STREAM_CLOSED");
  CHECK(running.at("baton").is_null());
  CHECK(h.engine().open_streams() == 0);
  CHECK(h.Fail("a", Body(baton, json::array())) == destroyed);
  CHECK(h.CountRows("a", "t") == 0);
}

TEST_CASE("hrana refuses a baton of database A presented for database B", "[server]") {
  Harness h;
  json a = h.Run("a", Body(std::nullopt, json::array({Execute("SELECT 1")})));
  std::string baton = a.at("baton").get<std::string>();
  Status refused = h.Fail("b", Body(baton, json::array({Execute("SELECT 2")})));
  CHECK(refused.code() == StatusCode::kPermissionDenied);
  CHECK(refused.reason() == "baton_wrong_database");
  // The refusal did not consume the baton.
  json again = h.Run("a", Body(baton, json::array({Close()})));
  CHECK(again.at("baton").is_null());
}

TEST_CASE("hrana limits the number of open streams", "[server]") {
  hrana::Limits limits;
  limits.max_streams = 2;
  Harness h(limits);
  json first = h.Run("a", Body(std::nullopt, json::array()));
  h.Run("a", Body(std::nullopt, json::array()));
  Status full = h.Fail("a", Body(std::nullopt, json::array()));
  CHECK(full.code() == StatusCode::kUnavailable);
  CHECK(full.reason() == "too_many_streams");
  h.Run("a", Body(first.at("baton").get<std::string>(), json::array({Close()})));
  h.Run("a", Body(std::nullopt, json::array()));
  CHECK(h.engine().open_streams() == 2);
}

TEST_CASE("hrana limits the open streams of one database, not of the others", "[server]") {
  hrana::Limits limits;
  limits.max_streams_per_database = 2;
  Harness h(limits);
  h.Run("a", Body(std::nullopt, json::array()));
  json second = h.Run("a", Body(std::nullopt, json::array()));
  Status full = h.Fail("a", Body(std::nullopt, json::array()));
  CHECK(full.code() == StatusCode::kUnavailable);
  CHECK(full.reason() == "too_many_streams");
  h.Run("b", Body(std::nullopt, json::array()));  // another database still opens one
  h.Run("a", Body(second.at("baton").get<std::string>(), json::array({Close()})));
  h.Run("a", Body(std::nullopt, json::array()));
  CHECK(h.engine().open_streams() == 3);
}

TEST_CASE("hrana passes a connection failure through with context", "[server]") {
  Harness h;
  auto fail = []() -> Result<via::sql::Connection> {
    return Unavailable("restore_in_progress", "a restore is running");
  };
  Result<std::string> out =
      h.engine().HandlePipeline("a", Body(std::nullopt, json::array()).dump(), fail);
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().code() == StatusCode::kUnavailable);
  CHECK(out.status().reason() == "restore_in_progress");
  CHECK(out.status().message() == "open database: a restore is running");
  CHECK(h.engine().open_streams() == 0);
}

// ---------------------------------------------------------------- parsing

TEST_CASE("hrana parser accepts the request shapes that clients send", "[server]") {
  hrana::Limits limits;
  // @libsql/client omits the baton on a new stream; unknown fields are ignored.
  auto parsed = hrana::ParsePipelineRequest(
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT ?","args":[{"type":"integer","value":"+7"}],
          "named_args":[],"want_rows":null,"replication_index":"3"}},{"type":"get_autocommit"},
          {"type":"batch","batch":{"steps":[{"stmt":{"sql":"SELECT 1"},"condition":null},
          {"stmt":{"sql_id":2},"condition":{"type":"not","cond":{"type":"ok","step":0}}}]}},
          {"type":"sequence","sql":"SELECT 1","sql_id":null},{"type":"close"}],"future_field":1})",
      limits);
  REQUIRE(parsed.ok());
  CHECK_FALSE(parsed->baton.has_value());
  REQUIRE(parsed->requests.size() == 5);
  const auto& exec = std::get<hrana::ExecuteRequest>(parsed->requests[0]);
  CHECK(exec.stmt.sql == "SELECT ?");
  CHECK(exec.stmt.args == std::vector<hrana::Value>{std::int64_t{7}});
  CHECK(exec.stmt.want_rows);
  const auto& batch = std::get<hrana::BatchRequest>(parsed->requests[2]).batch;
  CHECK_FALSE(batch.steps[0].condition.has_value());
  CHECK(batch.steps[1].stmt.sql_id == 2);
  REQUIRE(batch.steps[1].condition.has_value());
  CHECK(batch.steps[1].condition->kind == hrana::BatchCond::Kind::kNot);
}

TEST_CASE("hrana parser rejects malformed pipeline bodies", "[server]") {
  hrana::Limits limits;
  limits.max_requests = 4;
  limits.max_sql_bytes = 64;
  limits.max_json_depth = 16;
  const std::string kCases[] = {
      "",
      "not json",
      "[]",
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT 1"}}])",  // truncated
      R"({"baton":null})",
      R"({"requests":{}})",
      R"({"baton":5,"requests":[]})",
      R"({"requests":[1]})",
      R"({"requests":[{"type":"explode"}]})",
      R"({"requests":[{"kind":"execute"}]})",
      R"({"requests":[{"type":"execute"}]})",
      R"({"requests":[{"type":"execute","stmt":{}}]})",
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT 1","sql_id":1}}]})",
      R"({"requests":[{"type":"execute","stmt":{"sql":7}}]})",
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT ?","args":null}}]})",
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT ?","args":[{"type":"integer","value":1}]}}]})",
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT ?","args":[{"type":"integer","value":"9223372036854775808"}]}}]})",
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT ?","args":[{"type":"integer","value":"12abc"}]}}]})",
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT ?","args":[{"type":"integer","value":""}]}}]})",
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT ?","args":[{"type":"float","value":"0.5"}]}}]})",
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT ?","args":[{"type":"blob","base64":"!!!!"}]}}]})",
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT ?","args":[{"type":"blob","base64":"QR"}]}}]})",
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT ?","args":[{"type":"date","value":"x"}]}}]})",
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT ?","args":[{"type":"text"}]}}]})",
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT :a","named_args":[{"value":{"type":"null"}}]}}]})",
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT 1","want_rows":"yes"}}]})",
      R"({"requests":[{"type":"store_sql","sql_id":2147483648,"sql":"SELECT 1"}]})",
      R"({"requests":[{"type":"store_sql","sql_id":1.5,"sql":"SELECT 1"}]})",
      R"({"requests":[{"type":"close_sql"}]})",
      R"({"requests":[{"type":"sequence"}]})",
      R"({"requests":[{"type":"describe","sql":null,"sql_id":null}]})",
      R"({"requests":[{"type":"batch","batch":{"steps":[{"stmt":{"sql":"SELECT 1"},"condition":{"type":"ok","step":0}}]}}]})",
      R"({"requests":[{"type":"batch","batch":{"steps":[{"stmt":{"sql":"SELECT 1"}},{"stmt":{"sql":"SELECT 1"},"condition":{"type":"ok","step":-1}}]}}]})",
      R"({"requests":[{"type":"batch","batch":{"steps":[{"stmt":{"sql":"SELECT 1"}},{"stmt":{"sql":"SELECT 1"},"condition":{"type":"maybe"}}]}}]})",
      R"({"requests":[{"type":"batch","batch":{"steps":[{"stmt":{"sql":"SELECT 1"}},{"stmt":{"sql":"SELECT 1"},"condition":{"type":"and","conds":{}}}]}}]})",
      R"({"requests":[{"type":"batch","batch":{}}]})",
      R"({"requests":[{"type":"close"},{"type":"close"},{"type":"close"},{"type":"close"},{"type":"close"}]})",
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT 1 -- this comment makes the SQL text longer than the 64 byte limit"}}]})",
      R"({"requests":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]})",
      "{\"requests\":[{\"type\":\"execute\",\"stmt\":{\"sql\":\"\xff\"}}]}",  // not UTF-8
  };
  for (const std::string& body : kCases) {
    INFO(body);
    auto parsed = hrana::ParsePipelineRequest(body, limits);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == StatusCode::kInvalidArgument);
    CHECK(parsed.status().reason() == "invalid_pipeline");
  }
}

TEST_CASE("hrana parser rejects a body larger than the limit", "[server]") {
  hrana::Limits limits;
  limits.max_body_bytes = 16;
  auto parsed = hrana::ParsePipelineRequest(R"({"requests":[],"baton":null})", limits);
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("hrana parser error names the offending field", "[server]") {
  auto parsed = hrana::ParsePipelineRequest(
      R"({"requests":[{"type":"close"},{"type":"execute","stmt":{"sql":"SELECT ?","args":[{"type":"integer","value":"x"}]}}]})",
      hrana::Limits{});
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.status().message().find("requests[1].stmt.args[0].value") != std::string::npos);
}

TEST_CASE("hrana HandlePipeline answers a malformed body with invalid_pipeline", "[server]") {
  Harness h;
  Result<std::string> out = h.Raw("a", R"({"requests":[{"type":"nope"}]})");
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().reason() == "invalid_pipeline");
  CHECK(h.opened() == 0);
}

TEST_CASE("hrana encodes an error body that clients read as a Hrana error", "[server]") {
  CHECK(hrana::EncodeError({"bad \"token\"", "UNAUTHORIZED"}) ==
        R"({"message":"bad \"token\"","code":"UNAUTHORIZED"})");
}

// ---------------------------------------------------------------- samples

namespace {

std::string ReadSample(const std::string& name) {
  std::filesystem::path path =
      std::filesystem::path(VIA_SOURCE_DIR) / "tests/testdata/hrana" / name;
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace

TEST_CASE("hrana runs the sample request bodies", "[server]") {
  Harness h;
  Result<std::string> out = h.Raw("a", ReadSample("execute_and_close.json"));
  REQUIRE(out.ok());
  json r = json::parse(*out);
  CHECK(Rows(r, 0)[0] == json::array({Int(std::numeric_limits<std::int64_t>::min()),
                                      {{"type", "blob"}, {"base64", "AP8Q"}},
                                      Text("h\xC3\xA9llo")}));
  CHECK(r.at("baton").is_null());

  out = h.Raw("a", ReadSample("transactional_batch.json"));
  REQUIRE(out.ok());
  r = json::parse(*out);
  const json& batch = ResultOf(r, 0).at("result");
  CHECK(batch.at("step_results")[2].at("rows")[0][0] == Int(1));
  CHECK(batch.at("step_results")[3].is_object());  // COMMIT
  CHECK(batch.at("step_results")[4].is_null());    // no ROLLBACK
  CHECK(batch.at("step_results")[5].is_null());
  CHECK(ResultOf(r, 1).at("is_autocommit") == true);

  out = h.Raw("a", ReadSample("stored_sql_sequence_describe.json"));
  REQUIRE(out.ok());
  r = json::parse(*out);
  CHECK(Rows(r, 2)[0] == json::array({Int(1), Text("x")}));
  CHECK(ResultOf(r, 3).at("result").at("cols")[1] == json({{"name", "b"}, {"decltype", "TEXT"}}));
  CHECK(ResultOf(r, 4).at("result").at("is_explain") == true);
  CHECK(ErrorOf(r, 6).at("code") == "SQL_NOT_FOUND");
  CHECK(ErrorOf(r, 7).at("code") == "SQL_MANY_STATEMENTS");
}

TEST_CASE("hrana encodes a pipeline response exactly as the golden sample", "[server]") {
  hrana::StmtResult result;
  result.cols = {hrana::Col{"x", "INTEGER"}};
  result.rows = {{hrana::Value(std::int64_t{42})}};
  result.rows_read = 1;
  hrana::PipelineResponse response;
  response.results = {
      hrana::StreamResponse(hrana::ExecuteResponse{result}),
      hrana::Error{"SQLite error: UNIQUE constraint failed: t.id", "SQLITE_CONSTRAINT"},
      hrana::StreamResponse(hrana::CloseResponse{}),
  };
  CHECK(hrana::EncodePipelineResponse(response) == ReadSample("response_example.json"));
}
