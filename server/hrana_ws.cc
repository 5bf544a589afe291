#include "server/hrana_ws.h"

#include <utility>

#include "server/hrana_json.h"

namespace via::server {

namespace {

using Json = nlohmann::json;

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

std::optional<std::int32_t> Int32Field(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return std::nullopt;
  const auto v = it->get<std::int64_t>();
  if (v < INT32_MIN || v > INT32_MAX) return std::nullopt;
  return static_cast<std::int32_t>(v);
}

// The Hrana error of an HTTP answer that is not 200.
Json ErrorOfAnswer(int status, std::string_view body) {
  Json error = {{"message", "the request failed with HTTP status " + std::to_string(status)},
                {"code", "HTTP_" + std::to_string(status)}};
  Json parsed = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object()) {
    const Json* e = &parsed;
    if (parsed.contains("error") && parsed["error"].is_object()) e = &parsed["error"];
    if (e->contains("message") && (*e)["message"].is_string()) error["message"] = (*e)["message"];
    if (e->contains("code") && (*e)["code"].is_string()) error["code"] = (*e)["code"];
  }
  return error;
}

}  // namespace

std::optional<std::string> HranaWsConnection::ChooseSubprotocol(std::string_view header) {
  if (Trim(header).empty()) return std::string();
  bool v1 = false, v2 = false, v3 = false;
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    const std::string name = Trim(header.substr(0, comma));
    v1 = v1 || name == "hrana1";
    v2 = v2 || name == "hrana2";
    v3 = v3 || name == "hrana3";
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  if (v3) return std::string("hrana3");
  if (v2) return std::string("hrana2");
  if (v1) return std::string("hrana1");
  return std::nullopt;
}

HranaWsConnection::Action HranaWsConnection::Fail(int code, const std::string& reason) {
  Action a;
  a.close_code = code;
  a.close_reason = reason;
  return a;
}

HranaWsConnection::Action HranaWsConnection::Reply(Json message) {
  Action a;
  a.replies.push_back(message.dump(-1, ' ', false, Json::error_handler_t::replace));
  return a;
}

HranaWsConnection::Action HranaWsConnection::ResponseError(const std::string& message,
                                                           const std::string& code) {
  return Reply({{"type", "response_error"},
                {"request_id", request_id_},
                {"error", {{"message", message}, {"code", code}}}});
}

HranaWsConnection::Call HranaWsConnection::PipelineCall(const std::optional<std::string>& baton,
                                                        Json requests) const {
  Json body = {{"baton", baton ? Json(*baton) : Json(nullptr)}, {"requests", std::move(requests)}};
  return Call{"/v3/pipeline", "Bearer " + jwt_.value_or(""), body.dump()};
}

bool HranaWsConnection::ResolveSql(Json& holder, std::int32_t* missing) const {
  if (!holder.is_object()) return true;  // the pipeline parser reports it
  auto id = holder.find("sql_id");
  if (id == holder.end() || id->is_null()) return true;
  auto sql = holder.find("sql");
  if (sql != holder.end() && !sql->is_null()) return true;  // both: the parser refuses it
  std::optional<std::int32_t> v = Int32Field(holder, "sql_id");
  if (!v) return true;
  auto stored = sqls_.find(*v);
  if (stored == sqls_.end()) {
    *missing = *v;
    return false;
  }
  holder["sql"] = stored->second;
  holder.erase("sql_id");
  return true;
}

HranaWsConnection::Action HranaWsConnection::StreamCall(std::int32_t stream_id, Json request,
                                                        Pending kind) {
  auto stream = streams_.find(stream_id);
  if (stream == streams_.end()) {
    return ResponseError("stream " + std::to_string(stream_id) + " is not open", "STREAM_NOT_FOUND");
  }
  if (stream->second.dead) {
    return ResponseError("the server closed this stream (credential revoked, add-on restored, "
                         "or idle too long)",
                         "STREAM_CLOSED");
  }
  pending_ = kind;
  stream_id_ = stream_id;
  Action a;
  a.call = PipelineCall(stream->second.baton, Json::array({std::move(request)}));
  return a;
}

