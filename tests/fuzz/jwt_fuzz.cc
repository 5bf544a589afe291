// Fuzzes workload JWT verification: any input is either accepted (only when it
// carries a valid signature, which random bytes never do) or refused with
// Unauthenticated and a known reason; never a crash, a hang or another code.
// Inputs that start with '{' are used as a claims object, signed with the key
// and verified, so the claim checks past the signature get exercised too.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "crypto/crypto.h"
#include "domain/bytes.h"
#include "server/jwt.h"

namespace {

const via::crypto::Ed25519PrivateKey& Key() {
  static auto key = via::crypto::Ed25519PrivateKey::FromSeed(via::Bytes(32, 7));
  return *key;
}

void Check(const via::Result<via::server::jwt::Claims>& result) {
  static const std::set<std::string> kReasons = {
      "malformed_token", "unsupported_algorithm", "unknown_key",    "bad_signature",
      "token_expired",   "token_not_yet_valid",   "wrong_audience", "wrong_subject"};
  if (result.ok()) return;
  if (result.status().code() != via::StatusCode::kUnauthenticated) std::abort();
  if (!kReasons.count(result.status().reason())) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  via::server::jwt::VerifyOptions options;
  options.now_s = 1'800'000'000;
  auto result = via::server::jwt::Verify(input, Key().PublicKey(), options);
  Check(result);
  if (result.ok()) std::abort();  // unsigned random bytes must never verify
  if (!input.empty() && input[0] == '{') {
    std::string header = R"({"alg":"EdDSA","typ":"JWT","kid":")" +
                         via::server::jwt::KeyId(Key().PublicKey()) + R"("})";
    std::string signing_input = via::crypto::Base64UrlEncode(via::AsBytes(header)) + "." +
                                via::crypto::Base64UrlEncode(via::AsBytes(input));
    auto sig = Key().Sign(via::AsBytes(signing_input));
    Check(via::server::jwt::Verify(signing_input + "." + via::crypto::Base64UrlEncode(sig),
                                   Key().PublicKey(), options));
  }
  return 0;
}
