// `via sql BINDING "SQL" [--arg VALUE ...]`: runs one statement as an app
// would, through client/ (VIA_CONFIG_URL and VIA_WORKLOAD_TOKEN, or
// --config-url/--token), and prints the rows as a table or, with --json, as
// one JSON document. `via sql BINDING --file F` runs a script's statements in
// one transaction. Argument typing and exit codes: docs/cli.md.

#include "client/sql.h"

#include <sqlite3.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <iostream>
#include <iterator>

#include "cli/shell.h"
#include "crypto/crypto.h"
#include "eventstore/home.h"

namespace via::cli {
namespace {

struct SqlFlags {
  std::string binding;
  std::string sql;
  std::string file;
  std::vector<std::string> args;
  std::string config_url;
  std::string token;
  std::string ca_file;
  std::string timeout = "60s";
};

std::optional<std::int64_t> ParseInt64(std::string_view s) {
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// "null:", "int:N", "float:X", "text:S", "blob:BASE64"; without one of these
// prefixes a decimal 64-bit integer is an integer and anything else is text.
Result<SqlValue> ParseSqlArg(const std::string& text) {
  auto bad = [&text](const std::string& why) {
    return InvalidArgument("invalid_arg", "--arg '" + text.substr(0, 64) + "': " + why);
  };
  auto rest = [&text](std::string_view prefix) -> std::optional<std::string> {
    if (text.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
    return text.substr(prefix.size());
  };
  if (auto v = rest("null:")) {
    if (!v->empty()) return bad("null: takes no value");
    return SqlValue(nullptr);
  }
  if (auto v = rest("int:")) {
    auto i = ParseInt64(*v);
    if (!i) return bad("not a decimal 64-bit integer");
    return SqlValue(*i);
  }
  if (auto v = rest("float:")) {
    double d = 0;
    auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), d);
    if (v->empty() || ec != std::errc() || ptr != v->data() + v->size() || !std::isfinite(d)) {
      return bad("not a finite decimal number");
    }
    return SqlValue(d);
  }
  if (auto v = rest("text:")) return SqlValue(*v);
  if (auto v = rest("blob:")) {
    std::string padded = *v;
    while (padded.size() % 4 != 0) padded.push_back('=');
    auto bytes = crypto::Base64Decode(padded);
    if (!bytes) return bad("not base64");
    return SqlValue(SqlBlob(bytes->begin(), bytes->end()));
  }
  if (auto i = ParseInt64(text)) return SqlValue(*i);
  return SqlValue(text);
}

Status ToStatus(const SqlError& e) {
  StatusCode code = StatusCode::kInternal;
  const std::string& c = e.code;
  if (c == kSqlNotConfigured || c == kSqlInvalidArgument || c == kSqlSqlError) {
    code = StatusCode::kInvalidArgument;
  } else if (c == kSqlUnauthorized) {
    code = StatusCode::kUnauthenticated;
  } else if (c == kSqlForbidden) {
    code = StatusCode::kPermissionDenied;
  } else if (c == kSqlNotFound) {
    code = StatusCode::kNotFound;
  } else if (c == kSqlNotUsable) {
    code = StatusCode::kUnusable;
  } else if (c == kSqlUnavailable || c == kSqlConnectionFailed || c == kSqlTlsError) {
    code = StatusCode::kUnavailable;
  } else if (c == kSqlStreamClosed || c == kSqlTransactionClosed) {
    code = StatusCode::kAborted;
  }
  std::string message = e.message;
  if (!e.server_code.empty() && message.find(e.server_code) == std::string::npos) {
    message = e.server_code + ": " + message;
  }
  if (e.retry_after_s) message += " (retry after " + std::to_string(*e.retry_after_s) + " s)";
  return Status(code, e.code, message, e.remediation);
}

std::string Hex(const SqlBlob& b) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "x'";
  for (std::uint8_t c : b) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out + "'";
}

// Text for a terminal: control characters are escaped.
std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string DoubleText(double d) {
  if (std::isinf(d)) return d > 0 ? "Inf" : "-Inf";
  char buf[32];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, d);
  std::string text(buf, ptr);
  if (text.find_first_of(".en") == std::string::npos) text += ".0";
  return text;
}

