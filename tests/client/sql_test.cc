// client/ against a real `via serve`: descriptor fetch and its refusals,
// exact round trips of every Hrana value type, transactions across requests,
// batches, SQL errors, revocation and keep-alive reuse.

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "fixture.h"

using namespace via;
using via::client_test::Scalar;
using via::client_test::World;

namespace {

// Unsets (or sets) an environment variable for the scope, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string Describe(const SqlValue& v) {
  std::string out = SqlTypeName(v);
  out += ":";
  switch (v.index()) {
    case 1:
      return out + std::to_string(std::get<std::int64_t>(v));
    case 2: {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.17g", std::get<double>(v));
      return out + buf;
    }
    case 3:
      return out + std::to_string(std::get<std::string>(v).size()) + " bytes";
    case 4:
      return out + std::to_string(std::get<SqlBlob>(v).size()) + " bytes";
    default:
      return out;
  }
}

}  // namespace

TEST_CASE("connect fetches the descriptor of a binding claimed by the release", "[client]") {
  World world;
  Sql db = world.Connect();
  const SqlDescriptor& d = db.descriptor();
  CHECK(d.binding == "DATABASE");
  CHECK(d.provider == "sqlite");
  CHECK(d.addon_id.rfind("ad_", 0) == 0);
  CHECK(d.generation == 1);
  CHECK(d.app == "api");
  CHECK(d.release == "v1");
  CHECK(d.url == world.server->url());
  CHECK(d.auth_token.rfind("via1." + d.addon_id + ".1.", 0) == 0);
}

TEST_CASE("connect reads VIA_CONFIG_URL and VIA_WORKLOAD_TOKEN", "[client]") {
  World world;
  ScopedEnv url("VIA_CONFIG_URL", world.server->url().c_str());
  ScopedEnv token("VIA_WORKLOAD_TOKEN", world.token.c_str());
  auto db = Sql::connect("DATABASE");
  REQUIRE(db.ok());
  CHECK(std::get<std::int64_t>(Scalar(*db, "SELECT 41 + 1")) == 42);
}

TEST_CASE("connect without VIA_CONFIG_URL is not_configured and names the variable", "[client]") {
  ScopedEnv url("VIA_CONFIG_URL", nullptr);
  ScopedEnv token("VIA_WORKLOAD_TOKEN", "x.y.z");
  auto db = Sql::Connect("DATABASE");
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().code == kSqlNotConfigured);
  CHECK(db.error().message.find("VIA_CONFIG_URL") != std::string::npos);
}

TEST_CASE("connect without VIA_WORKLOAD_TOKEN is not_configured and names the variable",
          "[client]") {
  ScopedEnv url("VIA_CONFIG_URL", "http://127.0.0.1:7600");
  ScopedEnv token("VIA_WORKLOAD_TOKEN", nullptr);
  auto db = Sql::Connect("DATABASE");
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().code == kSqlNotConfigured);
  CHECK(db.error().message.find("VIA_WORKLOAD_TOKEN") != std::string::npos);
}

TEST_CASE("connect refuses another scheme, a malformed config URL and a bad binding name",
          "[client]") {
  SqlOptions o;
  o.workload_token = "x.y.z";
  for (const char* url : {"ftp://example.com", "127.0.0.1:7600", "http://", "http://h:99999",
                          "http://h:0", "http://u@h:1"}) {
    o.config_url = url;
    auto db = Sql::Connect("DATABASE", o);
    INFO(url);
    REQUIRE_FALSE(db.ok());
    CHECK(db.error().code == kSqlInvalidArgument);
  }
  o.config_url = "http://127.0.0.1:1";
  auto db = Sql::Connect("../admin", o);
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().code == kSqlInvalidArgument);
}

TEST_CASE("https to a plain HTTP server fails the handshake: tls_error, not retryable",
          "[client]") {
  World world;
  SqlOptions o = world.Options();
  REQUIRE(o.config_url.rfind("http://", 0) == 0);
  o.config_url = "https://" + o.config_url.substr(7);
  auto db = Sql::Connect("DATABASE", o);
  REQUIRE_FALSE(db.ok());
  INFO(db.error().ToString());
  CHECK(db.error().code == kSqlTlsError);
  CHECK_FALSE(db.error().retryable);
  CHECK(db.error().message.find("TLS handshake") != std::string::npos);
  // A CA file that cannot be read is refused before any connection.
  o.ca_file = "/nonexistent/ca.pem";
  auto missing = Sql::Connect("DATABASE", o);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == kSqlTlsError);
  CHECK(missing.error().message.find("/nonexistent/ca.pem") != std::string::npos);
}

