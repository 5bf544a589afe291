#include "server/sql_policy.h"

#include <sqlite3.h>

#include <algorithm>
#include <climits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "storage/sqlite_db.h"

namespace via::server::hrana {

namespace {

// ---------------------------------------------------------------- allow-lists

// Sorted (std::binary_search), lower case; docs/runtime.md lists them by
// family. sqlite_drop_column and sqlite_rename_* are SQLite's own, called by
// ALTER TABLE through the authorizer; apps cannot call them (SQLite marks
// them internal).
// clang-format off
constexpr std::string_view kFunctions[] = {
    "->", "->>", "abs", "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "avg", "bm25",
    "ceil", "ceiling", "changes", "char", "coalesce", "cos", "cosh", "count", "cume_dist",
    "current_date", "current_time", "current_timestamp", "date", "datetime", "degrees",
    "dense_rank", "exp", "first_value", "floor", "format", "glob", "group_concat", "hex",
    "highlight", "ifnull", "iif", "instr", "json", "json_array", "json_array_length",
    "json_extract", "json_group_array", "json_group_object", "json_insert", "json_object",
    "json_patch", "json_quote", "json_remove", "json_replace", "json_set", "json_type",
    "json_valid", "julianday", "lag", "last_insert_rowid", "last_value", "lead", "length", "like",
    "likelihood", "likely", "ln", "log", "log10", "log2", "lower", "ltrim", "match", "matchinfo",
    "max", "min", "mod", "nth_value", "ntile", "nullif", "offsets", "optimize", "percent_rank",
    "pi", "pow", "power", "printf", "quote", "radians", "random", "randomblob", "rank", "replace",
    "round", "row_number", "rtrim", "sign", "sin", "sinh", "snippet", "soundex",
    "sqlite_compileoption_get", "sqlite_compileoption_used", "sqlite_drop_column",
    "sqlite_rename_column", "sqlite_rename_quotefix", "sqlite_rename_table", "sqlite_rename_test",
    "sqlite_source_id", "sqlite_version", "sqrt", "strftime", "substr", "substring", "sum", "tan",
    "tanh", "time", "total", "total_changes", "trim", "trunc", "typeof", "unicode", "unixepoch",
    "unlikely", "upper", "zeroblob"
};
// clang-format on

// Sorted by name.
constexpr PragmaRule kPragmas[] = {
    {"application_id", PragmaUse::kRead},
    {"auto_vacuum", PragmaUse::kRead},
    {"busy_timeout", PragmaUse::kRead},
    {"cache_size", PragmaUse::kRead},
    {"collation_list", PragmaUse::kQuery},
    {"data_version", PragmaUse::kRead},
    {"defer_foreign_keys", PragmaUse::kReadWrite},
    {"encoding", PragmaUse::kRead},
    {"foreign_key_check", PragmaUse::kQuery},
    {"foreign_key_list", PragmaUse::kQuery},
    {"foreign_keys", PragmaUse::kReadWrite},
    {"freelist_count", PragmaUse::kRead},
    {"index_info", PragmaUse::kQuery},
    {"index_list", PragmaUse::kQuery},
    {"index_xinfo", PragmaUse::kQuery},
    {"journal_mode", PragmaUse::kRead},
    {"locking_mode", PragmaUse::kRead},
    {"max_page_count", PragmaUse::kRead},
    {"mmap_size", PragmaUse::kRead},
    {"optimize", PragmaUse::kReadWrite},
    {"page_count", PragmaUse::kRead},
    {"page_size", PragmaUse::kRead},
    {"query_only", PragmaUse::kReadWrite},
    {"recursive_triggers", PragmaUse::kReadWrite},
    {"schema_version", PragmaUse::kRead},
    {"synchronous", PragmaUse::kRead},
    {"table_info", PragmaUse::kQuery},
    {"table_list", PragmaUse::kQuery},
    {"table_xinfo", PragmaUse::kQuery},
    {"temp_store", PragmaUse::kRead},
    {"user_version", PragmaUse::kReadWrite},
};

constexpr std::string_view kModules[] = {"fts3", "fts4", "fts5", "fts5vocab", "rtree", "rtree_i32"};
constexpr std::string_view kKeptModules[] = {"fts3",      "fts4",      "fts5",  "fts5vocab",
                                             "json_each", "json_tree", "rtree", "rtree_i32"};

// Lower-cases a C string into `out`; false for null and over-long names.
bool LowerName(const char* name, std::string* out) {
  if (name == nullptr) return false;
  out->clear();
  for (const char* p = name; *p; ++p) {
    if (out->size() >= 64) return false;
    unsigned char c = static_cast<unsigned char>(*p);
    out->push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c));
  }
  return true;
}

