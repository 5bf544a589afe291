#pragma once

// JSON encoding of the Hrana pipeline protocol (hrana_proto.h).
//
// Parsing is strict about what the spec defines and lenient only where the spec
// asks: unknown object fields are ignored (forward compatibility), optional
// fields may be absent, and fields the spec types as `T | null` (baton, sql,
// sql_id, want_rows, condition) may be null. Everything else that is wrong
// (malformed JSON, a wrong type, an unknown request or value type, an integer
// out of range, bad base64, both or neither of sql and sql_id, a condition that
// points at the same or a later step, a limit exceeded) is rejected.
//
// Encoding writes valid JSON for any input: text that is not valid UTF-8 has
// each bad byte replaced with U+FFFD, blobs are standard base64 without padding
// (as libsql-server writes them), integers are decimal strings, and an infinite
// float is written as 1e999 / -1e999 (JavaScript's JSON.parse reads Infinity).

#include <optional>
#include <string>
#include <string_view>

#include "domain/status.h"
#include "server/hrana_proto.h"

namespace via::server::hrana {

// Parses a `POST /v2/pipeline` (or `/v3/pipeline`) request body. Never throws.
// Errors: InvalidArgument (reason "invalid_pipeline") with a message that names
// the offending field, e.g. "requests[1].stmt.args[0].value: expected a decimal
// integer in a string". The HTTP layer answers 400.
Result<PipelineRequest> ParsePipelineRequest(std::string_view body, const Limits& limits);

// Parses a `POST /v3/cursor` request body ({"baton", "batch"}), with the
// same checks and errors as ParsePipelineRequest.
Result<CursorRequest> ParseCursorRequest(std::string_view body, const Limits& limits);

// The first line of a `/v3/cursor` response body ({"baton","base_url"} and
// '\n'), and one entry line appended to `out`.
std::string EncodeCursorHeader(const std::optional<std::string>& baton);
void AppendCursorEntry(std::string& out, const CursorEntry& entry);

// Refuses (InvalidArgument "invalid_pipeline") JSON text that nests arrays
// and objects deeper than `max_depth`, before anything parses it.
Status CheckJsonDepth(std::string_view text, std::size_t max_depth);

// The response body for a pipeline response.
std::string EncodePipelineResponse(const PipelineResponse& response);

// `{"message":...,"code":...}`: the body of an HTTP error response, which
// clients parse as a Hrana Error.
std::string EncodeError(const Error& error);

// Blob encoding used on the wire: standard alphabet; Decode accepts input with
// or without '=' padding and rejects non-canonical trailing bits.
std::string EncodeBlobBase64(ByteView data);
std::optional<Bytes> DecodeBlobBase64(std::string_view text);

}  // namespace via::server::hrana
