#include <catch2/catch.hpp>

#include "eventstore/record_codec.h"

using namespace via;

namespace {

Record SampleRecord() {
  Record r;
  r.seq = 7;
  r.prev_hash.fill(0xab);
  r.recorded_at_ms = 1732476000123;
  r.actor = "alice";
  r.command_id = "cmd-1";
  r.event = AddonCreated{"ad_01", "app-db", "sqlite", "api", "DATABASE"};
  return r;
}

}  // namespace

TEST_CASE("record codec round-trips every field", "[eventstore]") {
  Record r = SampleRecord();
  Bytes bytes = eventstore::EncodeRecord(r);
  auto decoded = eventstore::DecodeRecord(bytes);
  REQUIRE(decoded.ok());
  CHECK(*decoded == r);
}

TEST_CASE("record codec encodes the same record to the same bytes", "[eventstore]") {
  CHECK(eventstore::EncodeRecord(SampleRecord()) == eventstore::EncodeRecord(SampleRecord()));
}

TEST_CASE("record decoder rejects a trailing garbage word", "[eventstore]") {
  Bytes bytes = eventstore::EncodeRecord(SampleRecord());
  bytes.insert(bytes.end(), 8, 0);
  auto decoded = eventstore::DecodeRecord(bytes);
  REQUIRE_FALSE(decoded.ok());
  CHECK(decoded.status().code() == StatusCode::kDataLoss);
}

TEST_CASE("record decoder rejects a length that is not whole words", "[eventstore]") {
  Bytes bytes = eventstore::EncodeRecord(SampleRecord());
  bytes.pop_back();
  auto decoded = eventstore::DecodeRecord(bytes);
  REQUIRE_FALSE(decoded.ok());
  CHECK(decoded.status().reason() == "record_malformed");
}
