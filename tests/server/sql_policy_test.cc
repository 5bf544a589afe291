// The SQL policy of proxy connections (server/sql_policy.h) through the Hrana
// engine: the deny-by-default authorizer (functions, PRAGMAs, modules), the
// sqlite3_limit()s, and the guarded built-ins whose single call would
// otherwise run for seconds.

#include "server/sql_policy.h"

#include <sqlite3.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <iterator>
#include <string>

#include "hrana_harness.h"

using namespace via;
using namespace via::server;
using namespace via::server::hrana_test;

namespace {

// Runs one statement on a fresh stream and returns its result or error object.
json One(Harness& h, const std::string& sql, json args = json::array()) {
  json r = h.Once("a", Execute(sql, std::move(args)));
  return r.at("results").at(0);
}

std::string CodeOf(const json& result) {
  return result.at("type") == "error" ? result.at("error").at("code").get<std::string>() : "ok";
}

// The error code of `sql` ("ok" when it succeeds), with the result in the log.
std::string Code(Harness& h, const std::string& sql, json args = json::array()) {
  json r = One(h, sql, std::move(args));
  INFO(sql << " -> " << r.dump().substr(0, 300));
  return CodeOf(r);
}

std::string FirstText(Harness& h, const std::string& sql) {
  json r = One(h, sql);
  INFO(sql << " -> " << r.dump().substr(0, 300));
  REQUIRE(r.at("type") == "ok");
  const json& v = r.at("response").at("result").at("rows").at(0).at(0);
  return v.at("type") == "null" ? std::string("NULL") : v.at("value").get<std::string>();
}

double SecondsOf(const std::function<void()>& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("sql policy refuses fts3_tokenizer in every form, and the crash chain", "[server]") {
  Harness h;
  CHECK(Code(h, "SELECT hex(fts3_tokenizer('porter'))") == "SQLITE_AUTH");
  CHECK(Code(h, "SELECT fts3_tokenizer('simple', x'4141414141414141')") == "SQLITE_AUTH");
  CHECK(Code(h, "SELECT fts3_tokenizer(?, ?)",
             json::array({Text("simple"), Blob(Bytes(8, 0x41))})) == "SQLITE_AUTH");
  // What the refused call would have armed: the tokenizer is SQLite's own.
  json r = h.Run(
      "a",
      Body(std::nullopt,
           json::array({Execute("SELECT fts3_tokenizer('simple', x'4141414141414141')"),
                        Execute("CREATE VIRTUAL TABLE temp.f USING fts3(tokenize=simple)"),
                        Execute("INSERT INTO temp.f VALUES ('still alive')"),
                        Execute("SELECT count(*) FROM temp.f WHERE f MATCH 'alive'"), Close()})));
  CHECK(ErrorOf(r, 0).at("code") == "SQLITE_AUTH");
  CHECK(Rows(r, 3)[0][0] == Int(1));
}

TEST_CASE("sql policy refuses functions that are not listed", "[server]") {
  Harness h;
  for (const char* sql :
       {"SELECT load_extension('x')", "SELECT fts5(NULL)", "SELECT rtreenode(2, x'00')",
        "SELECT rtreedepth(x'00')", "SELECT sqlite_log(1, 'x')", "SELECT fts5_source_id()"}) {
    CHECK(Code(h, sql) == "SQLITE_AUTH");
  }
  // A view cannot smuggle one in: the authorizer also runs where it is used.
  REQUIRE(Code(h, "CREATE VIEW v AS SELECT sqlite_log(1, 'x') AS x") == "ok");
  CHECK(Code(h, "SELECT * FROM v") == "SQLITE_AUTH");
}

TEST_CASE("sql policy allows the listed functions of every family", "[server]") {
  Harness h;
  REQUIRE(Code(h, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n REAL)") == "ok");
  REQUIRE(Code(h, "INSERT INTO t(v, n) VALUES ('a', 1.5), ('b', 2.5), ('c', 4)") == "ok");
  for (const char* sql : {
           "SELECT abs(-1), coalesce(NULL, 1), iif(1, 'y', 'n'), instr('abc', 'b'), "
           "printf('%05.1f|%-3s|%d', 3.14159, 'x', 42), format('%q', 'it''s'), "
           "replace('aXb', 'X', '-'), trim('  x  '), trim('xxyxx', 'x'), upper('a'), "
           "substr('hello', 2, 3), hex(randomblob(4)) IS NOT NULL, typeof(zeroblob(2)), "
           "unicode('A'), char(65), quote('x'), round(2.5), sign(-3), soundex('Robert')",
           "SELECT count(*), sum(n), avg(n), total(n), min(v), max(v), group_concat(v, ',') FROM t",
           "SELECT row_number() OVER w, rank() OVER w, lag(v) OVER w, lead(v) OVER w, "
           "first_value(v) OVER w, ntile(2) OVER w, cume_dist() OVER w FROM t WINDOW w AS (ORDER "
           "BY id)",
           "SELECT date('2024-01-01', '+1 day'), datetime(0, 'unixepoch'), "
           "unixepoch('2024-01-01'), "
           "strftime('%Y', '2024-05-06'), julianday('2024-01-01'), current_timestamp IS NOT NULL",
           "SELECT json_object('a', 1) -> '$.a', json_array(1, 2) ->> 1, json_extract('{\"x\":3}', "
           "'$.x'), json_valid('{}'), json_set('{}', '$.y', 2), json_group_array(v) FROM t",
           "SELECT * FROM json_each('[1,2]') JOIN json_tree('{\"a\":1}')",
           "SELECT sqrt(16), pow(2, 10), ln(1), log10(100), pi(), floor(1.5), ceil(1.5), mod(7, 3)",
           "SELECT v FROM t WHERE v LIKE 'a%' OR v GLOB 'b*'",
       }) {
    CHECK(Code(h, sql) == "ok");
  }
  CHECK(FirstText(h, "SELECT printf('%05.1f|%-3s|%d', 3.14159, 'x', 42)") == "003.1|x  |42");
}

TEST_CASE("sql policy lets ALTER TABLE use SQLite's internal functions", "[server]") {
  Harness h;
  REQUIRE(Code(h, "CREATE TABLE t(a, b, c)") == "ok");
  CHECK(Code(h, "ALTER TABLE t RENAME TO u") == "ok");
  CHECK(Code(h, "ALTER TABLE u RENAME COLUMN a TO a2") == "ok");
  CHECK(Code(h, "ALTER TABLE u ADD COLUMN d DEFAULT 1") == "ok");
  CHECK(Code(h, "ALTER TABLE u DROP COLUMN c") == "ok");
  CHECK(FirstText(h, "SELECT group_concat(name) FROM pragma_table_info('u')") == "a2,b,d");
  // Apps cannot call them directly.
  CHECK(Code(h, "SELECT sqlite_rename_test(1, 2, 3, 4, 5, 6, 7)") == "SQLITE_ERROR");
}

TEST_CASE("sql policy keeps the provider's settings: setting pragmas is refused", "[server]") {
  Harness h;
  REQUIRE(Code(h, "PRAGMA journal_mode = WAL") == "SQLITE_AUTH");
  for (const char* sql : {
           "PRAGMA journal_mode = DELETE",
           "PRAGMA main.journal_mode = OFF",
           "PRAGMA locking_mode = EXCLUSIVE",
           "PRAGMA mmap_size = 268435456",
           "PRAGMA cache_size = 1000000",
           "PRAGMA synchronous = OFF",
           "PRAGMA busy_timeout = 999999",
           "PRAGMA temp_store = MEMORY",
           "PRAGMA wal_autocheckpoint = 0",
           "PRAGMA wal_checkpoint(TRUNCATE)",
           "PRAGMA page_size = 65536",
           "PRAGMA auto_vacuum = FULL",
           "PRAGMA max_page_count = 1",
           "PRAGMA threads = 8",
           "PRAGMA hard_heap_limit = 1",
           "PRAGMA soft_heap_limit = 1",
           "PRAGMA temp_store_directory = '/tmp'",
           "PRAGMA writable_schema = ON",
           "PRAGMA trusted_schema = ON",
           "PRAGMA integrity_check",
           "PRAGMA quick_check",
           "PRAGMA database_list",
           "SELECT * FROM pragma_database_list",
           "PRAGMA compile_options",
           "PRAGMA shrink_memory",
           "PRAGMA incremental_vacuum",
       }) {
    CHECK(Code(h, sql) == "SQLITE_AUTH");
  }
}

TEST_CASE("sql policy allows introspection and per-connection pragmas", "[server]") {
  Harness h;
  REQUIRE(Code(h, "CREATE TABLE p(id INTEGER PRIMARY KEY)") == "ok");
  REQUIRE(Code(h, "CREATE TABLE c(id INTEGER PRIMARY KEY, p REFERENCES p(id))") == "ok");
  REQUIRE(Code(h, "CREATE INDEX c_p ON c(p)") == "ok");
  for (const char* sql : {
           "PRAGMA table_info(c)",
           "SELECT * FROM pragma_table_info('c')",
           "PRAGMA table_xinfo(c)",
           "PRAGMA index_list(c)",
           "PRAGMA index_info(c_p)",
           "PRAGMA index_xinfo(c_p)",
           "PRAGMA foreign_key_list(c)",
           "PRAGMA foreign_key_check",
           "PRAGMA table_list",
           "PRAGMA collation_list",
           "PRAGMA journal_mode",
           "PRAGMA locking_mode",
           "PRAGMA page_size",
           "PRAGMA page_count",
           "PRAGMA cache_size",
           "PRAGMA user_version",
           "PRAGMA user_version = 7",
           "PRAGMA foreign_keys = ON",
           "PRAGMA defer_foreign_keys = 1",
           "PRAGMA recursive_triggers = 0",
           "PRAGMA query_only = 0",
           "PRAGMA optimize",
           "PRAGMA data_version",
           "PRAGMA schema_version",
       }) {
    CHECK(Code(h, sql) == "ok");
  }
  CHECK(FirstText(h, "PRAGMA user_version") == "7");
  CHECK(FirstText(h, "PRAGMA cache_size") == std::to_string(-hrana::kCacheKiB));
}

TEST_CASE("sql policy allows the listed modules and hides the others", "[server]") {
  Harness h;
  for (const char* sql : {
           "CREATE VIRTUAL TABLE f3 USING fts3(x)",
           "CREATE VIRTUAL TABLE f4 USING fts4(x)",
           "CREATE VIRTUAL TABLE f5 USING fts5(x)",
           "CREATE VIRTUAL TABLE v5 USING fts5vocab(f5, row)",
           "CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)",
           "CREATE VIRTUAL TABLE ri USING rtree_i32(id, x0, x1)",
           "INSERT INTO f4 VALUES ('hello world')",
           "INSERT INTO f5 VALUES ('hello world')",
           "INSERT INTO r VALUES (1, 0, 10)",
           "SELECT snippet(f4), offsets(f4), matchinfo(f4) FROM f4 WHERE f4 MATCH 'hello'",
           "SELECT highlight(f5, 0, '[', ']'), bm25(f5) FROM f5 WHERE f5 MATCH 'hello'",
           "SELECT * FROM v5",
           "SELECT id FROM r WHERE x0 < 5",
       }) {
    CHECK(Code(h, sql) == "ok");
  }
  for (const char* sql : {
           "CREATE VIRTUAL TABLE tok USING fts3tokenize(simple)",
           "CREATE VIRTUAL TABLE aux USING fts4aux(f4)",
           "CREATE VIRTUAL TABLE s USING dbstat",
           "CREATE VIRTUAL TABLE temp.tok USING fts3tokenize(simple)",
       }) {
    CHECK(Code(h, sql) == "SQLITE_AUTH");
  }
  // Eponymous tables of dropped modules do not exist on a proxy connection.
  for (const char* sql : {"SELECT * FROM dbstat", "SELECT * FROM sqlite_stmt"}) {
    json r = One(h, sql);
    CHECK(CodeOf(r) == "SQLITE_ERROR");
    CHECK(r.at("error").at("message").get<std::string>().find("no such table") !=
          std::string::npos);
  }
}

TEST_CASE("sql policy refuses EXPLAIN but allows EXPLAIN QUERY PLAN", "[server]") {
  Harness h;
  REQUIRE(Code(h, "CREATE VIRTUAL TABLE f USING fts5(x)") == "ok");
  CHECK(Code(h, "EXPLAIN SELECT * FROM f WHERE f MATCH 'x'") == "SQLITE_AUTH");
  CHECK(Code(h, "EXPLAIN QUERY PLAN SELECT * FROM f WHERE f MATCH 'x'") == "ok");
  json r = h.Once("a", {{"type", "sequence"}, {"sql", "SELECT 1; EXPLAIN SELECT 1;"}});
  CHECK(ErrorOf(r, 0).at("code") == "SQLITE_AUTH");
}

TEST_CASE("sql policy applies sqlite3_limit on every proxy connection", "[server]") {
  hrana::Limits limits;
  limits.max_value_bytes = 1000;
  limits.max_sql_bytes = 100000;
  Harness h(limits);
  CHECK(Code(h, "SELECT zeroblob(1001)") == "SQLITE_TOOBIG");
  CHECK(Code(h, "SELECT length(zeroblob(1000))") == "ok");
  const int depth = hrana::kLimitExprDepth + 10;
  CHECK(Code(h, "SELECT " + std::string(depth, '(') + "1" + std::string(depth, ')')) ==
        "SQLITE_ERROR");
  std::string compound = "SELECT 1";
  for (int i = 0; i < hrana::kLimitCompoundSelect; ++i) compound += " UNION ALL SELECT 1";
  CHECK(Code(h, compound) == "SQLITE_ERROR");
  std::string args = "SELECT max(1";
  for (int i = 0; i < hrana::kLimitFunctionArgs; ++i) args += ",1";
  CHECK(Code(h, args + ")") == "SQLITE_ERROR");
  const std::string pattern(hrana::kLimitLikePatternLength + 1, '%');
  CHECK(Code(h, "SELECT 'a' LIKE '" + pattern + "'") == "SQLITE_ERROR");
  CHECK(Code(h, "SELECT 'a' LIKE '" + pattern.substr(1) + "'") == "ok");
  // Triggers that fire each other stop at the trigger depth.
  REQUIRE(Code(h, "CREATE TABLE n(x)") == "ok");
  REQUIRE(Code(h,
               "CREATE TRIGGER again AFTER INSERT ON n BEGIN INSERT INTO n VALUES "
               "(new.x + 1); END") == "ok");
  json r =
      h.Run("a", Body(std::nullopt, json::array({Execute("PRAGMA recursive_triggers = ON"),
                                                 Execute("INSERT INTO n VALUES (1)"), Close()})));
  CHECK(ErrorOf(r, 1).at("message").get<std::string>().find("too many levels of trigger") !=
        std::string::npos);
  CHECK(Code(h, "ATTACH ':memory:' AS m") == "SQLITE_AUTH");
}

TEST_CASE("sql policy bounds one printf call: '%.*c' with a huge precision fails at once",
          "[server]") {
  Harness h;  // values up to 8 MiB
  for (const char* sql : {
           "SELECT printf('%.*c', 2e9, 'x')",
           "SELECT format('%.*c', 2e9, 'x')",
           "SELECT printf('%n%.*c', 2e9, 'x')",
           "SELECT printf('%%%5.*c', 2e9, 'x')",
           "SELECT printf('%-*.*c', 1, 2e9, 'x')",
           "SELECT printf('%,.*c', -2e9, 'x')",
           "SELECT printf('%.2000000000c', 'x')",
           "SELECT printf('%*d', 2000000000, 1)",
           "SELECT printf('%.*c%.*c', 5000000, 'x', 5000000, 'x')",
       }) {
    std::string code;
    const double seconds = SecondsOf([&] { code = Code(h, sql); });
    CHECK(code == "SQLITE_TOOBIG");
    CHECK(seconds < 1.0);
  }
  CHECK(FirstText(h, "SELECT length(printf('%.*c', 1000000, 'x'))") == "1000000");
  // Past the arguments, and past an unknown conversion, nothing is read.
  CHECK(Code(h, "SELECT printf('%.*c')") == "ok");
  CHECK(Code(h, "SELECT printf('%y%.*c', 2e9, 'x')") == "ok");
}

TEST_CASE("sql policy gives the same printf results as SQLite's own", "[server]") {
  Harness h;
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(":memory:", &raw) == SQLITE_OK);
  for (const char* call : {
           "printf('%d|%5d|%-5d|%05d|%+d|% d|%,d', 1, 2, 3, 4, 5, 6, 1234567)",
           "printf('%x|%X|%o|%#x|%p', 255, 255, 8, 255, 255)",
           "printf('%f|%.2f|%e|%g|%G|%!.3f|%10.4f', 1.5, 2.345, 1e10, 0.0001, 1e-10, 3.0, 3.14159)",
           "printf('%s|%.2s|%10s|%-10s|%q|%Q|%w', 'abc', 'abc', 'r', 'l', 'it''s', NULL, 'a\"b')",
           "printf('%c|%5c|%.3c|%-3c|', 'xyz', 'y', 'z', 'w')",
           "printf('%*d|%-*d|%.*f|%*.*f', 4, 1, 4, 2, 2, 3.14159, 8, 3, 2.5)",
           "printf('%lld|%ld|%lf|%%|%n|%r', 1, 2, 3.5, 4)",
           "format('%s=%d', 'k', 9)",
           "printf('%.*c', 3, 'ab')",
           "printf('%5%')",
           "printf(NULL, 1)",
           "printf('%')",
       }) {
    const std::string sql = std::string("SELECT ") + call;
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(raw, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    const std::string expected = text ? text : "NULL";
    sqlite3_finalize(stmt);
    INFO(call);
    CHECK(FirstText(h, sql) == expected);
  }
  sqlite3_close(raw);
}

TEST_CASE("sql policy bounds one instr, replace or trim call", "[server]") {
  Harness h;
  for (const char* sql : {
           "SELECT instr(zeroblob(2000000), zeroblob(100000) || x'01')",
           "SELECT replace(printf('%.*c', 4000000, 'a'), printf('%.*c', 1000, 'a') || 'b', 'x')",
           "SELECT trim(printf('%.*c', 200000, 'a'), printf('%.*c', 1000, 'b') || 'a')",
           "SELECT ltrim(printf('%.*c', 200000, 'a'), printf('%.*c', 1000, 'b') || 'a')",
           "SELECT rtrim(printf('%.*c', 200000, 'a'), printf('%.*c', 1000, 'b') || 'a')",
       }) {
    std::string code;
    const double seconds = SecondsOf([&] { code = Code(h, sql); });
    CHECK(code == "SQLITE_TOOBIG");
    CHECK(seconds < 1.0);
  }
  CHECK(FirstText(h, "SELECT instr(printf('%.*c', 1000000, 'a') || 'needle', 'needle')") ==
        "1000001");
  CHECK(FirstText(h, "SELECT length(replace(printf('%.*c', 1000000, 'a'), 'a', 'bb'))") ==
        "2000000");
  CHECK(FirstText(h, "SELECT length(trim(printf('%.*c', 1000000, 'a'), ' a'))") == "0");
  CHECK(FirstText(h, "SELECT trim('xxhixx', 'x') || ltrim('  l') || rtrim('r  ')") == "hilr");
  CHECK(FirstText(h, "SELECT instr(x'000102', x'02') || instr(NULL, 'a') IS NULL") == "1");
}

TEST_CASE("sql policy keeps its allow-lists sorted (they are binary-searched)", "[server]") {
  auto functions = hrana::AllowedFunctions();
  CHECK(std::is_sorted(functions.begin(), functions.end()));
  auto pragmas = hrana::AllowedPragmas();
  CHECK(std::is_sorted(pragmas.begin(), pragmas.end(),
                       [](const auto& a, const auto& b) { return a.name < b.name; }));
  auto modules = hrana::AllowedModules();
  CHECK(std::is_sorted(modules.begin(), modules.end()));
}

TEST_CASE("the docs list every allowed function, pragma and module", "[server]") {
  std::ifstream in(std::string(VIA_SOURCE_DIR) + "/docs/runtime.md");
  REQUIRE(in);
  const std::string doc((std::istreambuf_iterator<char>(in)), {});
  auto listed = [&](std::string_view name) {
    return doc.find("`" + std::string(name) + "`") != std::string::npos;
  };
  for (std::string_view f : hrana::AllowedFunctions()) CHECK(listed(f));
  for (const hrana::PragmaRule& p : hrana::AllowedPragmas()) CHECK(listed(p.name));
  for (std::string_view m : hrana::KeptModules()) CHECK(listed(m));
}
