#pragma once

// A real `via serve` on a free loopback port over a temporary home with one
// app ("api"), its release v1 claiming DATABASE (add-on app-db), and LATE
// (add-on late-db) bound after v1, so v1 does not claim it. The server is
// killed when the fixture is destroyed, whatever the test's outcome.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/sql.h"
#include "testing.h"

namespace via::client_test {

// A `via serve` child process; SIGKILLed and reaped on destruction.
class ServeProcess {
 public:
  ServeProcess(const std::filesystem::path& home, std::vector<std::string> extra = {}) {
    const std::string err = (home / "serve.err").string();
    const std::string out = (home / "serve.out").string();
    std::vector<std::string> argv = {
        testing::ViaBinary(), "--home",      home.string(),  "serve",
        "--listen",           "127.0.0.1:0", "--access-log", (home / "access.log").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int in = ::open("/dev/null", O_RDONLY);
      ::dup2(e, 2);
      ::dup2(o, 1);
      ::dup2(in, 0);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    for (int i = 0; i < 200 && url_.empty(); ++i) {
      std::ifstream in(err);
      std::string text((std::istreambuf_iterator<char>(in)), {});
      auto at = text.find("listening on http://");
      auto start = at + std::string("listening on ").size();
      // Only a whole line: the address ends at the space before "(log seq".
      if (at != std::string::npos && text.find(' ', start) != std::string::npos) {
        url_ = text.substr(start, text.find(' ', start) - start);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
      }
    }
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // "http://127.0.0.1:PORT", or "" when the server did not start.
  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  std::string url_;
};

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
