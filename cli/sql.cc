// `via sql BINDING "SQL" [--arg VALUE ...]`: runs one statement as an app
// would, through client/ (VIA_CONFIG_URL and VIA_WORKLOAD_TOKEN, or
// --config-url/--token), and prints the rows as a table or, with --json, as
// one JSON document. Argument typing and exit codes: docs/cli.md.

#include "client/sql.h"

#include <charconv>
#include <cmath>
#include <iostream>

#include "cli/shell.h"
#include "crypto/crypto.h"

namespace via::cli {
namespace {

struct SqlFlags {
  std::string binding;
  std::string sql;
  std::vector<std::string> args;
  std::string config_url;
  std::string token;
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
  } else if (c == kSqlUnavailable || c == kSqlConnectionFailed) {
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

int RunSql(Shell& shell, const SqlFlags& f) {
  std::vector<SqlValue> args;
  for (const auto& text : f.args) {
    VIA_ASSIGN_OR_RETURN_EXIT(SqlValue value, ParseSqlArg(text), shell);
    args.push_back(std::move(value));
  }
  VIA_ASSIGN_OR_RETURN_EXIT(std::int64_t timeout_ms, ParseDurationMs(f.timeout), shell);
  SqlOptions options;
  options.config_url = f.config_url;
  options.workload_token = f.token;
  options.request_timeout_ms = static_cast<int>(std::clamp<std::int64_t>(timeout_ms, 1, 3600000));
  auto db = Sql::Connect(f.binding, options);
  if (!db.ok()) return shell.Fail(ToStatus(db.error()));
  auto result = db->Execute(f.sql, std::move(args));
  if (!result.ok()) return shell.Fail(ToStatus(result.error()));
  const SqlResultSet& set = *result;
  if (shell.globals.json) {
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
    return shell.PrintJson(
        {{"columns", columns},
         {"decltypes", decltypes},
         {"rows", rows},
         {"affected_row_count", set.affected_row_count},
         {"last_insert_rowid",
          set.last_insert_rowid ? nlohmann::json(*set.last_insert_rowid) : nlohmann::json(nullptr)},
         {"binding", db->descriptor().binding},
         {"addon_id", db->descriptor().addon_id},
         {"generation", db->descriptor().generation}});
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
      "run one SQL statement on a binding as an app would (VIA_CONFIG_URL, VIA_WORKLOAD_TOKEN)");
  sql->add_option("binding", f->binding, "binding name, e.g. DATABASE")->required();
  sql->add_option("sql", f->sql, "one SQL statement; ? and ?N take --arg values")->required();
  sql->add_option("--arg", f->args,
                  "a parameter, in order: int:N, float:X, text:S, blob:BASE64, null: "
                  "(no prefix: an integer if it is one, else text); repeatable")
      ->allow_extra_args(false);
  sql->add_option("--config-url", f->config_url, "config server URL (default $VIA_CONFIG_URL)");
  sql->add_option("--token", f->token, "workload token (default $VIA_WORKLOAD_TOKEN)");
  sql->add_option("--timeout", f->timeout, "time limit of one HTTP request (default 60s)");
  sql->callback([&shell, f]() { shell.action = [&shell, f]() { return RunSql(shell, *f); }; });
}

}  // namespace via::cli
