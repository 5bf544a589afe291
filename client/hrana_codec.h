#pragma once

// Internal to client/: JSON encoding of Hrana over HTTP v2 requests and
// decoding of its answers (libsql-server docs/HTTP_V2_SPEC.md, HRANA_3_SPEC.md;
// the server side is server/hrana_json.cc). Decoding never throws: anything
// that is not the expected shape is a protocol_error naming the bad field.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/sql.h"

namespace via::sql_internal {

// Standard base64. Encode writes no padding (as Hrana servers do); Decode
// accepts padded and unpadded text and refuses anything else.
std::string Base64Encode(const SqlBlob& bytes);
std::optional<SqlBlob> Base64Decode(std::string_view text);

// A Hrana value. Errors: invalid_argument for NaN or infinite floats (Hrana
// JSON has no way to carry them).
SqlResult<nlohmann::json> EncodeValue(const SqlValue& value);
// {"sql","args","named_args","want_rows":true}.
SqlResult<nlohmann::json> EncodeStmt(const SqlStatement& statement);
// {"baton","requests"} as text. Errors: invalid_argument when a string is
// not valid UTF-8.
SqlResult<std::string> EncodePipeline(const std::optional<std::string>& baton,
                                      const nlohmann::json& requests);

// One entry of "results": the response object, or the Hrana error turned
// into an SqlError (sql_error, or stream_closed for STREAM_CLOSED).
struct StreamOutcome {
  std::optional<nlohmann::json> response;  // set when "type" is "ok"
  SqlError error;                          // meaningful when !response
};

struct PipelineReply {
  std::optional<std::string> baton;
  std::optional<std::string> base_url;
  std::vector<StreamOutcome> results;
};

// The "requests" array of a pipeline (kept out of client/sql.h, which must
// not need nlohmann_json).
struct Requests {
  nlohmann::json json;
};

// Decodes a 200 answer of POST /v2/pipeline that must hold `expected` results.
SqlResult<PipelineReply> DecodePipeline(std::string_view body, std::size_t expected);
// The "result" of an execute response ({"cols","rows",...}).
SqlResult<SqlResultSet> DecodeStmtResult(const nlohmann::json& result);
SqlResult<SqlValue> DecodeValue(const nlohmann::json& value);
// A Hrana error object {"message","code"} as an sql_error (or stream_closed).
SqlError DecodeHranaError(const nlohmann::json& error);

// Decodes a 200 answer of GET /v1/descriptors/{BINDING}.
SqlResult<SqlDescriptor> DecodeDescriptor(std::string_view body);

// The error for a non-200 answer: 401 unauthorized, 403 forbidden, 404
// not_found, 409 not_usable (blocker and remediation from the body), 503
// unavailable (retryable), 400 bad_request, other 5xx server_error, anything
// else protocol_error. The body may be a descriptor error
// ({"error":{"code","message"},"blocking","remediation"}), a Hrana error
// ({"message","code"}) or anything at all. `what` names the request.
SqlError ErrorForStatus(int status, std::string_view body, std::optional<int> retry_after_s,
                        const std::string& what);

}  // namespace via::sql_internal