std::string CellText(const SqlValue& v) {
  switch (v.index()) {
    case 0:
      return "NULL";
    case 1:
      return std::to_string(std::get<std::int64_t>(v));
    case 2:
      return DoubleText(std::get<double>(v));
    case 3:
      return Printable(std::get<std::string>(v));
    default:
      return Hex(std::get<SqlBlob>(v));
  }
}

nlohmann::json CellJson(const SqlValue& v) {
  switch (v.index()) {
    case 0:
      return nullptr;
    case 1:
      return std::get<std::int64_t>(v);
    case 2: {
      const double d = std::get<double>(v);
      if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
      return d;
    }
    case 3:
      return std::get<std::string>(v);
    default: {
      const SqlBlob& b = std::get<SqlBlob>(v);
      return {{"base64", crypto::Base64Encode(ByteView(b.data(), b.size()))}};
    }
  }
}

// Display width: code points, not bytes.
std::size_t Width(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

void PrintTable(const SqlResultSet& set) {
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> widths;
  for (const auto& col : set.columns) widths.push_back(Width(Printable(col.name)));
  for (const auto& row : set.rows) {
    std::vector<std::string> line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line.push_back(CellText(row[i]));
      widths[i] = std::max(widths[i], Width(line.back()));
    }
    cells.push_back(std::move(line));
  }
  auto print = [&](const std::vector<std::string>& line) {
    std::string out;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (i) out += "  ";
      out += line[i];
      if (i + 1 < line.size()) out += std::string(widths[i] - Width(line[i]), ' ');
    }
    std::cout << out << "\n";
  };
  std::vector<std::string> header;
  std::vector<std::string> rule;
  for (std::size_t i = 0; i < set.columns.size(); ++i) {
    header.push_back(Printable(set.columns[i].name));
    rule.push_back(std::string(widths[i], '-'));
  }
  print(header);
  print(rule);
  for (const auto& line : cells) print(line);
  std::cout << "(" << set.rows.size() << (set.rows.size() == 1 ? " row)" : " rows)") << "\n";
}

nlohmann::json SetJson(const SqlResultSet& set) {
  nlohmann::json columns = nlohmann::json::array();
  nlohmann::json decltypes = nlohmann::json::array();
  for (const auto& col : set.columns) {
    columns.push_back(col.name);
    decltypes.push_back(col.decl_type ? nlohmann::json(*col.decl_type) : nlohmann::json(nullptr));
  }
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : set.rows) {
    nlohmann::json line = nlohmann::json::array();
    for (const auto& v : row) line.push_back(CellJson(v));
    rows.push_back(std::move(line));
  }
  return {{"columns", columns},
          {"decltypes", decltypes},
          {"rows", rows},
          {"affected_row_count", set.affected_row_count},
          {"last_insert_rowid",
           set.last_insert_rowid ? nlohmann::json(*set.last_insert_rowid) : nlohmann::json(nullptr)}};
}

// --- scripts (--file) ---------------------------------------------------------

// Limits of a script: the whole file, and one statement (the proxy's own
// limit on one SQL text, so a statement over it fails here, before anything
// runs). A request carries at most kChunkStatements statements and about
// kChunkBytes of SQL.
constexpr std::size_t kMaxScriptBytes = 64u << 20;
constexpr std::size_t kMaxStatementBytes = 512u * 1024;
constexpr std::size_t kChunkStatements = 256;
constexpr std::size_t kChunkBytes = 256u * 1024;

struct ScriptStatement {
  std::string sql;
  std::size_t line = 0;  // of its first token, from 1
};

// The offset of the first character of `text` from `pos` that is not
// whitespace or inside a comment (text.size() when there is none), counting
// the newlines it skips into `line`.
std::size_t SkipNoise(std::string_view text, std::size_t pos, std::size_t& line) {
  while (pos < text.size()) {
    const char c = text[pos];
    if (c == '\n') {
      ++line;
      ++pos;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      ++pos;
    } else if (text.compare(pos, 2, "--") == 0) {
      while (pos < text.size() && text[pos] != '\n') ++pos;
    } else if (text.compare(pos, 2, "/*") == 0) {
      std::size_t end = text.find("*/", pos + 2);
      end = end == std::string_view::npos ? text.size() : end + 2;
      for (std::size_t i = pos; i < end; ++i) line += text[i] == '\n';
      pos = end;
    } else {
      break;
    }
  }
  return pos;
}

