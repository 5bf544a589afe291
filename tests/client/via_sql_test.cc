// `via sql` end to end: the built binary against a real `via serve`.

#include <nlohmann/json.hpp>

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
