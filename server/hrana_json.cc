#include "server/hrana_json.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <type_traits>
#include <utility>

#include "crypto/crypto.h"
#include "server/utf8.h"

namespace via::server::hrana {

namespace {

using Json = nlohmann::json;

// ---------------------------------------------------------------- parsing

Status Bad(const std::string& path, const std::string& what) {
  return InvalidArgument("invalid_pipeline", path + ": " + what);
}

std::string Quote(std::string_view s) {
  constexpr std::size_t kMax = 40;
  std::string out = "\"";
  for (char c : s.substr(0, kMax)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == '"') ? '?' : c;
  }
  if (s.size() > kMax) out += "...";
  return out + "\"";
}

// Rejects nesting deeper than `max_depth` before nlohmann builds a tree, so
// that no later step has to worry about deep recursion.
Status CheckDepth(std::string_view body, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return InvalidArgument("invalid_pipeline",
                               "request body nests arrays and objects deeper than " +
                                   std::to_string(max_depth) + " levels");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return Status::Ok();
}

// A field of `obj`; null when absent. With `nullable`, a JSON null counts as
// absent too.
const Json* Field(const Json& obj, const char* key, bool nullable) {
  auto it = obj.find(key);
  if (it == obj.end()) return nullptr;
  if (nullable && it->is_null()) return nullptr;
  return &*it;
}

std::string Describe(const Json& j) { return std::string(j.type_name()); }

Status WantObject(const Json& j, const std::string& path) {
  if (!j.is_object()) return Bad(path, "expected an object, got " + Describe(j));
  return Status::Ok();
}

template <typename Int>
Status ToInt(const Json& j, const std::string& path, Int* out) {
  constexpr auto kMin = std::numeric_limits<Int>::min();
  constexpr auto kMax = std::numeric_limits<Int>::max();
  const std::string range =
      "an integer from " + std::to_string(kMin) + " to " + std::to_string(kMax);
  if (j.is_number_unsigned()) {
    auto v = j.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(kMax)) return Bad(path, "expected " + range);
    *out = static_cast<Int>(v);
    return Status::Ok();
  }
  if (j.is_number_integer()) {
    auto v = j.get<std::int64_t>();
    if constexpr (std::is_signed_v<Int>) {
      if (v < static_cast<std::int64_t>(kMin) || v > static_cast<std::int64_t>(kMax)) {
        return Bad(path, "expected " + range);
      }
    } else {
      if (v < 0 || static_cast<std::uint64_t>(v) > static_cast<std::uint64_t>(kMax)) {
        return Bad(path, "expected " + range);
      }
    }
    *out = static_cast<Int>(v);
    return Status::Ok();
  }
  return Bad(path, "expected " + range + ", got " + Describe(j));
}

