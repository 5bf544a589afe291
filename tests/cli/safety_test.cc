// Safe input and true words for faults (issue 11), through the real binary:
// a home is only made in a missing or empty directory, every file the CLI
// reads is a bounded regular file, numeric flags are range-checked, a full
// disk is `disk_full` and a read-only home `home_not_writable` (never an
// integrity alarm), and first commands racing on a fresh home never fail.
//
// The disk and mount cases run in a private mount namespace (`unshare -m`,
// as root), so nothing they mount outlives them.

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli_home.h"

using namespace via;
using nlohmann::json;
using via::testing::CliHome;
namespace fs = std::filesystem;

namespace {

std::string ErrorCode(const json& j) {
  return j.is_object() && j.contains("error") ? j["error"]["code"].get<std::string>() : "";
}

// Runs a bash script in a private mount namespace; VIA is the binary, and
// `run ARGS` runs `via --home $H --json ARGS` and prints one
// "EXIT CODE ARGS :: STDOUT" line.
testing::CommandResult InNamespace(const std::string& script) {
  testing::TempDir scratch;
  fs::path file = scratch.path() / "script.sh";
  std::ofstream(file) << "set -u\nVIA='" << testing::ViaBinary() << "'\n"
                      << "run() { out=$(\"$VIA\" --home \"$H\" --json \"$@\" </dev/null "
                         "2>/dev/null); echo \"EXIT $? $* :: $out\"; }\n"
                      << script;
  return testing::Run("unshare -m --propagation private bash '" + file.string() + "'");
}

struct Outcome {
  int exit_code = -1;
  json body;
};

// The outcome of `run ARGS` lines, by ARGS.
std::map<std::string, Outcome> Outcomes(const std::string& out) {
  std::map<std::string, Outcome> result;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("EXIT ", 0) != 0) continue;
    std::size_t space = line.find(' ', 5);
    std::size_t sep = line.find(" :: ");
    if (space == std::string::npos || sep == std::string::npos) continue;
    Outcome o;
    o.exit_code = std::stoi(line.substr(5, space - 5));
    std::string body = line.substr(sep + 4);
    // --json errors are one object; list/log answers may be several lines,
    // of which only the first is kept here.
    o.body = json::parse(body.empty() ? "null" : body, nullptr, false);
    result[line.substr(space + 1, sep - space - 1)] = o;
  }
  return result;
}

