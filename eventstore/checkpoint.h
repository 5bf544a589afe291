#pragma once

// Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed-note form,
// Ed25519 (signature type 0x01). See docs/event-log-format.md.
//
//   <origin>\n<size>\n<base64 root>\n        (the body; extension lines allowed)
//   \n
//   — <origin> <base64(key id || signature)>\n
//
// key id = SHA-256(origin || 0x0A || 0x01 || pubkey)[:4]
// verifier key = <origin>+<hex key id>+<base64(0x01 || pubkey)>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/crypto.h"
#include "domain/bytes.h"
#include "domain/status.h"

namespace via::eventstore {

// A parsed verifier key. A value.
struct VerifierKey {
  std::string name;                 // the key name (= the log origin)
  std::array<std::uint8_t, 4> key_id{};
  crypto::Ed25519PublicKey public_key{};

  // Errors: InvalidArgument("bad_verifier_key") for a malformed string, an
  // unknown signature type, or a key id that does not match name and key.
  static Result<VerifierKey> Parse(std::string_view text);
  static VerifierKey For(std::string_view name, const crypto::Ed25519PublicKey& public_key);
  std::string ToString() const;
  bool operator==(const VerifierKey&) const = default;
};

// A checkpoint body. A value.
struct Checkpoint {
  std::string origin;
  std::uint64_t size = 0;
  Hash256 root{};
  bool operator==(const Checkpoint&) const = default;
};

// Signs `checkpoint` with `key` under the checkpoint's origin as key name and
// returns the whole note text. The origin must be a valid key name (non-empty,
// no spaces, '+' or newlines); Via's origins ("via.local/<log id>") are.
std::string SignCheckpoint(const Checkpoint& checkpoint, const crypto::Ed25519PrivateKey& key);

// Parses a note and verifies its signature with `key`. Errors:
// DataLoss("checkpoint_malformed") when the text is not a well-formed note or
// checkpoint body (bad size, bad base64, root not 32 bytes, missing blank line,
// no signature line); DataLoss("checkpoint_bad_signature") when no signature
// line carries `key`'s name and key id with a valid signature over the body, or
// the origin differs from the key name. Never throws; total on any input.
Result<Checkpoint> OpenCheckpoint(std::string_view note, const VerifierKey& key);

// Parses the body without checking any signature (for display and for fuzzing).
Result<Checkpoint> ParseCheckpointUnverified(std::string_view note);

}  // namespace via::eventstore