std::optional<std::int64_t> ParseDecimalInt64(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  std::string_view digits = (!s.empty() && s.front() == '-') ? s.substr(1) : s;
  if (digits.empty() || digits.front() < '0' || digits.front() > '9') return std::nullopt;
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

class RequestParser {
 public:
  explicit RequestParser(const Limits& limits) : limits_(limits) {}

  Status Pipeline(const Json& j, PipelineRequest* out) {
    VIA_RETURN_IF_ERROR(WantObject(j, "body"));
    if (const Json* baton = Field(j, "baton", true)) {
      if (!baton->is_string())
        return Bad("baton", "expected a string or null, got " + Describe(*baton));
      out->baton = baton->get<std::string>();
    }
    const Json* requests = Field(j, "requests", false);
    if (!requests) return Bad("body", "missing field \"requests\"");
    if (!requests->is_array())
      return Bad("requests", "expected an array, got " + Describe(*requests));
    if (requests->size() > limits_.max_requests) {
      return Bad("requests", std::to_string(requests->size()) +
                                 " requests, more than the limit of " +
                                 std::to_string(limits_.max_requests));
    }
    out->requests.reserve(requests->size());
    for (std::size_t i = 0; i < requests->size(); ++i) {
      StreamRequest request;
      VIA_RETURN_IF_ERROR(Request((*requests)[i], "requests[" + std::to_string(i) + "]", &request));
      out->requests.push_back(std::move(request));
    }
    return Status::Ok();
  }

  Status Cursor(const Json& j, CursorRequest* out) {
    VIA_RETURN_IF_ERROR(WantObject(j, "body"));
    if (const Json* baton = Field(j, "baton", true)) {
      if (!baton->is_string())
        return Bad("baton", "expected a string or null, got " + Describe(*baton));
      out->baton = baton->get<std::string>();
    }
    const Json* batch = Field(j, "batch", false);
    if (!batch) return Bad("body", "missing field \"batch\"");
    return ParseBatch(*batch, "batch", &out->batch);
  }

 private:
  Status Request(const Json& j, const std::string& path, StreamRequest* out) {
    VIA_RETURN_IF_ERROR(WantObject(j, path));
    std::string type;
    VIA_RETURN_IF_ERROR(String(j, "type", path, &type));
    if (type == "close") {
      *out = CloseRequest{};
    } else if (type == "execute") {
      ExecuteRequest r;
      const Json* stmt = Field(j, "stmt", false);
      if (!stmt) return Bad(path, "missing field \"stmt\"");
      VIA_RETURN_IF_ERROR(ParseStmt(*stmt, path + ".stmt", &r.stmt));
      *out = std::move(r);
    } else if (type == "batch") {
      BatchRequest r;
      const Json* batch = Field(j, "batch", false);
      if (!batch) return Bad(path, "missing field \"batch\"");
      VIA_RETURN_IF_ERROR(ParseBatch(*batch, path + ".batch", &r.batch));
      *out = std::move(r);
    } else if (type == "sequence") {
      SequenceRequest r;
      VIA_RETURN_IF_ERROR(SqlOrSqlId(j, path, &r.sql, &r.sql_id));
      *out = std::move(r);
    } else if (type == "describe") {
      DescribeRequest r;
      VIA_RETURN_IF_ERROR(SqlOrSqlId(j, path, &r.sql, &r.sql_id));
      *out = std::move(r);
    } else if (type == "store_sql") {
      StoreSqlRequest r;
      VIA_RETURN_IF_ERROR(Int32(j, "sql_id", path, &r.sql_id));
      VIA_RETURN_IF_ERROR(String(j, "sql", path, &r.sql));
      VIA_RETURN_IF_ERROR(SqlSize(r.sql, path + ".sql"));
      *out = std::move(r);
    } else if (type == "close_sql") {
      CloseSqlRequest r;
      VIA_RETURN_IF_ERROR(Int32(j, "sql_id", path, &r.sql_id));
      *out = r;
    } else if (type == "get_autocommit") {
      *out = GetAutocommitRequest{};
    } else {
      return Bad(path + ".type", "unknown request type " + Quote(type));
    }
    return Status::Ok();
  }

  Status ParseStmt(const Json& j, const std::string& path, Stmt* out) {
    VIA_RETURN_IF_ERROR(WantObject(j, path));
    VIA_RETURN_IF_ERROR(SqlOrSqlId(j, path, &out->sql, &out->sql_id));
    std::size_t count = 0;
    if (const Json* args = Field(j, "args", false)) {
      if (!args->is_array())
        return Bad(path + ".args", "expected an array, got " + Describe(*args));
      count += args->size();
      VIA_RETURN_IF_ERROR(ArgCount(count, path));
      out->args.reserve(args->size());
      for (std::size_t i = 0; i < args->size(); ++i) {
        Value v;
        VIA_RETURN_IF_ERROR(ParseValue((*args)[i], path + ".args[" + std::to_string(i) + "]", &v));
        out->args.push_back(std::move(v));
      }
    }
    if (const Json* named = Field(j, "named_args", false)) {
      if (!named->is_array()) {
        return Bad(path + ".named_args", "expected an array, got " + Describe(*named));
      }
      count += named->size();
      VIA_RETURN_IF_ERROR(ArgCount(count, path));
      out->named_args.reserve(named->size());
      for (std::size_t i = 0; i < named->size(); ++i) {
        std::string at = path + ".named_args[" + std::to_string(i) + "]";
        const Json& item = (*named)[i];
        VIA_RETURN_IF_ERROR(WantObject(item, at));
        NamedArg arg;
        VIA_RETURN_IF_ERROR(String(item, "name", at, &arg.name));
        const Json* value = Field(item, "value", false);
        if (!value) return Bad(at, "missing field \"value\"");
        VIA_RETURN_IF_ERROR(ParseValue(*value, at + ".value", &arg.value));
        out->named_args.push_back(std::move(arg));
      }
    }
    if (const Json* want_rows = Field(j, "want_rows", true)) {
      if (!want_rows->is_boolean()) {
        return Bad(path + ".want_rows", "expected a boolean, got " + Describe(*want_rows));
      }
      out->want_rows = want_rows->get<bool>();
    }
    return Status::Ok();
  }

  Status ParseValue(const Json& j, const std::string& path, Value* out) {
    VIA_RETURN_IF_ERROR(WantObject(j, path));
    std::string type;
    VIA_RETURN_IF_ERROR(String(j, "type", path, &type));
    if (type == "null") {
      *out = nullptr;
    } else if (type == "integer") {
      const Json* v = Field(j, "value", false);
      if (!v) return Bad(path, "missing field \"value\"");
      if (!v->is_string()) {
        return Bad(path + ".value", "expected a decimal integer in a string, got " + Describe(*v));
      }
      auto parsed = ParseDecimalInt64(v->get_ref<const std::string&>());
      if (!parsed) {
        return Bad(path + ".value", "expected a decimal 64-bit integer, got " +
                                        Quote(v->get_ref<const std::string&>()));
      }
      *out = *parsed;
    } else if (type == "float") {
      const Json* v = Field(j, "value", false);
      if (!v) return Bad(path, "missing field \"value\"");
      if (!v->is_number()) return Bad(path + ".value", "expected a number, got " + Describe(*v));
      *out = v->get<double>();
    } else if (type == "text") {
      const Json* v = Field(j, "value", false);
      if (!v) return Bad(path, "missing field \"value\"");
      if (!v->is_string()) return Bad(path + ".value", "expected a string, got " + Describe(*v));
      *out = v->get<std::string>();
    } else if (type == "blob") {
      const Json* v = Field(j, "base64", false);
      if (!v) return Bad(path, "missing field \"base64\"");
      if (!v->is_string()) return Bad(path + ".base64", "expected a string, got " + Describe(*v));
      auto bytes = DecodeBlobBase64(v->get_ref<const std::string&>());
      if (!bytes) return Bad(path + ".base64", "not valid base64");
      *out = std::move(*bytes);
    } else {
      return Bad(path + ".type", "unknown value type " + Quote(type));
    }
    return Status::Ok();
  }

  Status ParseBatch(const Json& j, const std::string& path, Batch* out) {
    VIA_RETURN_IF_ERROR(WantObject(j, path));
    const Json* steps = Field(j, "steps", false);
    if (!steps) return Bad(path, "missing field \"steps\"");
    if (!steps->is_array())
      return Bad(path + ".steps", "expected an array, got " + Describe(*steps));
    if (steps->size() > limits_.max_batch_steps) {
      return Bad(path + ".steps", std::to_string(steps->size()) +
                                      " steps, more than the limit of " +
                                      std::to_string(limits_.max_batch_steps));
    }
    out->steps.reserve(steps->size());
    for (std::size_t i = 0; i < steps->size(); ++i) {
      std::string at = path + ".steps[" + std::to_string(i) + "]";
      const Json& item = (*steps)[i];
      VIA_RETURN_IF_ERROR(WantObject(item, at));
      BatchStep step;
      const Json* stmt = Field(item, "stmt", false);
      if (!stmt) return Bad(at, "missing field \"stmt\"");
      VIA_RETURN_IF_ERROR(ParseStmt(*stmt, at + ".stmt", &step.stmt));
      if (const Json* cond = Field(item, "condition", true)) {
        BatchCond c;
        VIA_RETURN_IF_ERROR(ParseCond(*cond, at + ".condition", i, &c));
        step.condition = std::move(c);
      }
      out->steps.push_back(std::move(step));
    }
    return Status::Ok();
  }

  // Recursion is bounded by CheckDepth: every level of a condition is at least
  // one level of JSON nesting.
  Status ParseCond(const Json& j, const std::string& path, std::size_t step_index, BatchCond* out) {
    VIA_RETURN_IF_ERROR(WantObject(j, path));
    std::string type;
    VIA_RETURN_IF_ERROR(String(j, "type", path, &type));
    if (type == "ok" || type == "error") {
      out->kind = type == "ok" ? BatchCond::Kind::kOk : BatchCond::Kind::kError;
      VIA_RETURN_IF_ERROR(UInt32(j, "step", path, &out->step));
      if (out->step >= step_index) {
        return Bad(path + ".step", "condition of step " + std::to_string(step_index) +
                                       " refers to step " + std::to_string(out->step) +
                                       ", which is not an earlier step");
      }
    } else if (type == "not") {
      out->kind = BatchCond::Kind::kNot;
      const Json* cond = Field(j, "cond", false);
      if (!cond) return Bad(path, "missing field \"cond\"");
      out->conds.resize(1);
      VIA_RETURN_IF_ERROR(ParseCond(*cond, path + ".cond", step_index, &out->conds[0]));
    } else if (type == "and" || type == "or") {
      out->kind = type == "and" ? BatchCond::Kind::kAnd : BatchCond::Kind::kOr;
      const Json* conds = Field(j, "conds", false);
      if (!conds) return Bad(path, "missing field \"conds\"");
      if (!conds->is_array())
        return Bad(path + ".conds", "expected an array, got " + Describe(*conds));
      out->conds.resize(conds->size());
      for (std::size_t i = 0; i < conds->size(); ++i) {
        VIA_RETURN_IF_ERROR(ParseCond((*conds)[i], path + ".conds[" + std::to_string(i) + "]",
                                      step_index, &out->conds[i]));
      }
    } else if (type == "is_autocommit") {
      out->kind = BatchCond::Kind::kIsAutocommit;
    } else {
      return Bad(path + ".type", "unknown condition type " + Quote(type));
    }
    return Status::Ok();
  }

  Status SqlOrSqlId(const Json& j, const std::string& path, std::optional<std::string>* sql,
                    std::optional<std::int32_t>* sql_id) {
    if (const Json* s = Field(j, "sql", true)) {
      if (!s->is_string())
        return Bad(path + ".sql", "expected a string or null, got " + Describe(*s));
      *sql = s->get<std::string>();
      VIA_RETURN_IF_ERROR(SqlSize(**sql, path + ".sql"));
    }
    if (const Json* id = Field(j, "sql_id", true)) {
      std::int32_t v = 0;
      VIA_RETURN_IF_ERROR(ToInt(*id, path + ".sql_id", &v));
      *sql_id = v;
    }
    if (sql->has_value() == sql_id->has_value()) {
      return Bad(path, "exactly one of \"sql\" and \"sql_id\" is required");
    }
    return Status::Ok();
  }

  Status String(const Json& obj, const char* key, const std::string& path, std::string* out) {
    const Json* v = Field(obj, key, false);
    if (!v) return Bad(path, std::string("missing field \"") + key + "\"");
    if (!v->is_string()) return Bad(path + "." + key, "expected a string, got " + Describe(*v));
    *out = v->get<std::string>();
    return Status::Ok();
  }

  Status Int32(const Json& obj, const char* key, const std::string& path, std::int32_t* out) {
    const Json* v = Field(obj, key, false);
    if (!v) return Bad(path, std::string("missing field \"") + key + "\"");
    return ToInt(*v, path + "." + key, out);
  }

  Status UInt32(const Json& obj, const char* key, const std::string& path, std::uint32_t* out) {
    const Json* v = Field(obj, key, false);
    if (!v) return Bad(path, std::string("missing field \"") + key + "\"");
    return ToInt(*v, path + "." + key, out);
  }

  Status SqlSize(const std::string& sql, const std::string& path) {
    if (sql.size() > limits_.max_sql_bytes) {
      return Bad(path, "SQL text of " + std::to_string(sql.size()) +
                           " bytes, more than the limit of " +
                           std::to_string(limits_.max_sql_bytes));
    }
    return Status::Ok();
  }

  Status ArgCount(std::size_t count, const std::string& path) {
    if (count > limits_.max_args) {
      return Bad(path, std::to_string(count) + " arguments, more than the limit of " +
                           std::to_string(limits_.max_args));
    }
    return Status::Ok();
  }

  const Limits& limits_;
};

// ---------------------------------------------------------------- encoding

void AppendString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      std::size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

void AppendOptString(std::string& out, const std::optional<std::string>& s) {
  if (s) {
    AppendString(out, *s);
  } else {
    out += "null";
  }
}

template <typename Int>
void AppendInt(std::string& out, Int v) {
  char buf[24];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ptr);
}

