// Issue 10, tried as a hostile app would: a real `via serve` over HTTP, two
// apps with an add-on each, and app A holding a valid credential for its own
// add-on only. Every attack is refused and the server keeps serving; app B's
// descriptor and SQL requests, /healthz and the JWKS stay fast while app A
// keeps the SQL workers or its database's lock busy; the file stays in WAL.
//
// VIA_SERVE_BINARY=PATH runs the server from another build (to check that
// these tests fail on a server without the isolation).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "serve_process.h"
#include "testing.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct HttpAnswer {
  int status = 0;  // 0: no answer (connection failed, reset or timed out)
  std::string headers;
  std::string body;
  double ms = 0;
};

// One HTTP/1.1 request on a fresh connection, sent byte for byte as given
// (so a test can send bytes that no client library would), read to the end.
HttpAnswer Raw(int port, const std::string& request, int timeout_ms = 30000) {
  HttpAnswer answer;
  const auto start = Clock::now();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return answer;
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string data;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) data.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  answer.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  const std::size_t split = data.find("\r\n\r\n");
  if (data.rfind("HTTP/1.1 ", 0) != 0 || split == std::string::npos) return answer;
  answer.status = std::stoi(data.substr(9, 3));
  answer.headers = data.substr(0, split);
  answer.body = data.substr(split + 4);
  return answer;
}

std::string Request(const std::string& method, const std::string& target,
                    const std::string& bearer = "", const std::string& body = "") {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!bearer.empty()) r += "Authorization: Bearer " + bearer + "\r\n";
  if (method == "POST") {
    r +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return r + "\r\n" + body;
}

json Stmt(const std::string& sql) { return {{"type", "execute"}, {"stmt", {{"sql", sql}}}}; }

