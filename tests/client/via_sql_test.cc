// `via sql` end to end: the built binary against a real `via serve`.

#include <nlohmann/json.hpp>

#include <fstream>

#include "fixture.h"

using namespace via;
using nlohmann::json;
using via::client_test::World;

TEST_CASE("via sql prints a table, and rows as JSON with --json", "[client][cli]") {
  World world;
  REQUIRE(world.ViaSql("DATABASE 'CREATE TABLE t (id INTEGER PRIMARY KEY, v)'").exit_code == 0);
  auto insert = world.ViaSql("DATABASE 'INSERT INTO t (v) VALUES (?)' --arg 'text:hello'");
  REQUIRE(insert.exit_code == 0);
  CHECK(insert.out == "1 row affected (last insert rowid 1)\n");
  auto table = world.ViaSql("DATABASE 'SELECT id, v FROM t'");
  REQUIRE(table.exit_code == 0);
  CHECK(table.out ==
        "id  v\n"
        "--  -----\n"
        "1   hello\n"
        "(1 row)\n");
  auto j = world.ViaSql("--json DATABASE 'SELECT id, v FROM t'");
  REQUIRE(j.exit_code == 0);
  json doc = json::parse(j.out);
  CHECK(doc["columns"] == json::array({"id", "v"}));
  CHECK(doc["rows"] == json::parse(R"([[1,"hello"]])"));
  CHECK(doc["binding"] == "DATABASE");
  CHECK(doc["generation"] == 1);
}

TEST_CASE("via sql types --arg values by prefix, bare integers as integers", "[client][cli]") {
  World world;
  auto r = world.ViaSql(
      "--json DATABASE 'SELECT typeof(?1), ?1, typeof(?2), ?2, typeof(?3), typeof(?4), ?4, "
      "typeof(?5), ?5, typeof(?6), ?6, typeof(?7), ?7' "
      "--arg 42 --arg text:42 --arg null: --arg float:2.5 --arg blob:AAEC "
      "--arg=-9223372036854775808 "
      "--arg 'hello world'");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  json row = json::parse(r.out)["rows"][0];
  CHECK(row ==
        json::parse(R"(["integer",42,"text","42","null","real",2.5,"blob",{"base64":"AAEC"},)"
                    R"("integer",-9223372036854775808,"text","hello world"])"));
}

TEST_CASE("via sql refuses a malformed --arg with exit 2", "[client][cli]") {
  World world;
  auto r = world.ViaSql("--json DATABASE 'SELECT ?' --arg int:x");
  CHECK(r.exit_code == 2);
  CHECK(json::parse(r.out)["error"]["code"] == "invalid_arg");
}

TEST_CASE("via sql exits 2 with sql_error on a SQL error", "[client][cli]") {
  World world;
  auto r = world.ViaSql("--json DATABASE 'SELECT * FROM missing'");
  CHECK(r.exit_code == 2);
  json error = json::parse(r.out)["error"];
  CHECK(error["code"] == "sql_error");
  CHECK(error["message"].get<std::string>().find("SQLITE_ERROR") != std::string::npos);
  auto text = world.ViaSql("DATABASE 'SELECT * FROM missing'");
  CHECK(text.exit_code == 2);
  CHECK(text.out.empty());  // the error goes to stderr
}

TEST_CASE("via sql maps refusals to stable codes and exit codes", "[client][cli]") {
  World world;
  auto forbidden = world.ViaSql("--json LATE 'SELECT 1'");
  CHECK(forbidden.exit_code == 4);
  CHECK(json::parse(forbidden.out)["error"]["code"] == "forbidden");
  auto missing = world.ViaSql("--json NOPE 'SELECT 1'");
  CHECK(missing.exit_code == 5);
  CHECK(json::parse(missing.out)["error"]["code"] == "not_found");
  auto bad = testing::Run("VIA_CONFIG_URL='" + world.server->url() + "' VIA_WORKLOAD_TOKEN=x " +
                          testing::ViaBinary() + " --json sql DATABASE 'SELECT 1' </dev/null");
  CHECK(bad.exit_code == 6);
  CHECK(json::parse(bad.out)["error"]["code"] == "unauthorized");
  auto unset = testing::Run("env -u VIA_CONFIG_URL -u VIA_WORKLOAD_TOKEN " + testing::ViaBinary() +
                            " --json sql DATABASE 'SELECT 1' </dev/null");
  CHECK(unset.exit_code == 2);
  CHECK(json::parse(unset.out)["error"]["code"] == "not_configured");
}

