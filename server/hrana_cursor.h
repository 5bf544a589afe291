#pragma once

// `POST /v3/cursor` and `/v3-protobuf/cursor` (Hrana 3 over HTTP): runs a
// cursor on the engine and streams its entries, as newline-separated JSON
// (the first line {"baton","base_url"}) or as length-delimited protobuf
// messages (the first a CursorRespBody). Memory per cursor is bounded: entries are gathered
// into chunks of about kCursorChunkBytes and at most kCursorBufferBytes (plus
// one chunk being filled) wait for the client; the SQL worker blocks while
// the client reads slower than the statement produces rows.

#include <cstddef>
#include <functional>
#include <string_view>

#include "domain/status.h"
#include "server/hrana.h"
#include "server/http_message.h"

namespace via::server {

inline constexpr std::size_t kCursorChunkBytes = 16 * 1024;
inline constexpr std::size_t kCursorBufferBytes = 64 * 1024;

// Answers through `respond`: with a 200 whose body is a BodyStream once the
// stream is taken (then fills it, on the calling thread, until the cursor
// ends or the client is gone), or with `failure(status)` when the engine
// refuses the request before (bad baton, too many streams, ...).
void RunCursor(HranaEngine& engine, std::string_view database_key,
               const hrana::CursorRequest& request, hrana::Encoding encoding,
               const HranaEngine::ConnectionFactory& open_connection, const Responder& respond,
               const std::function<HttpResponse(const Status&)>& failure);

}  // namespace via::server