bool Listed(std::span<const std::string_view> sorted, const char* name) {
  std::string lower;
  return LowerName(name, &lower) && std::binary_search(sorted.begin(), sorted.end(), lower);
}

const PragmaRule* FindPragma(const char* name) {
  std::string lower;
  if (!LowerName(name, &lower)) return nullptr;
  auto it = std::lower_bound(std::begin(kPragmas), std::end(kPragmas), lower,
                             [](const PragmaRule& r, const std::string& n) { return r.name < n; });
  return it != std::end(kPragmas) && it->name == lower ? &*it : nullptr;
}

// ---------------------------------------------------------------- guarded functions

// Runs a built-in SQL function on a private in-memory connection, for the
// wrappers below: once a wrapper is registered on a proxy connection under the
// built-in's name, the built-in is no longer reachable there. One per proxy
// connection (shared by its wrappers); used by one thread at a time, like the
// connection.
class BuiltinCaller {
 public:
  explicit BuiltinCaller(int length_limit) : length_limit_(length_limit) {}
  BuiltinCaller(const BuiltinCaller&) = delete;
  BuiltinCaller& operator=(const BuiltinCaller&) = delete;

  // Sets the result of `ctx` to name(argv...) as the built-in computes it.
  void Call(sqlite3_context* ctx, const char* name, int argc, sqlite3_value** argv) {
    sqlite3_stmt* stmt = Statement(name, argc);
    if (stmt == nullptr) {
      sqlite3_result_error(ctx, "internal error: the built-in function is not available", -1);
      return;
    }
    for (int i = 0; i < argc; ++i) sqlite3_bind_value(stmt, i + 1, argv[i]);
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      sqlite3_result_value(ctx, sqlite3_column_value(stmt, 0));
    } else {
      sqlite3_result_error(ctx, sqlite3_errmsg(db_.get()), -1);
      sqlite3_result_error_code(ctx, sqlite3_extended_errcode(db_.get()));
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  }

