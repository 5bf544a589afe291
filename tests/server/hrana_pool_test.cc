// Connection reuse of HranaEngine (Limits::pooled_connections, hrana.h): a
// stream that closes cleanly gives its connection to the next new stream of the
// same database; anything that leaves state on the connection, a kill, another
// database key, a moved file or CloseStreamsFor() prevents reuse.

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "server/hrana.h"
#include "testing.h"

namespace via::server {
namespace {

using json = nlohmann::json;

class Pool {
 public:
  explicit Pool(std::size_t pooled = 4) : engine_(Limits(pooled), [this] { return now_.load(); }) {}

  static hrana::Limits Limits(std::size_t pooled) {
    hrana::Limits l;
    l.pooled_connections = pooled;
    return l;
  }

  std::filesystem::path File(const std::string& key) const { return dir_.path() / (key + ".db"); }

  // Runs `requests` (a JSON array) on a new stream of `key`, then closes it.
  json Once(const std::string& key, json requests) {
    requests.push_back({{"type", "close"}});
    json body = {{"baton", nullptr}, {"requests", requests}};
    auto out = engine_.HandlePipeline(key, body.dump(), [this, key]() -> Result<hrana::SqliteConnection> {
      ++opened_;
      sqlite3* raw = nullptr;
      int rc = sqlite3_open_v2(File(key).c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
      hrana::SqliteConnection db(raw);
      if (rc != SQLITE_OK) return Internal("cannot open");
      return db;
    });
    REQUIRE(out.ok());
    return json::parse(*out);
  }

  static json Exec(const std::string& sql) { return {{"type", "execute"}, {"stmt", {{"sql", sql}}}}; }

  static std::string FirstValue(const json& response) {
    return response.at("results").at(0).at("response").at("result").at("rows").at(0).at(0).at("value").get<std::string>();
  }

  HranaEngine& engine() { return engine_; }
  int opened() const { return opened_; }
  void advance(std::int64_t ms) { now_ += ms; }

 private:
  testing::TempDir dir_;
  std::atomic<std::int64_t> now_{1000000};
  HranaEngine engine_;
  int opened_ = 0;
};

TEST_CASE("hrana pool: a cleanly closed stream's connection serves the next stream", "[server]") {
  Pool p;
  p.Once("a", {Pool::Exec("CREATE TABLE t(x)"), Pool::Exec("INSERT INTO t VALUES (7)")});
  CHECK(p.opened() == 1);
  json r = p.Once("a", {Pool::Exec("SELECT x FROM t")});
  CHECK(Pool::FirstValue(r) == "7");
  CHECK(p.opened() == 1);  // reused
  CHECK(r.at("results").at(0).at("response").at("result").at("last_insert_rowid").is_null());
  p.Once("b", {Pool::Exec("SELECT 1")});
  CHECK(p.opened() == 2);  // another database never gets a's connection
  CHECK(p.engine().open_streams() == 0);
}

TEST_CASE("hrana pool: state left on a connection prevents its reuse", "[server]") {
  Pool p;
  p.Once("a", {Pool::Exec("CREATE TABLE t(x)")});
  REQUIRE(p.opened() == 1);
  p.Once("a", {Pool::Exec("PRAGMA foreign_keys = ON")});  // reused, then tainted
  CHECK(p.opened() == 1);
  json r = p.Once("a", {Pool::Exec("PRAGMA foreign_keys")});
  CHECK(p.opened() == 2);  // a fresh connection: the pragma did not leak
  CHECK(Pool::FirstValue(r) == "0");
  p.Once("a", {Pool::Exec("CREATE TEMP TABLE scratch(y)")});
  r = p.Once("a", {Pool::Exec("SELECT count(*) FROM sqlite_temp_master")});
  CHECK(Pool::FirstValue(r) == "0");  // the temp table did not leak
  p.Once("a", {Pool::Exec("BEGIN"), Pool::Exec("INSERT INTO t VALUES (1)")});  // closed inside a tx
  r = p.Once("a", {Pool::Exec("SELECT count(*) FROM t")});
  CHECK(Pool::FirstValue(r) == "0");
}

TEST_CASE("hrana pool: CloseStreamsFor and a replaced file purge pooled connections", "[server]") {
  Pool p;
  p.Once("a", {Pool::Exec("CREATE TABLE t(x)"), Pool::Exec("INSERT INTO t VALUES (1)")});
  REQUIRE(p.opened() == 1);
  p.engine().CloseStreamsFor([](std::string_view key) { return key == "a"; },
                             Status(StatusCode::kUnauthenticated, "credential_revoked", "revoked"));
  p.Once("a", {Pool::Exec("SELECT 1")});
  CHECK(p.opened() == 2);

  // Replace the file (as a restore does): the pooled connection still sees the
  // old inode and must not be used.
  {
    sqlite3* raw = nullptr;
    const std::filesystem::path other = p.File("a").string() + ".new";
    REQUIRE(sqlite3_open(other.c_str(), &raw) == SQLITE_OK);
    REQUIRE(sqlite3_exec(raw, "CREATE TABLE t(x); INSERT INTO t VALUES (42);", nullptr, nullptr, nullptr) ==
            SQLITE_OK);
    sqlite3_close(raw);
    std::filesystem::rename(other, p.File("a"));
  }
  json r = p.Once("a", {Pool::Exec("SELECT x FROM t")});
  CHECK(p.opened() == 3);
  CHECK(Pool::FirstValue(r) == "42");
}

TEST_CASE("hrana pool: idle pooled connections close after the stream idle timeout", "[server]") {
  Pool p;
  p.Once("a", {Pool::Exec("SELECT 1")});
  p.advance(p.engine().limits().stream_idle_timeout_ms + 1);
  p.engine().SweepIdle();
  p.Once("a", {Pool::Exec("SELECT 1")});
  CHECK(p.opened() == 2);
}

TEST_CASE("hrana pool: pooled_connections = 0 opens a connection per stream", "[server]") {
  Pool p(0);
  p.Once("a", {Pool::Exec("SELECT 1")});
  p.Once("a", {Pool::Exec("SELECT 1")});
  CHECK(p.opened() == 2);
}

}  // namespace
}  // namespace via::server