TEST_CASE("connect to a port where nothing listens is connection_failed and retryable",
          "[client]") {
  // Bind a port, then close it: nothing listens there afterwards.
  World world;
  SqlOptions o = world.Options();
  world.server.reset();
  auto db = Sql::Connect("DATABASE", o);
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().code == kSqlConnectionFailed);
  CHECK(db.error().retryable);
}

TEST_CASE("a bad workload token is unauthorized with the server's reason", "[client]") {
  World world;
  SqlOptions o = world.Options();
  // Flip one character in the middle of the signature.
  std::string forged = world.token;
  std::size_t at = forged.rfind('.') + 10;
  forged[at] = forged[at] == 'A' ? 'B' : 'A';
  o.workload_token = forged;
  auto db = Sql::Connect("DATABASE", o);
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().code == kSqlUnauthorized);
  CHECK(db.error().http_status == 401);
  CHECK(db.error().server_code == "bad_signature");
  o.workload_token = "not-a-jwt";
  auto db2 = Sql::Connect("DATABASE", o);
  REQUIRE_FALSE(db2.ok());
  CHECK(db2.error().code == kSqlUnauthorized);
  CHECK(db2.error().server_code == "malformed_token");
}

TEST_CASE("a binding the release does not claim is forbidden, an unknown one not_found",
          "[client]") {
  World world;
  auto late = Sql::Connect("LATE", world.Options());
  REQUIRE_FALSE(late.ok());
  CHECK(late.error().code == kSqlForbidden);
  CHECK(late.error().server_code == "binding_not_claimed");
  auto nope = Sql::Connect("NOPE", world.Options());
  REQUIRE_FALSE(nope.ok());
  CHECK(nope.error().code == kSqlNotFound);
  CHECK(nope.error().server_code == "binding_not_found");
}

TEST_CASE("a destroyed add-on is not_usable with its blocker and remediation", "[client]") {
  World world;
  REQUIRE(world.Via("addon create sqlite gone-db --app api --bind GONE").exit_code == 0);
  REQUIRE(world.Via("release create --app api --id v2").exit_code == 0);
  auto t = world.Via("workload token --app api --release v2");
  REQUIRE(t.exit_code == 0);
  SqlOptions o = world.Options();
  o.workload_token = client_test::Trim(t.out);
  REQUIRE(world.Via("addon unbind gone-db --app api --bind GONE").exit_code == 0);
  REQUIRE(world.Via("--yes addon destroy gone-db --force").exit_code == 0);
  auto db = Sql::Connect("GONE", o);
  REQUIRE_FALSE(db.ok());
  CHECK(db.error().code == kSqlNotUsable);
  CHECK(db.error().http_status == 409);
  CHECK(db.error().server_code == "addon_destroyed");
  CHECK_FALSE(db.error().retryable);
}

