#pragma once

// Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed-note form,
// Ed25519 (signature type 0x01). See docs/event-log-format.md section 8.
//
//   <origin>\n<size>\n<base64 root>\n        (the body; extension lines allowed)
//   [prev-note-sha256 <base64 link>\n]       (format 3: the link, first extension line)
//   \n
//   — <origin> <base64(key id || signature)>\n
//
// key id = SHA-256(origin || 0x0A || 0x01 || pubkey)[:4]
// verifier key = <origin>+<hex key id>+<base64(0x01 || pubkey)>
// link = SHA-256(the whole note stored before this one), 32 zero bytes for the first

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
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

// The extension line that links a format-3 note to the note before it.
inline constexpr std::string_view kPreviousNoteLinePrefix = "prev-note-sha256 ";

// A checkpoint body. A value.
struct Checkpoint {
  std::string origin;
  std::uint64_t size = 0;
  Hash256 root{};
  // The link of a format-3 note (its first extension line): SHA-256 of the
  // note the log stored before this one, all zeros for the log's first note.
  // nullopt when the note has no such line (format 2, notes of other logs).
  std::optional<Hash256> previous_note;
  bool operator==(const Checkpoint&) const = default;
};

// SHA-256 of a whole note (body, blank line and signature lines, as stored),
// the value the next note's link carries.
Hash256 NoteHash(std::string_view note);

// Signs `checkpoint` with `key` under the checkpoint's origin as key name and
// returns the whole note text, with the link line when `previous_note` is
// set. The origin must be a valid key name (non-empty, no spaces, '+' or
// newlines); Via's origins ("via.local/<log id>") are.
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

// OpenCheckpoint for many notes of one key: the Ed25519 key is parsed once.
// Movable, non-copyable; not thread-safe (use one per thread).
class CheckpointVerifier {
 public:
  explicit CheckpointVerifier(const VerifierKey& key);
  ~CheckpointVerifier();
  CheckpointVerifier(CheckpointVerifier&&) noexcept;
  CheckpointVerifier& operator=(CheckpointVerifier&&) noexcept;

  const VerifierKey& key() const { return key_; }

  // Exactly OpenCheckpoint(note, key()).
  Result<Checkpoint> Open(std::string_view note) const;

  // Everything Open checks but the Ed25519 signature: the note grammar, the
  // body and its origin being the key name. For a note whose every byte is
  // bound into a note that Open accepted (a format-3 log's chain of links,
  // docs/event-log-format.md section 9); nothing else may trust its result.
  // Errors: DataLoss "checkpoint_malformed", or "checkpoint_bad_signature"
  // for another origin, as Open.
  Result<Checkpoint> OpenWithoutSignature(std::string_view note) const;

  // True when `note` is, byte for byte, a note that SignCheckpoint writes for
  // (key name, size, root, link): its body, a blank line and one signature
  // line under the key name with 68 bytes (key id and signature) of canonical
  // base64. The signature is not checked. Whatever it accepts,
  // OpenWithoutSignature accepts and opens to exactly that checkpoint; it
  // may refuse notes that OpenWithoutSignature opens (other extension lines,
  // several signature lines), so a caller that gets false asks it. No
  // allocation: for loops that check millions of notes (VerifyLog).
  bool IsNoteFor(std::string_view note, std::uint64_t size, const Hash256& root,
                 const std::optional<Hash256>& previous_note) const;

 private:
  VerifierKey key_;
  bool name_is_valid_ = false;  // key_.name is a valid key name (Parse checks it, For does not)
  std::unique_ptr<crypto::Ed25519Verifier> verifier_;  // null if OpenSSL refused the key
};

}  // namespace via::eventstore
