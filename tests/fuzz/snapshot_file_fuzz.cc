// Fuzzes what `via addon restore` and `via recover` read from disk: a snapshot
// file of arbitrary bytes. Probing it and restoring it into a live database
// must never crash, and a restore that is refused or fails must leave the live
// database exactly as it was and intact.
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "providers/sqlite/storage.h"

namespace fs = std::filesystem;
using namespace via::providers::sqlite;

namespace {

fs::path WorkDir() {
  static fs::path dir = [] {
    std::string pattern = (fs::temp_directory_path() / "via-fuzz-XXXXXX").string();
    return fs::path(::mkdtemp(pattern.data()));
  }();
  return dir;
}

std::string Query(const fs::path& db, const char* sql) {
  sqlite3* raw = nullptr;
  std::string out;
  if (sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(raw, sql, -1, &stmt, nullptr) == SQLITE_OK) {
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        const unsigned char* text = sqlite3_column_text(stmt, 0);
        out += text ? reinterpret_cast<const char*>(text) : "NULL";
        out += ";";
      }
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(raw);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fs::path dir = WorkDir();
  fs::path snapshot = dir / "snapshot.sqlite";
  fs::path live = dir / "live.sqlite";
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ec;
    fs::remove(snapshot.string() + suffix, ec);
    fs::remove(live.string() + suffix, ec);
  }
  std::ofstream(snapshot, std::ios::binary).write(reinterpret_cast<const char*>(data),
                                                   static_cast<std::streamsize>(size));
  (void)HoldsSqliteBytes(snapshot);
  Probe probe = ProbeDatabase(snapshot);
  (void)DigestFile(snapshot);

  if (!CreateDatabase(live).ok()) std::abort();
  {
    sqlite3* raw = nullptr;
    sqlite3_open(live.c_str(), &raw);
    sqlite3_exec(raw, "CREATE TABLE keep(x); INSERT INTO keep VALUES ('original')", nullptr,
                 nullptr, nullptr);
    sqlite3_close(raw);
  }
  const std::string before = Query(live, "SELECT x FROM keep");
  via::Status restored = RestoreInto(snapshot, live);
  if (!restored.ok() && Query(live, "SELECT x FROM keep") != before) std::abort();
  if (restored.ok() && probe.health != StorageHealth::kOk) std::abort();
  if (Query(live, "PRAGMA integrity_check") != "ok;") std::abort();
  return 0;
}
