// Connection reuse of HranaEngine (Limits::pooled_connections, hrana.h): a
// stream that closes cleanly gives its connection to the next new stream of the
// same database; anything that leaves state on the connection, a kill, another
// database key, a moved file or CloseStreamsFor() prevents reuse.

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "server/hrana.h"
#include "testing.h"

namespace via::server {
namespace {

using json = nlohmann::json;

class Pool {
 public:
  explicit Pool(std::size_t pooled = 4) : engine_(Limits(pooled), [this] { return now_.load(); }) {}
  ~Pool() {
    probing_ = false;  // the engine's destructor closes connections too
    JoinProbes();
  }

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
    auto out = engine_.HandlePipeline(key, body.dump(), [this, key]() -> Result<via::sql::Connection> {
      ++opened_;
      sqlite3* raw = nullptr;
      int rc = sqlite3_open_v2(File(key).c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
      via::sql::Connection db(raw);
      if (rc != SQLITE_OK) return Internal("cannot open");
      if (probing_) {
        // A function's destructor runs when SQLite closes the connection.
        sqlite3_create_function_v2(raw, "via_close_probe", 0, SQLITE_UTF8, this, &Noop, nullptr,
                                   nullptr, &OnClose);
      }
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

  // From now on, every connection the factory opens checks, when it is closed,
  // whether the engine's lock is free (another thread can call into the engine).
  void ProbeCloses() { probing_ = true; }
  void JoinProbes() {
    std::lock_guard<std::mutex> lock(probe_mu_);
    for (std::thread& t : probe_threads_) t.join();
    probe_threads_.clear();
  }
  int closes() const { return closes_.load(); }
  int closes_under_lock() const { return closes_under_lock_.load(); }

 private:
  static void Noop(sqlite3_context*, int, sqlite3_value**) {}
  static void OnClose(void* self) { static_cast<Pool*>(self)->ProbeLock(); }
  void ProbeLock() {
    if (!probing_) return;
    ++closes_;
    auto done = std::make_shared<std::atomic<bool>>(false);
    {
      std::lock_guard<std::mutex> lock(probe_mu_);
      probe_threads_.emplace_back([this, done] {
        engine_.open_streams();  // takes the engine's lock
        done->store(true);
      });
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (!done->load() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!done->load()) ++closes_under_lock_;
  }

  testing::TempDir dir_;
  std::atomic<std::int64_t> now_{1000000};
  // Declared before engine_ so that they outlive it.
  std::atomic<bool> probing_{false};
  std::atomic<int> closes_{0};
  std::atomic<int> closes_under_lock_{0};
  std::mutex probe_mu_;
  std::vector<std::thread> probe_threads_;
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
  p.Once("a", {Pool::Exec("SELECT 1")});  // leaves a clean connection in the pool
  const int before_tx = p.opened();
  p.Once("a", {Pool::Exec("BEGIN"), Pool::Exec("INSERT INTO t VALUES (1)")});  // closed inside a tx
  CHECK(p.opened() == before_tx);  // it came from the pool...
  r = p.Once("a", {Pool::Exec("SELECT count(*) FROM t")});
  CHECK(Pool::FirstValue(r) == "0");
  CHECK(p.opened() == before_tx + 1);  // ...but did not go back to it
}

TEST_CASE("hrana pool: a reused connection reports no earlier last_insert_rowid", "[server]") {
  Pool p;
  p.Once("a", {Pool::Exec("CREATE TABLE t(x)"), Pool::Exec("INSERT INTO t VALUES (1)"),
               Pool::Exec("INSERT INTO t VALUES (2)")});
  json r = p.Once("a", {Pool::Exec("SELECT last_insert_rowid()")});
  REQUIRE(p.opened() == 1);  // reused
  CHECK(Pool::FirstValue(r) == "0");
}

TEST_CASE("hrana pool: a temporary virtual table prevents reuse", "[server]") {
  // fts5 and rtree also create shadow tables in temp; fts5vocab does not.
  for (const char* module : {"fts5(a)", "rtree(id, x0, x1)", "fts5vocab(main, ft, row)"}) {
    INFO(module);
    Pool p;
    p.Once("a", {Pool::Exec("CREATE TABLE t(x)")});
    json r = p.Once("a", {Pool::Exec(std::string("CREATE VIRTUAL TABLE temp.x USING ") + module)});
    REQUIRE(r.at("results").at(0).at("type") == "ok");
    REQUIRE(p.opened() == 1);
    r = p.Once("a", {Pool::Exec("SELECT count(*) FROM sqlite_temp_master")});
    CHECK(p.opened() == 2);
    CHECK(Pool::FirstValue(r) == "0");  // the next stream does not see temp.x
  }
}

TEST_CASE("hrana pool: pooled connections close outside the engine's lock", "[server]") {
  Pool p;
  p.ProbeCloses();
  p.Once("a", {Pool::Exec("SELECT 1")});
  p.Once("b", {Pool::Exec("SELECT 1")});
  REQUIRE(p.opened() == 2);
  REQUIRE(p.closes() == 0);  // both pooled
  p.advance(p.engine().limits().stream_idle_timeout_ms + 1);
  p.engine().SweepIdle();  // closes a's and b's pooled connections
  p.Once("c", {Pool::Exec("SELECT 1")});
  p.engine().CloseStreamsFor([](std::string_view key) { return key == "c"; },
                             Status(StatusCode::kUnauthenticated, "credential_revoked", "revoked"));
  p.JoinProbes();
  CHECK(p.closes() == 3);
  CHECK(p.closes_under_lock() == 0);
}

TEST_CASE("hrana pool: all keys together keep a bounded number of connections", "[server]") {
  Pool p(1);  // global cap: HranaEngine::kPoolCapFactor connections
  p.ProbeCloses();
  const int keys = static_cast<int>(HranaEngine::kPoolCapFactor) + 1;
  for (int i = 0; i < keys; ++i) {
    p.Once("k" + std::to_string(i), {Pool::Exec("SELECT 1")});
    p.advance(1);
  }
  REQUIRE(p.opened() == keys);
  CHECK(p.closes() == 1);  // k0's, the least recently returned
  p.Once("k" + std::to_string(keys - 1), {Pool::Exec("SELECT 1")});
  CHECK(p.opened() == keys);  // still pooled
  p.Once("k0", {Pool::Exec("SELECT 1")});
  CHECK(p.opened() == keys + 1);  // was dropped
  p.JoinProbes();
  CHECK(p.closes() == 2);  // returning k0's new connection dropped k1's
  CHECK(p.closes_under_lock() == 0);
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
