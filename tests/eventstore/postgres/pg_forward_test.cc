// Forwarding under a hostile or dead owning node (docs/runtime.md "Several
// nodes"), through a real `via serve` on a PostgreSQL log: node b's public
// URL is a loopback listener of the test that accepts connections and then
// holds them without answering, answers, or sends an endless body. Node a
// forwards the requests for b's add-on there; a's own app must keep being
// served while those forwards are pending, the per-owner cap refuses the
// excess with 503 forward_busy, repeated failures open the breaker (503
// owner_unreachable at once, nothing sent), and after the cool-down one
// probe goes through.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "log_backend.h"
#include "nodes_harness.h"
#include "serve_process.h"
#include "server/http_get.h"
#include "server/owner_stand_in.h"
#include "testing.h"

using namespace via;
using via::testing::Eventually;
using via::testing::FreePort;
using via::testing::JsonOf;
using via::testing::Metric;
using via::testing::NodeServer;
using via::testing::ReadText;
using via::testing::TwoHomes;
using via::testing::HttpCall;
using via::testing::HttpGet;
using via::testing::OwnerStandIn;
using via::testing::Via;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Reply {
  int status = 0;
  std::string code;
  std::string headers;
};

Reply Call(int port, const std::string& method, const std::string& target, const std::string& bearer,
           const std::string& body = "") {
  auto r = HttpCall(port, method, target, bearer, body, 60000);
  Reply out;
  out.status = r.status;
  out.headers = r.headers;
  try {
    const json j = json::parse(r.body);
    if (j.contains("error")) out.code = j["error"]["code"];
    if (j.contains("code") && j["code"].is_string()) out.code = j["code"];
  } catch (...) {
  }
  return out;
}

std::string SelectOne() {
  return R"({"baton":null,"requests":[{"type":"execute","stmt":{"sql":"SELECT 1"}}]})";
}

// Two homes on one PostgreSQL log: a with its app "api" (add-on db-a), b
// with "web" (db-b). Node b announces the stand-in's URL as its public URL;
// the tokens come from b itself (the owner answers its own descriptors).
struct TwoNodes {
  testing::TestLogDatabase database;
  testing::TempDir dir;
  fs::path home_a = dir.path() / "a";
  fs::path home_b = dir.path() / "b";
  OwnerStandIn stand_in;
  std::string jwt_a, jwt_b, token_a, token_b;
  int port_a = 0;
  std::unique_ptr<testing::ServeProcess> a;

  explicit TwoNodes(const std::vector<std::string>& a_flags) {
    REQUIRE(Via(home_a, "init --log " + database.url() + " >/dev/null").exit_code == 0);
    fs::create_directories(home_b);
    fs::copy(home_a / "keys", home_b / "keys");
    REQUIRE(Via(home_b, "init --log " + database.url() + " >/dev/null").exit_code == 0);
    const int port_b = FreePort();
    testing::ServeProcess b(home_b,
                            {"--listen", "127.0.0.1:" + std::to_string(port_b), "--public-url",
                             stand_in.url(), "--node", "b", "--snapshot-maintenance", "false"},
                            testing::ViaBinary(), /*default_flags=*/false);
    REQUIRE(!b.url().empty());
    REQUIRE(Via(home_b, "addon create sqlite db-b --app web --bind DATABASE >/dev/null").exit_code == 0);
    REQUIRE(Via(home_b, "release create --app web >/dev/null").exit_code == 0);
    jwt_b = JsonOf(Via(home_b, "--json workload token --app web --release v1").out)["token"];
    auto described = HttpCall(port_b, "GET", "/v1/descriptors/DATABASE", jwt_b);
    REQUIRE(described.status == 200);
    token_b = JsonOf(described.body)["auth_token"];
    b.Kill();

    port_a = FreePort();
    std::vector<std::string> flags = {"--listen", "127.0.0.1:" + std::to_string(port_a),
                                      "--public-url", "http://127.0.0.1:" + std::to_string(port_a),
                                      "--node", "a", "--snapshot-maintenance", "false"};
    flags.insert(flags.end(), a_flags.begin(), a_flags.end());
    a = std::make_unique<testing::ServeProcess>(home_a, flags, testing::ViaBinary(),
                                                /*default_flags=*/false);
    REQUIRE(!a->url().empty());
    REQUIRE(Via(home_a, "addon create sqlite db-a --app api --bind DATABASE >/dev/null").exit_code == 0);
    REQUIRE(Via(home_a, "release create --app api >/dev/null").exit_code == 0);
    jwt_a = JsonOf(Via(home_a, "--json workload token --app api --release v1").out)["token"];
    described = HttpCall(port_a, "GET", "/v1/descriptors/DATABASE", jwt_a);
    REQUIRE(described.status == 200);
    token_a = JsonOf(described.body)["auth_token"];
  }
};

}  // namespace

