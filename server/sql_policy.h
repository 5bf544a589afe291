#pragma once

// What SQL from an app may do on a proxy connection (DESIGN.md section 8,
// docs/runtime.md "What SQL may do"). Deny by default: the authorizer allows
// the SQL functions, PRAGMAs and virtual-table modules listed here and nothing
// else; every proxy connection gets sqlite3_limit()s, a fixed page cache, and
// per-call argument checks on the built-in functions whose single call could
// otherwise run for seconds (the progress handler cannot interrupt one C call).
//
// Invariants kept for every connection that went through ConfigureConnection()
// and runs with Authorize() installed:
// - no file other than the database (and SQLite's own WAL, shm and anonymous
//   temp files) is opened: ATTACH, VACUUM INTO and VACUUM (which attaches a
//   temporary database) are refused and SQLITE_LIMIT_ATTACHED is 0;
// - the journal mode, locking mode, synchronous, cache and mmap settings are
//   the provider's: PRAGMAs that change them are refused;
// - no function that takes or returns a pointer (fts3_tokenizer, fts5) and no
//   module that exposes pages, statements or tokenizers (dbstat,
//   sqlite_stmt, fts3tokenize, fts4aux) is reachable;
// - one call of printf/format, instr, replace or trim/ltrim/rtrim (two
//   arguments) does bounded work, and so does LIKE/GLOB (pattern length limit).
//
// Thread-safety: ConfigureConnection() and the authorizer use only the
// connection they are given; lists are immutable.

#include <cstdint>
#include <span>
#include <string_view>

#include "domain/status.h"
#include "server/hrana_proto.h"

struct sqlite3;

namespace via::server::hrana {

// Applies the connection-level policy to a connection the proxy just opened
// (not yet used by any stream): limits, db_config flags (defensive, no
// extension loading, untrusted schema, no fts3_tokenizer), the module
// allow-list (other modules are dropped from the connection), the guarded
// functions and the fixed cache size. Errors: Internal when SQLite refuses a
// setting.
Status ConfigureConnection(sqlite3* db, const Limits& limits);

// State the authorizer writes: `tainted` is set when a statement may leave
// state on the connection beyond the database file (a PRAGMA, anything in
// "temp", virtual tables, savepoints, ...), so that it is not pooled.
struct AuthorizerState {
  bool tainted = false;
  // Set on every refusal: SQLite reports some of them (functions) as a plain
  // SQLITE_ERROR, so the caller resets it before a statement and reports the
  // statement's failure as SQLITE_AUTH when it is set.
  bool denied = false;
};

// The sqlite3_set_authorizer() callback; `state` is an AuthorizerState*.
// Returns SQLITE_OK for what the lists allow and SQLITE_DENY otherwise (the
// statement then fails with SQLITE_AUTH).
int Authorize(void* state, int action, const char* arg1, const char* arg2, const char* database,
              const char* trigger);

// The allow-lists, sorted, lower case (docs/runtime.md lists the same names).
std::span<const std::string_view> AllowedFunctions();
// How a listed PRAGMA may be used.
enum class PragmaUse {
  kQuery,     // introspection, with or without an argument (a table or index name)
  kRead,      // reading a setting only: giving a value is refused
  kReadWrite  // a per-connection setting, or the app's own header field (user_version)
};
struct PragmaRule {
  std::string_view name;
  PragmaUse use;
};
std::span<const PragmaRule> AllowedPragmas();
// Modules of CREATE VIRTUAL TABLE.
std::span<const std::string_view> AllowedModules();
// Modules kept on a proxy connection: AllowedModules() plus the table-valued
// functions json_each and json_tree.
std::span<const std::string_view> KeptModules();

// The values applied with sqlite3_limit() (besides Limits::max_value_bytes for
// SQLITE_LIMIT_LENGTH, max_sql_bytes for SQLITE_LIMIT_SQL_LENGTH and max_args
// for SQLITE_LIMIT_VARIABLE_NUMBER).
inline constexpr int kLimitExprDepth = 250;
inline constexpr int kLimitCompoundSelect = 100;
inline constexpr int kLimitFunctionArgs = 100;
inline constexpr int kLimitTriggerDepth = 16;
inline constexpr int kLimitLikePatternLength = 100;
// Page cache of a proxy connection, in KiB (PRAGMA cache_size = -N).
inline constexpr int kCacheKiB = 2048;
// Work one call of a guarded function may do (see docs/runtime.md): the
// product of the byte lengths of its first two arguments (the text and the
// pattern for instr and replace, the text and the characters to strip for
// trim, ltrim and rtrim).
inline constexpr std::int64_t kMaxSearchWork = 2'000'000'000;
inline constexpr std::int64_t kMaxTrimWork = 40'000'000;

// Process-wide memory bound of SQLite (sqlite3_hard_heap_limit64, with a soft
// limit at three quarters): an allocation beyond it fails the statement with
// SQLITE_NOMEM instead of growing the process. It covers every connection in
// the process, the event log's included. 0 removes the bound.
void LimitSqliteHeap(std::int64_t bytes);

}  // namespace via::server::hrana
