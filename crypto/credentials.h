#pragma once

// Descriptor credentials (DESIGN.md section 8) are derived, never stored:
//   mac = HMAC-SHA256(credentials.key, "via-credential-v1" 0x00 addon_id 0x00
//                     generation (4 bytes, big-endian) salt)
// The log records only the salt and SHA-256(mac) as the fingerprint.

#include <cstdint>
#include <string>

#include "crypto/bytes.h"

namespace via::crypto {

Hash256 DeriveCredential(ByteView key, const std::string& addon_id, std::uint32_t generation,
                         ByteView salt);

// SHA-256 of a derived credential: what GenerationRotated records.
Hash256 CredentialFingerprint(const Hash256& credential);

}  // namespace via::crypto