// A pipeline body: `requests` on a new stream (or `baton`'s), closed unless `keep_open`.
std::string Pipeline(std::vector<json> requests, bool keep_open = false,
                     const std::string& baton = "") {
  json body = {{"baton", baton.empty() ? json(nullptr) : json(baton)}, {"requests", requests}};
  if (!keep_open) body["requests"].push_back({{"type", "close"}});
  return body.dump();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A home with two apps, each with its own add-on bound as DATABASE and a
// table t, and a server with `flags`.
class Tenants {
 public:
  explicit Tenants(std::vector<std::string> flags = {}) {
    REQUIRE(Via("init").exit_code == 0);
    for (const char* app : {"alpha", "beta"}) {
      const std::string name = std::string(app) + "-db";
      REQUIRE(Via("addon create sqlite " + name + " --app " + app + " --bind DATABASE").exit_code ==
              0);
      REQUIRE(Via(std::string("release create --app ") + app + " --id r1").exit_code == 0);
      auto token = Via(std::string("workload token --app ") + app + " --release r1 --ttl 10m");
      REQUIRE(token.exit_code == 0);
      std::string t = token.out;
      while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
      tokens_.push_back(t);
    }
    const char* other = std::getenv("VIA_SERVE_BINARY");
    server_ = std::make_unique<via::testing::ServeProcess>(
        dir_.path(), std::move(flags), other ? other : via::testing::ViaBinary());
    REQUIRE(!server_->url().empty());
    port_ = std::stoi(server_->url().substr(server_->url().rfind(':') + 1));
    for (int i = 0; i < 2; ++i) {
      HttpAnswer d = Get("/v1/descriptors/DATABASE", tokens_[i]);
      INFO(d.body);
      REQUIRE(d.status == 200);
      json desc = json::parse(d.body);
      credentials_.push_back(desc.at("auth_token").get<std::string>());
      addon_ids_.push_back(desc.at("addon_id").get<std::string>());
      json created = Sql(i, {Stmt("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"),
                             Stmt("INSERT INTO t (v) VALUES ('one'), ('two')")});
      REQUIRE(ResultType(created, 0) == "ok");
    }
  }

  via::testing::CommandResult Via(const std::string& args) {
    return via::testing::Via(dir_.path(), "--actor test " + args);
  }

  HttpAnswer Get(const std::string& target, const std::string& bearer = "",
                 int timeout_ms = 30000) {
    return Raw(port_, Request("GET", target, bearer), timeout_ms);
  }
  // A pipeline of app `who` (0: alpha, the hostile one; 1: beta).
  HttpAnswer Post(int who, const std::string& body, int timeout_ms = 30000) {
    return Raw(port_, Request("POST", "/v2/pipeline", credentials_[who], body), timeout_ms);
  }
  // Runs `requests` on a new stream of `who` and returns the parsed answer.
  json Sql(int who, std::vector<json> requests) {
    HttpAnswer a = Post(who, Pipeline(std::move(requests)));
    INFO(a.status << " " << a.body);
    REQUIRE(a.status == 200);
    return json::parse(a.body);
  }
  static std::string ResultType(const json& answer, std::size_t i) {
    const json& r = answer.at("results").at(i);
    return r.at("type") == "ok" ? "ok" : r.at("error").at("code").get<std::string>();
  }
  // The one error code (or "ok") of `sql` run by app `who`.
  std::string Code(int who, const std::string& sql) {
    json a = Sql(who, {Stmt(sql)});
    INFO(sql << " -> " << a.dump().substr(0, 400));
    return ResultType(a, 0);
  }

  std::filesystem::path DbFile(int who) const {
    return dir_.path() / "addons" / addon_ids_[who] / "data.sqlite";
  }
  // The journal mode written in the database header: 2 (bytes 18 and 19) is WAL.
  bool HeaderSaysWal(int who) const {
    std::ifstream in(DbFile(who), std::ios::binary);
    char header[20] = {};
    in.read(header, sizeof header);
    return in && header[18] == 2 && header[19] == 2;
  }

  via::testing::ServeProcess& server() { return *server_; }
  const std::string& token(int who) const { return tokens_[who]; }
  const std::filesystem::path& home() const { return dir_.path(); }
  int port() const { return port_; }

 private:
  via::testing::TempDir dir_;
  std::vector<std::string> tokens_;
  std::unique_ptr<via::testing::ServeProcess> server_;
  int port_ = 0;
  std::vector<std::string> credentials_;
  std::vector<std::string> addon_ids_;
};

// Polls /healthz for up to 5 s until `done(sql)` holds for its "sql" object
// (running and queued pipelines); a server without one never satisfies it,
// and the test's own checks then tell what went wrong.
template <typename Done>
void WaitForSql(Tenants& world, Done done) {
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    HttpAnswer h = world.Get("/healthz", "", 1000);
    if (h.status == 200) {
      const json sql = json::parse(h.body).value("sql", json::object());
      if (done(sql.value("running", -1), sql.value("queued", -1))) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
}

// Runs `n` rounds of the probes `a` and `b` at once, every probe on its own
// thread and connection, started 20 ms apart, and returns how long each took
// (ms): {a's, b's}. Concurrent, so that a probe stuck behind a blocked server
// cannot let the others run after the blockage is over.
template <typename ProbeA, typename ProbeB>
std::pair<std::vector<double>, std::vector<double>> ProbeConcurrently(int n, ProbeA a, ProbeB b) {
  std::vector<double> a_ms(static_cast<std::size_t>(n)), b_ms(static_cast<std::size_t>(n));
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
    threads.emplace_back([&, i] { a_ms[i] = a(); });
    threads.emplace_back([&, i] { b_ms[i] = b(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& t : threads) t.join();
  return {a_ms, b_ms};
}

// Every answer that is an error must be clean: no library text, no path.
void CheckClean(const Tenants& world, const HttpAnswer& a) {
  INFO(a.body);
  CHECK(a.body.find("json.exception") == std::string::npos);
  CHECK(a.body.find("nlohmann") == std::string::npos);
  CHECK(a.body.find(world.home().string()) == std::string::npos);
}

}  // namespace

TEST_CASE("hostile app: fts3_tokenizer in every form is refused and the server keeps serving",
          "[server][hostile]") {
  Tenants world;
  CHECK(world.Code(0, "SELECT hex(fts3_tokenizer('porter'))") == "SQLITE_AUTH");
  CHECK(world.Code(0, "SELECT fts3_tokenizer('simple', x'4141414141414141')") == "SQLITE_AUTH");
  // The bound-blob form (accepted by SQLite even with the tokenizer option off).
  json bound = {{"type", "execute"},
                {"stmt",
                 {{"sql", "SELECT fts3_tokenizer(?, ?)"},
                  {"args",
                   {{{"type", "text"}, {"value", "simple"}},
                    {{"type", "blob"}, {"base64", "QUFBQUFBQUE"}}}}}}};
  CHECK(Tenants::ResultType(world.Sql(0, {bound}), 0) == "SQLITE_AUTH");
  // The crash chain: a replaced tokenizer, then a table that uses it.
  json chain = world.Sql(0, {Stmt("SELECT fts3_tokenizer('simple', x'4141414141414141')"),
                             Stmt("CREATE VIRTUAL TABLE temp.f USING fts3(tokenize=simple)"),
                             Stmt("INSERT INTO temp.f VALUES ('hello')")});
  CHECK(Tenants::ResultType(chain, 0) == "SQLITE_AUTH");
  CHECK(world.server().alive());
  CHECK(world.Get("/healthz").status == 200);
  CHECK(world.Code(1, "SELECT count(*) FROM t") == "ok");
}

TEST_CASE("hostile app: pragmas cannot take the add-on out of WAL or change its settings",
          "[server][hostile]") {
  Tenants world;
  for (const char* sql : {"PRAGMA journal_mode=delete", "PRAGMA main.journal_mode = OFF",
                          "PRAGMA locking_mode=EXCLUSIVE", "PRAGMA mmap_size=1073741824",
                          "PRAGMA cache_size=-1000000", "PRAGMA synchronous=OFF",
                          "PRAGMA wal_autocheckpoint=0", "PRAGMA busy_timeout=3600000"}) {
    CHECK(world.Code(0, sql) == "SQLITE_AUTH");
  }
  json mode = world.Sql(0, {Stmt("PRAGMA journal_mode"), Stmt("INSERT INTO t (v) VALUES ('x')")});
  CHECK(mode.at("results").at(0).at("response").at("result").at("rows").at(0).at(0).at("value") ==
        "wal");
  CHECK(world.HeaderSaysWal(0));
  CHECK(world.server().alive());
}

TEST_CASE("hostile app: PRAGMA database_list does not show the home's path", "[server][hostile]") {
  Tenants world;
  for (const char* sql : {"PRAGMA database_list", "SELECT * FROM pragma_database_list"}) {
    HttpAnswer a = world.Post(0, Pipeline({Stmt(sql)}));
    CHECK(a.status == 200);
    CHECK(a.body.find("SQLITE_AUTH") != std::string::npos);
    CheckClean(world, a);
  }
}

TEST_CASE("hostile app: a single long printf call is refused at once", "[server][hostile]") {
  Tenants world;
  const auto start = Clock::now();
  CHECK(world.Code(0, "SELECT printf('%.*c', 2e9, 'x')") == "SQLITE_TOOBIG");
  CHECK(std::chrono::duration<double>(Clock::now() - start).count() < 2.0);
  CHECK(world.Get("/healthz").status == 200);
}

TEST_CASE("hostile app: invalid bytes anywhere in a request get 400 with a stable code",
          "[server][hostile]") {
  Tenants world;
  HttpAnswer path = Raw(world.port(), Request("GET", "/\xff\xfe"));
  CHECK(path.status == 400);
  CHECK(path.body.find("\"invalid_target\"") != std::string::npos);
  CheckClean(world, path);
  HttpAnswer descriptor = Raw(world.port(), Request("GET", "/v1/descriptors/DATA\xc3(BASE"));
  CHECK(descriptor.status == 400);
  HttpAnswer header = Raw(world.port(),
                          "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Name: \xff\xfe\r\n"
                          "Connection: close\r\n\r\n");
  CHECK(header.status == 400);
  CHECK(header.body.find("\"invalid_header\"") != std::string::npos);
  for (const std::string& body :
       {std::string("{\"baton\":\"\xff\",\"requests\":[]}"),
        std::string("{\"requests\":[{\"type\":\"execute\",\"stmt\":{\"sql\":"
                    "\"SELECT '\xed\xa0\x80'\"}}]}"),
        std::string("{\"requests\":[")}) {
    HttpAnswer a = world.Post(0, body);
    CHECK(a.status == 400);
    CHECK(a.body.find("\"invalid_pipeline\"") != std::string::npos);
    CheckClean(world, a);
  }
  CHECK(world.server().alive());
  CHECK(world.Get("/healthz").status == 200);
}

TEST_CASE("hostile app: app B stays fast while app A runs more endless statements than workers",
          "[server][hostile]") {
  // 4 SQL workers, at most 2 of them for one add-on; A's statements would
  // run 10 s each (the statement timeout).
  Tenants world(
      {"--sql-workers", "4", "--per-addon-concurrency", "2", "--statement-timeout", "10s"});
  const std::string endless = Pipeline({Stmt(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")});
  std::vector<std::thread> attackers;
  std::atomic<int> answered{0};
  for (int i = 0; i < 6; ++i) {
    attackers.emplace_back([&] {
      world.Post(0, endless, 60000);
      ++answered;
    });
  }
  // Wait until A's statements occupy the workers they may have.
  WaitForSql(world, [](int running, int queued) { return running == 2 && queued == 4; });
  std::atomic<int> failures{0};
  const auto [descriptor_ms, sql_ms] = ProbeConcurrently(
      9,
      [&] {
        HttpAnswer d = world.Get("/v1/descriptors/DATABASE", world.token(1), 30000);
        if (d.status != 200) ++failures;
        return d.ms;
      },
      [&] {
        HttpAnswer s = world.Post(1, Pipeline({Stmt("SELECT v FROM t WHERE id = 1")}), 30000);
        if (s.status != 200 || s.body.find("\"one\"") == std::string::npos) ++failures;
        return s.ms;
      });
  CHECK(failures.load() == 0);
  INFO("descriptor ms median " << Median(descriptor_ms) << ", SQL ms median " << Median(sql_ms)
                               << ", A's statements answered so far: " << answered.load());
  CHECK(answered.load() == 0);  // A's statements were still running throughout
  CHECK(Median(descriptor_ms) < 50);
  CHECK(Median(sql_ms) < 50);
  world.server().Kill();  // ends A's requests
  for (auto& t : attackers) t.join();
}

TEST_CASE("hostile app: /healthz and the JWKS answer at once during a lock pile-up",
          "[server][hostile]") {
  Tenants world({"--sql-workers", "4", "--per-addon-concurrency", "2", "--busy-timeout", "8s"});
  // One stream holds the write lock...
  HttpAnswer held =
      world.Post(0, Pipeline({Stmt("BEGIN IMMEDIATE"), Stmt("INSERT INTO t (v) VALUES ('held')")},
                             /*keep_open=*/true));
  REQUIRE(held.status == 200);
  const std::string baton = json::parse(held.body).at("baton").get<std::string>();
  // ...and three writers wait for it (two on workers, one queued).
  std::vector<std::thread> writers;
  std::vector<std::string> outcomes(3);
  for (int i = 0; i < 3; ++i) {
    writers.emplace_back([&, i] {
      HttpAnswer a = world.Post(0, Pipeline({Stmt("INSERT INTO t (v) VALUES ('waiter')")}), 60000);
      outcomes[i] = a.status == 200 ? Tenants::ResultType(json::parse(a.body), 0)
                                    : "HTTP " + std::to_string(a.status);
    });
  }
  WaitForSql(world, [](int running, int queued) { return running == 2 && queued == 1; });
  std::atomic<int> failures{0};
  const auto [health_ms, jwks_ms] = ProbeConcurrently(
      9,
      [&] {
        HttpAnswer h = world.Get("/healthz", "", 20000);
        if (h.status != 200) ++failures;
        return h.ms;
      },
      [&] {
        HttpAnswer k = world.Get("/.well-known/jwks.json", "", 20000);
        if (k.status != 200) ++failures;
        return k.ms;
      });
  CHECK(failures.load() == 0);
  INFO("healthz ms median " << Median(health_ms) << ", JWKS " << Median(jwks_ms));
  CHECK(Median(health_ms) < 50);
  CHECK(Median(jwks_ms) < 50);
  // The lock holder commits at once, although its add-on's workers are all
  // taken by requests waiting for its lock; then the waiters get the lock.
  HttpAnswer commit = world.Post(0, Pipeline({Stmt("COMMIT")}, false, baton), 20000);
  INFO(commit.body);
  CHECK(commit.status == 200);
  CHECK(commit.ms < 2000);
  for (auto& t : writers) t.join();
  CHECK(outcomes == std::vector<std::string>{"ok", "ok", "ok"});
  json count = world.Sql(0, {Stmt("SELECT count(*) FROM t")});
  CHECK(count.at("results").at(0).at("response").at("result").at("rows").at(0).at(0).at("value") ==
        "6");
  CHECK(world.HeaderSaysWal(0));
}

TEST_CASE("hostile app: a full SQL queue answers 503 with Retry-After, and another app gets in",
          "[server][hostile]") {
  Tenants world({"--sql-workers", "2", "--per-addon-concurrency", "1", "--sql-queue", "2",
                 "--statement-timeout", "10s"});
  const std::string endless = Pipeline({Stmt(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")});
  // One of A's statements runs, two wait: the queue is full.
  std::vector<std::thread> attackers;
  std::vector<HttpAnswer> answers(3);
  for (int i = 0; i < 3; ++i) {
    attackers.emplace_back([&, i] { answers[i] = world.Post(0, endless, 60000); });
    WaitForSql(world, [i](int running, int queued) { return running + queued == i + 1; });
  }
  HttpAnswer refused = world.Post(0, endless, 10000);
  CHECK(refused.status == 503);
  CHECK(refused.body.find("\"sql_queue_full\"") != std::string::npos);
  CHECK(refused.headers.find("Retry-After: 1") != std::string::npos);
  // B's request takes the place of A's newest waiting one and runs at once.
  HttpAnswer b = world.Post(1, Pipeline({Stmt("SELECT v FROM t WHERE id = 2")}), 10000);
  CHECK(b.status == 200);
  CHECK(b.body.find("\"two\"") != std::string::npos);
  CHECK(b.ms < 2000);
  attackers.back().join();  // A's evicted request was answered 503
  CHECK(answers.back().status == 503);
  CHECK(answers.back().body.find("\"sql_queue_full\"") != std::string::npos);
  world.server().Kill();
  for (auto& t : attackers) {
    if (t.joinable()) t.join();
  }
}

TEST_CASE("hostile app: a statement over the SQLite memory bound fails with SQLITE_NOMEM",
          "[server][hostile]") {
  Tenants world({"--sql-memory-limit", "33554432"});  // 32 MiB for all of SQLite
  // Ten live 4 MB values in one row: 40 MB.
  std::string sql = "SELECT length(randomblob(4000000))";
  for (int i = 0; i < 9; ++i) sql += ", randomblob(4000000)";
  CHECK(world.Code(0, sql) == "SQLITE_NOMEM");
  CHECK(world.server().alive());
  CHECK(world.Code(0, "SELECT count(*) FROM t") == "ok");
  CHECK(world.Code(1, "SELECT count(*) FROM t") == "ok");
}
