#pragma once

// The canonical record codec. EncodeRecord returns the bytes that are stored,
// hashed and signed: capnp::canonicalize output of a schema::Record (one
// segment, no framing). DecodeRecord accepts exactly those bytes and nothing
// else: malformed, non-canonical or unknown-event bytes are DataLoss.
// Thread-safe (no shared state).

#include "domain/bytes.h"
#include "domain/events.h"
#include "domain/status.h"

namespace via::eventstore {

// Largest record accepted by the decoder (and produced by the encoder).
inline constexpr std::size_t kMaxRecordBytes = 1 << 20;

Bytes EncodeRecord(const Record& record);

// Errors: DataLoss("record_malformed" | "record_not_canonical" | "record_unknown_event").
Result<Record> DecodeRecord(ByteView bytes);

}  // namespace via::eventstore
