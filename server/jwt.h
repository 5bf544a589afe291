#pragma once

// Workload identity tokens (DESIGN.md section 8): compact JWS (RFC 7515) JWTs
// (RFC 7519) signed with Ed25519 under the JOSE name "EdDSA" (RFC 8037), and
// the JWKS document (RFC 7517) that publishes the verifying key, so any JWT
// library can check a token.
//
// Token shape:
//   header  {"alg":"EdDSA","typ":"JWT","kid":<RFC 7638 thumbprint of the key>}
//   claims  {"iss":"via","sub":"spiffe://<trust domain>/app/<app>/release/<release>",
//            "aud":"via-config","iat":..,"nbf":..,"exp":..,"jti":<token id>}
//
// Verify() is strict and returns Unauthenticated with one of these stable
// reasons (never throws, for any input):
//   malformed_token        not three base64url parts, bad JSON, missing or mistyped claim,
//                          token longer than VerifyOptions::max_token_bytes
//   unsupported_algorithm  header alg is not "EdDSA" (e.g. "none", "HS256"), or crit is present
//   unknown_key            header kid is not the published key's id
//   bad_signature          the Ed25519 signature does not verify
//   token_expired          now >= exp + exp_leeway
//   token_not_yet_valid    nbf or iat later than now + leeway
//   wrong_audience         aud is not (or does not contain) the expected audience
//   wrong_subject          sub is not a SPIFFE id of an app release in the trust domain
// The signature is checked before any claim is interpreted.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/crypto.h"
#include "domain/status.h"

namespace via::server::jwt {

inline constexpr std::string_view kAudience = "via-config";
inline constexpr std::string_view kIssuer = "via";
inline constexpr std::string_view kDefaultTrustDomain = "via.local";

struct Claims {
  std::string app;
  std::string release;
  std::string token_id;  // jti
  std::int64_t issued_at_s = 0;
  std::int64_t not_before_s = 0;
  std::int64_t expires_at_s = 0;
  std::string audience = std::string(kAudience);
  std::string trust_domain = std::string(kDefaultTrustDomain);
  bool operator==(const Claims&) const = default;
};

struct VerifyOptions {
  std::int64_t now_s = 0;
  std::string audience = std::string(kAudience);
  std::string trust_domain = std::string(kDefaultTrustDomain);
  std::int64_t leeway_s = 60;     // clock skew allowed for iat and nbf
  std::int64_t exp_leeway_s = 0;  // grace after exp
  std::size_t max_token_bytes = 8192;
};

// "spiffe://<trust domain>/app/<app>/release/<release>".
std::string SpiffeId(std::string_view trust_domain, std::string_view app,
                     std::string_view release);

// RFC 7638 JWK thumbprint (base64url SHA-256) of an Ed25519 public key.
std::string KeyId(const crypto::Ed25519PublicKey& public_key);

// The signed compact token. Claims are written as given (no validation).
std::string Sign(const crypto::Ed25519PrivateKey& key, const Claims& claims);

// Verifies `token` against `public_key` (whose kid is KeyId(public_key)).
// Returns the claims, or Unauthenticated with a reason listed above.
Result<Claims> Verify(std::string_view token, const crypto::Ed25519PublicKey& public_key,
                      const VerifyOptions& options);

// {"keys":[{"kty":"OKP","crv":"Ed25519","x":..,"kid":..,"alg":"EdDSA","use":"sig"}]}
std::string Jwks(const crypto::Ed25519PublicKey& public_key);

}  // namespace via::server::jwt
