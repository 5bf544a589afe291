#pragma once

// Opaque, unique, URL-safe ids (DESIGN.md section 4): a prefix ("ad_", "sn_",
// "lg_", ...) and a ULID (48-bit millisecond time, 80 random bits, Crockford
// base32), so ids sort by creation time. Time and randomness are passed in.

#include <array>
#include <cstdint>
#include <functional>
#include <string>

namespace via {

std::string MakeUlid(std::int64_t unix_ms, const std::array<std::uint8_t, 10>& randomness);

// Source of time (Unix milliseconds) and of fresh ids; injected so that tests
// and replays are deterministic.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t NowMs() = 0;
};

class IdGenerator {
 public:
  virtual ~IdGenerator() = default;
  // A new id "<prefix><ULID>", never returned before.
  virtual std::string NewId(const std::string& prefix) = 0;
};

}  // namespace via
