// Fuzzes the SQL an app may send through the proxy: every input is SQL text,
// run with the production policy (hrana::ConfigureConnection, the
// authorizer, the limits and the statement time budget of a Hrana stream) on
// an add-on database in WAL mode, as an execute, a sequence and a describe
// request of one stream. Checked after every input:
//   - no crash, no sanitizer report, no hang (libFuzzer's -timeout);
//   - no escape: a VFS shim aborts as soon as SQLite opens or deletes any
//     file other than the add-on's database and its -wal and -shm companions
//     (anonymous temporary files are allowed: they have no name);
//   - the database is still in WAL mode (its header says so).
// Seeds: tests/testdata/fuzz/sql_policy_fuzz/ (the attacks of issue 10).

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "server/hrana.h"
#include "server/hrana_json.h"

namespace {

namespace hrana = via::server::hrana;

constexpr const char* kGuardVfs = "via-fuzz-guard";
constexpr std::uintmax_t kMaxDatabaseBytes = 32 << 20;  // start afresh beyond

// The add-on's directory and files (set once by LLVMFuzzerInitialize).
struct Paths {
  std::string dir, db, wal, shm;
};
Paths* paths = nullptr;
sqlite3_vfs* real_vfs = nullptr;

[[noreturn]] void Escape(const char* what, const char* name) {
  std::fprintf(stderr, "sql_policy_fuzz: SQLite tried to %s %s outside the add-on\n", what, name);
  std::abort();
}

bool AddonFile(const char* name) {
  return name == paths->db || name == paths->wal || name == paths->shm;
}

int GuardOpen(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  if (name != nullptr && !AddonFile(name)) Escape("open", name);
  return real_vfs->xOpen(real_vfs, name, file, flags, out_flags);
}

int GuardDelete(sqlite3_vfs*, const char* name, int sync_dir) {
  if (!AddonFile(name)) Escape("delete", name);
  return real_vfs->xDelete(real_vfs, name, sync_dir);
}

int GuardAccess(sqlite3_vfs*, const char* name, int flags, int* out) {
  return real_vfs->xAccess(real_vfs, name, flags, out);
}

int GuardFullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return real_vfs->xFullPathname(real_vfs, name, n, out);
}

void RegisterGuard() {
  real_vfs = sqlite3_vfs_find(nullptr);
  static sqlite3_vfs guard;  // lives as long as the process (test code)
  guard = *real_vfs;
  guard.zName = kGuardVfs;
  guard.pNext = nullptr;
  guard.xOpen = &GuardOpen;
  guard.xDelete = &GuardDelete;
  guard.xAccess = &GuardAccess;
  guard.xFullPathname = &GuardFullPathname;
  if (sqlite3_vfs_register(&guard, 0) != SQLITE_OK) std::abort();
}

// A fresh add-on database in WAL mode with a little of everything, made as
// the provider makes it (without the guard: creating it uses a rollback
// journal until WAL is on).
void CreateDatabase() {
  std::error_code ec;
  for (const std::string& f : {paths->db, paths->wal, paths->shm}) std::filesystem::remove(f, ec);
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(paths->db.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      nullptr) != SQLITE_OK) {
    std::abort();
  }
  const char* setup =
      "PRAGMA journal_mode = WAL;"
      "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, n REAL, b BLOB);"
      "INSERT INTO t (v, n, b) VALUES ('one', 1.5, x'00ff'), ('two', 2, NULL);"
      "CREATE INDEX t_v ON t (v);"
      "CREATE VIRTUAL TABLE f USING fts5(body);"
      "INSERT INTO f VALUES ('hello world');"
      "CREATE VIRTUAL TABLE r USING rtree(id, x0, x1);"
      "INSERT INTO r VALUES (1, 0, 10);";
  if (sqlite3_exec(db, setup, nullptr, nullptr, nullptr) != SQLITE_OK) std::abort();
  sqlite3_close(db);
}

bool HeaderSaysWal() {
  std::ifstream in(paths->db, std::ios::binary);
  char header[20] = {};
  in.read(header, sizeof header);
  return in && header[18] == 2 && header[19] == 2;
}

hrana::Limits FuzzLimits() {
  hrana::Limits limits;                // the production limits, but for time:
  limits.statement_timeout_ms = 2000;  // the fuzz clock ticks once per 1000 VM steps
  limits.stream_idle_timeout_ms = std::int64_t{1} << 40;
  return limits;
}

via::Result<via::sql::Connection> Open() {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(paths->db.c_str(), &raw, SQLITE_OPEN_READWRITE, kGuardVfs);
  via::sql::Connection db(raw);
  if (rc != SQLITE_OK) return via::Internal("cannot open the fuzz database");
  return via::Result<via::sql::Connection>(std::move(db));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sqlite3_hard_heap_limit64(512 << 20);
  char pattern[] = "/tmp/via-sql-fuzz-XXXXXX";
  const char* dir = ::mkdtemp(pattern);
  if (dir == nullptr) std::abort();
  static Paths storage;
  storage.dir = dir;
  storage.db = storage.dir + "/data.sqlite";
  storage.wal = storage.db + "-wal";
  storage.shm = storage.db + "-shm";
  paths = &storage;
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(paths->dir, ec);
  });
  RegisterGuard();
  CreateDatabase();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::error_code ec;
  if (std::filesystem::file_size(paths->db, ec) > kMaxDatabaseBytes) CreateDatabase();
  const std::string sql(reinterpret_cast<const char*>(data), size);

  std::int64_t now = 0;
  via::server::HranaEngine engine(FuzzLimits(), [&now] { return ++now; });
  hrana::PipelineRequest request;
  hrana::Stmt stmt;
  stmt.sql = sql;
  request.requests.push_back(hrana::ExecuteRequest{stmt});
  request.requests.push_back(hrana::SequenceRequest{sql, std::nullopt});
  request.requests.push_back(hrana::DescribeRequest{sql, std::nullopt});
  request.requests.push_back(hrana::CloseRequest{});
  auto response = engine.Execute("fuzz", request, Open);
  if (!response.ok()) std::abort();  // a new stream on a working database always opens
  if (response->results.size() != request.requests.size()) std::abort();
  (void)hrana::EncodePipelineResponse(*response);

  if (!HeaderSaysWal()) {
    std::fprintf(stderr, "sql_policy_fuzz: the database left WAL mode\n");
    std::abort();
  }
  return 0;
}
