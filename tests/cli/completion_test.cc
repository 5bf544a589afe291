// `via completion bash|zsh|fish`, run in the real shells: each script, fed
// the words typed so far, offers the commands and flags that exist.

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "testing.h"

using via::testing::Run;
using via::testing::TempDir;
using via::testing::ViaBinary;

namespace {

// Writes `via completion SHELL` to DIR/name and returns its path.
std::string Script(const TempDir& dir, const std::string& shell, const std::string& name) {
  const std::string path = (dir.path() / name).string();
  auto r = Run(ViaBinary() + " completion " + shell + " > '" + path + "'");
  REQUIRE(r.exit_code == 0);
  return path;
}

// A word list for a shell array: each word single-quoted.
std::string Words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += " '" + w + "'";
  return out;
}

// What bash's _via offers for `words` (the last one is being completed).
std::string Bash(const std::string& script, const std::vector<std::string>& words) {
  auto r =
      Run("bash -c 'source \"$1\"; shift; COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); _via; "
          "printf \"%s\\n\" \"${COMPREPLY[@]}\"' _ '" +
          script + "'" + Words(words));
  REQUIRE(r.exit_code == 0);
  return r.out;
}

// What fish offers for the command line `line`: one "word\tdescription" per line.
std::string Fish(const std::string& script, const std::string& line) {
  auto r = Run("fish -c 'source $argv[1]; complete -C $argv[2]' '" + script + "' '" + line + "'");
  REQUIRE(r.exit_code == 0);
  return r.out;
}

// What zsh's _via passes to _describe / _files, with those stubbed.
std::string Zsh(const TempDir& dir, const std::string& script,
                const std::vector<std::string>& words) {
  const std::string driver = (dir.path() / "driver.zsh").string();
  std::ofstream(driver) << "_describe() { local name=${@[-1]}; print -rl -- \"${(@P)name}\"; }\n"
                           "_files() { print -r -- \"FILES $*\"; }\n"
                           "compdef() { :; }\n"
                           "source \"$1\"; shift\n"
                           "words=(\"$@\"); CURRENT=$#\n"
                           "_via\n";
  auto r = Run("zsh '" + driver + "' '" + script + "'" + Words(words));
  REQUIRE(r.exit_code == 0);
  return r.out;
}

bool HasLine(const std::string& out, const std::string& line) {
  std::istringstream in(out);
  std::string l;
  while (std::getline(in, l)) {
    if (l == line || l.rfind(line + "\t", 0) == 0 || l.rfind(line + ":", 0) == 0) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("bash completion offers commands, subcommands, flags and files", "[cli][completion]") {
  TempDir dir;
  const std::string script = Script(dir, "bash", "via.bash");
  CHECK(Run("bash -n '" + script + "'").exit_code == 0);
  CHECK(Bash(script, {"via", "ad"}) == "addon\n");
  CHECK(HasLine(Bash(script, {"via", "addon", "cr"}), "create"));
  CHECK(HasLine(Bash(script, {"via", "audit", ""}), "timeline"));
  CHECK(HasLine(Bash(script, {"via", "completion", ""}), "zsh"));
  const std::string flags = Bash(script, {"via", "addon", "create", "--a"});
  CHECK(HasLine(flags, "--app"));
  CHECK(HasLine(flags, "--actor"));  // global flags may follow the verb
  CHECK_FALSE(HasLine(flags, "--all"));
  // The value of --home is skipped when finding the command; a flag without
  // a value (--json) takes nothing with it.
  CHECK(Bash(script, {"via", "--home", "/tmp", "au"}) == "audit\n");
  CHECK(Bash(script, {"via", "--json", "au"}) == "audit\n");
  CHECK(HasLine(Bash(script, {"via", "addon", "--yes", "cr"}), "create"));
  CHECK(Bash(script, {"via", "--json", ""}).find("addon\n") != std::string::npos);
  // A FILE flag completes file names.
  std::ofstream(dir.path() / "saved.checkpoint") << "x";
  CHECK(HasLine(
      Bash(script, {"via", "audit", "verify", "--checkpoint", (dir.path() / "saved.").string()}),
      (dir.path() / "saved.checkpoint").string()));
}

TEST_CASE("fish completion offers commands with descriptions and flags", "[cli][completion]") {
  TempDir dir;
  const std::string script = Script(dir, "fish", "via.fish");
  CHECK(Run("fish -n '" + script + "'").exit_code == 0);
  const std::string top = Fish(script, "via ad");
  CHECK(top.rfind("addon\t", 0) == 0);
  CHECK(HasLine(Fish(script, "via addon cr"), "create"));
  CHECK(HasLine(Fish(script, "via --home /tmp audit ti"), "timeline"));
  CHECK(HasLine(Fish(script, "via --json audit ti"), "timeline"));
  const std::string flags = Fish(script, "via addon create --a");
  CHECK(HasLine(flags, "--app"));
  CHECK(HasLine(flags, "--actor"));
  CHECK_FALSE(HasLine(Fish(script, "via addon list --"), "--app"));
}

TEST_CASE("zsh completion offers commands with descriptions and flags", "[cli][completion]") {
  TempDir dir;
  const std::string script = Script(dir, "zsh", "_via");
  CHECK(Run("zsh -n '" + script + "'").exit_code == 0);
  CHECK(HasLine(Zsh(dir, script, {"via", "ad"}), "addon"));
  CHECK(HasLine(Zsh(dir, script, {"via", "--json", "audit", "ti"}), "timeline"));
  const std::string sub = Zsh(dir, script, {"via", "addon", "cr"});
  CHECK(HasLine(sub, "create"));
  CHECK_FALSE(HasLine(sub, "audit"));
  const std::string flags = Zsh(dir, script, {"via", "audit", "log", "--"});
  CHECK(HasLine(flags, "--since"));
  CHECK(HasLine(flags, "--home"));
  CHECK(Zsh(dir, script, {"via", "audit", "timeline", "--html", ""}) == "FILES \n");
}

TEST_CASE("completion reaches every command of the command list", "[cli][completion]") {
  TempDir dir;
  const std::string script = Script(dir, "bash", "via.bash");
  auto help = Run(ViaBinary() + " help");
  REQUIRE(help.exit_code == 0);
  // Every "noun verb" path: bash offers the verb after the noun.
  std::istringstream lines(help.out);
  std::string line;
  int checked = 0;
  while (std::getline(lines, line) && line != "Commands:") {
  }
  while (std::getline(lines, line) && !line.empty()) {
    if (line.size() < 3 || line[2] == ' ') continue;
    std::istringstream words(line.substr(2, line.find("  ", 2) - 2));
    std::string noun, verb;
    if (!(words >> noun >> verb) || verb.find('|') != std::string::npos) continue;
    INFO(noun << " " << verb);
    CHECK(HasLine(Bash(script, {"via", noun, verb}), verb));
    ++checked;
  }
  CHECK(checked > 15);
}
