// The fast envelope reader that `audit verify` uses: it must accept what the
// encoder writes and never accept what DecodeRecord refuses.

#include "eventstore/record_view.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <utility>

#include "eventstore/record_codec.h"

using namespace via;
using namespace via::eventstore;

namespace {

Record Envelope(Event event) {
  Record r;
  r.seq = 42;
  r.prev_hash.fill(0x5a);
  r.recorded_at_ms = 1732476000123;
  r.actor = "alice";
  r.command_id = "cmd-1";
  r.event = std::move(event);
  return r;
}

// Every event type with all fields at their defaults (empty, zero, false).
template <std::size_t... I>
std::vector<Event> DefaultEvents(std::index_sequence<I...>) {
  return {Event(std::in_place_index<I>)...};
}

// Every event type with every field set, plus edge values.
std::vector<Event> SampleEvents() {
  std::vector<Event> events = DefaultEvents(std::make_index_sequence<std::variant_size_v<Event>>());
  events.push_back(LogInitialized{"lg_1", "via.local/lg_1", "k+1234abcd+AQ==", "w+1234abcd+AQ=="});
  events.push_back(AddonCreated{"ad_01", "app-db", "sqlite", "api", "DATABASE"});
  events.push_back(StorageProvisioned{"ad_01"});
  events.push_back(ProvisioningFailed{"ad_01", "disk full", true});
  events.push_back(AddonRenamed{"ad_01", "db", "db#failed#ad_01"});
  events.push_back(BindingAttached{"api", "DATABASE", "ad_01"});
  events.push_back(BindingDetached{"api", "DATABASE", "ad_01"});
  events.push_back(BindingSnapshotted{"api", "v1", {}});
  events.push_back(BindingSnapshotted{"api", "v2", {{"DATABASE", "ad_01"}, {"CACHE", ""}}});
  events.push_back(GenerationRotated{"ad_01", 7, Bytes(32, 0xee), Bytes(16, 0x01)});
  events.push_back(GenerationRotated{"ad_01", 0xffffffff, Bytes(), Bytes(3, 0)});
  events.push_back(GenerationRevoked{"ad_01", 3});
  events.push_back(SnapshotRequested{"ad_01", "sn_1", "before upgrade"});
  events.push_back(SnapshotTaken{"ad_01", "sn_1", Bytes(32, 0x11), 4096, 1});
  events.push_back(SnapshotTaken{"ad_01", "sn_2", Bytes(32, 0x11), 0, 9});
  events.push_back(SnapshotTaken{"ad_01", "sn_3", Bytes(32, 0x11), 9, 0});
  events.push_back(SnapshotFailed{"ad_01", "sn_1", "io"});
  events.push_back(RestoreRequested{"ad_01", "sn_1", "sn_0"});
  events.push_back(SnapshotRestored{"ad_01", "sn_1", "sn_0"});
  events.push_back(RestoreFailed{"ad_01", "sn_1", "bad file"});
  events.push_back(StorageRepaired{"ad_01", "restored_from_snapshot", "sn_1", "moved aside"});
  events.push_back(AddonDestroyed{"ad_01", "db#destroyed#ad_01"});
  events.push_back(WorkloadTokenIssued{"api", "v1", "tk_1", -5});
  events.push_back(GenerationDelivered{"ad_01", 2, "api", "v1"});
  events.push_back(RepairRequested{"ad_01", "recreated_empty"});
  return events;
}

std::vector<Record> SampleRecords() {
  std::vector<Record> records;
  for (Event& e : SampleEvents()) records.push_back(Envelope(std::move(e)));
  // Envelope edge values: empty texts, zero time, a text of exactly 8 bytes
  // with its NUL spilling into a new word, a long text.
  Record r = Envelope(StorageProvisioned{"x"});
  r.actor = "";
  r.command_id = "";
  r.recorded_at_ms = 0;
  records.push_back(r);
  r.actor = "12345678";
  r.command_id = std::string(1000, 'c');
  r.recorded_at_ms = -1;
  records.push_back(r);
  r.seq = 1;
  r.prev_hash.fill(0);
  r.event = LogInitialized{};
  r.recorded_at_ms = 0;
  records.push_back(r);
  return records;
}

void CheckSameEnvelope(const RecordView& view, const Record& record) {
  CHECK(view.seq == record.seq);
  CHECK(view.recorded_at_ms == record.recorded_at_ms);
  CHECK(std::equal(view.prev_hash.begin(), view.prev_hash.end(), record.prev_hash.begin(),
                   record.prev_hash.end()));
  CHECK(view.actor == record.actor);
  CHECK(view.command_id == record.command_id);
}

}  // namespace

TEST_CASE("the record view accepts every record the encoder writes", "[eventstore]") {
  for (const Record& record : SampleRecords()) {
    Bytes bytes = EncodeRecord(record);
    auto view = ViewCanonicalRecord(bytes);
    INFO("event index " << record.event.index() << ", " << bytes.size() << " bytes");
    REQUIRE(view.has_value());
    CheckSameEnvelope(*view, record);
  }
}

