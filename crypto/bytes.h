#pragma once

// Byte types of the crypto layer. DESIGN.md §2 lets crypto/ use OpenSSL only,
// so it names its own types; they are the same standard types as domain's
// (via::Bytes, via::ByteView, via::Hash256), so values pass between the layers
// without conversion.

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace via::crypto {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;
using Hash256 = std::array<std::uint8_t, 32>;

// The bytes of a string, without a copy.
inline ByteView ViewOf(std::string_view text) {
  return ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

}  // namespace via::crypto
