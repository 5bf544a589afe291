#pragma once

// UTF-8 validation (RFC 3629): overlong forms, surrogates and code points
// above U+10FFFF are invalid.

#include <cstddef>
#include <string_view>

namespace via::server {

// Length of the valid UTF-8 sequence that starts at s[i] (1 to 4), or 0 when
// the bytes there are not valid UTF-8. `i` must be < s.size().
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i);

// True when all of `s` is valid UTF-8.
bool IsValidUtf8(std::string_view s);

}  // namespace via::server
