// Finding one's way in the CLI, through the real binary: the command list,
// `via help`, suggestions for unknown commands and flags, and an example in
// every command's --help.

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "testing.h"

using via::testing::Run;
using via::testing::ViaBinary;

namespace {

// `via ARGS` with stdin closed; stdout and stderr together.
via::testing::CommandResult ViaAll(const std::string& args) {
  return Run(ViaBinary() + " " + args + " </dev/null 2>&1");
}
// `via ARGS`: stdout only (stderr dropped).
via::testing::CommandResult ViaOut(const std::string& args) {
  return Run(ViaBinary() + " " + args + " </dev/null 2>/dev/null");
}

// The command paths of the "Commands:" section of `via help`, with
// `completion bash|zsh|fish` expanded.
std::vector<std::string> CommandPaths() {
  auto help = ViaOut("help");
  REQUIRE(help.exit_code == 0);
  std::vector<std::string> out;
  std::istringstream lines(help.out);
  std::string line;
  bool in_commands = false;
  while (std::getline(lines, line)) {
    if (line == "Commands:") {
      in_commands = true;
      continue;
    }
    if (!in_commands) continue;
    if (line.empty()) break;
    // "  addon create     description"; a wrapped description starts with more spaces.
    if (line.size() < 3 || line[2] == ' ') continue;
    std::string left = line.substr(2, line.find("  ", 2) - 2);
    const std::size_t bar = left.find('|');
    if (bar == std::string::npos) {
      out.push_back(left);
      continue;
    }
    const std::size_t space = left.rfind(' ', bar);
    const std::string noun = left.substr(0, space);
    std::istringstream alternatives(left.substr(space + 1));
    std::string word;
    while (std::getline(alternatives, word, '|')) out.push_back(noun + " " + word);
  }
  return out;
}

}  // namespace

TEST_CASE("via alone prints the command list on stderr and exits 2", "[cli][help]") {
  auto out = ViaOut("");
  CHECK(out.exit_code == 2);
  CHECK(out.out.empty());
  auto all = ViaAll("");
  CHECK(all.exit_code == 2);
  CHECK(all.out.find("Commands:") != std::string::npos);
  CHECK(all.out.find("addon create") != std::string::npos);
  CHECK(all.out.find("audit timeline") != std::string::npos);
}

TEST_CASE("via help and via --help print the command list on stdout and exit 0", "[cli][help]") {
  for (const char* args : {"help", "--help", "-h"}) {
    INFO(args);
    auto r = ViaOut(args);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("Commands:") != std::string::npos);
    CHECK(r.out.find("Global flags") != std::string::npos);
    CHECK(r.out.find("Exit codes:") != std::string::npos);
  }
  const auto paths = CommandPaths();
  const std::set<std::string> listed(paths.begin(), paths.end());
  for (const char* expected :
       {"init", "addon create", "addon status", "addon list", "addon destroy", "release create",
        "audit verify", "audit log", "audit timeline", "recover", "workload token", "serve", "sql",
        "completion bash", "completion zsh", "completion fish", "help"}) {
    CHECK(listed.count(expected) == 1);
  }
}

TEST_CASE("a command that needs a subcommand lists its own and exits 2", "[cli][help]") {
  auto r = ViaAll("addon");
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("Usage: via addon") != std::string::npos);
  CHECK(r.out.find("rotate-credentials") != std::string::npos);
}

TEST_CASE("an unknown command names the closest one and exits 2", "[cli][help]") {
  auto r = ViaAll("adon list");
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("unknown command 'adon'") != std::string::npos);
  CHECK(r.out.find("did you mean `addon`?") != std::string::npos);
  CHECK(r.out.find("fix: via addon list") != std::string::npos);

  auto nested = ViaAll("addon crate app-db");
  CHECK(nested.exit_code == 2);
  CHECK(nested.out.find("did you mean `create`?") != std::string::npos);
  CHECK(nested.out.find("fix: via addon create app-db") != std::string::npos);

  auto far = ViaAll("frobnicate");
  CHECK(far.exit_code == 2);
  CHECK(far.out.find("unknown command 'frobnicate'") != std::string::npos);
  CHECK(far.out.find("did you mean") == std::string::npos);
}

TEST_CASE("an unknown command with --json is a usage error object", "[cli][help]") {
  auto r = ViaOut("adon list --json");
  CHECK(r.exit_code == 2);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["error"]["code"] == "usage");
  CHECK(j["error"]["message"].get<std::string>().find("did you mean `addon`?") !=
        std::string::npos);
  CHECK(j["error"]["remediation"] == "via addon list --json");

  auto alone = ViaOut("--json");
  CHECK(alone.exit_code == 2);
  CHECK(nlohmann::json::parse(alone.out)["error"]["code"] == "usage");
}

TEST_CASE("an unknown flag names the closest one and exits 2", "[cli][help]") {
  auto r = ViaAll("addon list --al");
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("unknown flag --al") != std::string::npos);
  CHECK(r.out.find("did you mean --all?") != std::string::npos);
  CHECK(r.out.find("fix: via addon list --all") != std::string::npos);

  // Global flags count too, and a value after = is kept.
  auto global = ViaAll("--hom=/tmp/x addon list");
  CHECK(global.exit_code == 2);
  CHECK(global.out.find("fix: via --home=/tmp/x addon list") != std::string::npos);
}

TEST_CASE("via help COMMAND prints that command's help", "[cli][help]") {
  auto r = ViaOut("help addon create");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("Usage: via addon create") != std::string::npos);
  CHECK(r.out == ViaOut("addon create --help").out);

  auto unknown = ViaAll("help adon");
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.out.find("fix: via help addon") != std::string::npos);
}

TEST_CASE("every command's --help ends with an example", "[cli][help]") {
  std::set<std::string> commands;
  for (const auto& path : CommandPaths()) {
    commands.insert(path);
    commands.insert(path.substr(0, path.find(' ')));  // its noun
  }
  REQUIRE(commands.size() > 20);
  for (const auto& path : commands) {
    INFO(path);
    auto r = ViaOut(path + " --help");
    CHECK(r.exit_code == 0);
    const std::size_t at = r.out.find("\nExample");
    REQUIRE(at != std::string::npos);
    // An indented command line that runs via.
    CHECK(r.out.find("\n  ", at) != std::string::npos);
    CHECK(r.out.find("via ", at + 9) != std::string::npos);
  }
}

TEST_CASE("via --version prints the version", "[cli][help]") {
  auto r = ViaOut("--version");
  CHECK(r.exit_code == 0);
  CHECK(r.out.rfind("via ", 0) == 0);
  CHECK(r.out.find('.') != std::string::npos);
}
