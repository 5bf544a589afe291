// The client's invariants: a Session holds the newest descriptor it fetched
// and one keep-alive HTTP connection; autocommit requests open and close
// their own Hrana stream in one pipeline ([execute, close]), so no baton
// outlives them; a transaction owns exactly one stream, whose newest baton it
// keeps until Commit/Rollback (or an error) ends it.

#include "client/sql.h"

#include <cstdlib>

#include "client/hrana_codec.h"
#include "client/http.h"

namespace via {

using Json = nlohmann::json;

const char* SqlTypeName(const SqlValue& value) {
  static constexpr const char* kNames[] = {"null", "integer", "float", "text", "blob"};
  return kNames[value.index()];
}

std::string SqlError::ToString() const {
  std::string out = code;
  if (!server_code.empty()) out += " (" + server_code + ")";
  return out + ": " + message;
}

namespace sql_internal {
namespace {

SqlError Make(const char* code, std::string message) {
  SqlError e;
  e.code = code;
  e.message = std::move(message);
  return e;
}

bool ValidBinding(std::string_view binding) {
  if (binding.empty() || binding.size() > 128) return false;
  for (char c : binding) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Json ExecuteRequest(Json stmt) { return Json{{"type", "execute"}, {"stmt", std::move(stmt)}}; }

// The result set of an "execute" outcome, or its error.
SqlResult<SqlResultSet> ExecuteOutcome(const StreamOutcome& outcome) {
  if (!outcome.response) return outcome.error;
  const Json* result = nullptr;
  if (auto it = outcome.response->find("result"); it != outcome.response->end()) result = &*it;
  if (result == nullptr || outcome.response->value("type", "") != "execute") {
    return Make(kSqlProtocolError,
                "malformed answer from the server: an execute response without a result");
  }
  return DecodeStmtResult(*result);
}

// {"step_results","step_errors"} of a "batch" outcome, checked against `steps`.
SqlResult<std::pair<Json, Json>> BatchOutcome(const StreamOutcome& outcome, std::size_t steps) {
  if (!outcome.response) return outcome.error;
  const Json& response = *outcome.response;
  auto result = response.find("result");
  if (response.value("type", "") != "batch" || result == response.end() || !result->is_object()) {
    return Make(kSqlProtocolError,
                "malformed answer from the server: a batch response without a result");
  }
  auto results = result->find("step_results");
  auto errors = result->find("step_errors");
  if (results == result->end() || errors == result->end() || !results->is_array() ||
      !errors->is_array() || results->size() != steps || errors->size() != steps) {
    return Make(
        kSqlProtocolError,
        "malformed answer from the server: batch step_results/step_errors do not match the steps");
  }
  return std::make_pair(*results, *errors);
}

// Results of the statements at steps [first, first + count): the first
// failure (an error, or a step that did not run) ends the list.
SqlResult<std::vector<SqlResultSet>> StepResults(const Json& results, const Json& errors,
                                                 std::size_t first, std::size_t count) {
  std::vector<SqlResultSet> out;
  for (std::size_t i = 0; i < count; ++i) {
    const Json& error = errors[first + i];
    const Json& result = results[first + i];
    if (!error.is_null()) {
      SqlError e = DecodeHranaError(error);
      e.message = "statement " + std::to_string(i + 1) + ": " + e.message;
      e.statement = i;
      return e;
    }
    if (result.is_null()) {
      return Make(kSqlProtocolError, "statement " + std::to_string(i + 1) +
                                         " neither ran nor failed (malformed batch answer)");
    }
    auto set = DecodeStmtResult(result);
    if (!set.ok()) return set.error();
    out.push_back(std::move(set).value());
  }
  return out;
}

}  // namespace

class Session {
 public:
  Session(const SqlOptions& options, Url config, std::string binding)
      : options_(options),
        config_(std::move(config)),
        binding_(std::move(binding)),
        http_(HttpOptions{options.connect_timeout_ms, options.request_timeout_ms,
                          options.max_response_bytes, options.ca_file}) {}

  const SqlDescriptor& descriptor() const { return descriptor_; }

  // Fetches the descriptor again.
  SqlResult<void> Refresh() {
    const std::string what = "descriptor of " + binding_;
    auto reply =
        http_.Send(config_, "GET", "/v1/descriptors/" + binding_, options_.workload_token, nullptr);
    if (!reply.ok()) {
      SqlError e = reply.error();
      e.message = what + ": " + e.message;
      return e;
    }
    if (reply->status != 200) {
      return ErrorForStatus(reply->status, reply->body, reply->retry_after_s, what);
    }
    auto descriptor = DecodeDescriptor(reply->body);
    if (!descriptor.ok()) return descriptor.error();
    auto url = ParseUrl(descriptor->url);
    if (!url.ok()) {
      return Make(kSqlProtocolError,
                  what + ": the descriptor's url is not usable: " + url.error().message);
    }
    descriptor_ = std::move(descriptor).value();
    db_url_ = std::move(url).value();
    return {};
  }