// Shortest text that reads back as the same double, always with a '.' or an
// exponent so that typed clients see a float.
void AppendDouble(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "null";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "1e999" : "-1e999";
    return;
  }
  char buf[32];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string_view text(buf, static_cast<std::size_t>(ptr - buf));
  out.append(text);
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

void AppendValue(std::string& out, const Value& value) {
  if (std::holds_alternative<std::nullptr_t>(value)) {
    out += R"({"type":"null"})";
  } else if (const auto* i = std::get_if<std::int64_t>(&value)) {
    out += R"({"type":"integer","value":")";
    AppendInt(out, *i);
    out += "\"}";
  } else if (const auto* d = std::get_if<double>(&value)) {
    if (std::isnan(*d)) {
      out += R"({"type":"null"})";
      return;
    }
    out += R"({"type":"float","value":)";
    AppendDouble(out, *d);
    out += "}";
  } else if (const auto* s = std::get_if<std::string>(&value)) {
    out += R"({"type":"text","value":)";
    AppendString(out, *s);
    out += "}";
  } else {
    out += R"({"type":"blob","base64":")";
    out += EncodeBlobBase64(std::get<Bytes>(value));
    out += "\"}";
  }
}

void AppendError(std::string& out, const Error& error) {
  out += R"({"message":)";
  AppendString(out, error.message);
  out += R"(,"code":)";
  AppendString(out, error.code);
  out += "}";
}