 private:
  sqlite3_stmt* Statement(const char* name, int argc) {
    auto key = std::make_pair(std::string(name), argc);
    auto it = statements_.find(key);
    if (it != statements_.end()) return it->second.get();
    if (db_ == nullptr) {
      sqlite3* raw = nullptr;
      const int rc =
          sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
      sql::Connection opened(raw);
      if (rc != SQLITE_OK) return nullptr;
      db_ = std::move(opened);
      sqlite3_limit(db_.get(), SQLITE_LIMIT_LENGTH, length_limit_);
    }
    std::string text = "SELECT " + key.first + "(";
    for (int i = 1; i <= argc; ++i) text += (i > 1 ? ",?" : "?") + std::to_string(i);
    text += ")";
    sqlite3_stmt* raw = nullptr;
    const int rc =
        sqlite3_prepare_v3(db_.get(), text.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    sql::StatementHandle stmt(raw);
    if (rc != SQLITE_OK) return nullptr;
    statements_.emplace(std::move(key), std::move(stmt));
    return raw;
  }

  const int length_limit_;
  sql::Connection db_;
  // Finalized before db_ closes (destroyed first).
  std::map<std::pair<std::string, int>, sql::StatementHandle> statements_;
};

// True when one call with these arguments does bounded work; otherwise false
// with the reason in `why`. `db` is the proxy connection.
using WorkCheck = bool (*)(sqlite3* db, int argc, sqlite3_value** argv, std::string* why);

struct Guard {
  const char* name;
  WorkCheck check;
  std::shared_ptr<BuiltinCaller> caller;
};

void GuardedCall(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  auto* guard = static_cast<Guard*>(sqlite3_user_data(ctx));
  std::string why;
  if (!guard->check(sqlite3_context_db_handle(ctx), argc, argv, &why)) {
    sqlite3_result_error(ctx, why.c_str(), -1);
    sqlite3_result_error_code(ctx, SQLITE_TOOBIG);
    return;
  }
  guard->caller->Call(ctx, guard->name, argc, argv);
}

void DeleteGuard(void* guard) { delete static_cast<Guard*>(guard); }

std::int64_t ByteLength(sqlite3_value* v) {
  return sqlite3_value_type(v) == SQLITE_NULL ? 0 : sqlite3_value_bytes(v);
}

// The widths and precisions that SQL printf(FORMAT, ...) would use, summed
// over its conversions: read exactly as SQLite 3.40's sqlite3_str_vappendf()
// reads a format in SQL mode (flags, digits, '*' taking the next argument as
// an int, '.', 'l'/'ll', then a conversion that takes one argument except %%
// and %n; anything else ends the format). `%.*c` repeats a character
// `precision` times in a loop that goes on even once the result is too large,
// so the sum bounds the work of the whole call.
std::int64_t PrintfWidths(std::string_view fmt, int argc, sqlite3_value** args) {
  fmt = fmt.substr(0, fmt.find('\0'));  // SQLite reads the format as a C string
  int next = 0;
  auto at = [&](std::size_t i) -> char { return i < fmt.size() ? fmt[i] : '\0'; };
  auto int_arg = [&]() -> int {
    return next < argc ? static_cast<int>(sqlite3_value_int64(args[next++])) : 0;
  };
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < fmt.size()) {
    if (fmt[i] != '%') {
      ++i;
      continue;
    }
    char c = at(++i);
    if (c == '\0') break;
    std::int64_t width = 0;
    std::int64_t precision = -1;
    bool done = false;
    do {
      switch (c) {
        case '-':
        case '+':
        case ' ':
        case '#':
        case '!':
        case '0':
        case ',':
          break;
        case 'l':
          c = at(++i);
          if (c == 'l') c = at(++i);
          done = true;
          break;
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7':
        case '8':
        case '9': {
          unsigned wx = static_cast<unsigned>(c - '0');
          while ((c = at(++i)) >= '0' && c <= '9') wx = wx * 10 + static_cast<unsigned>(c - '0');
          width = wx & 0x7fffffff;
          if (c != '.' && c != 'l') {
            done = true;
          } else {
            --i;
          }
          break;
        }
        case '*': {
          const int w = int_arg();
          width = w < 0 ? (w >= -INT_MAX ? -static_cast<std::int64_t>(w) : 0) : w;
          if ((c = at(i + 1)) != '.' && c != 'l') {
            c = at(++i);
            done = true;
          }
          break;
        }
        case '.': {
          c = at(++i);
          if (c == '*') {
            const int p = int_arg();
            precision = p < 0 ? (p >= -INT_MAX ? -static_cast<std::int64_t>(p) : -1) : p;
            c = at(++i);
          } else {
            unsigned px = 0;
            while (c >= '0' && c <= '9') {
              px = px * 10 + static_cast<unsigned>(c - '0');
              c = at(++i);
            }
            precision = px & 0x7fffffff;
          }
          if (c == 'l') {
            --i;
          } else {
            done = true;
          }
          break;
        }
        default:
          done = true;
          break;
      }
    } while (!done && (c = at(++i)) != '\0');
    total += std::max<std::int64_t>({width, precision, 0});
    constexpr std::string_view kTakesArgument = "dsgzqQwcouxXfeEGipr";
    if (c != '\0' && kTakesArgument.find(c) != std::string_view::npos) {
      if (next < argc) ++next;
    } else if (c != 'n' && c != '%') {
      break;  // unknown conversion (or %T/%S, internal only): formatting stops
    }
    ++i;
  }
  return total;
}