TEST_CASE("a dead owning node holds no worker: local requests answer while its forwards hang, "
          "excess is forward_busy, the breaker opens and probes after the cool-down",
          "[postgres][nodes][server][forward]") {
  // The control pool has two workers: when a forward held its worker, two
  // hanging descriptor forwards held them both, and a's own descriptor
  // waited behind them.
  TwoNodes nodes({"--forward-timeout", "8s", "--forward-per-owner", "3",
                  "--forward-breaker-failures", "2", "--forward-breaker-cooldown", "5s"});
  const int a = nodes.port_a;

  // Six requests for b's add-on at once: three descriptors, three pipelines.
  std::mutex mu;
  std::vector<Reply> replies;
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 6; ++i) {
    clients.emplace_back([&, i] {
      Reply r = i % 2 == 0 ? Call(a, "GET", "/v1/descriptors/DATABASE", nodes.jwt_b)
                           : Call(a, "POST", "/v2/pipeline", nodes.token_b, SelectOne());
      std::lock_guard lock(mu);
      replies.push_back(r);
      ++answered;
    });
  }
  // Three reach the stand-in (the per-owner cap), the other three are refused.
  REQUIRE(Eventually([&] { return nodes.stand_in.accepted() == 3 && answered == 3; }));
  {
    std::lock_guard lock(mu);
    for (const Reply& r : replies) {
      CHECK(r.status == 503);
      CHECK(r.code == "forward_busy");
      CHECK(r.headers.find("Retry-After:") != std::string::npos);
    }
  }
  // a's own app is served while those three forwards are pending.
  auto descriptor = HttpCall(a, "GET", "/v1/descriptors/DATABASE", nodes.jwt_a);
  CHECK(descriptor.status == 200);
  auto sql = HttpCall(a, "POST", "/v2/pipeline", nodes.token_a, SelectOne());
  CHECK(sql.status == 200);
  CHECK(Metric(a, "via_forwards_in_flight") == 3);
  // Still pending: the local answers did not wait for them.
  CHECK(answered == 3);
  CHECK(Metric(a, "via_forward_busy_total") == 3);

  for (auto& t : clients) t.join();
  // The three timed out after the request was sent: 502, the owner may have run it.
  int lost = 0;
  for (const Reply& r : replies) lost += r.status == 502 && r.code == "owner_answer_lost";
  CHECK(lost == 3);

  // Two or more failures in a row: the breaker is open, nothing is sent.
  nodes.stand_in.set_mode(OwnerStandIn::kAnswer);
  Reply fast = Call(a, "POST", "/v2/pipeline", nodes.token_b, SelectOne());
  CHECK(fast.status == 503);
  CHECK(fast.code == "owner_unreachable");
  CHECK(fast.headers.find("Retry-After:") != std::string::npos);
  Reply fast_descriptor = Call(a, "GET", "/v1/descriptors/DATABASE", nodes.jwt_b);
  CHECK(fast_descriptor.status == 503);
  CHECK(fast_descriptor.code == "owner_unreachable");
  CHECK(nodes.stand_in.accepted() == 3);
  CHECK(Metric(a, "via_forward_breaker_opened_total") == 1);
  CHECK(Metric(a, "via_forward_breaker_refusals_total") >= 2);

  // After the cool-down one request goes through as a probe; the owner
  // answers, so the breaker closes and requests are forwarded again.
  Reply probed;
  REQUIRE(Eventually(
      [&] {
        probed = Call(a, "POST", "/v2/pipeline", nodes.token_b, SelectOne());
        return probed.status == 200;
      },
      20000));
  CHECK(nodes.stand_in.accepted() == 4);  // one probe, every other request refused at once
  CHECK(Metric(a, "via_forward_breaker_probes_total") == 1);
  CHECK(Call(a, "GET", "/v1/descriptors/DATABASE", nodes.jwt_b).status == 200);
  CHECK(nodes.stand_in.accepted() == 5);
}

