#pragma once

// A zero-copy view of a record's envelope, for loops that check millions of
// records and need only their envelope (`audit verify`).
//
// ViewCanonicalRecord accepts bytes only when they are exactly the canonical
// encoding that EncodeRecord writes for a record of an event type this build
// knows: one segment, every object where a depth-first canonical writer puts
// it, truncated data sections, every pointer field set (Text, Data and lists
// are never null in what EncodeRecord writes), no bits set that the schema does
// not use, no NUL inside a text, nothing after the last object. Whatever it
// accepts, DecodeRecord accepts too, with the same envelope. It may refuse
// bytes that DecodeRecord accepts (an encoding EncodeRecord never writes, a
// record of a newer schema), so a caller that gets nullopt falls back to
// DecodeRecord, which decides and names the error. No allocation; thread-safe.

#include <cstdint>
#include <optional>
#include <string_view>

#include "domain/bytes.h"

namespace via::eventstore {

// The envelope of a record. Borrows the bytes it was read from.
struct RecordView {
  std::uint64_t seq = 0;
  std::int64_t recorded_at_ms = 0;
  ByteView prev_hash;  // 32 bytes
  std::string_view actor;
  std::string_view command_id;
  std::uint16_t event_type = 0;  // the union discriminant (docs/event-log-format.md 3.2)
};

std::optional<RecordView> ViewCanonicalRecord(ByteView bytes);

}  // namespace via::eventstore