  // POST /v2/pipeline on `base_url` (empty: the descriptor's url).
  SqlResult<PipelineReply> Pipeline(const std::string& base_url,
                                    const std::optional<std::string>& baton, const Json& requests) {
    auto body = EncodePipeline(baton, requests);
    if (!body.ok()) return body.error();
    Url url = db_url_;
    if (!base_url.empty()) {
      auto parsed = ParseUrl(base_url);
      if (!parsed.ok())
        return Make(kSqlProtocolError,
                    "the server's base_url is not usable: " + parsed.error().message);
      url = std::move(parsed).value();
    }
    const std::string what = "SQL on " + binding_;
    auto reply = http_.Send(url, "POST", "/v2/pipeline", descriptor_.auth_token, &*body);
    if (!reply.ok()) {
      SqlError e = reply.error();
      e.message = what + ": " + e.message;
      return e;
    }
    if (reply->status != 200)
      return ErrorForStatus(reply->status, reply->body, reply->retry_after_s, what);
    return DecodePipeline(reply->body, requests.size());
  }

  // A pipeline on a new stream that ends with "close". A credential revoked
  // since the descriptor was fetched is replaced once: nothing ran.
  SqlResult<PipelineReply> Autocommit(const Json& requests) {
    auto reply = Pipeline("", std::nullopt, requests);
    if (!reply.ok() && reply.error().http_status == 401 &&
        reply.error().server_code == "credential_revoked") {
      const std::int64_t before = descriptor_.generation;
      auto refreshed = Refresh();
      if (refreshed.ok() && descriptor_.generation != before)
        return Pipeline("", std::nullopt, requests);
    }
    return reply;
  }

