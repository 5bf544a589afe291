#include "domain/ids.h"

namespace via {

std::string MakeUlid(std::int64_t unix_ms, const std::array<std::uint8_t, 10>& randomness) {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  // 128 bits: 48 of time then 80 of randomness, written as 26 base32 digits
  // (the first digit holds only 3 bits).
  std::array<std::uint8_t, 16> bits{};
  std::uint64_t t = static_cast<std::uint64_t>(unix_ms) & 0xffffffffffffULL;
  for (int i = 0; i < 6; ++i) bits[i] = static_cast<std::uint8_t>(t >> (8 * (5 - i)));
  for (int i = 0; i < 10; ++i) bits[6 + i] = randomness[i];
  std::string out(26, '0');
  for (int digit = 0; digit < 26; ++digit) {
    // Digit d covers bits [128 - 5*(26-d), 128 - 5*(25-d)) counted from the top,
    // with 2 phantom leading zero bits (130 = 26 * 5).
    int value = 0;
    for (int b = 0; b < 5; ++b) {
      int bit_index = digit * 5 + b - 2;  // index into the 128 bits, MSB first
      int bit = 0;
      if (bit_index >= 0) bit = (bits[bit_index / 8] >> (7 - bit_index % 8)) & 1;
      value = (value << 1) | bit;
    }
    out[digit] = kAlphabet[value];
  }
  return out;
}

}  // namespace via
