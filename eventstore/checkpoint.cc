#include "eventstore/checkpoint.h"

// Invariants kept here:
//   - SignCheckpoint writes exactly one note form per checkpoint: the three
//     body lines (four with a link), a blank line and one Ed25519 signature
//     line whose key name is the origin.
//   - The parsers accept only that grammar (C2SP signed-note and
//     tlog-checkpoint), read at most kMaxNoteBytes and kMaxSignatureLines,
//     and never throw: every rejection is a DataLoss value.
//   - No checkpoint text is returned by OpenCheckpoint or
//     CheckpointVerifier::Open unless a signature by the given key over the
//     exact body bytes verifies; OpenWithoutSignature says in its name that
//     it checks none.
//   - A fourth body line that starts with kPreviousNoteLinePrefix is the link
//     and must hold exactly 32 bytes of canonical base64; other extension
//     lines are opaque.

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

namespace via::eventstore {
namespace {

// Bounds on untrusted notes. The signed-note spec asks verifiers to accept at
// least 16 signatures; golang.org/x/mod/sumdb/note accepts up to 100.
constexpr std::size_t kMaxNoteBytes = 1 << 20;
constexpr std::size_t kMaxSignatureLines = 100;

constexpr std::uint8_t kSignatureTypeEd25519 = 0x01;
// U+2014 EM DASH then U+0020 SPACE, which open every signature line.
constexpr std::string_view kSignaturePrefix = "\xE2\x80\x94 ";

Status Malformed(std::string message) {
  return DataLoss("checkpoint_malformed", "malformed checkpoint: " + std::move(message));
}
Status BadSignature(std::string message) {
  return DataLoss("checkpoint_bad_signature", "checkpoint signature: " + std::move(message));
}

// Decodes the UTF-8 sequence at text[i]. Strict (RFC 3629): no overlong forms,
// no surrogates, nothing above U+10FFFF. Returns the code point and advances
// `i`, or nullopt for an invalid sequence.
std::optional<char32_t> NextCodePoint(std::string_view text, std::size_t& i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  // Sequence length, payload bits of the lead byte, smallest code point that
  // needs this length.
  std::size_t len = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
    min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (text.size() - i < len) return std::nullopt;
  for (std::size_t k = 1; k < len; ++k) {
    unsigned char b = byte(i + k);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  i += len;
  return cp;
}

// Signed notes must be valid UTF-8 with no control characters but newline.
bool IsValidNoteText(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    auto cp = NextCodePoint(text, i);
    if (!cp || (*cp < 0x20 && *cp != '\n')) return false;
  }
  return true;
}

// Unicode White_Space (what Go's unicode.IsSpace reports).
bool IsUnicodeSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Key names are non-empty UTF-8 with no control characters, Unicode spaces or '+'.
bool IsValidKeyName(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size();) {
    auto cp = NextCodePoint(name, i);
    if (!cp || *cp < 0x20 || *cp == '+' || IsUnicodeSpace(*cp)) return false;
  }
  return true;
}

std::array<std::uint8_t, 4> KeyIdFor(std::string_view name, const crypto::Ed25519PublicKey& key) {
  crypto::Sha256 sha;
  const std::uint8_t separator[2] = {'\n', kSignatureTypeEd25519};
  sha.Update(name).Update(ByteView(separator)).Update(ByteView(key));
  Hash256 digest = sha.Final();
  return {digest[0], digest[1], digest[2], digest[3]};
}

std::string CheckpointBody(const Checkpoint& checkpoint) {
  std::string body = checkpoint.origin + "\n" + std::to_string(checkpoint.size) + "\n" +
                     crypto::Base64Encode(checkpoint.root) + "\n";
  if (checkpoint.previous_note) {
    body += std::string(kPreviousNoteLinePrefix) + crypto::Base64Encode(*checkpoint.previous_note) +
            "\n";
  }
  return body;
}

struct SignatureLine {
  std::string_view name;
  std::array<std::uint8_t, 4> key_id{};
  Bytes signature;  // the bytes after the key id
};

struct Note {
  std::string_view body;  // the signed text, including its final newline
  std::vector<SignatureLine> signatures;
};

Result<SignatureLine> ParseSignatureLine(std::string_view line) {
  if (line.substr(0, kSignaturePrefix.size()) != kSignaturePrefix) {
    return Malformed("a signature line must start with an em dash and a space");
  }
  line.remove_prefix(kSignaturePrefix.size());
  std::size_t space = line.find(' ');
  if (space == std::string_view::npos) return Malformed("signature line has no signature");
  SignatureLine out;
  out.name = line.substr(0, space);
  std::string_view encoded = line.substr(space + 1);
  if (!IsValidKeyName(out.name)) return Malformed("bad key name in a signature line");
  auto decoded = crypto::Base64Decode(encoded);
  // A key id and at least one signature byte (the spec's minimum, as in Go).
  if (!decoded || decoded->size() < 5) return Malformed("bad base64 signature");
  std::copy_n(decoded->begin(), 4, out.key_id.begin());
  out.signature.assign(decoded->begin() + 4, decoded->end());
  return out;
}

// Splits a signed note into its text and signature lines (C2SP signed-note).
Result<Note> ParseNote(std::string_view note) {
  if (note.size() > kMaxNoteBytes) return Malformed("note too large");
  if (!IsValidNoteText(note)) {
    return Malformed("note is not UTF-8 text without control characters");
  }
  if (note.empty() || note.back() != '\n') return Malformed("note does not end in a newline");
  // The text ends at the last blank line; what follows are signature lines.
  std::size_t split = note.rfind("\n\n");
  if (split == std::string_view::npos) return Malformed("no blank line before the signatures");
  Note out;
  out.body = note.substr(0, split + 1);
  std::string_view rest = note.substr(split + 2);
  if (rest.empty()) return Malformed("no signature line");
  while (!rest.empty()) {
    if (out.signatures.size() == kMaxSignatureLines) return Malformed("too many signature lines");
    std::size_t end = rest.find('\n');  // found: the note ends in a newline
    VIA_ASSIGN_OR_RETURN(SignatureLine line, ParseSignatureLine(rest.substr(0, end)));
    out.signatures.push_back(std::move(line));
    rest.remove_prefix(end + 1);
  }
  return out;
}

// Decimal, no sign, no leading zeros (except "0"), fits in 64 bits.
std::optional<std::uint64_t> ParseSize(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

// Parses a tlog-checkpoint note text (ending in a newline). Extension lines
// are allowed and must be non-empty; they are not part of the result.
Result<Checkpoint> ParseBody(std::string_view body) {
  std::vector<std::string_view> lines;
  while (!body.empty()) {
    std::size_t end = body.find('\n');
    if (end == std::string_view::npos) return Malformed("body does not end in a newline");
    lines.push_back(body.substr(0, end));
    body.remove_prefix(end + 1);
  }
  if (lines.size() < 3) return Malformed("body needs origin, size and root hash lines");
  for (std::string_view line : lines) {
    if (line.empty()) return Malformed("empty line in the body");
  }
  Checkpoint out;
  out.origin = std::string(lines[0]);
  auto size = ParseSize(lines[1]);
  if (!size) return Malformed("bad tree size");
  out.size = *size;
  auto root = crypto::Base64Decode(lines[2]);
  if (!root || root->size() != out.root.size())
    return Malformed("root hash is not 32 bytes of base64");
  std::copy(root->begin(), root->end(), out.root.begin());
  if (lines.size() > 3 && lines[3].substr(0, kPreviousNoteLinePrefix.size()) ==
                              kPreviousNoteLinePrefix) {
    auto link = crypto::Base64Decode(lines[3].substr(kPreviousNoteLinePrefix.size()));
    if (!link || link->size() != sizeof(Hash256)) {
      return Malformed("the previous-note link is not 32 bytes of base64");
    }
    out.previous_note.emplace();
    std::copy(link->begin(), link->end(), out.previous_note->begin());
  }
  return out;
}

// The note's checkpoint if `note` is well formed and names `key`'s log; with
// `verifier`, also only if every signature line by `key` verifies and there is
// one. The order of the checks is OpenCheckpoint's contract: grammar of the
// note, signatures, body, origin.
Result<Checkpoint> OpenNote(std::string_view note, const VerifierKey& key,
                            const crypto::Ed25519Verifier* verifier, bool check_signature) {
  VIA_ASSIGN_OR_RETURN(Note parsed, ParseNote(note));
  if (check_signature) {
    // Lines from other keys are ignored, even when they share the name or the
    // id (but not both). Every line from this key must verify.
    bool verified = false;
    for (const SignatureLine& line : parsed.signatures) {
      if (line.name != key.name || line.key_id != key.key_id) continue;
      const bool valid = verifier != nullptr
                             ? verifier->Verify(AsBytes(parsed.body), line.signature)
                             : crypto::Ed25519Verify(key.public_key, AsBytes(parsed.body),
                                                     line.signature);
      if (!valid) {
        return BadSignature("invalid signature by " + key.name + "+" + HexEncode(key.key_id));
      }
      verified = true;
    }
    if (!verified) {
      return BadSignature("no signature by " + key.name + "+" + HexEncode(key.key_id));
    }
  }
  VIA_ASSIGN_OR_RETURN(Checkpoint checkpoint, ParseBody(parsed.body));
  if (checkpoint.origin != key.name) {
    return BadSignature("origin \"" + checkpoint.origin + "\" is not the key name " + key.name);
  }
  return checkpoint;
}

}  // namespace

Result<VerifierKey> VerifierKey::Parse(std::string_view text) {
  auto bad = [](const char* why) {
    return InvalidArgument("bad_verifier_key", std::string("bad verifier key: ") + why);
  };
  std::size_t plus1 = text.find('+');
  if (plus1 == std::string_view::npos) return bad("expected <name>+<key id>+<key>");
  std::size_t plus2 = text.find('+', plus1 + 1);
  if (plus2 == std::string_view::npos) return bad("expected <name>+<key id>+<key>");
  std::string_view name = text.substr(0, plus1);
  std::string_view hex = text.substr(plus1 + 1, plus2 - plus1 - 1);
  std::string_view encoded = text.substr(plus2 + 1);
  if (!IsValidKeyName(name)) return bad("bad key name");

  VerifierKey key;
  key.name = std::string(name);
  // Lower-case hex only, as ToString writes it: one text per key.
  if (hex.size() != 8) return bad("key id is not 8 hex digits");
  for (std::size_t i = 0; i < 8; ++i) {
    char c = hex[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return bad("key id is not 8 lower-case hex digits");
    key.key_id[i / 2] = static_cast<std::uint8_t>((key.key_id[i / 2] << 4) | v);
  }
  auto decoded = crypto::Base64Decode(encoded);
  if (!decoded || decoded->empty()) return bad("key is not base64");
  if ((*decoded)[0] != kSignatureTypeEd25519) return bad("unknown signature type");
  if (decoded->size() != 1 + key.public_key.size()) return bad("an Ed25519 key is 32 bytes");
  std::copy(decoded->begin() + 1, decoded->end(), key.public_key.begin());
  if (KeyIdFor(key.name, key.public_key) != key.key_id) return bad("key id does not match the key");
  return key;
}

VerifierKey VerifierKey::For(std::string_view name, const crypto::Ed25519PublicKey& public_key) {
  VerifierKey key;
  key.name = std::string(name);
  key.key_id = KeyIdFor(name, public_key);
  key.public_key = public_key;
  return key;
}

std::string VerifierKey::ToString() const {
  Bytes encoded;
  encoded.reserve(1 + public_key.size());
  encoded.push_back(kSignatureTypeEd25519);
  encoded.insert(encoded.end(), public_key.begin(), public_key.end());
  return name + "+" + HexEncode(key_id) + "+" + crypto::Base64Encode(encoded);
}

std::string SignCheckpoint(const Checkpoint& checkpoint, const crypto::Ed25519PrivateKey& key) {
  std::string body = CheckpointBody(checkpoint);
  crypto::Ed25519Signature signature = key.Sign(AsBytes(body));
  Bytes blob;
  blob.reserve(4 + signature.size());
  auto key_id = KeyIdFor(checkpoint.origin, key.PublicKey());
  blob.insert(blob.end(), key_id.begin(), key_id.end());
  blob.insert(blob.end(), signature.begin(), signature.end());
  return body + "\n" + std::string(kSignaturePrefix) + checkpoint.origin + " " +
         crypto::Base64Encode(blob) + "\n";
}

Result<Checkpoint> OpenCheckpoint(std::string_view note, const VerifierKey& key) {
  return OpenNote(note, key, nullptr, true);
}

Result<Checkpoint> ParseCheckpointUnverified(std::string_view note) {
  VIA_ASSIGN_OR_RETURN(Note parsed, ParseNote(note));
  return ParseBody(parsed.body);
}

Hash256 NoteHash(std::string_view note) { return crypto::Sha256Concat({AsBytes(note)}); }

CheckpointVerifier::CheckpointVerifier(const VerifierKey& key)
    : key_(key),
      name_is_valid_(IsValidKeyName(key.name)),
      verifier_(crypto::Ed25519Verifier::Create(key.public_key)) {}
CheckpointVerifier::~CheckpointVerifier() = default;
CheckpointVerifier::CheckpointVerifier(CheckpointVerifier&&) noexcept = default;
CheckpointVerifier& CheckpointVerifier::operator=(CheckpointVerifier&&) noexcept = default;

Result<Checkpoint> CheckpointVerifier::Open(std::string_view note) const {
  // Without a key object (OpenSSL refused the key) the one-shot check gives
  // OpenCheckpoint's answer.
  return OpenNote(note, key_, verifier_.get(), true);
}

Result<Checkpoint> CheckpointVerifier::OpenWithoutSignature(std::string_view note) const {
  return OpenNote(note, key_, verifier_.get(), false);
}

bool CheckpointVerifier::IsNoteFor(std::string_view note, std::uint64_t size, const Hash256& root,
                                   const std::optional<Hash256>& previous_note) const {
  // Compares piece by piece without building the expected text: verify runs
  // this once per record of a log written one event per append.
  auto take = [&note](std::string_view piece) {
    if (note.substr(0, piece.size()) != piece) return false;
    note.remove_prefix(piece.size());
    return true;
  };
  auto take_base64 = [&take](const Hash256& hash) {
    char text[crypto::Base64EncodedSize(sizeof(Hash256))];
    crypto::Base64EncodeTo(hash, text);
    return take(std::string_view(text, sizeof text));
  };
  char digits[24];
  auto [end, error] = std::to_chars(digits, digits + sizeof digits, size);
  if (error != std::errc() || !name_is_valid_ || note.size() > kMaxNoteBytes) return false;
  if (!take(key_.name) || !take("\n") || !take(std::string_view(digits, end - digits)) ||
      !take("\n") || !take_base64(root) || !take("\n")) {
    return false;
  }
  if (previous_note &&
      (!take(kPreviousNoteLinePrefix) || !take_base64(*previous_note) || !take("\n"))) {
    return false;
  }
  if (!take("\n") || !take(kSignaturePrefix) || !take(key_.name) || !take(" ")) return false;
  // The rest: the base64 of a 4-byte key id and a 64-byte signature, and the
  // note's final newline.
  constexpr std::size_t kBlobBytes = 4 + crypto::kEd25519SignatureSize;
  constexpr std::size_t kBlobChars = crypto::Base64EncodedSize(kBlobBytes);
  if (note.size() != kBlobChars + 1 || note.back() != '\n') return false;
  std::uint8_t blob[kBlobBytes];
  auto decoded = crypto::Base64DecodeTo(note.substr(0, kBlobChars), blob);
  return decoded && *decoded == kBlobBytes;
}

}  // namespace via::eventstore