void AppendCols(std::string& out, const std::vector<Col>& cols) {
  out += "[";
  for (std::size_t i = 0; i < cols.size(); ++i) {
    if (i) out += ",";
    out += R"({"name":)";
    AppendOptString(out, cols[i].name);
    out += R"(,"decltype":)";
    AppendOptString(out, cols[i].decl_type);
    out += "}";
  }
  out += "]";
}

void AppendStmtResult(std::string& out, const StmtResult& r) {
  out += R"({"cols":)";
  AppendCols(out, r.cols);
  out += R"(,"rows":[)";
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    if (i) out += ",";
    out += "[";
    for (std::size_t k = 0; k < r.rows[i].size(); ++k) {
      if (k) out += ",";
      AppendValue(out, r.rows[i][k]);
    }
    out += "]";
  }
  out += R"(],"affected_row_count":)";
  AppendInt(out, r.affected_row_count);
  out += R"(,"last_insert_rowid":)";
  if (r.last_insert_rowid) {
    out += "\"";
    AppendInt(out, *r.last_insert_rowid);
    out += "\"";
  } else {
    out += "null";
  }
  out += R"(,"rows_read":)";
  AppendInt(out, r.rows_read);
  out += R"(,"rows_written":)";
  AppendInt(out, r.rows_written);
  out += R"(,"query_duration_ms":)";
  AppendDouble(out, r.query_duration_ms);
  out += "}";
}

