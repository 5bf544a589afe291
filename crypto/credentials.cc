#include "crypto/credentials.h"

#include "crypto/crypto.h"

namespace via::crypto {

Hash256 DeriveCredential(ByteView key, const std::string& addon_id, std::uint32_t generation,
                         ByteView salt) {
  constexpr std::string_view kLabel = "via-credential-v1";
  Bytes message(kLabel.begin(), kLabel.end());
  message.push_back(0);
  message.insert(message.end(), addon_id.begin(), addon_id.end());
  message.push_back(0);
  for (int shift = 24; shift >= 0; shift -= 8) {
    message.push_back(static_cast<std::uint8_t>(generation >> shift));
  }
  message.insert(message.end(), salt.begin(), salt.end());
  return HmacSha256(key, message);
}

Hash256 CredentialFingerprint(const Hash256& credential) { return Sha256::Digest(credential); }

}  // namespace via::crypto
