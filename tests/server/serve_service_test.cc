// `via serve` run as a service (issue 17): --config files, SIGHUP reopening
// the access log, SIGTERM draining, /metrics, readiness for systemd. Every test runs the real binary on a
// free loopback port.

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "http_get.h"
#include "serve_process.h"
#include "testing.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using via::testing::HttpGet;
using via::testing::PortOf;
using via::testing::Run;
using via::testing::ServeProcess;
using via::testing::TempDir;
using via::testing::Via;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

void Write(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// Polls `ready` every 20 ms for up to `ms`.
template <typename F>
bool Eventually(F ready, int ms = 10000) {
  for (int waited = 0; waited < ms; waited += 20) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ready();
}

// An initialized home in a temporary directory.
struct Home {
  TempDir dir;
  fs::path home = dir.path() / "home";
  Home() { REQUIRE(Via(home, "init >/dev/null 2>&1").exit_code == 0); }
};

int SqlWorkers(const ServeProcess& server) {
  auto health = HttpGet(PortOf(server.url()), "/healthz");
  REQUIRE(health.status == 200);
  return json::parse(health.body)["sql"]["workers"].get<int>();
}

// `via serve --config FILE` with stdout and stderr together.
via::testing::CommandResult ServeWithConfig(const fs::path& home, const fs::path& config) {
  return Run(via::testing::ViaBinary() + " --home '" + home.string() + "' serve --config '" +
             config.string() + "' --listen 127.0.0.1:0 </dev/null 2>&1");
}

}  // namespace

TEST_CASE("via serve --config takes its flags from the file", "[server][service]") {
  Home h;
  const fs::path log = h.dir.path() / "from-config.log";
  const fs::path config = h.dir.path() / "serve.conf";
  Write(config, "# comment\n[serve]\nlisten = \"127.0.0.1:0\"\naccess-log = \"" + log.string() +
                    "\"\nsql-workers = 3\nidle-timeout = \"5s\"\n");
  ServeProcess server(h.home, {"--config", config.string()}, via::testing::ViaBinary(),
                      /*default_flags=*/false);
  REQUIRE(!server.url().empty());
  CHECK(SqlWorkers(server) == 3);
  // The access log is the file's, not stdout.
  CHECK(Eventually([&] { return ReadAll(log).find("\"/healthz\"") != std::string::npos; }));
}

TEST_CASE("via serve: a flag on the command line wins over the config file",
          "[server][service]") {
  Home h;
  const fs::path config = h.dir.path() / "serve.conf";
  Write(config, "[serve]\nsql-workers = 3\n");
  ServeProcess server(h.home, {"--config", config.string(), "--sql-workers", "5"});
  REQUIRE(!server.url().empty());
  CHECK(SqlWorkers(server) == 5);
}

TEST_CASE("via serve: keys outside a section are the serve flags too", "[server][service]") {
  Home h;
  const fs::path config = h.dir.path() / "serve.conf";
  Write(config, "sql-workers = 2\n");
  ServeProcess server(h.home, {"--config", config.string()});
  REQUIRE(!server.url().empty());
  CHECK(SqlWorkers(server) == 2);
}

TEST_CASE("the example serve.conf names every flag of via serve, and all of them are accepted",
          "[server][service]") {
  Home h;
  // The flags `via serve --help` lists.
  auto help = Run(via::testing::ViaBinary() + " serve --help");
  REQUIRE(help.exit_code == 0);
  std::set<std::string> flags;
  std::regex flag_line(R"(^\s+--([a-z0-9-]+))");
  std::istringstream lines(help.out);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, flag_line)) flags.insert(m[1]);
  }
  flags.erase("help");
  flags.erase("config");
  REQUIRE(flags.size() > 20);
  // The example with every key uncommented.
  const std::string example = ReadAll(fs::path(VIA_SOURCE_DIR) / "packaging/serve.conf");
  std::set<std::string> keys;
  std::string uncommented;
  std::regex key_line(R"(^#?\s*([a-z0-9-]+) = (.*)$)");
  std::istringstream example_lines(example);
  for (std::string line; std::getline(example_lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, key_line)) {
      keys.insert(m[1]);
      // TLS needs real files (tests/e2e/tls.sh serves with them; the
      // forward CA: tests/eventstore/postgres/pg_forward_test.cc).
      if (m[1] == "tls-cert" || m[1] == "tls-key" || m[1] == "forward-ca-file") continue;
      uncommented += std::string(m[1]) + " = " + std::string(m[2]) + "\n";
    } else if (line.rfind("[", 0) == 0) {
      uncommented += line + "\n";
    }
  }
  CHECK(keys == flags);
  const fs::path config = h.dir.path() / "all.conf";
  Write(config, uncommented);
  // The listen address and the access log path of the example are the
  // packaged service's: the command line overrides them here.
  ServeProcess server(h.home, {"--config", config.string()});
  INFO(ReadAll(h.home / "serve.err"));
  CHECK(!server.url().empty());
}