void AppendBatchResult(std::string& out, const BatchResult& r) {
  out += R"({"step_results":[)";
  for (std::size_t i = 0; i < r.step_results.size(); ++i) {
    if (i) out += ",";
    if (r.step_results[i]) {
      AppendStmtResult(out, *r.step_results[i]);
    } else {
      out += "null";
    }
  }
  out += R"(],"step_errors":[)";
  for (std::size_t i = 0; i < r.step_errors.size(); ++i) {
    if (i) out += ",";
    if (r.step_errors[i]) {
      AppendError(out, *r.step_errors[i]);
    } else {
      out += "null";
    }
  }
  out += "]}";
}

void AppendDescribeResult(std::string& out, const DescribeResult& r) {
  out += R"({"params":[)";
  for (std::size_t i = 0; i < r.params.size(); ++i) {
    if (i) out += ",";
    out += R"({"name":)";
    AppendOptString(out, r.params[i].name);
    out += "}";
  }
  out += R"(],"cols":[)";
  for (std::size_t i = 0; i < r.cols.size(); ++i) {
    if (i) out += ",";
    out += R"({"name":)";
    AppendString(out, r.cols[i].name);
    out += R"(,"decltype":)";
    AppendOptString(out, r.cols[i].decl_type);
    out += "}";
  }
  out += R"(],"is_explain":)";
  out += r.is_explain ? "true" : "false";
  out += R"(,"is_readonly":)";
  out += r.is_readonly ? "true" : "false";
  out += "}";
}

