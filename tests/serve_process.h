#pragma once

// A real `via serve` on a free loopback port, as a child process that is
// killed when the object is destroyed, whatever the test's outcome.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "testing.h"

namespace via::testing {

// A `via serve` child process; SIGKILLed and reaped on destruction.
class ServeProcess {
 public:
  // `binary`: the via to run (default: this build's). Without
  // `default_flags` only `extra` follows `serve` (no --listen, no
  // --access-log); `env` ("NAME=VALUE") is added to the child's environment.
  ServeProcess(const std::filesystem::path& home, std::vector<std::string> extra = {},
               std::string binary = ViaBinary(), bool default_flags = true,
               std::vector<std::string> env = {}) {
    const std::string err = (home / "serve.err").string();
    const std::string out = (home / "serve.out").string();
    std::vector<std::string> argv = {binary, "--home", home.string(), "serve"};
    if (default_flags) {
      argv.insert(argv.end(), {"--listen", "127.0.0.1:0", "--access-log",
                               (home / "access.log").string()});
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    // Emptied before the child starts: the child's own O_TRUNC may come after
    // the first read below, which would then find the "listening" line of an
    // earlier server on the same home.
    { std::ofstream truncate(err, std::ios::trunc); }
    pid_ = ::fork();
    if (pid_ == 0) {
      for (auto& e : env) ::putenv(e.data());
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
  ~ServeProcess() { Kill(); }

  // SIGKILLs the server (its clients see their connections close) and reaps it.
  void Kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &exit_status_, 0);
      pid_ = -1;
    }
  }
  // Sends `signal` to the server.
  void Signal(int signal) {
    if (pid_ > 0) ::kill(pid_, signal);
  }
  // Waits up to `timeout_ms` for the server to exit; true (and reaped, see
  // exit_status()) when it did.
  bool WaitExit(int timeout_ms) {
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
      if (!alive()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // "http://127.0.0.1:PORT", or "" when the server did not start.
  const std::string& url() const { return url_; }
  // True while the process runs; false once it exited or crashed (then it
  // is reaped, and `exit_status()` tells how it ended).
  bool alive() {
    if (pid_ <= 0) return false;
    if (::waitpid(pid_, &exit_status_, WNOHANG) == 0) return true;
    pid_ = -1;
    return false;
  }
  int exit_status() const { return exit_status_; }

 private:
  pid_t pid_ = -1;
  int exit_status_ = 0;
  std::string url_;
};

}  // namespace via::testing
