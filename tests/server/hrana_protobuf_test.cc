// The Hrana 3 protobuf codec (server/hrana_protobuf.h): requests built here
// byte by byte as the proto3 schema of HRANA_3_SPEC.md defines them, parsed
// into the same values as their JSON twins; responses checked byte by byte;
// every limit and malformed input refused with "invalid_pipeline".

#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "server/hrana_json.h"
#include "server/hrana_protobuf.h"

namespace via::server::hrana {
namespace {

// A minimal protobuf writer for the tests (varint keys, length-delimited).
std::string Varint(std::uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string Key(std::uint32_t field, std::uint32_t type) { return Varint((field << 3) | type); }
std::string Len(std::uint32_t field, const std::string& bytes) {
  return Key(field, 2) + Varint(bytes.size()) + bytes;
}
std::string VarintField(std::uint32_t field, std::uint64_t v) { return Key(field, 0) + Varint(v); }

TEST_CASE("a protobuf pipeline parses into the same request as its JSON twin") {
  // Stmt{sql, args:[Value{integer:-2}, Value{text}], named_args:[{name, Value{null}}], want_rows:false}
  const std::string stmt = Len(1, "SELECT ?, ?, :n") + Len(3, VarintField(2, 3)) +
                           Len(3, Len(4, "hi")) + Len(4, Len(1, "n") + Len(2, Len(1, ""))) +
                           VarintField(5, 0);
  // BatchStep{condition: not(is_autocommit), stmt: {sql_id: 7}}
  const std::string cond = Len(3, Len(6, ""));
  const std::string step0 = Len(2, Len(1, "BEGIN"));
  const std::string step1 = Len(1, Len(4, Len(1, VarintField(1, 0)) + Len(1, cond))) +
                            Len(2, VarintField(2, 7));
  const std::string body =
      Len(1, "baton-1") + Len(2, Len(2, Len(1, stmt))) +
      Len(2, Len(3, Len(1, Len(1, step0) + Len(1, step1)))) +
      Len(2, Len(6, VarintField(1, 7) + Len(2, "SELECT 1"))) + Len(2, Len(8, "")) +
      Len(2, Len(4, Len(1, "SELECT 1; SELECT 2"))) + Len(2, Len(5, VarintField(2, 7))) +
      Len(2, Len(7, VarintField(1, 7))) + Len(2, Len(1, "")) +
      VarintField(99, 5);  // an unknown field is skipped
  auto parsed = ParsePipelineRequestProtobuf(body, Limits{});
  INFO(parsed.status().ToString());
  REQUIRE(parsed.ok());
  auto twin = ParsePipelineRequest(R"({"baton":"baton-1","requests":[
    {"type":"execute","stmt":{"sql":"SELECT ?, ?, :n","args":[{"type":"integer","value":"-2"},
      {"type":"text","value":"hi"}],"named_args":[{"name":"n","value":{"type":"null"}}],"want_rows":false}},
    {"type":"batch","batch":{"steps":[{"stmt":{"sql":"BEGIN"}},
      {"condition":{"type":"and","conds":[{"type":"ok","step":0},{"type":"not","cond":{"type":"is_autocommit"}}]},
       "stmt":{"sql_id":7}}]}},
    {"type":"store_sql","sql_id":7,"sql":"SELECT 1"},
    {"type":"get_autocommit"},
    {"type":"sequence","sql":"SELECT 1; SELECT 2"},
    {"type":"describe","sql_id":7},
    {"type":"close_sql","sql_id":7},
    {"type":"close"}]})",
                                   Limits{});
  REQUIRE(twin.ok());
  CHECK(*parsed == *twin);
}

TEST_CASE("protobuf values: zigzag integers, doubles, blobs") {
  std::string dbl;
  double d = -1.5;
  std::uint64_t bits = 0;
  std::memcpy(&bits, &d, 8);
  for (int i = 0; i < 8; ++i) dbl.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  const std::string stmt = Len(1, "SELECT ?, ?, ?") +
                           Len(3, VarintField(2, 0xfffffffffffffffeull)) +  // INT64_MAX
                           Len(3, Key(3, 1) + dbl) + Len(3, Len(5, std::string("\0\xff", 2)));
  auto parsed = ParsePipelineRequestProtobuf(Len(2, Len(2, Len(1, stmt))), Limits{});
  REQUIRE(parsed.ok());
  const auto& args = std::get<ExecuteRequest>(parsed->requests.at(0)).stmt.args;
  REQUIRE(args.size() == 3);
  CHECK(std::get<std::int64_t>(args[0]) == INT64_MAX);
  CHECK(std::get<double>(args[1]) == -1.5);
  CHECK(std::get<Bytes>(args[2]) == Bytes{0, 0xff});
}