namespace {

// Writes `text` to a file in the test's temporary folder and returns its path.
std::string WriteScript(World& world, const std::string& name, const std::string& text) {
  const std::string path = world.dir.path().string() + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

}  // namespace

TEST_CASE("via sql --file runs a script's statements in one transaction", "[client][cli]") {
  World world;
  // Semicolons inside a string, a quoted identifier, comments and a trigger
  // body do not end a statement; empty statements are skipped.
  const std::string script =
      "-- a migration\n"
      "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, \"odd;name\" TEXT);\n"
      "CREATE TABLE log (msg TEXT);;\n"
      "/* a trigger; with semicolons */\n"
      "CREATE TRIGGER noted AFTER INSERT ON notes BEGIN\n"
      "  INSERT INTO log VALUES ('added;' || new.id);\n"
      "  INSERT INTO log VALUES ('twice');\n"
      "END;\n"
      "INSERT INTO notes (body) VALUES ('a;b'), ('c');\n"
      "SELECT body FROM notes ORDER BY id;\n"
      "SELECT count(*) AS n FROM log";  // the last one needs no semicolon
  const std::string path = WriteScript(world, "m.sql", script);
  auto r = world.ViaSql("DATABASE --file '" + path + "'");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out ==
        "body\n"
        "----\n"
        "a;b\n"
        "c\n"
        "(2 rows)\n"
        "\n"
        "n\n"
        "-\n"
        "4\n"
        "(1 row)\n"
        "\n"
        "6 statements ran in one transaction, 2 rows affected\n");
  // --json: one result per statement, with its line.
  const std::string more = WriteScript(world, "more.sql",
                                       "INSERT INTO notes (body) VALUES ('d');\n\n"
                                       "  SELECT max(id) AS top FROM notes;\n");
  auto j = world.ViaSql("--json DATABASE -f '" + more + "'");
  REQUIRE(j.exit_code == 0);
  json doc = json::parse(j.out);
  CHECK(doc["statements"] == 2);
  CHECK(doc["affected_row_count"] == 1);  // SQLite counts no trigger rows
  REQUIRE(doc["results"].size() == 2);
  CHECK(doc["results"][0]["line"] == 1);
  CHECK(doc["results"][1]["line"] == 3);
  CHECK(doc["results"][1]["rows"] == json::parse("[[3]]"));
  CHECK(doc["binding"] == "DATABASE");
  // - reads the script from stdin.
  auto piped = testing::Run("printf 'SELECT 40 + 2 AS x;' | VIA_CONFIG_URL='" + world.server->url() +
                            "' VIA_WORKLOAD_TOKEN='" + world.token + "' " + testing::ViaBinary() +
                            " --json sql DATABASE --file -");
  REQUIRE(piped.exit_code == 0);
  CHECK(json::parse(piped.out)["results"][0]["rows"] == json::parse("[[42]]"));
}

