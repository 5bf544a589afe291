#include "client/hrana_codec.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace via::sql_internal {

namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxJsonDepth = 64;

SqlError Make(const char* code, std::string message) {
  SqlError e;
  e.code = code;
  e.message = std::move(message);
  return e;
}

SqlError Malformed(const std::string& what) {
  return Make(kSqlProtocolError, "malformed answer from the server: " + what);
}

// Rejects nesting deeper than kMaxJsonDepth before nlohmann recurses, and
// rewrites the bare tokens 1e999 / -1e999 (how Hrana servers write infinite
// floats, which nlohmann refuses) to the strings "inf" / "-inf".
std::optional<std::string> Prepare(std::string_view body, std::string* why) {
  std::string out;
  out.reserve(body.size());
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      out.push_back(c);
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        *why = "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
        return std::nullopt;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    } else if (c == '1' || c == '-') {
      const std::string_view token = c == '-' ? "-1e999" : "1e999";
      const bool at_start = !out.empty() && (out.back() == ':' || out.back() == ',' ||
                                             out.back() == '[' || out.back() == ' ');
      if (at_start && body.substr(i, token.size()) == token) {
        const std::size_t end = i + token.size();
        if (end == body.size() ||
            std::string_view(",]} \n\r\t").find(body[end]) != std::string_view::npos) {
          out += c == '-' ? "\"-inf\"" : "\"inf\"";
          i = end - 1;
          continue;
        }
      }
    }
    out.push_back(c);
  }
  return out;
}

std::optional<Json> Parse(std::string_view body, std::string* why) {
  auto prepared = Prepare(body, why);
  if (!prepared) return std::nullopt;
  Json json = Json::parse(*prepared, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    *why = "not valid JSON";
    return std::nullopt;
  }
  return json;
}

const Json* Field(const Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::optional<std::string> StringField(const Json& object, const char* key) {
  const Json* v = Field(object, key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return v->get<std::string>();
}

std::optional<std::int64_t> ParseInt64(std::string_view s) {
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// An integer given as a decimal string (Hrana) or, leniently, a JSON integer.
std::optional<std::int64_t> IntegerOf(const Json& v) {
  if (v.is_string()) return ParseInt64(v.get_ref<const std::string&>());
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() &&
        v.get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::nullopt;
    }
    return v.get<std::int64_t>();
  }
  return std::nullopt;
}

}  // namespace

std::string Base64Encode(const SqlBlob& bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    std::uint32_t n = bytes[i] << 16;
    if (rest == 2) n |= bytes[i + 1] << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    if (rest == 2) out += kAlphabet[(n >> 6) & 63];
  }
  return out;
}