bool CheckPrintf(sqlite3* db, int argc, sqlite3_value** argv, std::string* why) {
  if (argc < 1 || sqlite3_value_type(argv[0]) == SQLITE_NULL) return true;
  const auto* fmt = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
  if (fmt == nullptr) return true;
  const std::int64_t widths =
      PrintfWidths(std::string_view(fmt, static_cast<std::size_t>(sqlite3_value_bytes(argv[0]))),
                   argc - 1, argv + 1);
  const int limit = sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1);
  if (widths <= limit) return true;
  *why = "printf/format: widths and precisions add up to " + std::to_string(widths) +
         ", more than the value size limit of " + std::to_string(limit) + " bytes";
  return false;
}

bool CheckSearch(const char* what, std::int64_t text, std::int64_t pattern, std::string* why) {
  if (pattern == 0 || text * pattern <= kMaxSearchWork) return true;
  *why = std::string(what) + ": a " + std::to_string(pattern) + "-byte pattern in a " +
         std::to_string(text) + "-byte text is too much work for one call (limit " +
         std::to_string(kMaxSearchWork) + " byte comparisons)";
  return false;
}

bool CheckInstr(sqlite3*, int, sqlite3_value** argv, std::string* why) {
  return CheckSearch("instr", ByteLength(argv[0]), ByteLength(argv[1]), why);
}

bool CheckReplace(sqlite3*, int, sqlite3_value** argv, std::string* why) {
  return CheckSearch("replace", ByteLength(argv[0]), ByteLength(argv[1]), why);
}

bool CheckTrim(sqlite3*, int, sqlite3_value** argv, std::string* why) {
  const std::int64_t work = ByteLength(argv[0]) * ByteLength(argv[1]);
  if (work <= kMaxTrimWork) return true;
  *why = "trim: stripping a " + std::to_string(ByteLength(argv[1])) +
         "-byte set of characters from a " + std::to_string(ByteLength(argv[0])) +
         "-byte text is too much work for one call (limit " + std::to_string(kMaxTrimWork) + ")";
  return false;
}

struct GuardSpec {
  const char* name;
  int argc;
  WorkCheck check;
};

// Only the forms whose work is not linear in their input: trim(X) (one
// argument) and the other built-ins keep SQLite's own implementation.
constexpr GuardSpec kGuards[] = {
    {"printf", -1, &CheckPrintf},  {"format", -1, &CheckPrintf}, {"instr", 2, &CheckInstr},
    {"replace", 3, &CheckReplace}, {"trim", 2, &CheckTrim},      {"ltrim", 2, &CheckTrim},
    {"rtrim", 2, &CheckTrim},
};

Status SqliteFailure(sqlite3* db, const std::string& what) {
  return Internal(what + ": " + sqlite3_errmsg(db));
}

}  // namespace

std::span<const std::string_view> AllowedFunctions() { return kFunctions; }
std::span<const PragmaRule> AllowedPragmas() { return kPragmas; }
std::span<const std::string_view> AllowedModules() { return kModules; }
std::span<const std::string_view> KeptModules() { return kKeptModules; }