struct ResponseWriter {
  std::string& out;
  void operator()(const CloseResponse&) { out += R"({"type":"close"})"; }
  void operator()(const ExecuteResponse& r) {
    out += R"({"type":"execute","result":)";
    AppendStmtResult(out, r.result);
    out += "}";
  }
  void operator()(const BatchResponse& r) {
    out += R"({"type":"batch","result":)";
    AppendBatchResult(out, r.result);
    out += "}";
  }
  void operator()(const SequenceResponse&) { out += R"({"type":"sequence"})"; }
  void operator()(const DescribeResponse& r) {
    out += R"({"type":"describe","result":)";
    AppendDescribeResult(out, r.result);
    out += "}";
  }
  void operator()(const StoreSqlResponse&) { out += R"({"type":"store_sql"})"; }
  void operator()(const CloseSqlResponse&) { out += R"({"type":"close_sql"})"; }
  void operator()(const GetAutocommitResponse& r) {
    out += R"({"type":"get_autocommit","is_autocommit":)";
    out += r.is_autocommit ? "true" : "false";
    out += "}";
  }
};

}  // namespace

namespace {

// The checks and the parse shared by every JSON request body.
Result<Json> ParseBody(std::string_view body, const Limits& limits) {
  if (body.size() > limits.max_body_bytes) {
    return InvalidArgument("invalid_pipeline", "request body of " + std::to_string(body.size()) +
                                                   " bytes, more than the limit of " +
                                                   std::to_string(limits.max_body_bytes));
  }
  for (std::size_t i = 0; i < body.size();) {
    const std::size_t n = Utf8SequenceLength(body, i);
    if (n == 0) {
      return InvalidArgument("invalid_pipeline",
                             "request body is not valid UTF-8 (byte " + std::to_string(i) + ")");
    }
    i += n;
  }
  VIA_RETURN_IF_ERROR(CheckDepth(body, limits.max_json_depth));
  // Messages name the byte, never the JSON library's own text.
  Json json;
  try {
    json = Json::parse(body);
  } catch (const Json::parse_error& e) {
    return InvalidArgument("invalid_pipeline",
                           "request body is not valid JSON (byte " + std::to_string(e.byte) + ")");
  } catch (const Json::exception&) {
    return InvalidArgument("invalid_pipeline", "request body is not valid JSON");
  }
  return json;
}

}  // namespace