TEST_CASE("an owning node that sends an endless body is cut off at the response bound",
          "[postgres][nodes][server][forward]") {
  // The bound is --max-response-bytes + 1 MiB: 2 MiB here.
  TwoNodes nodes({"--forward-timeout", "60s", "--max-response-bytes", "1048576"});
  nodes.stand_in.set_mode(OwnerStandIn::kEndless);
  Reply r = Call(nodes.port_a, "POST", "/v2/pipeline", nodes.token_b, SelectOne());
  CHECK(r.status == 502);
  CHECK(r.code == "owner_answer_lost");
  // Cut off by the size bound, long before the 60 s timeout.
  CHECK(ReadText(nodes.home_a / "serve.err").find("larger than 2097152 bytes") != std::string::npos);
  // The owner stopped once a closed the connection: it could not write more
  // than the bound plus what the sockets' buffers hold.
  CHECK(nodes.stand_in.bytes_sent() > (2u << 20));
  CHECK(nodes.stand_in.bytes_sent() < (2u << 20) + (16u << 20));
  // The node is still well: its own app answers.
  CHECK(HttpCall(nodes.port_a, "POST", "/v2/pipeline", nodes.token_a, SelectOne()).status == 200);
}

namespace {

// Waits for `via serve` with TLS to say it listens (ServeProcess looks for
// an http:// line only).
bool ListeningOnHttps(const fs::path& home) {
  return Eventually([&] {
    return ReadText(home / "serve.err").find("listening on https://") != std::string::npos;
  });
}

}  // namespace