TEST_CASE("via serve --config: an unknown key is a usage error naming it and the closest key",
          "[server][service]") {
  Home h;
  const fs::path config = h.dir.path() / "serve.conf";
  Write(config, "[serve]\nlisen = \"127.0.0.1:0\"\n");
  auto r = ServeWithConfig(h.home, config);
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("unknown key 'lisen'") != std::string::npos);
  CHECK(r.out.find("did you mean 'listen'") != std::string::npos);
  CHECK(r.out.find(config.string()) != std::string::npos);
  CHECK(r.out.find("listening on") == std::string::npos);
}

TEST_CASE("via serve --config: a bad value is a usage error naming the key", "[server][service]") {
  Home h;
  const fs::path config = h.dir.path() / "serve.conf";
  for (const std::string& line :
       {std::string("threads = \"many\""), std::string("max-connections = -1"),
        std::string("idle-timeout = \"soon\""), std::string("snapshot-maintenance = \"maybe\"")}) {
    INFO(line);
    Write(config, "[serve]\n" + line + "\n");
    auto r = ServeWithConfig(h.home, config);
    CHECK(r.exit_code == 2);
    CHECK(r.out.find(line.substr(0, line.find(' '))) != std::string::npos);
    CHECK(r.out.find("listening on") == std::string::npos);
  }
}

TEST_CASE("via serve --config: other sections, repeated keys and a missing file are usage errors",
          "[server][service]") {
  Home h;
  const fs::path config = h.dir.path() / "serve.conf";
  Write(config, "[server]\nlisten = \"127.0.0.1:0\"\n");
  auto section = ServeWithConfig(h.home, config);
  CHECK(section.exit_code == 2);
  CHECK(section.out.find("unknown section [server]") != std::string::npos);

  Write(config, "[serve]\nsql-workers = 2\nthreads = 1\nsql-workers = 3\n");
  auto twice = ServeWithConfig(h.home, config);
  CHECK(twice.exit_code == 2);
  CHECK(twice.out.find("'sql-workers' is given more than once") != std::string::npos);

  Write(config, "[serve]\nconfig = \"/etc/other.conf\"\n");
  auto nested = ServeWithConfig(h.home, config);
  CHECK(nested.exit_code == 2);
  CHECK(nested.out.find("unknown key 'config'") != std::string::npos);

  auto missing = ServeWithConfig(h.home, h.dir.path() / "nope.conf");
  CHECK(missing.exit_code == 2);
  CHECK(missing.out.find("nope.conf: cannot be read") != std::string::npos);
}

TEST_CASE("SIGHUP reopens the access log: after a rename new lines go to a new file",
          "[server][service]") {
  Home h;
  ServeProcess server(h.home);
  REQUIRE(!server.url().empty());
  const int port = PortOf(server.url());
  const fs::path log = h.home / "access.log";
  const fs::path rotated = h.home / "access.log.1";
  REQUIRE(HttpGet(port, "/healthz").status == 200);
  REQUIRE(Eventually([&] { return ReadAll(log).find("\"/healthz\"") != std::string::npos; }));
  fs::rename(log, rotated);
  // Written to the renamed file until the signal.
  REQUIRE(HttpGet(port, "/readyz").status == 200);
  REQUIRE(Eventually([&] { return ReadAll(rotated).find("\"/readyz\"") != std::string::npos; }));
  CHECK(!fs::exists(log));

  server.Signal(SIGHUP);
  REQUIRE(Eventually([&] {
    return ReadAll(h.home / "serve.err").find("access log reopened") != std::string::npos;
  }));
  CHECK(server.alive());
  REQUIRE(HttpGet(port, "/.well-known/jwks.json").status == 200);
  CHECK(Eventually([&] { return ReadAll(log).find("jwks.json") != std::string::npos; }));
  const std::string fresh = ReadAll(log);
  CHECK(fresh.find("\"/healthz\"") == std::string::npos);
  CHECK(ReadAll(rotated).find("jwks.json") == std::string::npos);

  // A second rotation works the same way; the server never exits with 129.
  fs::rename(log, h.home / "access.log.2");
  server.Signal(SIGHUP);
  CHECK(Eventually([&] { return fs::exists(log); }));
  CHECK(HttpGet(port, "/healthz").status == 200);
  CHECK(server.alive());

  // SIGTERM still drains and exits 0.
  server.Signal(SIGTERM);
  REQUIRE(server.WaitExit(15000));
  CHECK(WIFEXITED(server.exit_status()));
  CHECK(WEXITSTATUS(server.exit_status()) == 0);
  CHECK(ReadAll(h.home / "serve.err").find("drained, exiting") != std::string::npos);
}

