#pragma once

// Protobuf encoding of Hrana 3 over HTTP (`/v3-protobuf/pipeline` and
// `/v3-protobuf/cursor`), per the proto3 schema in the appendix of libsql's
// HRANA_3_SPEC.md (packages hrana and hrana.http), over the same plain values
// as the JSON encoding (hrana_proto.h).
//
// The codec is written by hand rather than generated with Debian's
// libprotobuf, for three reasons: (1) parsing checks every limit of Limits
// (requests, steps, arguments, SQL bytes, nesting depth) while it reads, so a
// hostile body never makes the server build a message tree larger than the
// limits allow, where generated code builds the whole tree first; (2) cursor
// entries are encoded one at a time into the streamed body, with no message
// objects in between; (3) the released `via` is one statically linked binary
// that depends on libc6 alone (tools/package.sh), and the subset of the wire
// format Hrana uses (varints, zigzag, fixed64, length-delimited fields) is
// small. The fuzz target tests/fuzz/hrana_protobuf_fuzz.cc runs the parser.
//
// Parsing follows proto3: unknown fields are skipped, absent scalars are
// zero, a repeated oneof field keeps the last one, and strings must be UTF-8.
// As in the JSON parser, a statement needs exactly one of sql and sql_id, a
// condition must name an earlier step, and a request must set one of its
// oneof cases. Errors: InvalidArgument "invalid_pipeline" naming the field
// ("requests[2].execute.stmt.args[0]: ..."); the HTTP layer answers 400.
//
// Encoding writes text that is not valid UTF-8 with each bad byte replaced by
// U+FFFD, as the JSON encoding does.

#include <string>
#include <string_view>

#include "domain/status.h"
#include "server/hrana_proto.h"

namespace via::server::hrana {

// hrana.http.PipelineReqBody and hrana.http.CursorReqBody.
Result<PipelineRequest> ParsePipelineRequestProtobuf(std::string_view body, const Limits& limits);
Result<CursorRequest> ParseCursorRequestProtobuf(std::string_view body, const Limits& limits);

// hrana.http.PipelineRespBody.
std::string EncodePipelineResponseProtobuf(const PipelineResponse& response);

// The cursor response body: a varint length, then hrana.http.CursorRespBody;
// then per entry a varint length and hrana.CursorEntry (appended to `out`).
std::string EncodeCursorHeaderProtobuf(const std::optional<std::string>& baton);
void AppendCursorEntryProtobuf(std::string& out, const CursorEntry& entry);

// hrana.Error, the body of an HTTP error answer on /v3-protobuf.
std::string EncodeErrorProtobuf(const Error& error);

}  // namespace via::server::hrana