Result<CursorRequest> ParseCursorRequest(std::string_view body, const Limits& limits) {
  VIA_ASSIGN_OR_RETURN(Json json, ParseBody(body, limits));
  try {
    CursorRequest request;
    VIA_RETURN_IF_ERROR(RequestParser(limits).Cursor(json, &request));
    return request;
  } catch (const Json::exception&) {
    return InvalidArgument("invalid_pipeline", "malformed request");
  }
}

Result<PipelineRequest> ParsePipelineRequest(std::string_view body, const Limits& limits) {
  VIA_ASSIGN_OR_RETURN(Json json, ParseBody(body, limits));
  try {
    PipelineRequest request;
    VIA_RETURN_IF_ERROR(RequestParser(limits).Pipeline(json, &request));
    return request;
  } catch (const Json::exception&) {
    // Not expected: every access above checks the type first.
    return InvalidArgument("invalid_pipeline", "malformed request");
  }
}

std::string EncodePipelineResponse(const PipelineResponse& response) {
  std::string out = R"({"baton":)";
  AppendOptString(out, response.baton);
  out += R"(,"base_url":)";
  AppendOptString(out, response.base_url);
  out += R"(,"results":[)";
  for (std::size_t i = 0; i < response.results.size(); ++i) {
    if (i) out += ",";
    const StreamResult& result = response.results[i];
    if (const auto* error = std::get_if<Error>(&result)) {
      out += R"({"type":"error","error":)";
      AppendError(out, *error);
    } else {
      out += R"({"type":"ok","response":)";
      std::visit(ResponseWriter{out}, std::get<StreamResponse>(result));
    }
    out += "}";
  }
  out += "]}";
  return out;
}

Status CheckJsonDepth(std::string_view text, std::size_t max_depth) {
  return CheckDepth(text, max_depth);
}

std::string EncodeCursorHeader(const std::optional<std::string>& baton) {
  std::string out = R"({"baton":)";
  AppendOptString(out, baton);
  out += R"(,"base_url":null})";
  out += "\n";
  return out;
}

void AppendCursorEntry(std::string& out, const CursorEntry& entry) {
  if (const auto* e = std::get_if<StepBeginEntry>(&entry)) {
    out += R"({"type":"step_begin","step":)";
    AppendInt(out, e->step);
    out += R"(,"cols":)";
    AppendCols(out, e->cols);
    out += "}";
  } else if (const auto* e = std::get_if<StepEndEntry>(&entry)) {
    out += R"({"type":"step_end","affected_row_count":)";
    AppendInt(out, e->affected_row_count);
    out += R"(,"last_insert_rowid":)";
    if (e->last_insert_rowid) {
      out += "\"";
      AppendInt(out, *e->last_insert_rowid);
      out += "\"";
    } else {
      out += "null";
    }
    out += "}";
  } else if (const auto* e = std::get_if<StepErrorEntry>(&entry)) {
    out += R"({"type":"step_error","step":)";
    AppendInt(out, e->step);
    out += R"(,"error":)";
    AppendError(out, e->error);
    out += "}";
  } else if (const auto* e = std::get_if<RowEntry>(&entry)) {
    out += R"({"type":"row","row":[)";
    for (std::size_t k = 0; k < e->row.size(); ++k) {
      if (k) out += ",";
      AppendValue(out, e->row[k]);
    }
    out += "]}";
  } else {
    out += R"({"type":"error","error":)";
    AppendError(out, std::get<ErrorEntry>(entry).error);
    out += "}";
  }
  out += "\n";
}

std::string EncodeError(const Error& error) {
  std::string out;
  AppendError(out, error);
  return out;
}

std::string EncodeBlobBase64(ByteView data) {
  std::string text = crypto::Base64Encode(data);
  while (!text.empty() && text.back() == '=') text.pop_back();
  return text;
}

std::optional<Bytes> DecodeBlobBase64(std::string_view text) {
  std::string padded(text);
  while (padded.size() % 4 != 0) padded.push_back('=');
  return crypto::Base64Decode(padded);
}

}  // namespace via::server::hrana