TEST_CASE("every value type round-trips exactly through parameters and rows", "[client]") {
  World world;
  Sql db = world.Connect();
  // No declared type: no affinity, SQLite stores each value as it is given.
  REQUIRE(db.Execute("CREATE TABLE v (x)").ok());
  SqlBlob all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<std::uint8_t>(i));
  const std::vector<SqlValue> values = {
      nullptr,
      std::int64_t{0},
      std::int64_t{-1},
      std::numeric_limits<std::int64_t>::max(),
      std::numeric_limits<std::int64_t>::min(),
      std::int64_t{9007199254740993},  // 2^53 + 1: not a double
      1.5,
      2.0,  // integral, still a float
      0.1,
      -1e308,
      std::numeric_limits<double>::denorm_min(),
      std::string(),
      std::string("h\xC3\xA9llo w\xC3\xB6rld \xE2\x9C\x93 \xF0\x9F\x8E\x89"),
      std::string("nul\0inside", 10),
      std::string("quote \" backslash \\ newline \n tab \t"),
      SqlBlob{},
      SqlBlob{0},
      all_bytes,
  };
  for (const auto& value : values) {
    auto r = db.Execute("INSERT INTO v (x) VALUES (?)", {value});
    INFO(Describe(value) << ": " << (r.ok() ? "ok" : r.error().ToString()));
    REQUIRE(r.ok());
    CHECK(r->affected_row_count == 1);
    CHECK(r->last_insert_rowid.has_value());
  }
  auto rows = db.Execute("SELECT x, typeof(x) FROM v ORDER BY rowid");
  REQUIRE(rows.ok());
  REQUIRE(rows->columns.size() == 2);
  CHECK(rows->columns[0].name == "x");
  REQUIRE(rows->rows.size() == values.size());
  const char* sqlite_types[] = {"null", "integer", "real", "text", "blob"};
  for (std::size_t i = 0; i < values.size(); ++i) {
    INFO("value " << i << " sent " << Describe(values[i]) << " got " << Describe(rows->rows[i][0]));
    CHECK(rows->rows[i][0] == values[i]);
    CHECK(std::get<std::string>(rows->rows[i][1]) == sqlite_types[values[i].index()]);
  }
  // The same values read back as SELECT ?: no storage in between.
  for (const auto& value : values) {
    INFO(Describe(value));
    CHECK(Scalar(db, "SELECT ?", {value}) == value);
  }
}

TEST_CASE("named arguments bind by name", "[client]") {
  World world;
  Sql db = world.Connect();
  SqlStatement s{"SELECT :a || @b || $c", {}, {{":a", "x"}, {"@b", std::int64_t{1}}, {"$c", "z"}}};
  auto r = db.Execute(s);
  REQUIRE(r.ok());
  CHECK(std::get<std::string>(r->rows[0][0]) == "x1z");
}

TEST_CASE("a non-finite float argument is refused before anything is sent", "[client]") {
  World world;
  Sql db = world.Connect();
  auto r = db.Execute("SELECT ?", {std::numeric_limits<double>::infinity()});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == kSqlInvalidArgument);
}

TEST_CASE("text that is not UTF-8 is refused as invalid_argument", "[client]") {
  World world;
  Sql db = world.Connect();
  auto r = db.Execute("SELECT ?", {std::string("\xff\xfe")});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == kSqlInvalidArgument);
}

TEST_CASE("a SQL error is sql_error with the SQLite code and the connection keeps working",
          "[client]") {
  World world;
  Sql db = world.Connect();
  auto bad = db.Execute("SELECT * FROM no_such_table");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == kSqlSqlError);
  CHECK(bad.error().server_code == "SQLITE_ERROR");
  CHECK(bad.error().message.find("no_such_table") != std::string::npos);
  REQUIRE(db.Execute("CREATE TABLE u (k INTEGER PRIMARY KEY)").ok());
  REQUIRE(db.Execute("INSERT INTO u VALUES (1)").ok());
  auto dup = db.Execute("INSERT INTO u VALUES (1)");
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.error().code == kSqlSqlError);
  CHECK(dup.error().server_code.rfind("SQLITE_CONSTRAINT", 0) == 0);
  CHECK(std::get<std::int64_t>(Scalar(db, "SELECT count(*) FROM u")) == 1);
}

TEST_CASE("a transaction spans requests and its writes appear only at commit", "[client]") {
  World world;
  Sql db = world.Connect();
  Sql other = world.Connect();
  REQUIRE(db.Execute("CREATE TABLE t (n INTEGER)").ok());
  auto tx = db.Transaction();
  REQUIRE(tx.ok());
  REQUIRE(tx->open());
  REQUIRE(tx->Execute("INSERT INTO t VALUES (?)", {std::int64_t{1}}).ok());
  REQUIRE(tx->Execute("INSERT INTO t VALUES (?)", {std::int64_t{2}}).ok());
  // Inside the transaction, across requests, both rows are visible...
  auto inside = tx->Execute("SELECT count(*) FROM t");
  REQUIRE(inside.ok());
  CHECK(std::get<std::int64_t>(inside->rows[0][0]) == 2);
  // ...and to nobody else yet.
  CHECK(std::get<std::int64_t>(Scalar(other, "SELECT count(*) FROM t")) == 0);
  auto committed = tx->Commit();
  INFO((committed.ok() ? std::string("ok") : committed.error().ToString()));
  REQUIRE(committed.ok());
  CHECK_FALSE(tx->open());
  CHECK(std::get<std::int64_t>(Scalar(other, "SELECT count(*) FROM t")) == 2);
  auto after = tx->Execute("SELECT 1");
  REQUIRE_FALSE(after.ok());
  CHECK(after.error().code == kSqlTransactionClosed);
  CHECK(tx->Commit().error().code == kSqlTransactionClosed);
}