namespace {

using via::testing::HttpCall;

// One sample of an exposition: name, labels (as written) and value.
struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Parses the Prometheus text exposition format 0.0.4 strictly: every line is
// a # HELP, a # TYPE or a sample, each family's TYPE comes once and before
// its samples, label values are quoted with escapes, values are numbers.
// Fails the test (with the line) on anything else.
std::vector<MetricSample> ParseExposition(const std::string& text) {
  static const std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
  static const std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$)");
  static const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|\+Inf|NaN)$)");
  static const std::regex label(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(,|$))re");
  std::map<std::string, std::string> types;
  std::vector<MetricSample> out;
  REQUIRE(!text.empty());
  REQUIRE(text.back() == '\n');
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    INFO(line);
    std::smatch m;
    if (std::regex_match(line, m, help)) continue;
    if (std::regex_match(line, m, type)) {
      REQUIRE(types.emplace(m[1], m[2]).second);  // one TYPE per family
      continue;
    }
    REQUIRE(std::regex_match(line, m, sample));
    MetricSample s;
    s.name = m[1];
    s.value = m[4] == "+Inf" ? INFINITY : std::stod(m[4]);
    std::string rest = m[3];
    for (std::smatch l; !rest.empty(); rest = l.suffix()) {
      REQUIRE(std::regex_search(rest, l, label));
      REQUIRE(l.position(0) == 0);
      REQUIRE(s.labels.emplace(l[1], l[2]).second);
    }
    // The family: a histogram's samples end in _bucket, _sum or _count.
    std::string family = s.name;
    for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
      if (family.size() > suffix.size() && family.ends_with(suffix) &&
          types.count(family.substr(0, family.size() - suffix.size())) &&
          types[family.substr(0, family.size() - suffix.size())] == "histogram") {
        family = family.substr(0, family.size() - suffix.size());
      }
    }
    REQUIRE(types.count(family) == 1);  // declared before its samples
    if (types[family] == "counter") CHECK(s.value >= 0);
    out.push_back(std::move(s));
  }
  return out;
}