TEST_CASE("forwarding to an https:// owning node verifies its certificate with --forward-ca-file",
          "[postgres][nodes][server][forward][tls]") {
  testing::TestLogDatabase database;
  testing::TempDir dir;
  const fs::path home_a = dir.path() / "a";
  const fs::path home_b = dir.path() / "b";
  const fs::path certs = dir.path() / "certs";
  fs::create_directories(certs);
  // A throwaway CA and a certificate for 127.0.0.1 signed by it (as
  // tests/e2e/tls.sh makes them), and another CA that signed nothing here.
  const std::string c = "cd '" + certs.string() + "' && ";
  REQUIRE(testing::Run(c + "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                           "-keyout ca.key -out ca.pem -days 2 -subj '/CN=via test CA' 2>&1")
              .exit_code == 0);
  REQUIRE(testing::Run(c + "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' "
                           ">ext.cnf && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                           "-nodes -keyout b.key -out b.csr -subj '/CN=b' 2>&1 && openssl x509 "
                           "-req -in b.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 "
                           "-extfile ext.cnf -out b.pem 2>&1")
              .exit_code == 0);
  REQUIRE(testing::Run(c + "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                           "-keyout other-ca.key -out other-ca.pem -days 2 -subj '/CN=other CA' "
                           "2>&1")
              .exit_code == 0);

  REQUIRE(Via(home_a, "init --log " + database.url() + " >/dev/null").exit_code == 0);
  fs::create_directories(home_b);
  fs::copy(home_a / "keys", home_b / "keys");
  REQUIRE(Via(home_b, "init --log " + database.url() + " >/dev/null").exit_code == 0);

  const int port_b = FreePort();
  const std::string url_b = "https://127.0.0.1:" + std::to_string(port_b);
  testing::ServeProcess b(home_b,
                          {"--listen", "127.0.0.1:" + std::to_string(port_b), "--public-url", url_b,
                           "--node", "b", "--tls-cert", (certs / "b.pem").string(), "--tls-key",
                           (certs / "b.key").string(), "--snapshot-maintenance", "false"},
                          testing::ViaBinary(), /*default_flags=*/false);
  REQUIRE(ListeningOnHttps(home_b));
  REQUIRE(Via(home_b, "addon create sqlite db-b --app web --bind DATABASE >/dev/null").exit_code == 0);
  REQUIRE(Via(home_b, "release create --app web >/dev/null").exit_code == 0);
  const std::string jwt_b =
      JsonOf(Via(home_b, "--json workload token --app web --release v1").out)["token"];

  auto start_a = [&](const fs::path& ca, int port) {
    return std::make_unique<testing::ServeProcess>(
        home_a,
        std::vector<std::string>{"--listen", "127.0.0.1:" + std::to_string(port), "--public-url",
                                 "http://127.0.0.1:" + std::to_string(port), "--node", "a",
                                 "--forward-ca-file", ca.string(), "--snapshot-maintenance",
                                 "false"},
        testing::ViaBinary(), /*default_flags=*/false);
  };
  const int port_a = FreePort();
  auto a = start_a(certs / "ca.pem", port_a);
  REQUIRE(!a->url().empty());

  // The descriptor comes from b over https, through a; so does SQL.
  auto described = HttpCall(port_a, "GET", "/v1/descriptors/DATABASE", jwt_b);
  REQUIRE(described.status == 200);
  const json descriptor = JsonOf(described.body);
  CHECK(descriptor["url"] == url_b);
  const std::string token_b = descriptor["auth_token"];
  auto sql = HttpCall(port_a, "POST", "/v2/pipeline", token_b, SelectOne());
  CHECK(sql.status == 200);
  CHECK(Metric(port_a, "via_forwarded_requests_total") == 2);

  // With a CA that did not sign b's certificate, nothing is sent to b.
  a->Kill();
  // ServeProcess waits for the "listening" line in serve.err: not the old one.
  fs::remove(home_a / "serve.err");
  a = start_a(certs / "other-ca.pem", port_a);
  REQUIRE(!a->url().empty());
  const std::size_t b_log_before = ReadText(home_b / "serve.out").size();
  Reply refused = Call(port_a, "POST", "/v2/pipeline", token_b, SelectOne());
  CHECK(refused.status == 503);
  CHECK(refused.code == "owner_tls_failed");
  Reply refused_descriptor = Call(port_a, "GET", "/v1/descriptors/DATABASE", jwt_b);
  CHECK(refused_descriptor.status == 503);
  CHECK(refused_descriptor.code == "owner_tls_failed");
  CHECK(ReadText(home_a / "serve.err")
            .find("certificate verify failed") != std::string::npos);
  // b's access log (stdout without --access-log) got no request meanwhile.
  CHECK(ReadText(home_b / "serve.out").size() == b_log_before);

  // A CA file that cannot be read stops the server before it listens.
  auto bad = testing::Run(testing::ViaBinary() + " --home '" + home_a.string() +
                          "' serve --listen 127.0.0.1:0 --forward-ca-file '" +
                          (certs / "missing.pem").string() + "' </dev/null 2>&1");
  CHECK(bad.exit_code == 2);
  CHECK(bad.out.find("invalid_forward_ca") != std::string::npos);
}
