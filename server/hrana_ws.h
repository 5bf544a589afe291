#pragma once

// Hrana over WebSocket (HRANA_3_SPEC.md "Hrana over WebSocket", JSON
// encoding: subprotocols hrana3, hrana2 and hrana1), translated onto the Hrana
// over HTTP routes: every request a client sends on the WebSocket becomes one
// `POST /v3/pipeline` call with the credential of its `hello`, run by the same
// handler as HTTP requests. So every WebSocket request gets the same
// credential check (on every request, not only at hello), revocation,
// add-on/restore checks, SQL worker pool, authorizer and limits as HTTP.
//
// This class is the protocol state of one connection, without I/O: the HTTP
// server feeds it each text message (OnMessage) and the answers to the calls
// it asks for (OnAnswer), and sends the replies it returns.
//   - A stream (open_stream) is an engine stream whose newest baton this
//     object keeps; SQL texts (store_sql) are per connection as the spec says
//     and are substituted for sql_id before a call.
//   - A cursor (open_cursor) runs its batch as one pipeline `batch` and hands
//     out the result as cursor entries on fetch_cursor: its memory is bounded
//     by the response limit (Limits::max_result_rows, max_response_bytes),
//     not streamed as HTTP cursors are.
//   - Bounds per connection: kMaxStreams open streams, kMaxCursors open
//     cursors, Limits::max_stored_sqls SQL texts; beyond them the request gets
//     an error response. The message size is bounded by the server.
//   - A request refused with 401 (credential revoked, add-on destroyed) gets
//     its error response and then closes the WebSocket; a stream the server
//     closed (revocation, restore) answers STREAM_CLOSED from then on.
//   - A malformed message, a request before hello, or a failed hello closes
//     the WebSocket (close code 1002 or 1008).
//
// Thread-safety: none; one connection's coroutine uses it.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/hrana_proto.h"

namespace via::server {

class HranaWsConnection {
 public:
  static constexpr std::size_t kMaxStreams = 64;
  static constexpr std::size_t kMaxCursors = 4;
  // WebSocket close codes used.
  static constexpr int kProtocolError = 1002;
  static constexpr int kPolicyViolation = 1008;

  struct Call {
    std::string target;         // "/v3/pipeline"
    std::string authorization;  // "Bearer <jwt of hello>"
    std::string body;
  };
  struct Action {
    std::vector<std::string> replies;  // send these first, in order
    std::optional<Call> call;          // then run it and give its answer to OnAnswer()
    int close_code = 0;                // then close the WebSocket with this code (0: no)
    std::string close_reason;
  };

  explicit HranaWsConnection(const hrana::Limits& limits) : limits_(limits) {}

  // The subprotocol to accept from a Sec-WebSocket-Protocol header (comma
  // separated): hrana3, else hrana2, else hrana1; "" when none is offered
  // (the header is absent: Hrana 1 without negotiation) and nullopt when
  // only unsupported ones are (hrana3-protobuf among them).
  static std::optional<std::string> ChooseSubprotocol(std::string_view header);

  Action OnMessage(std::string_view text);
  // Only after an Action with a call: the HTTP status and body of its answer.
  Action OnAnswer(int status, std::string_view body);
  // The calls that close the engine streams still open (the WebSocket ended).
  std::vector<Call> CloseAll();

 private:
  struct Stream {
    std::optional<std::string> baton;  // null: no engine stream yet
    bool dead = false;                 // the server closed its engine stream
  };
  struct Cursor {
    std::deque<nlohmann::json> entries;
  };
  enum class Pending { kNone, kHello, kRequest, kCloseStream, kOpenCursor };

  Action Fail(int code, const std::string& reason);
  Action Reply(nlohmann::json message);
  Action ResponseError(const std::string& message, const std::string& code);
  Action StreamCall(std::int32_t stream_id, nlohmann::json request, Pending kind);
  // Replaces sql_id with the stored text in a statement-like object; false
  // (with *missing set) when the id is not stored.
  bool ResolveSql(nlohmann::json& holder, std::int32_t* missing) const;
  Call PipelineCall(const std::optional<std::string>& baton, nlohmann::json requests) const;

  const hrana::Limits limits_;
  std::optional<std::string> jwt_;  // set once a hello succeeded
  std::optional<std::string> pending_jwt_;
  std::map<std::int32_t, Stream> streams_;
  std::map<std::int32_t, std::string> sqls_;
  std::map<std::int32_t, Cursor> cursors_;
  // The request waiting for OnAnswer().
  Pending pending_ = Pending::kNone;
  std::int32_t request_id_ = 0;
  std::int32_t stream_id_ = 0;
  std::int32_t cursor_id_ = 0;
  std::string request_type_;
};

}  // namespace via::server
