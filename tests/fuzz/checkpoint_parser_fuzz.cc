// Fuzzes the checkpoint note parsers. Invariants checked (abort() on a breach):
//   - every rejection is DataLoss "checkpoint_malformed" or
//     "checkpoint_bad_signature", never another error or a crash;
//   - an accepted note parses: the canonical body of the result
//     ("<origin>\n<size>\n<base64 root>\n") is a prefix of the note, so the
//     parser admits one spelling per checkpoint;
//   - OpenCheckpoint accepts only what ParseCheckpointUnverified accepts, with
//     the same result;
//   - CheckpointVerifier::Open answers exactly as OpenCheckpoint (same result
//     or same error), and OpenWithoutSignature accepts whatever Open accepts,
//     with the same result;
//   - a parsed link (format 3) is in the canonical prefix too.
// The first input byte picks the mode. Even: the rest is a note, opened with a
// fixed key (which the fuzzer cannot forge). Odd: the rest is a note text that
// is signed with that key first, so mutations reach past the signature check;
// then a note whose text is the input, parses and names the key's log must open.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "crypto/crypto.h"
#include "eventstore/checkpoint.h"

namespace {

using via::eventstore::Checkpoint;
using via::eventstore::VerifierKey;

constexpr std::string_view kName = "via.local/fuzz";

struct Fixture {
  std::unique_ptr<via::crypto::Ed25519PrivateKey> key;
  VerifierKey verifier;
  std::unique_ptr<via::eventstore::CheckpointVerifier> cached;  // the same key, parsed once
};

Fixture MakeFixture() {
  auto key = via::crypto::Ed25519PrivateKey::FromSeed(via::Bytes(32, 0x42));
  if (!key) std::abort();
  Fixture f{std::move(key), {}, nullptr};
  f.verifier = VerifierKey::For(kName, f.key->PublicKey());
  f.cached = std::make_unique<via::eventstore::CheckpointVerifier>(f.verifier);
  return f;
}

const Fixture& GetFixture() {
  static const Fixture fixture = MakeFixture();
  return fixture;
}

void CheckError(const via::Status& status) {
  if (status.code() != via::StatusCode::kDataLoss) std::abort();
  if (status.reason() != "checkpoint_malformed" && status.reason() != "checkpoint_bad_signature") {
    std::abort();
  }
}

void CheckCanonicalPrefix(std::string_view note, const Checkpoint& c) {
  std::string body =
      c.origin + "\n" + std::to_string(c.size) + "\n" + via::crypto::Base64Encode(c.root) + "\n";
  if (c.previous_note) {
    body += std::string(via::eventstore::kPreviousNoteLinePrefix) +
            via::crypto::Base64Encode(*c.previous_note) + "\n";
  }
  if (note.substr(0, body.size()) != body) std::abort();
}

// Runs both parsers on `note` and checks the invariants; returns whether the
// note opened with the fixed key.
bool Check(std::string_view note) {
  const Fixture& f = GetFixture();
  auto parsed = via::eventstore::ParseCheckpointUnverified(note);
  if (parsed.ok()) {
    CheckCanonicalPrefix(note, *parsed);
  } else {
    CheckError(parsed.status());
  }
  auto opened = via::eventstore::OpenCheckpoint(note, f.verifier);
  auto cached = f.cached->Open(note);
  if (cached.ok() != opened.ok()) std::abort();
  auto without = f.cached->OpenWithoutSignature(note);
  if (!without.ok()) CheckError(without.status());
  if (!opened.ok()) {
    CheckError(opened.status());
    if (cached.status().reason() != opened.status().reason() ||
        cached.status().message() != opened.status().message()) {
      std::abort();
    }
    return false;
  }
  if (!(*cached == *opened)) std::abort();
  if (!without.ok() || !(*without == *opened)) std::abort();
  if (!parsed.ok() || !(*opened == *parsed) || opened->origin != kName) std::abort();
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) == 0) {
    Check(input);
    return 0;
  }
  // Sign `input` as the note text, exactly as the spec builds a signature line.
  const Fixture& f = GetFixture();
  auto signature = f.key->Sign(via::AsBytes(input));
  via::Bytes blob(f.verifier.key_id.begin(), f.verifier.key_id.end());
  blob.insert(blob.end(), signature.begin(), signature.end());
  std::string note = std::string(input) + "\n\xE2\x80\x94 " + std::string(kName) + " " +
                     via::crypto::Base64Encode(blob) + "\n";
  bool opened = Check(note);
  auto parsed = via::eventstore::ParseCheckpointUnverified(note);
  // When `input` ends in a newline the note text is exactly `input`, so a
  // well-formed text that names this key's log, signed by this key, opens.
  // Re-signing what opened gives a note that opens to the same checkpoint.
  bool text_is_input = !input.empty() && input.back() == '\n';
  if (text_is_input && parsed.ok() && parsed->origin == kName && !opened) std::abort();
  if (opened) {
    auto again = via::eventstore::OpenCheckpoint(via::eventstore::SignCheckpoint(*parsed, *f.key),
                                                 f.verifier);
    if (!again.ok() || !(*again == *parsed)) std::abort();
  }
  return 0;
}