TEST_CASE("rollback undoes the transaction's writes", "[client]") {
  World world;
  Sql db = world.Connect();
  REQUIRE(db.Execute("CREATE TABLE t (n INTEGER)").ok());
  auto tx = db.Transaction("BEGIN IMMEDIATE");
  REQUIRE(tx.ok());
  REQUIRE(tx->Execute("INSERT INTO t VALUES (1)").ok());
  REQUIRE(tx->Rollback().ok());
  CHECK(std::get<std::int64_t>(Scalar(db, "SELECT count(*) FROM t")) == 0);
}

TEST_CASE("a transaction destroyed without commit rolls back and releases its lock", "[client]") {
  World world;
  Sql db = world.Connect();
  REQUIRE(db.Execute("CREATE TABLE t (n INTEGER)").ok());
  {
    auto tx = db.Transaction("BEGIN IMMEDIATE");
    REQUIRE(tx.ok());
    REQUIRE(tx->Execute("INSERT INTO t VALUES (1)").ok());
  }
  CHECK(std::get<std::int64_t>(Scalar(db, "SELECT count(*) FROM t")) == 0);
  // The write lock is gone: a new write does not wait for the busy timeout.
  auto w = db.Execute("INSERT INTO t VALUES (2)");
  REQUIRE(w.ok());
  CHECK(std::get<std::int64_t>(Scalar(db, "SELECT count(*) FROM t")) == 1);
  Sql fresh = world.Connect();
  CHECK(Scalar(fresh, "SELECT 1") == SqlValue(std::int64_t{1}));
}

TEST_CASE("a SQL error inside a transaction leaves it open", "[client]") {
  World world;
  Sql db = world.Connect();
  REQUIRE(db.Execute("CREATE TABLE t (n INTEGER)").ok());
  auto tx = db.Transaction();
  REQUIRE(tx.ok());
  REQUIRE(tx->Execute("INSERT INTO t VALUES (1)").ok());
  auto bad = tx->Execute("INSERT INTO nope VALUES (1)");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == kSqlSqlError);
  CHECK(tx->open());
  REQUIRE(tx->Commit().ok());
  CHECK(std::get<std::int64_t>(Scalar(db, "SELECT count(*) FROM t")) == 1);
}

TEST_CASE("a transaction's batch runs in order and stops at the first failure", "[client]") {
  World world;
  Sql db = world.Connect();
  REQUIRE(db.Execute("CREATE TABLE t (n INTEGER PRIMARY KEY)").ok());
  auto tx = db.Transaction();
  REQUIRE(tx.ok());
  auto ok = tx->Batch(
      {{"INSERT INTO t VALUES (1)"}, {"INSERT INTO t VALUES (2)"}, {"SELECT count(*) FROM t"}});
  REQUIRE(ok.ok());
  REQUIRE(ok->size() == 3);
  CHECK(std::get<std::int64_t>((*ok)[2].rows[0][0]) == 2);
  auto bad = tx->Batch(
      {{"INSERT INTO t VALUES (3)"}, {"INSERT INTO t VALUES (1)"}, {"INSERT INTO t VALUES (4)"}});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == kSqlSqlError);
  REQUIRE(tx->Commit().ok());
  CHECK(std::get<std::int64_t>(Scalar(db, "SELECT count(*) FROM t")) == 3);
}