HranaWsConnection::Action HranaWsConnection::OnMessage(std::string_view text) {
  if (!hrana::CheckJsonDepth(text, limits_.max_json_depth).ok()) {
    return Fail(kProtocolError, "message nests too deep");
  }
  Json msg = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!msg.is_object() || !msg.contains("type") || !msg["type"].is_string()) {
    return Fail(kProtocolError, "not a Hrana message");
  }
  const std::string type = msg["type"];
  if (type == "hello") {
    auto jwt = msg.find("jwt");
    if (jwt == msg.end() || !jwt->is_string()) {
      return Fail(kPolicyViolation, "hello needs the add-on's auth_token as jwt");
    }
    // The credential is checked now by opening and closing a stream.
    pending_ = Pending::kHello;
    pending_jwt_ = jwt->get<std::string>();
    Action a;
    a.call = Call{"/v3/pipeline", "Bearer " + *pending_jwt_,
                  R"({"baton":null,"requests":[{"type":"close"}]})"};
    return a;
  }
  if (type != "request") return Fail(kProtocolError, "unknown message type");
  if (!jwt_) return Fail(kProtocolError, "request before a successful hello");
  std::optional<std::int32_t> request_id = Int32Field(msg, "request_id");
  auto req_it = msg.find("request");
  if (!request_id || req_it == msg.end() || !req_it->is_object() || !req_it->contains("type") ||
      !(*req_it)["type"].is_string()) {
    return Fail(kProtocolError, "malformed request message");
  }
  request_id_ = *request_id;
  Json req = *req_it;
  request_type_ = req["type"];
  const std::optional<std::int32_t> stream_id = Int32Field(req, "stream_id");
  req.erase("stream_id");

  if (request_type_ == "open_stream") {
    if (!stream_id) return Fail(kProtocolError, "open_stream without stream_id");
    if (streams_.count(*stream_id)) return Fail(kProtocolError, "stream id already in use");
    if (streams_.size() >= kMaxStreams) {
      return ResponseError("more than " + std::to_string(kMaxStreams) +
                               " streams open on this connection",
                           "too_many_streams");
    }
    streams_.emplace(*stream_id, Stream{});
    return Reply({{"type", "response_ok"},
                  {"request_id", request_id_},
                  {"response", {{"type", "open_stream"}}}});
  }
  if (request_type_ == "close_stream") {
    if (!stream_id) return Fail(kProtocolError, "close_stream without stream_id");
    auto stream = streams_.find(*stream_id);
    Action a = Reply({{"type", "response_ok"},
                      {"request_id", request_id_},
                      {"response", {{"type", "close_stream"}}}});
    if (stream == streams_.end()) return a;
    const Stream s = stream->second;
    streams_.erase(stream);
    if (!s.baton || s.dead) return a;
    // Close the engine stream first (rolls back), then answer.
    pending_ = Pending::kCloseStream;
    Action call;
    call.call = PipelineCall(s.baton, Json::array({Json{{"type", "close"}}}));
    return call;
  }
  if (request_type_ == "store_sql") {
    std::optional<std::int32_t> sql_id = Int32Field(req, "sql_id");
    auto sql = req.find("sql");
    if (!sql_id || sql == req.end() || !sql->is_string()) {
      return Fail(kProtocolError, "malformed store_sql");
    }
    if (sqls_.count(*sql_id)) return Fail(kProtocolError, "sql id already in use");
    if (sqls_.size() >= limits_.max_stored_sqls) {
      return ResponseError("the connection already stores " + std::to_string(sqls_.size()) +
                               " SQL texts, the limit",
                           "SQL_STORE_TOO_MANY");
    }
    if (sql->get_ref<const std::string&>().size() > limits_.max_sql_bytes) {
      return ResponseError("SQL text over the limit of " + std::to_string(limits_.max_sql_bytes) +
                               " bytes",
                           "invalid_pipeline");
    }
    sqls_.emplace(*sql_id, sql->get<std::string>());
    return Reply({{"type", "response_ok"},
                  {"request_id", request_id_},
                  {"response", {{"type", "store_sql"}}}});
  }
  if (request_type_ == "close_sql") {
    if (std::optional<std::int32_t> sql_id = Int32Field(req, "sql_id")) sqls_.erase(*sql_id);
    return Reply({{"type", "response_ok"},
                  {"request_id", request_id_},
                  {"response", {{"type", "close_sql"}}}});
  }
  if (request_type_ == "close_cursor") {
    if (std::optional<std::int32_t> cursor_id = Int32Field(req, "cursor_id")) {
      cursors_.erase(*cursor_id);
    }
    return Reply({{"type", "response_ok"},
                  {"request_id", request_id_},
                  {"response", {{"type", "close_cursor"}}}});
  }
  if (request_type_ == "fetch_cursor") {
    std::optional<std::int32_t> cursor_id = Int32Field(req, "cursor_id");
    auto max_count = req.find("max_count");
    if (!cursor_id || max_count == req.end() || !max_count->is_number_unsigned()) {
      return Fail(kProtocolError, "malformed fetch_cursor");
    }
    auto cursor = cursors_.find(*cursor_id);
    if (cursor == cursors_.end()) {
      return ResponseError("cursor " + std::to_string(*cursor_id) + " is not open",
                           "CURSOR_NOT_FOUND");
    }
    const std::uint64_t want = std::max<std::uint64_t>(1, max_count->get<std::uint64_t>());
    Json entries = Json::array();
    std::deque<Json>& queue = cursor->second.entries;
    while (!queue.empty() && entries.size() < want) {
      entries.push_back(std::move(queue.front()));
      queue.pop_front();
    }
    return Reply({{"type", "response_ok"},
                  {"request_id", request_id_},
                  {"response", {{"type", "fetch_cursor"}, {"entries", std::move(entries)},
                                {"done", queue.empty()}}}});
  }

  // Requests that run on a stream.
  if (!stream_id) return Fail(kProtocolError, request_type_ + " without stream_id");
  std::int32_t missing = 0;
  bool resolved = true;
  if (request_type_ == "execute") {
    if (req.contains("stmt")) resolved = ResolveSql(req["stmt"], &missing);
  } else if (request_type_ == "batch" || request_type_ == "open_cursor") {
    if (req.contains("batch") && req["batch"].is_object() && req["batch"].contains("steps") &&
        req["batch"]["steps"].is_array()) {
      for (Json& step : req["batch"]["steps"]) {
        if (step.is_object() && step.contains("stmt") && !ResolveSql(step["stmt"], &missing)) {
          resolved = false;
          break;
        }
      }
    }
  } else if (request_type_ == "sequence" || request_type_ == "describe") {
    resolved = ResolveSql(req, &missing);
  } else if (request_type_ != "get_autocommit") {
    return Fail(kProtocolError, "unknown request type");
  }
  if (!resolved) {
    return ResponseError("SQL text " + std::to_string(missing) + " is not stored", "SQL_NOT_FOUND");
  }
  if (request_type_ == "open_cursor") {
    std::optional<std::int32_t> cursor_id = Int32Field(req, "cursor_id");
    if (!cursor_id) return Fail(kProtocolError, "open_cursor without cursor_id");
    if (cursors_.count(*cursor_id)) return Fail(kProtocolError, "cursor id already in use");
    if (cursors_.size() >= kMaxCursors) {
      return ResponseError("more than " + std::to_string(kMaxCursors) +
                               " cursors open on this connection",
                           "too_many_cursors");
    }
    cursor_id_ = *cursor_id;
    Json batch_request = {{"type", "batch"}, {"batch", req.value("batch", Json())}};
    return StreamCall(*stream_id, std::move(batch_request), Pending::kOpenCursor);
  }
  return StreamCall(*stream_id, std::move(req), Pending::kRequest);
}

