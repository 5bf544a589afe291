#pragma once

// A SCRAM-SHA-256 password verifier as PostgreSQL stores it (RFC 5802 and
// RFC 7677): `ALTER ROLE … PASSWORD '<verifier>'` with a verifier sends the
// server no plain-text password, so none can reach its log or pg_authid.
//
//   SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, iterations, 32)
//   StoredKey      = SHA-256(HMAC(SaltedPassword, "Client Key"))
//   ServerKey      = HMAC(SaltedPassword, "Server Key")
//   verifier       = SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
//
// The password must already be in SASLprep normal form (PostgreSQL applies
// SASLprep to what a client sends): our role passwords are base64url ASCII,
// which it leaves alone.

#include <cstdint>
#include <string>

#include "domain/bytes.h"

namespace via::providers::postgres {

inline constexpr int kScramIterations = 4096;

// With a given salt (tests compare against known vectors).
std::string ScramVerifier(const std::string& password, ByteView salt, int iterations = kScramIterations);
// With a fresh random 16-byte salt.
std::string ScramVerifier(const std::string& password);

}  // namespace via::providers::postgres