TEST_CASE("batch applies all statements or none", "[client]") {
  World world;
  Sql db = world.Connect();
  REQUIRE(db.Execute("CREATE TABLE t (n INTEGER PRIMARY KEY)").ok());
  auto ok = db.Batch({{"INSERT INTO t VALUES (?)", {std::int64_t{1}}},
                      {"INSERT INTO t VALUES (?)", {std::int64_t{2}}},
                      {"SELECT n FROM t ORDER BY n"}});
  REQUIRE(ok.ok());
  REQUIRE(ok->size() == 3);
  CHECK((*ok)[0].affected_row_count == 1);
  CHECK((*ok)[2].rows.size() == 2);
  auto bad = db.Batch(
      {{"INSERT INTO t VALUES (3)"}, {"INSERT INTO t VALUES (1)"}, {"INSERT INTO t VALUES (4)"}});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == kSqlSqlError);
  CHECK(bad.error().message.find("statement 2") != std::string::npos);
  CHECK(std::get<std::int64_t>(Scalar(db, "SELECT count(*) FROM t")) == 2);
  // Not left inside a transaction: autocommit writes still commit.
  REQUIRE(db.Execute("INSERT INTO t VALUES (5)").ok());
  Sql fresh = world.Connect();
  CHECK(std::get<std::int64_t>(Scalar(fresh, "SELECT count(*) FROM t")) == 3);
}

TEST_CASE("revoking the generation ends an open transaction, autocommit moves to the new one",
          "[client]") {
  World world;
  Sql db = world.Connect();
  REQUIRE(db.Execute("CREATE TABLE t (n INTEGER)").ok());
  auto tx = db.Transaction();
  REQUIRE(tx.ok());
  REQUIRE(tx->Execute("INSERT INTO t VALUES (1)").ok());
  REQUIRE(world.Via("addon rotate-credentials app-db").exit_code == 0);
  REQUIRE(world.Via("--yes addon revoke-credentials app-db --generation 1").exit_code == 0);
  auto lost = tx->Execute("INSERT INTO t VALUES (2)");
  REQUIRE_FALSE(lost.ok());
  CHECK(lost.error().code == kSqlUnauthorized);
  CHECK(lost.error().server_code == "credential_revoked");
  CHECK_FALSE(tx->open());
  CHECK(tx->Commit().error().code == kSqlTransactionClosed);
  // The connection fetches the descriptor again and carries on with generation 2.
  CHECK(std::get<std::int64_t>(Scalar(db, "SELECT count(*) FROM t")) == 0);
  CHECK(db.descriptor().generation == 2);
}

TEST_CASE("revoking the last generation makes every request unauthorized", "[client]") {
  World world;
  Sql db = world.Connect();
  REQUIRE(world.Via("--yes addon revoke-credentials app-db --generation 1 --force").exit_code == 0);
  auto r = db.Execute("SELECT 1");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == kSqlUnauthorized);
  CHECK(r.error().server_code == "credential_revoked");
  auto again = Sql::Connect("DATABASE", world.Options());
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == kSqlNotUsable);
}

TEST_CASE("requests of one Sql reuse one keep-alive connection", "[client]") {
  World world;
  {
    Sql db = world.Connect();
    for (int i = 0; i < 5; ++i) REQUIRE(db.Execute("SELECT 1").ok());
  }
  // The server logs a request after answering it: wait for the sixth line.
  std::set<std::string> remotes;
  int lines = 0;
  for (int attempt = 0; attempt < 100 && lines < 6; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::ifstream log(world.dir.path() / "access.log");
    remotes.clear();
    lines = 0;
    for (std::string line; std::getline(log, line);) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("remote")) continue;
      ++lines;
      remotes.insert(j["remote"].get<std::string>());
    }
  }
  CHECK(lines == 6);  // the descriptor and five pipelines
  CHECK(remotes.size() == 1);
}

TEST_CASE("a keep-alive connection closed by the server is reopened transparently", "[client]") {
  World world({"--idle-timeout", "300ms"});
  Sql db = world.Connect();
  REQUIRE(db.Execute("SELECT 1").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  auto r = db.Execute("SELECT 2");
  INFO((r.ok() ? std::string("ok") : r.error().ToString()));
  REQUIRE(r.ok());
  CHECK(std::get<std::int64_t>(r->rows[0][0]) == 2);
}

TEST_CASE("an expired stream ends the transaction with stream_closed", "[client]") {
  World world({"--stream-idle-timeout", "300ms"});
  Sql db = world.Connect();
  auto tx = db.Transaction();
  REQUIRE(tx.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  auto r = tx->Execute("SELECT 1");
  REQUIRE_FALSE(r.ok());
  INFO(r.error().ToString());
  CHECK((r.error().code == kSqlStreamClosed));
  CHECK_FALSE(tx->open());
}