HranaWsConnection::Action HranaWsConnection::OnAnswer(int status, std::string_view body) {
  const Pending pending = std::exchange(pending_, Pending::kNone);
  if (pending == Pending::kHello) {
    if (status != 200) {
      Action a = Reply({{"type", "hello_error"}, {"error", ErrorOfAnswer(status, body)}});
      a.close_code = kPolicyViolation;
      a.close_reason = "hello refused";
      return a;
    }
    jwt_ = std::move(pending_jwt_);
    pending_jwt_.reset();
    return Reply({{"type", "hello_ok"}});
  }
  if (pending == Pending::kCloseStream) {
    // Closed (or already gone): the client only needs the answer.
    return Reply({{"type", "response_ok"},
                  {"request_id", request_id_},
                  {"response", {{"type", "close_stream"}}}});
  }
  auto stream = streams_.find(stream_id_);
  if (status != 200) {
    // The stream is unusable from now on (HTTP errors end Hrana streams).
    if (stream != streams_.end()) stream->second.dead = true;
    Json error = ErrorOfAnswer(status, body);
    Action a = Reply({{"type", "response_error"}, {"request_id", request_id_}, {"error", error}});
    if (status == 401) {
      a.close_code = kPolicyViolation;
      a.close_reason = error["code"].get<std::string>();
    }
    return a;
  }
  Json answer = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!answer.is_object() || !answer.contains("results") || !answer["results"].is_array() ||
      answer["results"].size() != 1) {
    return ResponseError("unexpected answer from the SQL proxy", "internal");
  }
  if (stream != streams_.end()) {
    const Json& baton = answer["baton"];
    if (baton.is_string()) {
      stream->second.baton = baton.get<std::string>();
    } else {
      stream->second.baton.reset();
      stream->second.dead = true;
    }
  }
  Json& result = answer["results"][0];
  if (result.value("type", "") != "ok") {
    return Reply(
        {{"type", "response_error"}, {"request_id", request_id_}, {"error", result["error"]}});
  }
  if (pending == Pending::kOpenCursor) {
    // The batch result as cursor entries.
    Cursor cursor;
    const Json r = result["response"].value("result", Json::object());
    const Json results = r.value("step_results", Json::array());
    const Json errors = r.value("step_errors", Json::array());
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (results[i].is_object()) {
        const Json& s = results[i];
        cursor.entries.push_back(
            {{"type", "step_begin"}, {"step", i}, {"cols", s.value("cols", Json::array())}});
        for (const Json& row : s.value("rows", Json::array())) {
          cursor.entries.push_back({{"type", "row"}, {"row", row}});
        }
        cursor.entries.push_back({{"type", "step_end"},
                                  {"affected_row_count", s.value("affected_row_count", Json(0))},
                                  {"last_insert_rowid", s.value("last_insert_rowid", Json())}});
      } else if (i < errors.size() && errors[i].is_object()) {
        cursor.entries.push_back({{"type", "step_error"}, {"step", i}, {"error", errors[i]}});
      }
    }
    cursors_[cursor_id_] = std::move(cursor);
    return Reply({{"type", "response_ok"},
                  {"request_id", request_id_},
                  {"response", {{"type", "open_cursor"}}}});
  }
  return Reply({{"type", "response_ok"},
                {"request_id", request_id_},
                {"response", std::move(result["response"])}});
}

std::vector<HranaWsConnection::Call> HranaWsConnection::CloseAll() {
  std::vector<Call> calls;
  for (const auto& [id, stream] : streams_) {
    if (stream.baton && !stream.dead) {
      calls.push_back(PipelineCall(stream.baton, Json::array({Json{{"type", "close"}}})));
    }
  }
  streams_.clear();
  cursors_.clear();
  return calls;
}

}  // namespace via::server
