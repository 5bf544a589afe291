#pragma once

// Shared test helpers: temporary directories, running the `via` binary,
// deterministic clocks and ids.

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "domain/ids.h"

namespace via::testing {

// A fresh directory under the system temp dir, removed when destroyed.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "via-test-XXXXXX").string();
    char* made = ::mkdtemp(pattern.data());
    path_ = made ? made : pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A clock that tests move by hand.
class FakeClock : public Clock {
 public:
  explicit FakeClock(std::int64_t now = 1732406400000) : now_(now) {}
  std::int64_t NowMs() override { return now_; }
  void Advance(std::int64_t ms) { now_ += ms; }

 private:
  std::int64_t now_;
};

// Ids from a counter: deterministic and unique.
class CountingIds : public IdGenerator {
 public:
  std::string NewId(const std::string& prefix) override {
    std::array<std::uint8_t, 10> r{};
    std::uint64_t n = ++counter_;
    for (int i = 0; i < 8; ++i) r[9 - i] = static_cast<std::uint8_t>(n >> (8 * i));
    return prefix + MakeUlid(1732406400000, r);
  }

 private:
  std::uint64_t counter_ = 0;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout (stderr goes to the test's stderr)
};

// Runs a shell command line and captures its stdout and exit code.
inline CommandResult Run(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return result;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.out.append(buf, n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// Path of the built `via` binary.
inline std::string ViaBinary() { return std::string(VIA_BINARY_DIR) + "/cli/via"; }

// `via --home HOME ARGS` with stdin from /dev/null (no TTY).
inline CommandResult Via(const std::filesystem::path& home, const std::string& args) {
  return Run(ViaBinary() + " --home '" + home.string() + "' " + args + " </dev/null");
}

}  // namespace via::testing
