#include "providers/postgres/scram.h"

#include <openssl/evp.h>

#include <array>
#include <cstdlib>

#include "crypto/crypto.h"

namespace via::providers::postgres {

std::string ScramVerifier(const std::string& password, ByteView salt, int iterations) {
  std::array<std::uint8_t, 32> salted{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(salted.size()), salted.data()) != 1) {
    std::abort();  // only on allocation failure inside OpenSSL
  }
  const ByteView key(salted.data(), salted.size());
  const Hash256 client_key = crypto::HmacSha256(key, AsBytes("Client Key"));
  const Hash256 stored_key = crypto::Sha256Concat({ByteView(client_key.data(), client_key.size())});
  const Hash256 server_key = crypto::HmacSha256(key, AsBytes("Server Key"));
  return "SCRAM-SHA-256$" + std::to_string(iterations) + ":" + crypto::Base64Encode(salt) + "$" +
         crypto::Base64Encode(ByteView(stored_key.data(), stored_key.size())) + ":" +
         crypto::Base64Encode(ByteView(server_key.data(), server_key.size()));
}

std::string ScramVerifier(const std::string& password) {
  const Bytes salt = crypto::RandomBytes(16);
  return ScramVerifier(password, ByteView(salt.data(), salt.size()));
}

}  // namespace via::providers::postgres