Status ConfigureConnection(sqlite3* db, const Limits& limits) {
  auto clamp = [](std::size_t n) {
    return std::max(1, static_cast<int>(std::min<std::size_t>(n, INT_MAX)));
  };
  const int length = clamp(limits.max_value_bytes);
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, length);
  sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, clamp(limits.max_sql_bytes));
  sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, kLimitExprDepth);
  sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, kLimitCompoundSelect);
  sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, kLimitFunctionArgs);
  sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, clamp(limits.max_args));
  sqlite3_limit(db, SQLITE_LIMIT_TRIGGER_DEPTH, kLimitTriggerDepth);
  sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, kLimitLikePatternLength);
  sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_limit(db, SQLITE_LIMIT_WORKER_THREADS, 0);

  const std::pair<int, const char*> flags[] = {
      {SQLITE_DBCONFIG_DEFENSIVE, "defensive"},
      {SQLITE_DBCONFIG_TRUSTED_SCHEMA, "trusted_schema"},
      {SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, "load_extension"},
      {SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, "fts3_tokenizer"},
  };
  for (const auto& [op, name] : flags) {
    const int value = op == SQLITE_DBCONFIG_DEFENSIVE ? 1 : 0;
    int applied = -1;
    if (sqlite3_db_config(db, op, value, &applied) != SQLITE_OK || applied != value) {
      return Internal(std::string("cannot set the SQLite option ") + name);
    }
  }

  std::vector<const char*> keep;
  for (std::string_view m : kKeptModules) keep.push_back(m.data());  // literals: NUL-terminated
  keep.push_back(nullptr);
  if (sqlite3_drop_modules(db, keep.data()) != SQLITE_OK) {
    return SqliteFailure(db, "drop virtual table modules");
  }

  auto caller = std::make_shared<BuiltinCaller>(length);
  for (const GuardSpec& spec : kGuards) {
    // SQLite owns the Guard from here: it calls DeleteGuard when the function
    // is dropped, the connection closes, or registering fails.
    Guard* guard = std::make_unique<Guard>(Guard{spec.name, spec.check, caller}).release();
    const int rc = sqlite3_create_function_v2(
        db, spec.name, spec.argc, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, guard,
        &GuardedCall, nullptr, nullptr, &DeleteGuard);
    if (rc != SQLITE_OK) return SqliteFailure(db, std::string("register ") + spec.name);
  }

  const std::string cache = "PRAGMA cache_size = -" + std::to_string(kCacheKiB);
  if (sqlite3_exec(db, cache.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    return SqliteFailure(db, "set the cache size");
  }
  return Status::Ok();
}

namespace {

int Decide(AuthorizerState& state, int action, const char* arg1, const char* arg2,
           const char* database) {
  bool& tainted = state.tainted;
  if (database && sqlite3_stricmp(database, "temp") == 0) tainted = true;
  switch (action) {
    case SQLITE_FUNCTION:  // arg2: the function's name
      return Listed(kFunctions, arg2) ? SQLITE_OK : SQLITE_DENY;
    case SQLITE_PRAGMA: {  // arg1: name, arg2: the value or argument (null when none)
      tainted = true;
      const PragmaRule* rule = FindPragma(arg1);
      if (rule == nullptr) return SQLITE_DENY;
      if (rule->use == PragmaUse::kRead && arg2 != nullptr) return SQLITE_DENY;
      return SQLITE_OK;
    }
    case SQLITE_CREATE_VTABLE:  // arg2: the module
      tainted = true;
      return Listed(kModules, arg2) ? SQLITE_OK : SQLITE_DENY;
    case SQLITE_ATTACH:
      // ATTACH of any file and VACUUM INTO reach files other than the add-on's;
      // VACUUM attaches a temporary database and is refused too (docs/runtime.md).
      return SQLITE_DENY;
    case SQLITE_DETACH:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_SAVEPOINT:
    case SQLITE_DROP_VTABLE:
      tainted = true;
      return SQLITE_OK;
    default:
      return SQLITE_OK;
  }
}

}  // namespace

int Authorize(void* state, int action, const char* arg1, const char* arg2, const char* database,
              const char*) {
  auto& s = *static_cast<AuthorizerState*>(state);
  const int decision = Decide(s, action, arg1, arg2, database);
  if (decision != SQLITE_OK) s.denied = true;
  return decision;
}

void LimitSqliteHeap(std::int64_t bytes) {
  const std::int64_t limit = std::max<std::int64_t>(0, bytes);
  sqlite3_hard_heap_limit64(limit);
  sqlite3_soft_heap_limit64(limit / 4 * 3);
}

}  // namespace via::server::hrana