// The first `count` keywords of a statement, upper-cased.
std::vector<std::string> LeadingWords(std::string_view sql, std::size_t count) {
  std::vector<std::string> words;
  std::size_t line = 0;
  std::size_t pos = 0;
  while (words.size() < count) {
    pos = SkipNoise(sql, pos, line);
    std::string word;
    while (pos < sql.size() && (std::isalpha(static_cast<unsigned char>(sql[pos])) || sql[pos] == '_')) {
      word += static_cast<char>(std::toupper(static_cast<unsigned char>(sql[pos++])));
    }
    if (word.empty()) break;
    words.push_back(std::move(word));
  }
  return words;
}

// BEGIN, COMMIT, END and ROLLBACK (but not ROLLBACK TO a savepoint).
bool ControlsTransaction(std::string_view sql) {
  std::vector<std::string> w = LeadingWords(sql, 3);
  if (w.empty()) return false;
  if (w[0] == "BEGIN" || w[0] == "COMMIT" || w[0] == "END") return true;
  if (w[0] != "ROLLBACK") return false;
  const std::size_t to = w.size() > 1 && w[1] == "TRANSACTION" ? 2 : 1;
  return !(w.size() > to && w[to] == "TO");
}

// Splits a script into statements where SQLite's own sqlite3_complete() says
// one ends (so semicolons in strings, identifiers, comments and trigger
// bodies do not split), dropping empty ones.
Result<std::vector<ScriptStatement>> SplitScript(const std::string& text) {
  if (text.find('\0') != std::string::npos) {
    return InvalidArgument("script_invalid", "the script contains a NUL byte");
  }
  std::vector<ScriptStatement> out;
  std::size_t start = 0;
  std::size_t line = 1;  // at `start`
  auto take = [&](std::size_t end, bool add_semicolon) -> Status {
    std::size_t first_line = line;
    const std::size_t first = SkipNoise(text, start, first_line);
    std::size_t after = first;
    // A lone ";" (or several) is no statement.
    while (after < end && text[after] == ';') after = SkipNoise(text, after + 1, first_line);
    if (after < end) {
      std::string sql = text.substr(first, end - first);
      if (add_semicolon) sql += ";";
      if (sql.size() > kMaxStatementBytes) {
        return InvalidArgument("statement_too_large",
                               "the statement at line " + std::to_string(first_line) + " is " +
                                   std::to_string(sql.size()) + " bytes, more than the limit of " +
                                   std::to_string(kMaxStatementBytes));
      }
      out.push_back({std::move(sql), first_line});
    }
    for (std::size_t i = start; i < end; ++i) line += text[i] == '\n';
    start = end;
    return Status::Ok();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != ';') continue;
    const std::string piece = text.substr(start, i + 1 - start);
    if (sqlite3_complete(piece.c_str()) == 1) VIA_RETURN_IF_ERROR(take(i + 1, false));
  }
  std::size_t tail_line = line;
  if (SkipNoise(text, start, tail_line) < text.size()) {
    const std::string tail = text.substr(start) + "\n;";
    if (sqlite3_complete(tail.c_str()) != 1) {
      return InvalidArgument("script_incomplete",
                             "the statement at line " + std::to_string(tail_line) +
                                 " does not end (an unclosed quote, comment or trigger body)");
    }
    VIA_RETURN_IF_ERROR(take(text.size(), true));
  }
  return out;
}

Result<std::string> ReadScript(const std::string& file) {
  std::string text;
  if (file == "-") {
    char buffer[65536];
    while (std::cin.read(buffer, sizeof buffer) || std::cin.gcount() > 0) {
      text.append(buffer, static_cast<std::size_t>(std::cin.gcount()));
      if (text.size() > kMaxScriptBytes) {
        return InvalidArgument("file_too_large", "the script on stdin is larger than " +
                                                     std::to_string(kMaxScriptBytes) + " bytes");
      }
    }
    return text;
  }
  VIA_ASSIGN_OR_RETURN(Bytes bytes, eventstore::ReadFile(file, kMaxScriptBytes));
  return std::string(bytes.begin(), bytes.end());
}