std::size_t EntriesIn(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a non-empty directory that holds no log is refused as a home and left untouched",
          "[cli]") {
  testing::TempDir dir;
  std::ofstream(dir.path() / "precious.txt") << "keep me";
  ::chmod(dir.path().c_str(), 0755);
  for (const char* args : {"init", "addon list", "addon create sqlite app-db --app api",
                           "addon status app-db"}) {
    auto r = testing::Via(dir.path(), std::string("--json ") + args);
    INFO(args << ": " << r.out);
    CHECK(r.exit_code == 2);
    CHECK(ErrorCode(json::parse(r.out, nullptr, false)) == "not_a_via_home");
  }
  CHECK(EntriesIn(dir.path()) == 1);
  struct stat st {};
  REQUIRE(::stat(dir.path().c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);  // not chmod-ed to 0700
}

TEST_CASE("an empty directory becomes a home, and a half-made home is used", "[cli]") {
  testing::TempDir dir;
  CHECK(testing::Via(dir.path(), "init").exit_code == 0);
  CHECK(fs::exists(dir.path() / "log" / "events.db"));
  // Only the folders a home has (an interrupted first command): used.
  testing::TempDir half;
  fs::create_directories(half.path() / "keys");
  fs::create_directories(half.path() / "state");
  CHECK(testing::Via(half.path(), "addon list").exit_code == 0);
}

TEST_CASE("a file given to the CLI must be a small regular file", "[cli]") {
  CliHome h;
  REQUIRE(h.Run("init").exit_code == 0);
  auto start = std::chrono::steady_clock::now();
  json zero = h.Json("audit verify --checkpoint /dev/zero");
  CHECK(ErrorCode(zero) == "not_a_regular_file");
  CHECK(h.Run("audit verify --checkpoint /dev/zero").exit_code == 2);
  fs::path big = h.dir.path() / "big.note";
  {
    std::ofstream out(big, std::ios::binary);
    std::string chunk(1 << 16, 'x');
    for (int i = 0; i < 20; ++i) out << chunk;  // 1.25 MiB
  }
  CHECK(ErrorCode(h.Json("audit verify --checkpoint " + big.string())) == "file_too_large");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}

TEST_CASE("a key file replaced by a symlink to /dev/zero is refused at once", "[cli]") {
  CliHome h;
  REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE").exit_code == 0);
  REQUIRE(h.Run("release create --app api").exit_code == 0);  // usable needs a claim
  fs::path key = h.dir.path() / "keys" / "log.key";
  fs::remove(key);
  fs::create_symlink("/dev/zero", key);
  auto start = std::chrono::steady_clock::now();
  json rotated = h.Json("addon rotate-credentials app-db");
  CHECK(ErrorCode(rotated) == "bad_key");
  CHECK(h.Run("addon rotate-credentials app-db").exit_code == 6);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  // Reading commands need no key and keep working.
  CHECK(h.Run("addon status app-db").exit_code == 0);
}

TEST_CASE("numeric flags out of range are usage errors, never wrapped", "[cli]") {
  CliHome h;
  REQUIRE(h.Run("init").exit_code == 0);
  for (const char* args :
       {"audit replay --until 18446744073709551616", "audit replay --until -1",
        "audit replay --until 0", "audit replay --until 1e3", "audit prove --inclusion 0",
        "audit prove --inclusion 99999999999999999999", "audit log --limit -5",
        "addon revoke-credentials x --generation 4294967296", "serve --sql-workers -1",
        "serve --sql-queue 1e6", "serve --max-body-bytes 18446744073709551617",
        "serve --threads 99999", "serve --max-streams 0", "serve --sql-memory-limit -1"}) {
    INFO(args);
    CHECK(h.Run(args).exit_code == 2);
    CHECK(ErrorCode(h.Json(args)) == "usage");
  }
  CHECK(h.Run("audit replay --until 1").exit_code == 0);
}

TEST_CASE("this test build compiles the test hooks in and says so", "[cli]") {
  auto r = testing::Run(testing::ViaBinary() + " --version");
  CHECK(r.out.find("test hooks") != std::string::npos);
}

TEST_CASE("a full disk is disk_full with a remediation for every command, never an integrity "
          "failure, and nothing is lost",
          "[cli]") {
  auto r = InNamespace(R"(
D=$(mktemp -d); mount -t tmpfs -o size=3m tmpfs "$D" || { echo NOMOUNT; exit 0; }
H=$D/home
"$VIA" --home "$H" addon create sqlite app-db --app api --bind DATABASE >/dev/null || echo SETUP
"$VIA" --home "$H" release create --app api >/dev/null || echo SETUP
"$VIA" --home "$H" --json audit verify > "$D/before.json" 2>/dev/null
cp "$D/before.json" /dev/null
dd if=/dev/zero of="$D/fill" bs=4k 2>/dev/null
for c in "addon status app-db" "addon list" "audit verify" "addon rotate-credentials app-db" \
         "addon snapshot app-db" "addon create sqlite other --app api" "audit replay"; do
  run $c
done
rm "$D/fill"
echo AFTER
run audit verify
run addon status app-db
run addon rotate-credentials app-db
umount "$D"
)");
  INFO(r.out);
  REQUIRE(r.out.find("NOMOUNT") == std::string::npos);
  REQUIRE(r.out.find("SETUP") == std::string::npos);
  std::size_t after = r.out.find("AFTER");
  REQUIRE(after != std::string::npos);
  auto full = Outcomes(r.out.substr(0, after));
  CHECK(full.size() == 7);
  for (const auto& [args, o] : full) {
    INFO(args);
    CHECK(o.exit_code != 6);
    if (o.exit_code != 0) {
      CHECK(o.exit_code == 1);
      CHECK(ErrorCode(o.body) == "disk_full");
      CHECK(o.body["error"]["remediation"].get<std::string>().find("free space") !=
            std::string::npos);
    }
  }
  auto freed = Outcomes(r.out.substr(after));
  for (const auto& [args, o] : freed) {
    INFO(args);
    CHECK(o.exit_code == 0);
  }
  CHECK(freed.size() == 3);
}

TEST_CASE("a read-only home answers reading commands and refuses writing ones with "
          "home_not_writable",
          "[cli]") {
  auto r = InNamespace(R"(
H=$(mktemp -d)
"$VIA" --home "$H" addon create sqlite app-db --app api --bind DATABASE >/dev/null || echo SETUP
"$VIA" --home "$H" release create --app api >/dev/null || echo SETUP
"$VIA" --home "$H" addon rotate-credentials app-db >/dev/null || echo SETUP
rm -f "$H/state/projections.db"   # the read model must be rebuilt: it cannot be here
mount --bind "$H" "$H" && mount -o remount,bind,ro "$H" || { echo NOMOUNT; exit 0; }
for c in "addon status app-db" "addon list" "audit verify" "audit replay" "audit log --limit 1" \
         "addon snapshots app-db" "release list --app api" "addon history app-db"; do
  run $c
done
echo WRITING
for c in "addon rotate-credentials app-db" "addon create sqlite other --app api" \
         "addon snapshot app-db" "release create --app api"; do
  run $c
done
umount "$H"; rm -rf "$H"
)");
  INFO(r.out);
  REQUIRE(r.out.find("NOMOUNT") == std::string::npos);
  REQUIRE(r.out.find("SETUP") == std::string::npos);
  std::size_t writing = r.out.find("WRITING");
  REQUIRE(writing != std::string::npos);
  auto reading = Outcomes(r.out.substr(0, writing));
  CHECK(reading.size() == 8);
  for (const auto& [args, o] : reading) {
    INFO(args);
    CHECK(o.exit_code == 0);
  }
  // The in-memory answer is the log's: generation 2 after the rotation.
  for (const auto& [args, o] : reading) {
    if (args.find("addon status") != std::string::npos) CHECK(o.body["addon"]["generation"] == 2);
  }
  auto writes = Outcomes(r.out.substr(writing));
  CHECK(writes.size() == 4);
  for (const auto& [args, o] : writes) {
    INFO(args);
    CHECK(o.exit_code == 1);
    CHECK(ErrorCode(o.body) == "home_not_writable");
  }
}

TEST_CASE("first commands racing on fresh homes all succeed and agree on one log", "[cli]") {
  // Each round: four processes start at once on a new home (two of them
  // create it); none may fail with busy or anything else.
  for (int round = 0; round < 12; ++round) {
    testing::TempDir dir;
    fs::path home = dir.path() / "home";
    const std::string via = testing::ViaBinary() + " --home '" + home.string() + "' ";
    auto r = testing::Run(
        "(" + via + "addon list >/dev/null 2>&1; echo $?) & (" + via +
        "init >/dev/null 2>&1; echo $?) & (" + via + "audit key >/dev/null 2>&1; echo $?) & (" +
        via + "addon create sqlite db" + std::to_string(round) +
        " --app api >/dev/null 2>&1; echo $?) & wait");
    INFO("round " << round << ": exit codes " << r.out);
    CHECK(r.out == "0\n0\n0\n0\n");
    auto verified = testing::Via(home, "--json audit verify");
    CHECK(verified.exit_code == 0);
    CHECK(json::parse(verified.out, nullptr, false)["size"].get<int>() >= 4);
  }
}
