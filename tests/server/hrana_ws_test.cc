// Hrana over WebSocket as a protocol (server/hrana_ws.h), without sockets:
// hello checks the credential through a call, requests become /v3/pipeline
// calls that carry the stream's newest baton, SQL texts are per connection,
// cursors hand out a batch's result as entries, the per-connection bounds,
// and a 401 (revocation) closes the WebSocket.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "server/hrana_ws.h"

namespace via::server {
namespace {

using json = nlohmann::json;

json Request(int id, json request) {
  return {{"type", "request"}, {"request_id", id}, {"request", std::move(request)}};
}

json Reply(const HranaWsConnection::Action& a) {
  REQUIRE(a.replies.size() == 1);
  return json::parse(a.replies[0]);
}

// A connection that passed hello.
HranaWsConnection Hello() {
  HranaWsConnection ws{hrana::Limits{}};
  auto a = ws.OnMessage(R"({"type":"hello","jwt":"via1.token"})");
  REQUIRE(a.call);
  CHECK(a.call->authorization == "Bearer via1.token");
  CHECK(json::parse(a.call->body) == json::parse(R"({"baton":null,"requests":[{"type":"close"}]})"));
  CHECK(Reply(ws.OnAnswer(200, R"({"baton":null,"results":[]})")) == json{{"type", "hello_ok"}});
  return ws;
}

TEST_CASE("WebSocket subprotocols: hrana3, hrana2, hrana1, protobuf is not offered") {
  CHECK(HranaWsConnection::ChooseSubprotocol("hrana3-protobuf, hrana3, hrana2") == "hrana3");
  CHECK(HranaWsConnection::ChooseSubprotocol("hrana2,hrana1") == "hrana2");
  CHECK(HranaWsConnection::ChooseSubprotocol("hrana1") == "hrana1");
  CHECK(HranaWsConnection::ChooseSubprotocol("") == "");
  CHECK_FALSE(HranaWsConnection::ChooseSubprotocol("hrana3-protobuf").has_value());
}

TEST_CASE("hello: a refused credential gets hello_error and closes") {
  HranaWsConnection ws{hrana::Limits{}};
  CHECK(ws.OnMessage(Request(1, {{"type", "open_stream"}, {"stream_id", 1}}).dump()).close_code ==
        HranaWsConnection::kProtocolError);  // before hello
  REQUIRE(ws.OnMessage(R"({"type":"hello","jwt":"bad"})").call);
  auto a = ws.OnAnswer(401, R"({"message":"the auth token is not valid","code":"bad_credential"})");
  CHECK(Reply(a).at("type") == "hello_error");
  CHECK(Reply(a).at("error").at("code") == "bad_credential");
  CHECK(a.close_code == HranaWsConnection::kPolicyViolation);
  CHECK(ws.OnMessage("not json").close_code == HranaWsConnection::kProtocolError);
}

TEST_CASE("stream requests become pipeline calls carrying the newest baton") {
  HranaWsConnection ws = Hello();
  CHECK(Reply(ws.OnMessage(Request(1, {{"type", "open_stream"}, {"stream_id", 5}}).dump()))
            .at("type") == "response_ok");
  CHECK(Reply(ws.OnMessage(Request(2, {{"type", "store_sql"}, {"sql_id", 9}, {"sql", "SELECT 1"}}).dump()))
            .at("response").at("type") == "store_sql");
  auto a = ws.OnMessage(
      Request(3, {{"type", "execute"}, {"stream_id", 5}, {"stmt", {{"sql_id", 9}}}}).dump());
  REQUIRE(a.call);
  json body = json::parse(a.call->body);
  CHECK(body.at("baton").is_null());
  CHECK(body.at("requests").at(0) == json::parse(R"({"type":"execute","stmt":{"sql":"SELECT 1"}})"));
  json reply = Reply(ws.OnAnswer(200, R"({"baton":"B1","base_url":null,"results":[
      {"type":"ok","response":{"type":"execute","result":{"cols":[],"rows":[]}}}]})"));
  CHECK(reply.at("request_id") == 3);
  CHECK(reply.at("response").at("type") == "execute");
  a = ws.OnMessage(Request(4, {{"type", "get_autocommit"}, {"stream_id", 5}}).dump());
  REQUIRE(a.call);
  CHECK(json::parse(a.call->body).at("baton") == "B1");
  // A SQL error is a response_error; the stream goes on.
  reply = Reply(ws.OnAnswer(200, R"({"baton":"B2","results":[{"type":"error","error":{"message":"m","code":"SQLITE_ERROR"}}]})"));
  CHECK(reply.at("type") == "response_error");
  CHECK(reply.at("error").at("code") == "SQLITE_ERROR");
  // An unknown sql_id never reaches the engine.
  reply = Reply(ws.OnMessage(
      Request(5, {{"type", "describe"}, {"stream_id", 5}, {"sql_id", 77}}).dump()));
  CHECK(reply.at("error").at("code") == "SQL_NOT_FOUND");
  // close_stream closes the engine stream with its newest baton.
  a = ws.OnMessage(Request(6, {{"type", "close_stream"}, {"stream_id", 5}}).dump());
  REQUIRE(a.call);
  CHECK(json::parse(a.call->body) == json::parse(R"({"baton":"B2","requests":[{"type":"close"}]})"));
  CHECK(Reply(ws.OnAnswer(200, R"({"baton":null,"results":[{"type":"ok","response":{"type":"close"}}]})"))
            .at("response").at("type") == "close_stream");
  CHECK(ws.CloseAll().empty());
}

TEST_CASE("a cursor hands out a batch's result as entries") {
  HranaWsConnection ws = Hello();
  Reply(ws.OnMessage(Request(1, {{"type", "open_stream"}, {"stream_id", 1}}).dump()));
  auto a = ws.OnMessage(Request(2, {{"type", "open_cursor"}, {"stream_id", 1}, {"cursor_id", 4},
                                    {"batch", {{"steps", json::array({{{"stmt", {{"sql", "SELECT 1"}}}},
                                                                       {{"stmt", {{"sql", "x"}}}}})}}}})
                            .dump());
  REQUIRE(a.call);
  CHECK(json::parse(a.call->body).at("requests").at(0).at("type") == "batch");
  CHECK(Reply(ws.OnAnswer(200, R"({"baton":"B","results":[{"type":"ok","response":{"type":"batch","result":{
      "step_results":[{"cols":[{"name":"1"}],"rows":[[{"type":"integer","value":"1"}]],"affected_row_count":0,"last_insert_rowid":null},null],
      "step_errors":[null,{"message":"e","code":"SQLITE_ERROR"}]}}}]})"))
            .at("response").at("type") == "open_cursor");
  json r = Reply(ws.OnMessage(Request(3, {{"type", "fetch_cursor"}, {"cursor_id", 4}, {"max_count", 2}}).dump()));
  CHECK(r.at("response").at("entries").size() == 2);
  CHECK(r.at("response").at("entries").at(0).at("type") == "step_begin");
  CHECK(r.at("response").at("done") == false);
  r = Reply(ws.OnMessage(Request(4, {{"type", "fetch_cursor"}, {"cursor_id", 4}, {"max_count", 10}}).dump()));
  CHECK(r.at("response").at("entries").size() == 2);
  CHECK(r.at("response").at("entries").at(1).at("type") == "step_error");
  CHECK(r.at("response").at("done") == true);
  // The stream is still open: CloseAll closes it with its baton.
  auto calls = ws.CloseAll();
  REQUIRE(calls.size() == 1);
  CHECK(json::parse(calls[0].body).at("baton") == "B");
}

TEST_CASE("bounds per connection and revocation") {
  HranaWsConnection ws = Hello();
  for (std::size_t i = 0; i < HranaWsConnection::kMaxStreams; ++i) {
    CHECK(Reply(ws.OnMessage(Request(1, {{"type", "open_stream"}, {"stream_id", i}}).dump()))
              .at("type") == "response_ok");
  }
  CHECK(Reply(ws.OnMessage(Request(1, {{"type", "open_stream"}, {"stream_id", 100000}}).dump()))
            .at("error").at("code") == "too_many_streams");
  auto a = ws.OnMessage(Request(2, {{"type", "execute"}, {"stream_id", 0}, {"stmt", {{"sql", "SELECT 1"}}}}).dump());
  REQUIRE(a.call);
  a = ws.OnAnswer(401, R"({"message":"generation 1 was revoked","code":"credential_revoked"})");
  CHECK(Reply(a).at("error").at("code") == "credential_revoked");
  CHECK(a.close_code == HranaWsConnection::kPolicyViolation);
}

}  // namespace
}  // namespace via::server
