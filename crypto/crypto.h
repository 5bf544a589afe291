#pragma once

// Thin RAII wrappers over OpenSSL 3: SHA-256, HMAC-SHA256, Ed25519, random
// bytes and base64. Nothing here holds global state beyond OpenSSL's own
// algorithm cache. Objects are not thread-safe; use one per thread.
//
// Start-up cost matters (every `via` command is a short process): hashing
// uses OpenSSL's low-level SHA-256, random bytes come from getrandom(2), and
// OpenSSL's EVP layer (providers, no openssl.cnf) starts only for Ed25519.

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/bytes.h"

namespace via::crypto {

// Incremental SHA-256. Reusable: Final() resets it for the next message.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Sha256& Update(ByteView data);
  Sha256& Update(std::string_view data) { return Update(ViewOf(data)); }
  Hash256 Final();

  // One-shot digest.
  static Hash256 Digest(ByteView data);
  static Hash256 Digest(std::string_view data) { return Digest(ViewOf(data)); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// SHA-256 of the concatenation of `parts`: the same digest as Sha256 over
// them in turn. Computed with OpenSSL's low-level SHA-256 on the stack, with no
// allocation or EVP dispatch per message (OpenSSL 3.0's EVP path allocates on
// every init), for loops that hash millions of short messages. Thread-safe.
Hash256 Sha256Concat(std::initializer_list<ByteView> parts);

// HMAC-SHA256(key, data) (RFC 2104). Thread-safe.
Hash256 HmacSha256(ByteView key, ByteView data);

// Cryptographically secure random bytes, from the kernel (getrandom(2)).
// Thread-safe.
Bytes RandomBytes(std::size_t n);

// Standard base64 with padding (RFC 4648 section 4).
std::string Base64Encode(ByteView data);
// Strict: rejects bad characters, bad padding and non-canonical trailing bits.
std::optional<Bytes> Base64Decode(std::string_view text);
// The same two without allocating, for loops over many short fields:
// Base64EncodeTo writes Base64EncodedSize(data.size()) characters to `out`;
// Base64DecodeTo accepts exactly what Base64Decode accepts, writes the bytes
// to `out` and returns their count (nullopt also when `out` is too small).
constexpr std::size_t Base64EncodedSize(std::size_t bytes) { return (bytes + 2) / 3 * 4; }
void Base64EncodeTo(ByteView data, char* out);
std::optional<std::size_t> Base64DecodeTo(std::string_view text, std::span<std::uint8_t> out);
// URL-safe base64 without padding (RFC 4648 section 5), as JWTs use.
std::string Base64UrlEncode(ByteView data);
std::optional<Bytes> Base64UrlDecode(std::string_view text);

// Constant-time comparison of equal-length byte strings.
bool ConstantTimeEqual(ByteView a, ByteView b);

inline constexpr std::size_t kEd25519PublicKeySize = 32;
inline constexpr std::size_t kEd25519SignatureSize = 64;
using Ed25519PublicKey = std::array<std::uint8_t, kEd25519PublicKeySize>;
using Ed25519Signature = std::array<std::uint8_t, kEd25519SignatureSize>;

// An Ed25519 signing key (RFC 8032). Non-copyable; owns the OpenSSL key.
class Ed25519PrivateKey {
 public:
  ~Ed25519PrivateKey();
  Ed25519PrivateKey(const Ed25519PrivateKey&) = delete;
  Ed25519PrivateKey& operator=(const Ed25519PrivateKey&) = delete;

  // Each returns null when no key can be made (the callers know what the
  // input was and say so in their own terms): Generate only when OpenSSL
  // fails.
  static std::unique_ptr<Ed25519PrivateKey> Generate();
  // From the 32-byte private seed; null for any other size.
  static std::unique_ptr<Ed25519PrivateKey> FromSeed(ByteView seed);
  // From a PKCS#8 PEM file body, as written by ToPem(); null unless it holds
  // an unencrypted Ed25519 private key.
  static std::unique_ptr<Ed25519PrivateKey> FromPem(std::string_view pem);

  Bytes Seed() const;
  std::string ToPem() const;
  const Ed25519PublicKey& PublicKey() const { return public_key_; }
  Ed25519Signature Sign(ByteView message) const;

 private:
  struct Key;
  explicit Ed25519PrivateKey(std::unique_ptr<Key> key);
  std::unique_ptr<Key> key_;
  Ed25519PublicKey public_key_{};
};

// True when `signature` is a valid Ed25519 signature of `message` by `public_key`.
// Builds an OpenSSL key object for this one call; to check many signatures by
// one key, use Ed25519Verifier.
bool Ed25519Verify(ByteView public_key, ByteView message, ByteView signature);

// An Ed25519 public key parsed once into an OpenSSL key object, for checking
// many signatures by the same key (a log's checkpoints). Non-copyable; not
// thread-safe (use one per thread).
class Ed25519Verifier {
 public:
  ~Ed25519Verifier();
  Ed25519Verifier(const Ed25519Verifier&) = delete;
  Ed25519Verifier& operator=(const Ed25519Verifier&) = delete;

  // Null when `public_key` is not 32 bytes or OpenSSL refuses it.
  static std::unique_ptr<Ed25519Verifier> Create(ByteView public_key);

  // The same answer as Ed25519Verify(public key, message, signature).
  bool Verify(ByteView message, ByteView signature) const;

 private:
  struct Key;
  explicit Ed25519Verifier(std::unique_ptr<Key> key);
  std::unique_ptr<Key> key_;
};

}  // namespace via::crypto