 private:
  const SqlOptions options_;
  const Url config_;
  const std::string binding_;
  SqlDescriptor descriptor_;
  Url db_url_;
  HttpClient http_;
};

}  // namespace sql_internal

using sql_internal::Session;

// ------------------------------------------------------------------ Sql

Sql::Sql(std::unique_ptr<Session> session) : session_(std::move(session)) {}
Sql::Sql(Sql&&) noexcept = default;
Sql& Sql::operator=(Sql&&) noexcept = default;
Sql::~Sql() = default;

SqlResult<Sql> Sql::Connect(std::string_view binding) { return Connect(binding, SqlOptions{}); }

SqlResult<Sql> Sql::Connect(std::string_view binding, const SqlOptions& given) {
  SqlOptions options = given;
  if (options.config_url.empty()) {
    if (const char* env = std::getenv("VIA_CONFIG_URL")) options.config_url = env;
  }
  if (options.workload_token.empty()) {
    if (const char* env = std::getenv("VIA_WORKLOAD_TOKEN")) options.workload_token = env;
  }
  if (options.config_url.empty()) {
    return sql_internal::Make(kSqlNotConfigured,
                              "VIA_CONFIG_URL is not set: it names the config server "
                              "(e.g. http://127.0.0.1:7600, from `via serve`)");
  }
  if (options.workload_token.empty()) {
    return sql_internal::Make(kSqlNotConfigured,
                              "VIA_WORKLOAD_TOKEN is not set: it holds the release's workload "
                              "token (`via workload token --app APP --release RELEASE`)");
  }
  if (!sql_internal::ValidBinding(binding)) {
    return sql_internal::Make(kSqlInvalidArgument,
                              "'" + std::string(binding.substr(0, 64)) +
                                  "' is not a binding name (letters, digits, '_', '-', '.')");
  }
  auto config = sql_internal::ParseUrl(options.config_url);
  if (!config.ok()) {
    SqlError e = config.error();
    e.message = "VIA_CONFIG_URL: " + e.message;
    return e;
  }
  auto session =
      std::make_unique<Session>(options, std::move(config).value(), std::string(binding));
  if (auto fetched = session->Refresh(); !fetched.ok()) return fetched.error();
  return Sql(std::move(session));
}

const SqlDescriptor& Sql::descriptor() const { return session_->descriptor(); }

SqlResult<SqlResultSet> Sql::Execute(std::string_view sql, std::vector<SqlValue> args) {
  return Execute(SqlStatement{std::string(sql), std::move(args), {}});
}

SqlResult<SqlResultSet> Sql::Execute(const SqlStatement& statement) {
  auto stmt = sql_internal::EncodeStmt(statement);
  if (!stmt.ok()) return stmt.error();
  Json requests =
      Json::array({sql_internal::ExecuteRequest(std::move(stmt).value()), Json{{"type", "close"}}});
  auto reply = session_->Autocommit(requests);
  if (!reply.ok()) return reply.error();
  return sql_internal::ExecuteOutcome(reply->results[0]);
}

SqlResult<std::vector<SqlResultSet>> Sql::Batch(const std::vector<SqlStatement>& statements) {
  // Steps: BEGIN, each statement if the previous step succeeded, COMMIT if
  // the last statement succeeded, ROLLBACK unless COMMIT succeeded.
  const std::size_t n = statements.size();
  auto ok = [](std::size_t step) { return Json{{"type", "ok"}, {"step", step}}; };
  Json steps = Json::array();
  steps.push_back({{"stmt", {{"sql", "BEGIN"}, {"want_rows", false}}}});
  for (std::size_t i = 0; i < n; ++i) {
    auto stmt = sql_internal::EncodeStmt(statements[i]);
    if (!stmt.ok()) {
      SqlError e = stmt.error();
      e.message = "statement " + std::to_string(i + 1) + ": " + e.message;
      e.statement = i;
      return e;
    }
    steps.push_back({{"stmt", std::move(stmt).value()}, {"condition", ok(i)}});
  }
  const std::size_t commit = n + 1;
  steps.push_back({{"stmt", {{"sql", "COMMIT"}, {"want_rows", false}}}, {"condition", ok(n)}});
  steps.push_back({{"stmt", {{"sql", "ROLLBACK"}, {"want_rows", false}}},
                   {"condition", {{"type", "not"}, {"cond", ok(commit)}}}});
  const std::size_t total = steps.size();
  Json requests = Json::array(
      {Json{{"type", "batch"}, {"batch", {{"steps", std::move(steps)}}}}, Json{{"type", "close"}}});
  auto reply = session_->Autocommit(requests);
  if (!reply.ok()) return reply.error();
  auto outcome = sql_internal::BatchOutcome(reply->results[0], total);
  if (!outcome.ok()) return outcome.error();
  const auto& [results, errors] = outcome.value();
  if (!errors[0].is_null()) {
    SqlError e = sql_internal::DecodeHranaError(errors[0]);
    e.message = "BEGIN: " + e.message;
    return e;
  }
  auto sets = sql_internal::StepResults(results, errors, 1, n);
  if (!sets.ok()) return sets;
  if (!errors[commit].is_null() || results[commit].is_null()) {
    SqlError e =
        errors[commit].is_null()
            ? sql_internal::Make(kSqlProtocolError, "COMMIT did not run (malformed batch answer)")
            : sql_internal::DecodeHranaError(errors[commit]);
    e.message = "COMMIT: " + e.message;
    return e;
  }
  return sets;
}

SqlResult<SqlTransaction> Sql::Transaction(std::string_view begin_sql) {
  if (begin_sql != "BEGIN" && begin_sql != "BEGIN DEFERRED" && begin_sql != "BEGIN IMMEDIATE" &&
      begin_sql != "BEGIN EXCLUSIVE") {
    return sql_internal::Make(kSqlInvalidArgument,
                              "a transaction starts with BEGIN, BEGIN DEFERRED, BEGIN IMMEDIATE or "
                              "BEGIN EXCLUSIVE");
  }
  Json requests = Json::array(
      {sql_internal::ExecuteRequest({{"sql", std::string(begin_sql)}, {"want_rows", false}})});
  auto reply = session_->Autocommit(requests);
  if (!reply.ok()) return reply.error();
  const std::string base_url = reply->base_url.value_or("");
  if (!reply->results[0].response) {
    if (reply->baton) {  // close the stream that BEGIN left open; best effort
      (void)session_->Pipeline(base_url, reply->baton, Json::array({Json{{"type", "close"}}}));
    }
    SqlError e = reply->results[0].error;
    e.message = "BEGIN: " + e.message;
    return e;
  }
  if (!reply->baton || reply->baton->empty()) {
    return sql_internal::Make(kSqlProtocolError,
                              "the server gave no baton for an open transaction");
  }
  return SqlTransaction(session_.get(), *reply->baton, base_url);
}

// ------------------------------------------------------------------ SqlTransaction

SqlTransaction::SqlTransaction(Session* session, std::string baton, std::string base_url)
    : session_(session), baton_(std::move(baton)), base_url_(std::move(base_url)) {}

SqlTransaction::SqlTransaction(SqlTransaction&& other) noexcept
    : session_(other.session_),
      baton_(std::exchange(other.baton_, std::string())),
      base_url_(std::move(other.base_url_)) {}

SqlTransaction& SqlTransaction::operator=(SqlTransaction&& other) noexcept {
  if (this != &other) {
    if (open()) (void)Rollback();
    session_ = other.session_;
    baton_ = std::exchange(other.baton_, std::string());
    base_url_ = std::move(other.base_url_);
  }
  return *this;
}

SqlTransaction::~SqlTransaction() {
  if (open()) (void)Rollback();
}

namespace {

SqlError Closed() {
  return sql_internal::Make(kSqlTransactionClosed,
                            "the transaction is no longer open (committed, rolled back or lost)");
}

}  // namespace

SqlResult<SqlResultSet> SqlTransaction::Execute(std::string_view sql, std::vector<SqlValue> args) {
  return Execute(SqlStatement{std::string(sql), std::move(args), {}});
}

SqlResult<SqlResultSet> SqlTransaction::Execute(const SqlStatement& statement) {
  if (!open()) return Closed();
  auto stmt = sql_internal::EncodeStmt(statement);
  if (!stmt.ok()) return stmt.error();
  auto reply = Send(
      sql_internal::Requests{Json::array({sql_internal::ExecuteRequest(std::move(stmt).value())})});
  if (!reply.ok()) return reply.error();
  auto set = sql_internal::ExecuteOutcome(reply->results[0]);
  if (!set.ok() && set.error().code == kSqlStreamClosed) baton_.clear();
  return set;
}

SqlResult<std::vector<SqlResultSet>> SqlTransaction::Batch(
    const std::vector<SqlStatement>& statements) {
  if (!open()) return Closed();
  // One Hrana batch: each statement runs only if the previous one succeeded.
  Json steps = Json::array();
  for (std::size_t i = 0; i < statements.size(); ++i) {
    auto stmt = sql_internal::EncodeStmt(statements[i]);
    if (!stmt.ok()) {
      SqlError e = stmt.error();
      e.message = "statement " + std::to_string(i + 1) + ": " + e.message;
      e.statement = i;
      return e;
    }
    Json step = {{"stmt", std::move(stmt).value()}};
    if (i > 0) step["condition"] = {{"type", "ok"}, {"step", i - 1}};
    steps.push_back(std::move(step));
  }
  if (steps.empty()) return std::vector<SqlResultSet>{};
  auto reply = Send(sql_internal::Requests{
      Json::array({Json{{"type", "batch"}, {"batch", {{"steps", std::move(steps)}}}}})});
  if (!reply.ok()) return reply.error();
  auto outcome = sql_internal::BatchOutcome(reply->results[0], statements.size());
  if (!outcome.ok()) {
    if (outcome.error().code == kSqlStreamClosed) baton_.clear();
    return outcome.error();
  }
  const auto& [results, errors] = outcome.value();
  return sql_internal::StepResults(results, errors, 0, statements.size());
}

SqlResult<sql_internal::PipelineReply> SqlTransaction::Send(
    const sql_internal::Requests& requests) {
  auto reply = session_->Pipeline(base_url_, baton_, requests.json);
  if (!reply.ok()) {
    baton_.clear();  // the stream's state is unknown: the server rolls it back
    return reply.error();
  }
  baton_ = reply->baton.value_or("");
  if (reply->base_url) base_url_ = *reply->base_url;
  return reply;
}

SqlResult<void> SqlTransaction::Commit() { return Finish("COMMIT"); }
SqlResult<void> SqlTransaction::Rollback() { return Finish("ROLLBACK"); }

SqlResult<void> SqlTransaction::Finish(const char* sql) {
  if (!open()) return Closed();
  const std::string baton = std::exchange(baton_, std::string());
  Json requests = Json::array({sql_internal::ExecuteRequest({{"sql", sql}, {"want_rows", false}}),
                               Json{{"type", "close"}}});
  auto reply = session_->Pipeline(base_url_, baton, requests);
  if (!reply.ok()) return reply.error();
  auto set = sql_internal::ExecuteOutcome(reply->results[0]);
  if (!set.ok()) {
    SqlError e = set.error();
    e.message = std::string(sql) + ": " + e.message;
    return e;
  }
  return {};
}

}  // namespace via
