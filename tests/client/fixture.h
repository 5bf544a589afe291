#pragma once

// A real `via serve` on a free loopback port over a temporary home with one
// app ("api"), its release v1 claiming DATABASE (add-on app-db), and LATE
// (add-on late-db) bound after v1, so v1 does not claim it. The server is
// killed when the fixture is destroyed, whatever the test's outcome.

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "client/sql.h"
#include "serve_process.h"
#include "testing.h"

namespace via::client_test {

using testing::ServeProcess;

inline std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

struct World {
  testing::TempDir dir;
  std::string token;
  std::unique_ptr<ServeProcess> server;

  explicit World(std::vector<std::string> serve_flags = {}) {
    REQUIRE(Via("init").exit_code == 0);
    REQUIRE(Via("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
    REQUIRE(Via("release create --app api --id v1").exit_code == 0);
    REQUIRE(Via("addon create sqlite late-db --app api --bind LATE").exit_code == 0);
    auto t = Via("workload token --app api --release v1 --ttl 10m");
    REQUIRE(t.exit_code == 0);
    token = Trim(t.out);
    server = std::make_unique<ServeProcess>(dir.path(), std::move(serve_flags));
    REQUIRE(!server->url().empty());
  }

  testing::CommandResult Via(const std::string& args) {
    return testing::Via(dir.path(), "--actor test " + args);
  }

  SqlOptions Options() const {
    SqlOptions o;
    o.config_url = server->url();
    o.workload_token = token;
    o.connect_timeout_ms = 5000;
    o.request_timeout_ms = 20000;
    return o;
  }

  Sql Connect(const std::string& binding = "DATABASE") {
    auto db = Sql::Connect(binding, Options());
    INFO((db.ok() ? std::string("ok") : db.error().ToString()));
    REQUIRE(db.ok());
    return std::move(db).value();
  }

  // `via sql` with this world's server and token in the environment.
  testing::CommandResult ViaSql(const std::string& args) {
    return testing::Run("VIA_CONFIG_URL='" + server->url() + "' VIA_WORKLOAD_TOKEN='" + token +
                        "' " + testing::ViaBinary() + " sql " + args + " </dev/null");
  }
};

// The value of a one-row, one-column query.
inline SqlValue Scalar(Sql& db, const std::string& sql, std::vector<SqlValue> args = {}) {
  auto r = db.Execute(sql, std::move(args));
  INFO(sql << ": " << (r.ok() ? std::string("ok") : r.error().ToString()));
  REQUIRE(r.ok());
  REQUIRE(r->rows.size() == 1);
  REQUIRE(r->rows[0].size() == 1);
  return r->rows[0][0];
}

}  // namespace via::client_test