// The statements to run: a script wrapped in BEGIN ... COMMIT (as `sqlite3
// .dump` writes) loses the pair, as it runs in one transaction anyway; any
// other BEGIN, COMMIT, END or ROLLBACK is refused.
Result<std::vector<ScriptStatement>> WithoutOwnTransaction(std::vector<ScriptStatement> statements) {
  std::vector<std::size_t> control;
  for (std::size_t i = 0; i < statements.size(); ++i) {
    if (ControlsTransaction(statements[i].sql)) control.push_back(i);
  }
  if (control.empty()) return statements;
  if (control.size() == 2 && LeadingWords(statements[control[0]].sql, 1)[0] == "BEGIN" &&
      control[1] == statements.size() - 1 &&
      LeadingWords(statements[control[1]].sql, 1)[0] != "ROLLBACK") {
    statements.erase(statements.begin() + static_cast<std::ptrdiff_t>(control[1]));
    statements.erase(statements.begin() + static_cast<std::ptrdiff_t>(control[0]));
    return statements;
  }
  const ScriptStatement& bad = statements[control[control.size() > 1 && control[0] == 0 ? 1 : 0]];
  return InvalidArgument("script_transaction_control",
                         "line " + std::to_string(bad.line) + ": " +
                             LeadingWords(bad.sql, 1)[0] +
                             " inside the script: the whole file already runs in one transaction "
                             "(only a BEGIN ... COMMIT pair around everything is allowed)");
}

int RunScript(Shell& shell, const SqlFlags& f, const SqlOptions& options) {
  VIA_ASSIGN_OR_RETURN_EXIT(std::string text, ReadScript(f.file), shell);
  VIA_ASSIGN_OR_RETURN_EXIT(auto split, SplitScript(text), shell);
  VIA_ASSIGN_OR_RETURN_EXIT(std::vector<ScriptStatement> statements,
                            WithoutOwnTransaction(std::move(split)), shell);
  text.clear();
  auto db = Sql::Connect(f.binding, options);
  if (!db.ok()) return shell.Fail(ToStatus(db.error()));
  std::vector<SqlResultSet> results;
  if (!statements.empty()) {
    auto tx = db->Transaction("BEGIN");
    if (!tx.ok()) return shell.Fail(ToStatus(tx.error()));
    for (std::size_t first = 0; first < statements.size();) {
      std::vector<SqlStatement> chunk;
      std::size_t bytes = 0;
      while (first + chunk.size() < statements.size() && chunk.size() < kChunkStatements &&
             (chunk.empty() || bytes + statements[first + chunk.size()].sql.size() <= kChunkBytes)) {
        const ScriptStatement& s = statements[first + chunk.size()];
        bytes += s.sql.size();
        chunk.push_back(SqlStatement{s.sql, {}});
      }
      auto ran = tx->Batch(chunk);
      if (!ran.ok()) {
        SqlError e = ran.error();
        if (tx->open()) (void)tx->Rollback();
        if (e.statement) {
          const std::size_t n = first + *e.statement;
          const std::string where = "statement " + std::to_string(*e.statement + 1) + ": ";
          if (e.message.rfind(where, 0) == 0) e.message.erase(0, where.size());
          e.message = "statement " + std::to_string(n + 1) + " (line " +
                      std::to_string(statements[n].line) + "): " + e.message;
        }
        e.message += "; the transaction was rolled back, nothing was applied";
        return shell.Fail(ToStatus(e));
      }
      for (auto& set : *ran) results.push_back(std::move(set));
      first += chunk.size();
    }
    auto committed = tx->Commit();
    if (!committed.ok()) {
      SqlError e = committed.error();
      e.message += "; nothing was applied";
      return shell.Fail(ToStatus(e));
    }
  }
  std::int64_t affected = 0;
  for (const auto& set : results) affected += set.affected_row_count;
  if (shell.globals.json) {
    nlohmann::json sets = nlohmann::json::array();
    for (std::size_t i = 0; i < results.size(); ++i) {
      nlohmann::json one = SetJson(results[i]);
      one["statement"] = i + 1;
      one["line"] = statements[i].line;
      sets.push_back(std::move(one));
    }
    return shell.PrintJson({{"statements", statements.size()},
                            {"affected_row_count", affected},
                            {"results", std::move(sets)},
                            {"binding", db->descriptor().binding},
                            {"addon_id", db->descriptor().addon_id},
                            {"generation", db->descriptor().generation}});
  }
  for (const auto& set : results) {
    if (set.columns.empty()) continue;
    PrintTable(set);
    std::cout << "\n";
  }
  std::cout << statements.size() << (statements.size() == 1 ? " statement" : " statements")
            << " ran in one transaction, " << affected << (affected == 1 ? " row" : " rows")
            << " affected\n";
  return 0;
}