double Value(const std::vector<MetricSample>& samples, const std::string& name,
             const std::map<std::string, std::string>& labels = {}) {
  for (const auto& s : samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return 0;
}

// Every histogram's buckets are cumulative and end with +Inf == _count.
void CheckHistograms(const std::vector<MetricSample>& samples) {
  std::map<std::string, std::vector<const MetricSample*>> buckets;
  for (const auto& s : samples) {
    if (!s.name.ends_with("_bucket")) continue;
    auto labels = s.labels;
    labels.erase("le");
    std::string key = s.name.substr(0, s.name.size() - 7) + "|";
    for (const auto& [k, v] : labels) key += k + "=" + v + ",";
    buckets[key].push_back(&s);
  }
  REQUIRE(!buckets.empty());
  for (const auto& [key, list] : buckets) {
    INFO(key);
    double last = 0, last_le = -1;
    for (const MetricSample* b : list) {
      const double le = b->labels.at("le") == "+Inf" ? INFINITY : std::stod(b->labels.at("le"));
      CHECK(le > last_le);
      CHECK(b->value >= last);
      last = b->value;
      last_le = le;
    }
    CHECK(list.back()->labels.at("le") == "+Inf");
    auto labels = list.back()->labels;
    labels.erase("le");
    CHECK(Value(samples, key.substr(0, key.find('|')) + "_count", labels) == last);
  }
}

std::vector<MetricSample> Scrape(int port) {
  auto r = HttpGet(port, "/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.headers.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  return ParseExposition(r.body);
}

}  // namespace

TEST_CASE("/metrics is Prometheus text whose counters move with requests", "[server][service]") {
  Home h;
  REQUIRE(Via(h.home, "addon create sqlite app-db --app api --bind DATABASE >/dev/null").exit_code == 0);
  REQUIRE(Via(h.home, "release create --app api >/dev/null").exit_code == 0);
  auto token = Via(h.home, "workload token --app api --release v1");
  REQUIRE(token.exit_code == 0);
  const std::string jwt = token.out.substr(0, token.out.find('\n'));
  ServeProcess server(h.home, {"--snapshot-maintenance", "false"});
  REQUIRE(!server.url().empty());
  const int port = PortOf(server.url());

  const auto before = Scrape(port);
  CheckHistograms(before);
  for (const std::string family :
       {"via_sql_queue_length", "via_sql_workers", "via_hrana_open_streams",
        "via_sqlite_pooled_connections", "via_log_seq", "via_log_catch_up_age_seconds",
        "via_revocations_applied_total", "via_revoked_requests_total", "via_ready",
        "via_sql_queue_wait_seconds_count"}) {
    INFO(family);
    CHECK(std::any_of(before.begin(), before.end(),
                      [&](const MetricSample& s) { return s.name == family; }));
  }
  CHECK(Value(before, "via_ready") == 1);
  CHECK(Value(before, "via_log_seq") >= 3);

  const std::map<std::string, std::string> healthz = {{"route", "/healthz"}, {"status", "200"}};
  for (int i = 0; i < 3; ++i) REQUIRE(HttpGet(port, "/healthz").status == 200);
  // A descriptor and a SQL pipeline, then the same credential once revoked.
  auto descriptor = HttpCall(port, "GET", "/v1/descriptors/DATABASE", jwt);
  REQUIRE(descriptor.status == 200);
  const std::string auth = json::parse(descriptor.body)["auth_token"];
  const std::string pipeline =
      R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT 1"}},{"type":"close"}]})";
  REQUIRE(HttpCall(port, "POST", "/v2/pipeline", auth, pipeline).status == 200);
  REQUIRE(Via(h.home, "addon rotate-credentials app-db >/dev/null").exit_code == 0);
  REQUIRE(Via(h.home, "--yes addon revoke-credentials app-db --generation 1 --force >/dev/null 2>&1")
              .exit_code == 0);
  CHECK(HttpCall(port, "POST", "/v2/pipeline", auth, pipeline).status == 401);
  // Paths a hostile client makes up never become label values.
  for (int i = 0; i < 20; ++i) {
    CHECK(HttpGet(port, "/made-up-" + std::to_string(i)).status == 404);
    CHECK(HttpGet(port, "/v1/descriptors/BINDING_" + std::to_string(i)).status == 401);
  }

  const auto after = Scrape(port);
  CheckHistograms(after);
  CHECK(Value(after, "via_http_requests_total", healthz) -
            Value(before, "via_http_requests_total", healthz) ==
        3);
  CHECK(Value(after, "via_http_requests_total", {{"route", "/v2/pipeline"}, {"status", "200"}}) == 1);
  CHECK(Value(after, "via_http_requests_total", {{"route", "/v2/pipeline"}, {"status", "401"}}) == 1);
  CHECK(Value(after, "via_http_requests_total", {{"route", "other"}, {"status", "404"}}) == 20);
  CHECK(Value(after, "via_http_requests_total",
              {{"route", "/v1/descriptors/{binding}"}, {"status", "401"}}) == 20);
  CHECK(Value(after, "via_http_request_duration_seconds_count", {{"route", "/healthz"}}) >= 3);
  // Both pipelines waited for a worker; the revoked one was refused there.
  CHECK(Value(after, "via_sql_queue_wait_seconds_count") == 2);
  CHECK(Value(after, "via_revocations_applied_total") == 1);
  CHECK(Value(after, "via_revoked_requests_total") == 1);
  CHECK(Value(after, "via_log_seq") > Value(before, "via_log_seq"));
  // Bounded labels: only route templates, whatever was asked.
  std::set<std::string> routes;
  std::size_t series = 0;
  for (const auto& s : after) {
    if (s.name != "via_http_requests_total") continue;
    ++series;
    routes.insert(s.labels.at("route"));
    for (const auto& [k, v] : s.labels) {
      CHECK(v.find("made-up") == std::string::npos);
      CHECK(v.find("BINDING_") == std::string::npos);
    }
  }
  CHECK(series <= 8);
  for (const auto& r : routes) {
    INFO(r);
    CHECK((r == "other" || r.front() == '/'));
    CHECK(r.find("BINDING") == std::string::npos);
  }
}

TEST_CASE("via serve tells a NOTIFY_SOCKET READY=1 once it listens and STOPPING=1 on SIGTERM",
          "[server][service]") {
  Home h;
  // systemd's side: a unix datagram socket whose path goes in $NOTIFY_SOCKET.
  const fs::path socket_path = h.dir.path() / "notify";
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(socket_path.string().size() < sizeof addr.sun_path);
  std::strcpy(addr.sun_path, socket_path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  timeval tv{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto receive = [&]() {
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  };

  ServeProcess server(h.home, {"--snapshot-maintenance", "false"}, via::testing::ViaBinary(),
                      /*default_flags=*/true, {"NOTIFY_SOCKET=" + socket_path.string()});
  REQUIRE(!server.url().empty());
  const std::string ready = receive();
  CHECK(ready.find("READY=1") != std::string::npos);
  // Sent after the listener is bound: the address it names answers.
  CHECK(ready.find("STATUS=listening on " + server.url()) != std::string::npos);
  CHECK(HttpGet(PortOf(server.url()), "/healthz").status == 200);

  server.Signal(SIGTERM);
  const std::string stopping = receive();
  CHECK(stopping.find("STOPPING=1") != std::string::npos);
  REQUIRE(server.WaitExit(15000));
  CHECK(WIFEXITED(server.exit_status()));
  CHECK(WEXITSTATUS(server.exit_status()) == 0);
  ::close(fd);
}

TEST_CASE("via serve: TLS flags are checked before the server starts", "[server][service]") {
  Home h;
  const std::string serve = via::testing::ViaBinary() + " --home '" + h.home.string() +
                            "' serve --listen 127.0.0.1:0 ";
  auto alone = Run(serve + "--tls-cert /nonexistent/cert.pem </dev/null 2>&1");
  CHECK(alone.exit_code == 2);
  CHECK(alone.out.find("--tls-cert and --tls-key go together") != std::string::npos);
  auto missing = Run(serve + "--tls-cert /nonexistent/cert.pem --tls-key /nonexistent/key.pem "
                             "</dev/null 2>&1");
  CHECK(missing.exit_code == 2);
  CHECK(missing.out.find("invalid_tls") != std::string::npos);
  CHECK(missing.out.find("/nonexistent/cert.pem") != std::string::npos);
  CHECK(missing.out.find("listening on") == std::string::npos);
}

TEST_CASE("via serve on a home without keys refuses and makes nothing there", "[server][service]") {
  TempDir dir;
  const fs::path home = dir.path() / "typo";
  // A server that wrongly made a home would listen until the timeout (124).
  auto missing = Run("timeout 20 " + via::testing::ViaBinary() + " --home '" + home.string() +
                     "' serve --listen 127.0.0.1:0 </dev/null 2>&1");
  INFO(missing.out);
  CHECK(missing.exit_code != 0);
  CHECK(missing.exit_code != 124);
  CHECK(missing.out.find("workload_key_missing") != std::string::npos);
  CHECK(missing.out.find("listening on") == std::string::npos);
  CHECK_FALSE(fs::exists(home / "keys"));
  CHECK_FALSE(fs::exists(home / "log"));
  // The same with --node: the announcement comes after the check.
  auto node = Run("timeout 20 " + via::testing::ViaBinary() + " --home '" + home.string() +
                  "' serve --listen 127.0.0.1:0 --node a --public-url http://127.0.0.1:9 </dev/null 2>&1");
  INFO(node.out);
  CHECK(node.out.find("workload_key_missing") != std::string::npos);
  CHECK_FALSE(fs::exists(home / "log"));
}