TEST_CASE("the record view reports the event union's discriminant", "[eventstore]") {
  // docs/event-log-format.md 3.2.
  CHECK(ViewCanonicalRecord(EncodeRecord(Envelope(LogInitialized{})))->event_type == 0);
  CHECK(ViewCanonicalRecord(EncodeRecord(Envelope(AddonCreated{})))->event_type == 1);
  CHECK(ViewCanonicalRecord(EncodeRecord(Envelope(BindingSnapshotted{})))->event_type == 7);
  CHECK(ViewCanonicalRecord(EncodeRecord(Envelope(RepairRequested{})))->event_type == 20);
}

TEST_CASE("the record view refuses what the decoder refuses", "[eventstore]") {
  Bytes good = EncodeRecord(Envelope(AddonCreated{"ad_01", "app-db", "sqlite", "api", "DB"}));
  SECTION("a trailing word") {
    Bytes bytes = good;
    bytes.insert(bytes.end(), 8, 0);
    CHECK_FALSE(ViewCanonicalRecord(bytes));
    CHECK_FALSE(DecodeRecord(bytes).ok());
  }
  SECTION("a length that is not whole words") {
    Bytes bytes = good;
    bytes.pop_back();
    CHECK_FALSE(ViewCanonicalRecord(bytes));
  }
  SECTION("no bytes") { CHECK_FALSE(ViewCanonicalRecord(ByteView())); }
  SECTION("a text without its NUL") {
    Bytes bytes = good;
    // The actor "alice" and its NUL sit in one word; replace the NUL.
    auto at = std::search(bytes.begin(), bytes.end(), std::begin("alice"), std::end("alice"));
    REQUIRE(at != bytes.end());
    at[5] = 'x';
    CHECK_FALSE(ViewCanonicalRecord(bytes));
    CHECK_FALSE(DecodeRecord(bytes).ok());
  }
  SECTION("a NUL inside a text") {
    Bytes bytes = good;
    auto at = std::search(bytes.begin(), bytes.end(), std::begin("alice"), std::end("alice"));
    REQUIRE(at != bytes.end());
    at[2] = '\0';  // "al\0ce": still canonical, but format section 4.5 forbids it
    CHECK_FALSE(ViewCanonicalRecord(bytes));
    auto decoded = DecodeRecord(bytes);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.status().reason() == "record_malformed");
  }
  SECTION("an unknown event type") {
    Bytes bytes = good;
    bytes[8 * 3] = 200;  // data word 2 of the record: the discriminant
    CHECK_FALSE(ViewCanonicalRecord(bytes));
    CHECK_FALSE(DecodeRecord(bytes).ok());
  }
}

TEST_CASE("whatever mutated bytes the record view accepts, the decoder accepts alike",
          "[eventstore]") {
  std::mt19937_64 rng(20261124);
  std::vector<Bytes> originals;
  for (const Record& record : SampleRecords()) originals.push_back(EncodeRecord(record));
  int accepted = 0;
  int refused = 0;
  for (int round = 0; round < 1000000; ++round) {
    Bytes bytes = originals[rng() % originals.size()];
    const int mutations = 1 + static_cast<int>(rng() % 3);
    for (int m = 0; m < mutations; ++m) {
      const std::size_t at = rng() % bytes.size();
      switch (rng() % 5) {
        case 0:  // flip one bit
          bytes[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
          break;
        case 1:  // a random byte
          bytes[at] = static_cast<std::uint8_t>(rng());
          break;
        case 2:  // a small change to a pointer's offset or count
          bytes[at] = static_cast<std::uint8_t>(bytes[at] + (rng() % 2 ? 4 : 8));
          break;
        case 3:  // drop or add a word at the end
          if (rng() % 2 && bytes.size() > 8) {
            bytes.resize(bytes.size() - 8);
          } else {
            bytes.insert(bytes.end(), 8, static_cast<std::uint8_t>(rng() % 2));
          }
          break;
        default: {  // swap two words
          const std::size_t words = bytes.size() / 8;
          const std::size_t a = rng() % words;
          const std::size_t b = rng() % words;
          std::swap_ranges(bytes.begin() + 8 * a, bytes.begin() + 8 * a + 8, bytes.begin() + 8 * b);
          break;
        }
      }
    }
    auto view = ViewCanonicalRecord(bytes);
    if (!view) {
      ++refused;
      continue;
    }
    ++accepted;
    auto decoded = DecodeRecord(bytes);
    INFO("round " << round);
    REQUIRE(decoded.ok());
    CheckSameEnvelope(*view, *decoded);
    CHECK(EncodeRecord(*decoded) == bytes);
  }
  // Both outcomes happen: text and number bytes change freely, pointers do not.
  CHECK(accepted > 1000);
  CHECK(refused > 1000);
}
