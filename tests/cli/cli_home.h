#pragma once

// A Via home in a temporary directory and the `via` binary run against it,
// for the crash, recovery and disk-full tests of tests/cli/.

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "testing.h"

namespace via::testing {

struct CliHome {
  TempDir dir;

  // `via --home DIR ARGS` with stdin closed; `env` is prepended ("NAME=value").
  CommandResult Run(const std::string& args, const std::string& env = "") {
    return testing::Run(env + " " + ViaBinary() + " --home '" + dir.path().string() + "' " +
                        args + " </dev/null");
  }
  // Runs with --json and parses stdout (null when it printed nothing).
  nlohmann::json Json(const std::string& args, const std::string& env = "") {
    auto r = Run("--json " + args, env);
    INFO(args << "\n" << r.out);
    return nlohmann::json::parse(r.out.empty() ? "null" : r.out, nullptr, false);
  }
  std::string Id(const std::string& name) { return Json("addon status " + name)["addon"]["id"]; }
  std::filesystem::path Db(const std::string& name) {
    return dir.path() / "addons" / Id(name) / "data.sqlite";
  }
  // The sqlite3 shell on `db`; its stdout.
  std::string Sql(const std::filesystem::path& db, const std::string& sql) {
    auto r = testing::Run("sqlite3 '" + db.string() + "' \"" + sql + "\"");
    REQUIRE(r.exit_code == 0);
    return r.out;
  }
  // The log as `audit log --json` prints it: one object per record, in seq order.
  std::vector<nlohmann::json> Records() {
    auto r = Run("--json audit log");
    REQUIRE(r.exit_code == 0);
    std::vector<nlohmann::json> out;
    std::size_t start = 0;
    while (start < r.out.size()) {
      std::size_t end = r.out.find('\n', start);
      if (end == std::string::npos) end = r.out.size();
      if (end > start) out.push_back(nlohmann::json::parse(r.out.substr(start, end - start)));
      start = end + 1;
    }
    return out;
  }
  // Names of the files in the add-on's snapshot directory (none when it is missing).
  std::vector<std::string> SnapshotFiles(const std::string& name) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& f :
         std::filesystem::directory_iterator(dir.path() / "snapshots" / Id(name), ec)) {
      out.push_back(f.path().filename().string());
    }
    return out;
  }
  // About 9 MB of random rows in table big and `marker` as the only row of mark.
  void Fill(const std::string& name, const std::string& marker) {
    Sql(Db(name),
        "CREATE TABLE IF NOT EXISTS big(b); CREATE TABLE IF NOT EXISTS mark(m);"
        "DELETE FROM mark; INSERT INTO mark VALUES ('" + marker + "');"
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<3000)"
        " INSERT INTO big SELECT randomblob(3000) FROM c;");
  }
};

}  // namespace via::testing