TEST_CASE("via sql --file applies nothing when a statement fails, across requests",
          "[client][cli]") {
  World world;
  REQUIRE(world.ViaSql("DATABASE 'CREATE TABLE t (id INTEGER PRIMARY KEY)'").exit_code == 0);
  // 700 inserts go in three requests on one stream; the failing statement
  // comes after all of them, so the transaction spans the requests.
  std::string script;
  for (int i = 1; i <= 700; ++i) script += "INSERT INTO t VALUES (" + std::to_string(i) + ");\n";
  script += "INSERT INTO t VALUES (1);\n";  // line 701: a duplicate key
  auto r = world.ViaSql("--json DATABASE --file '" + WriteScript(world, "dup.sql", script) + "'");
  INFO(r.out);
  CHECK(r.exit_code == 2);
  json error = json::parse(r.out)["error"];
  CHECK(error["code"] == "sql_error");
  const std::string message = error["message"];
  CHECK(message.find("statement 701 (line 701)") != std::string::npos);
  CHECK(message.find("SQLITE_CONSTRAINT") != std::string::npos);
  CHECK(message.find("nothing was applied") != std::string::npos);
  auto count = world.ViaSql("--json DATABASE 'SELECT count(*) FROM t'");
  REQUIRE(count.exit_code == 0);
  CHECK(json::parse(count.out)["rows"] == json::parse("[[0]]"));
  // Without the duplicate the same 700 rows all land.
  script.resize(script.size() - std::string("INSERT INTO t VALUES (1);\n").size());
  REQUIRE(world.ViaSql("DATABASE --file '" + WriteScript(world, "ok.sql", script) + "'").exit_code == 0);
  count = world.ViaSql("--json DATABASE 'SELECT count(*) FROM t'");
  CHECK(json::parse(count.out)["rows"] == json::parse("[[700]]"));
}

TEST_CASE("via sql --file: a dump's BEGIN ... COMMIT is accepted, other transaction control "
          "and broken scripts are refused before anything runs",
          "[client][cli]") {
  World world;
  auto dump = world.ViaSql(
      "DATABASE --file '" +
      WriteScript(world, "dump.sql",
                  "BEGIN TRANSACTION;\nCREATE TABLE d (x);\nINSERT INTO d VALUES (1);\nCOMMIT;\n") +
      "'");
  INFO(dump.out);
  REQUIRE(dump.exit_code == 0);
  CHECK(dump.out == "2 statements ran in one transaction, 1 row affected\n");
  // A COMMIT in the middle would split the file's all-or-nothing promise.
  auto middle = world.ViaSql(
      "--json DATABASE --file '" +
      WriteScript(world, "mid.sql", "CREATE TABLE e (x);\nCOMMIT;\nCREATE TABLE f (x);\n") + "'");
  CHECK(middle.exit_code == 2);
  CHECK(json::parse(middle.out)["error"]["code"] == "script_transaction_control");
  CHECK(json::parse(middle.out)["error"]["message"].get<std::string>().find("line 2") !=
        std::string::npos);
  // ROLLBACK TO a savepoint is not transaction control of the file's own.
  auto savepoint = world.ViaSql(
      "DATABASE --file '" +
      WriteScript(world, "sp.sql",
                  "CREATE TABLE g (x);\nSAVEPOINT s;\nINSERT INTO g VALUES (1);\n"
                  "ROLLBACK TO s;\nRELEASE s;\nSELECT count(*) AS n FROM g;\n") +
      "'");
  INFO(savepoint.out);
  CHECK(savepoint.exit_code == 0);
  CHECK(savepoint.out.find("0\n(1 row)") != std::string::npos);
  // An unclosed quote.
  auto open = world.ViaSql("--json DATABASE --file '" +
                           WriteScript(world, "open.sql", "SELECT 1;\n\nSELECT 'oops;\n") + "'");
  CHECK(open.exit_code == 2);
  CHECK(json::parse(open.out)["error"]["code"] == "script_incomplete");
  CHECK(json::parse(open.out)["error"]["message"].get<std::string>().find("line 3") !=
        std::string::npos);
  // Nothing of the refused scripts ran.
  auto tables = world.ViaSql("--json DATABASE \"SELECT name FROM sqlite_schema WHERE type = 'table' "
                             "ORDER BY name\"");
  REQUIRE(tables.exit_code == 0);
  CHECK(json::parse(tables.out)["rows"] == json::parse(R"([["d"],["g"]])"));
  // Usage: a statement and --file, neither, --arg with --file, a missing file.
  CHECK(world.ViaSql("DATABASE 'SELECT 1' --file x").exit_code == 2);
  CHECK(world.ViaSql("DATABASE").exit_code == 2);
  CHECK(world.ViaSql("DATABASE --file x --arg 1").exit_code == 2);
  auto missing = world.ViaSql("--json DATABASE --file /nonexistent/x.sql");
  CHECK(missing.exit_code == 5);
  CHECK(json::parse(missing.out)["error"]["code"] == "file_missing");
}
