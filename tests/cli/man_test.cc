// The man page docs/man/via.1: it renders without warnings, documents every
// command that `via help` lists and every exit code, and carries the
// binary's version.

#include <catch2/catch.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "testing.h"

using via::testing::Run;
using via::testing::ViaBinary;

namespace {

const std::string kPage = std::string(VIA_SOURCE_DIR) + "/docs/man/via.1";

// The page as man shows it, on wide lines so that nothing wraps.
std::string Rendered() {
  auto r = Run("MANWIDTH=250 man --no-hyphenation --no-justification -l '" + kPage +
               "' 2>/dev/null | col -bx");
  REQUIRE(r.exit_code == 0);
  return r.out;
}

std::vector<std::string> CommandPaths() {
  auto help = Run(ViaBinary() + " help");
  REQUIRE(help.exit_code == 0);
  std::vector<std::string> out;
  std::istringstream lines(help.out);
  std::string line;
  while (std::getline(lines, line) && line != "Commands:") {
  }
  while (std::getline(lines, line) && !line.empty()) {
    if (line.size() > 2 && line[2] != ' ') out.push_back(line.substr(2, line.find("  ", 2) - 2));
  }
  return out;
}

}  // namespace

TEST_CASE("the man page renders without warnings", "[cli][man]") {
  auto r = Run("groff -t -man -Tutf8 -ww -z '" + kPage + "' 2>&1");
  CHECK(r.exit_code == 0);
  CHECK(r.out.empty());
}

TEST_CASE("the man page documents every command of via help", "[cli][man]") {
  const std::string page = Rendered();
  const auto paths = CommandPaths();
  REQUIRE(paths.size() > 20);
  for (const auto& path : paths) {
    INFO(path);
    // "completion bash|zsh|fish" is one entry of the page, as of the list.
    CHECK(page.find("       via " + path) != std::string::npos);
  }
}

TEST_CASE("the man page lists every exit code and the binary's version", "[cli][man]") {
  const std::string page = Rendered();
  const std::size_t exit_status = page.find("EXIT STATUS");
  REQUIRE(exit_status != std::string::npos);
  const std::string section = page.substr(exit_status, page.find("ENVIRONMENT") - exit_status);
  for (int code = 0; code <= 6; ++code) {
    INFO(code);
    CHECK(std::regex_search(section, std::regex("\n       " + std::to_string(code) + " +[A-Z]")));
  }
  auto version = Run(ViaBinary() + " --version");
  REQUIRE(version.exit_code == 0);
  // "via 0.1.0", and in a test build " (built with test hooks: ...)".
  version.out = version.out.substr(0, version.out.find_first_of(" \n", 4));
  // The footer: "via 0.1.0   2026-12-06   VIA(1)".
  CHECK(std::regex_search(page, std::regex("\n" + version.out + " +[0-9-]+ +VIA\\(1\\)\n*$")));
}