std::optional<SqlBlob> Base64Decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  SqlBlob out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int d = digit(c);
    if (d < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero (canonical encoding).
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

SqlResult<Json> EncodeValue(const SqlValue& value) {
  switch (value.index()) {
    case 0:
      return Json{{"type", "null"}};
    case 1:
      return Json{{"type", "integer"}, {"value", std::to_string(std::get<std::int64_t>(value))}};
    case 2: {
      const double d = std::get<double>(value);
      if (!std::isfinite(d)) {
        return Make(kSqlInvalidArgument,
                    "a float argument is NaN or infinite, which Hrana JSON cannot carry");
      }
      return Json{{"type", "float"}, {"value", d}};
    }
    case 3:
      return Json{{"type", "text"}, {"value", std::get<std::string>(value)}};
    default:
      return Json{{"type", "blob"}, {"base64", Base64Encode(std::get<SqlBlob>(value))}};
  }
}

SqlResult<Json> EncodeStmt(const SqlStatement& statement) {
  Json stmt = {{"sql", statement.sql}, {"want_rows", true}};
  if (!statement.args.empty()) {
    Json args = Json::array();
    for (std::size_t i = 0; i < statement.args.size(); ++i) {
      auto v = EncodeValue(statement.args[i]);
      if (!v.ok()) {
        SqlError e = v.error();
        e.message = "argument " + std::to_string(i + 1) + ": " + e.message;
        return e;
      }
      args.push_back(std::move(v).value());
    }
    stmt["args"] = std::move(args);
  }
  if (!statement.named_args.empty()) {
    Json named = Json::array();
    for (const auto& [name, value] : statement.named_args) {
      auto v = EncodeValue(value);
      if (!v.ok()) {
        SqlError e = v.error();
        e.message = "argument " + name + ": " + e.message;
        return e;
      }
      named.push_back({{"name", name}, {"value", std::move(v).value()}});
    }
    stmt["named_args"] = std::move(named);
  }
  return stmt;
}

SqlResult<std::string> EncodePipeline(const std::optional<std::string>& baton,
                                      const Json& requests) {
  Json body = {{"baton", baton ? Json(*baton) : Json(nullptr)}, {"requests", requests}};
  try {
    return body.dump();
  } catch (const Json::exception&) {
    // nlohmann refuses strings that are not UTF-8 (type_error 316).
    return Make(kSqlInvalidArgument, "SQL text or a text argument is not valid UTF-8");
  }
}

SqlResult<SqlValue> DecodeValue(const Json& value) {
  auto type = StringField(value, "type");
  if (!type) return Malformed("a value without a string \"type\"");
  if (*type == "null") return SqlValue(nullptr);
  const Json* v = Field(value, "value");
  if (*type == "integer") {
    if (v == nullptr) return Malformed("an integer value without \"value\"");
    auto i = IntegerOf(*v);
    if (!i) return Malformed("an integer value that is not a 64-bit decimal integer");
    return SqlValue(*i);
  }
  if (*type == "float") {
    if (v == nullptr) return Malformed("a float value without \"value\"");
    if (v->is_number()) return SqlValue(v->get<double>());
    if (v->is_string() && v->get_ref<const std::string&>() == "inf") {
      return SqlValue(std::numeric_limits<double>::infinity());
    }
    if (v->is_string() && v->get_ref<const std::string&>() == "-inf") {
      return SqlValue(-std::numeric_limits<double>::infinity());
    }
    return Malformed("a float value that is not a number");
  }
  if (*type == "text") {
    if (v == nullptr || !v->is_string())
      return Malformed("a text value without a string \"value\"");
    return SqlValue(v->get<std::string>());
  }
  if (*type == "blob") {
    auto b64 = StringField(value, "base64");
    if (!b64) return Malformed("a blob value without a string \"base64\"");
    auto bytes = Base64Decode(*b64);
    if (!bytes) return Malformed("a blob value that is not valid base64");
    return SqlValue(std::move(*bytes));
  }
  return Malformed("a value of unknown type \"" + type->substr(0, 32) + "\"");
}

SqlResult<SqlResultSet> DecodeStmtResult(const Json& result) {
  if (!result.is_object()) return Malformed("a statement result that is not an object");
  SqlResultSet out;
  const Json* cols = Field(result, "cols");
  if (cols == nullptr || !cols->is_array()) return Malformed("a statement result without \"cols\"");
  for (const Json& col : *cols) {
    if (!col.is_object()) return Malformed("a column that is not an object");
    SqlColumn column;
    column.name = StringField(col, "name").value_or("");
    column.decl_type = StringField(col, "decltype");
    out.columns.push_back(std::move(column));
  }
  const Json* rows = Field(result, "rows");
  if (rows == nullptr || !rows->is_array()) return Malformed("a statement result without \"rows\"");
  out.rows.reserve(rows->size());
  for (const Json& row : *rows) {
    if (!row.is_array() || row.size() != out.columns.size()) {
      return Malformed("a row whose length differs from the number of columns");
    }
    std::vector<SqlValue> values;
    values.reserve(row.size());
    for (const Json& cell : row) {
      auto value = DecodeValue(cell);
      if (!value.ok()) return value.error();
      values.push_back(std::move(value).value());
    }
    out.rows.push_back(std::move(values));
  }
  const Json* affected = Field(result, "affected_row_count");
  auto count = affected ? IntegerOf(*affected) : std::nullopt;
  if (!count) return Malformed("a statement result without an integer \"affected_row_count\"");
  out.affected_row_count = *count;
  if (const Json* rowid = Field(result, "last_insert_rowid"); rowid && !rowid->is_null()) {
    auto id = IntegerOf(*rowid);
    if (!id) return Malformed("a \"last_insert_rowid\" that is not an integer");
    out.last_insert_rowid = *id;
  }
  return out;
}

SqlError DecodeHranaError(const Json& error) {
  SqlError e;
  e.server_code = StringField(error, "code").value_or("");
  e.message = StringField(error, "message").value_or("the server gave no message");
  e.code = e.server_code == "STREAM_CLOSED" ? kSqlStreamClosed : kSqlSqlError;
  return e;
}

SqlResult<PipelineReply> DecodePipeline(std::string_view body, std::size_t expected) {
  std::string why;
  auto json = Parse(body, &why);
  if (!json) return Malformed("pipeline answer: " + why);
  if (!json->is_object()) return Malformed("pipeline answer is not an object");
  PipelineReply reply;
  if (const Json* baton = Field(*json, "baton"); baton && !baton->is_null()) {
    if (!baton->is_string()) return Malformed("\"baton\" is not a string");
    reply.baton = baton->get<std::string>();
  }
  if (const Json* base = Field(*json, "base_url"); base && !base->is_null()) {
    if (!base->is_string()) return Malformed("\"base_url\" is not a string");
    reply.base_url = base->get<std::string>();
  }
  const Json* results = Field(*json, "results");
  if (results == nullptr || !results->is_array()) return Malformed("no \"results\" array");
  if (results->size() != expected) {
    return Malformed(std::to_string(results->size()) + " results for " + std::to_string(expected) +
                     " requests");
  }
  for (const Json& result : *results) {
    auto type = StringField(result, "type");
    StreamOutcome outcome;
    if (type == "ok") {
      const Json* response = Field(result, "response");
      if (response == nullptr || !response->is_object())
        return Malformed("an ok result without \"response\"");
      outcome.response = *response;
    } else if (type == "error") {
      const Json* error = Field(result, "error");
      if (error == nullptr || !error->is_object())
        return Malformed("an error result without \"error\"");
      outcome.error = DecodeHranaError(*error);
    } else {
      return Malformed("a result whose \"type\" is neither \"ok\" nor \"error\"");
    }
    reply.results.push_back(std::move(outcome));
  }
  return reply;
}

SqlResult<SqlDescriptor> DecodeDescriptor(std::string_view body) {
  std::string why;
  auto json = Parse(body, &why);
  if (!json) return Malformed("descriptor: " + why);
  SqlDescriptor d;
  struct {
    const char* key;
    std::string* out;
  } fields[] = {{"binding", &d.binding}, {"provider", &d.provider},     {"addon_id", &d.addon_id},
                {"url", &d.url},         {"auth_token", &d.auth_token}, {"app", &d.app},
                {"release", &d.release}};
  for (auto& f : fields) {
    auto value = StringField(*json, f.key);
    if (!value) return Malformed(std::string("descriptor without a string \"") + f.key + "\"");
    *f.out = std::move(*value);
  }
  const Json* generation = Field(*json, "generation");
  auto number = generation ? IntegerOf(*generation) : std::nullopt;
  if (!number) return Malformed("descriptor without an integer \"generation\"");
  d.generation = *number;
  if (d.url.empty() || d.auth_token.empty())
    return Malformed("descriptor with an empty url or auth_token");
  return d;
}

SqlError ErrorForStatus(int status, std::string_view body, std::optional<int> retry_after_s,
                        const std::string& what) {
  SqlError e;
  e.http_status = status;
  e.retry_after_s = retry_after_s;
  std::string why;
  std::optional<Json> json = Parse(body, &why);
  std::string message;
  if (json && json->is_object()) {
    const Json* error = Field(*json, "error");
    const Json& source = (error && error->is_object()) ? *error : *json;  // descriptor or Hrana
    e.server_code = StringField(source, "code").value_or("");
    message = StringField(source, "message").value_or("");
    if (auto blocking = StringField(*json, "blocking")) e.server_code = *blocking;
    e.remediation = StringField(*json, "remediation").value_or("");
  }
  if (message.empty()) message = "HTTP " + std::to_string(status);
  switch (status) {
    case 400:
      e.code = kSqlBadRequest;
      break;
    case 401:
      e.code = kSqlUnauthorized;
      break;
    case 403:
      e.code = kSqlForbidden;
      break;
    case 404:
      e.code = kSqlNotFound;
      break;
    case 409:
      e.code = e.server_code == "stream_busy" ? kSqlUnavailable : kSqlNotUsable;
      break;
    case 503:
      e.code = kSqlUnavailable;
      break;
    default:
      e.code = status >= 500 && status < 600 ? kSqlServerError : kSqlProtocolError;
  }
  if (e.server_code == "baton_invalid" || e.server_code == "baton_reused" ||
      e.server_code == "stream_expired" || e.server_code == "stream_closed_by_restore" ||
      e.server_code == "stream_closed_by_repair") {
    e.code = kSqlStreamClosed;
  }
  e.retryable = e.code == std::string_view(kSqlUnavailable);
  e.message = what + ": " + message;
  return e;
}

}  // namespace via::sql_internal