int RunSql(Shell& shell, const SqlFlags& f) {
  if (f.file.empty() == f.sql.empty()) {
    return shell.Fail(InvalidArgument(
        "usage", f.file.empty() ? "give one SQL statement or --file FILE"
                                : "give either one SQL statement or --file FILE, not both"));
  }
  if (!f.file.empty() && !f.args.empty()) {
    return shell.Fail(InvalidArgument("usage", "--arg binds one statement's parameters; a script "
                                               "given with --file takes none"));
  }
  std::vector<SqlValue> args;
  for (const auto& text : f.args) {
    VIA_ASSIGN_OR_RETURN_EXIT(SqlValue value, ParseSqlArg(text), shell);
    args.push_back(std::move(value));
  }
  VIA_ASSIGN_OR_RETURN_EXIT(std::int64_t timeout_ms, ParseDurationMs(f.timeout), shell);
  SqlOptions options;
  options.config_url = f.config_url;
  options.workload_token = f.token;
  options.ca_file = f.ca_file;
  options.request_timeout_ms = static_cast<int>(std::clamp<std::int64_t>(timeout_ms, 1, 3600000));
  if (!f.file.empty()) return RunScript(shell, f, options);
  auto db = Sql::Connect(f.binding, options);
  if (!db.ok()) return shell.Fail(ToStatus(db.error()));
  auto result = db->Execute(f.sql, std::move(args));
  if (!result.ok()) return shell.Fail(ToStatus(result.error()));
  const SqlResultSet& set = *result;
  if (shell.globals.json) {
    nlohmann::json out = SetJson(set);
    out["binding"] = db->descriptor().binding;
    out["addon_id"] = db->descriptor().addon_id;
    out["generation"] = db->descriptor().generation;
    return shell.PrintJson(out);
  }
  if (!set.columns.empty()) {
    PrintTable(set);
  } else {
    std::cout << set.affected_row_count << (set.affected_row_count == 1 ? " row" : " rows")
              << " affected";
    if (set.last_insert_rowid && set.affected_row_count > 0) {
      std::cout << " (last insert rowid " << *set.last_insert_rowid << ")";
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

void RegisterSql(CLI::App& app, Shell& shell) {
  auto f = std::make_shared<SqlFlags>();
  CLI::App* sql = app.add_subcommand(
      "sql",
      "run one SQL statement, or a script with --file, on a binding as an app would "
      "(VIA_CONFIG_URL, VIA_WORKLOAD_TOKEN)");
  sql->add_option("binding", f->binding, "binding name, e.g. DATABASE")->required();
  sql->add_option("sql", f->sql, "one SQL statement; ? and ?N take --arg values");
  sql->add_option("--file,-f", f->file,
                  "run a script's statements in one transaction instead (- reads stdin)");
  sql->add_option("--arg", f->args,
                  "a parameter, in order: int:N, float:X, text:S, blob:BASE64, null: "
                  "(no prefix: an integer if it is one, else text); repeatable")
      ->allow_extra_args(false);
  sql->add_option("--config-url", f->config_url, "config server URL (default $VIA_CONFIG_URL)");
  sql->add_option("--token", f->token, "workload token (default $VIA_WORKLOAD_TOKEN)");
  sql->add_option("--timeout", f->timeout, "time limit of one HTTP request (default 60s)");
  sql->add_option("--ca-file", f->ca_file,
                  "https: trust the CA certificates in this PEM file (default $VIA_CA_FILE, else "
                  "the system's store)")
      ->type_name("FILE");
  sql->callback([&shell, f]() { shell.action = [&shell, f]() { return RunSql(shell, *f); }; });
}

}  // namespace via::cli