TEST_CASE("bad protobuf bodies are refused with invalid_pipeline") {
  Limits limits;
  limits.max_requests = 2;
  limits.max_batch_steps = 1;
  limits.max_args = 1;
  limits.max_sql_bytes = 8;
  limits.max_json_depth = 3;
  const std::string ok_stmt = Len(1, "SELECT 1");
  auto refused = [&](const std::string& body) {
    auto r = ParsePipelineRequestProtobuf(body, limits);
    INFO(r.status().ToString());
    return !r.ok() && r.status().reason() == "invalid_pipeline";
  };
  CHECK(refused(std::string("\x0a\xff", 2)));                  // length past the end
  CHECK(refused(std::string("\x0b", 1)));                      // a group
  CHECK(refused(Len(1, "\xff")));                              // baton not UTF-8
  CHECK(refused(Len(2, "")));                                  // no request type
  CHECK(refused(Len(2, Len(2, Len(1, "")))));                  // neither sql nor sql_id
  CHECK(refused(Len(2, Len(2, Len(1, ok_stmt + VarintField(2, 1))))));  // both
  CHECK(refused(Len(2, Len(2, Len(1, Len(1, "SELECT 1234")))))); // SQL over 8 bytes
  CHECK(refused(Len(2, Len(8, "")) + Len(2, Len(8, "")) + Len(2, Len(8, ""))));  // 3 requests
  CHECK(refused(Len(2, Len(3, Len(1, Len(1, Len(2, ok_stmt)) + Len(1, Len(2, ok_stmt)))))));
  CHECK(refused(Len(2, Len(2, Len(1, ok_stmt + Len(3, Len(1, "")) + Len(3, Len(1, "")))))));
  CHECK(refused(Len(2, Len(2, Len(1, ok_stmt + Len(3, ""))))));  // a value with no type
  // A condition naming its own step, and conditions nested 4 deep.
  CHECK(refused(Len(2, Len(3, Len(1, Len(1, Len(1, VarintField(1, 0)) + Len(2, ok_stmt)))))));
  const std::string deep = Len(3, Len(3, Len(3, Len(3, Len(6, "")))));
  CHECK(refused(Len(2, Len(3, Len(1, Len(1, Len(1, deep) + Len(2, ok_stmt)))))));
  CHECK(ParsePipelineRequestProtobuf(Len(2, Len(3, Len(1, Len(1, Len(2, ok_stmt))))), limits).ok());
}

TEST_CASE("protobuf responses are encoded as the schema says") {
  PipelineResponse response;
  response.baton = "b";
  StmtResult result;
  result.cols = {Col{"x", std::nullopt}};
  result.rows = {{Value(std::int64_t{-1})}};
  result.affected_row_count = 2;
  result.last_insert_rowid = 3;
  response.results.emplace_back(StreamResponse(ExecuteResponse{result}));
  response.results.emplace_back(Error{"m", "C"});
  response.results.emplace_back(StreamResponse(GetAutocommitResponse{false}));
  const std::string stmt_result = Len(1, Len(1, "x")) + Len(2, Len(1, VarintField(2, 1))) +
                                  VarintField(3, 2) + VarintField(4, 6);
  const std::string expected = Len(1, "b") + Len(3, Len(1, Len(2, Len(1, stmt_result)))) +
                               Len(3, Len(2, Len(1, "m") + Len(2, "C"))) +
                               Len(3, Len(1, Len(8, VarintField(1, 0))));
  CHECK(EncodePipelineResponseProtobuf(response) == expected);

  std::string cursor = EncodeCursorHeaderProtobuf(std::string("b"));
  AppendCursorEntryProtobuf(cursor, StepBeginEntry{1, {Col{"x", "INT"}}});
  AppendCursorEntryProtobuf(cursor, RowEntry{{Value(std::string("\xff"))}});
  const std::string begin = Len(1, VarintField(1, 1) + Len(2, Len(1, "x") + Len(2, "INT")));
  const std::string row = Len(4, Len(1, Len(4, "\xEF\xBF\xBD")));  // bad UTF-8 replaced
  CHECK(cursor == Varint(3) + Len(1, "b").substr(0) + Varint(begin.size()) + begin +
                      Varint(row.size()) + row);
}

}  // namespace
}  // namespace via::server::hrana
