// Fuzzes the canonical record decoder: any input either decodes to a record
// that re-encodes to exactly the same bytes, or is rejected with DataLoss.
#include <cstdint>
#include <cstdlib>

#include "eventstore/record_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  via::ByteView input(data, size);
  auto decoded = via::eventstore::DecodeRecord(input);
  if (decoded.ok()) {
    via::Bytes again = via::eventstore::EncodeRecord(*decoded);
    if (again.size() != size || !std::equal(again.begin(), again.end(), data)) std::abort();
  } else if (decoded.status().code() != via::StatusCode::kDataLoss) {
    std::abort();
  }
  return 0;
}
