// Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed-note form.
// Known answers come from golang.org/x/mod/sumdb/note and
// github.com/transparency-dev tests, which prove interoperability.

#include "eventstore/checkpoint.h"

#include <catch2/catch.hpp>
#include <cctype>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/crypto.h"

using namespace via;
using eventstore::Checkpoint;
using eventstore::OpenCheckpoint;
using eventstore::ParseCheckpointUnverified;
using eventstore::SignCheckpoint;
using eventstore::VerifierKey;

namespace {

constexpr std::string_view kEmDash = "\xE2\x80\x94";
constexpr std::string_view kOrigin = "via.local/log_0123";

std::unique_ptr<crypto::Ed25519PrivateKey> TestKey(std::uint8_t fill) {
  auto key = crypto::Ed25519PrivateKey::FromSeed(Bytes(32, fill));
  REQUIRE(key);
  return key;
}

Checkpoint SampleCheckpoint() {
  Checkpoint c;
  c.origin = std::string(kOrigin);
  c.size = 42;
  for (std::size_t i = 0; i < c.root.size(); ++i) c.root[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return c;
}

// A signature line over `body` by `key` under `name`, built from the spec
// (independent of SignCheckpoint) so tests can sign bodies of any shape.
std::string SignatureLine(std::string_view body, const crypto::Ed25519PrivateKey& key,
                          std::string_view name) {
  VerifierKey verifier = VerifierKey::For(name, key.PublicKey());
  Bytes blob(verifier.key_id.begin(), verifier.key_id.end());
  auto signature = key.Sign(AsBytes(body));
  blob.insert(blob.end(), signature.begin(), signature.end());
  return std::string(kEmDash) + " " + std::string(name) + " " + crypto::Base64Encode(blob) + "\n";
}

std::string SignBody(std::string_view body, const crypto::Ed25519PrivateKey& key,
                     std::string_view name = kOrigin) {
  return std::string(body) + "\n" + SignatureLine(body, key, name);
}

std::string RootBase64(const Checkpoint& c) { return crypto::Base64Encode(c.root); }

void CheckRejected(const Result<Checkpoint>& result, std::string_view reason) {
  REQUIRE_FALSE(result.ok());
  CHECK(result.status().code() == StatusCode::kDataLoss);
  CHECK(result.status().reason() == reason);
}

bool IsCheckpointError(const Status& status) {
  return status.code() == StatusCode::kDataLoss && (status.reason() == "checkpoint_malformed" ||
                                                    status.reason() == "checkpoint_bad_signature");
}

}  // namespace

// --- round trip and layout ---------------------------------------------------

TEST_CASE("a signed checkpoint opens to the same checkpoint", "[eventstore]") {
  auto key = TestKey(1);
  Checkpoint c = SampleCheckpoint();
  std::string note = SignCheckpoint(c, *key);
  auto opened = OpenCheckpoint(note, VerifierKey::For(kOrigin, key->PublicKey()));
  REQUIRE(opened.ok());
  CHECK(*opened == c);
}

TEST_CASE("a signed checkpoint has the C2SP signed-note layout", "[eventstore]") {
  auto key = TestKey(1);
  Checkpoint c = SampleCheckpoint();
  std::string note = SignCheckpoint(c, *key);
  std::string body = std::string(kOrigin) + "\n42\n" + RootBase64(c) + "\n";
  REQUIRE(note.size() > body.size() + 1);
  CHECK(note.substr(0, body.size() + 1) == body + "\n");
  // The single signature line is spec-built and equal byte for byte.
  CHECK(note == SignBody(body, *key));
  std::string prefix = std::string(kEmDash) + " " + std::string(kOrigin) + " ";
  std::string line = note.substr(body.size() + 1);
  REQUIRE(line.rfind(prefix, 0) == 0);
  auto blob = crypto::Base64Decode(line.substr(prefix.size(), line.size() - prefix.size() - 1));
  REQUIRE(blob.has_value());
  REQUIRE(blob->size() == 4 + 64);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  CHECK(Bytes(blob->begin(), blob->begin() + 4) ==
        Bytes(verifier.key_id.begin(), verifier.key_id.end()));
  CHECK(crypto::Ed25519Verify(key->PublicKey(), AsBytes(body),
                              ByteView(blob->data() + 4, blob->size() - 4)));
}

TEST_CASE("signing a checkpoint is deterministic", "[eventstore]") {
  auto key = TestKey(1);
  CHECK(SignCheckpoint(SampleCheckpoint(), *key) == SignCheckpoint(SampleCheckpoint(), *key));
}

TEST_CASE("checkpoints of size zero and of the largest size round-trip", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  for (std::uint64_t size : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{10},
                             std::uint64_t{18446744073709551615u}}) {
    Checkpoint c = SampleCheckpoint();
    c.size = size;
    std::string note = SignCheckpoint(c, *key);
    INFO(note);
    auto opened = OpenCheckpoint(note, verifier);
    REQUIRE(opened.ok());
    CHECK(*opened == c);
  }
}

TEST_CASE("the unverified parser returns the body of a signed checkpoint", "[eventstore]") {
  auto key = TestKey(1);
  auto parsed = ParseCheckpointUnverified(SignCheckpoint(SampleCheckpoint(), *key));
  REQUIRE(parsed.ok());
  CHECK(*parsed == SampleCheckpoint());
}

// --- tampering ---------------------------------------------------------------

// Every byte of the note is either signed (the body), selects the key (name,
// key id), is the signature itself, or is syntax (blank line, em dash, spaces,
// newlines). Base64 decoding is strict (one encoding per byte string) and
// OpenSSL rejects non-reduced Ed25519 scalars, so no single-byte change keeps
// the meaning: every one of the 255 alternatives at every position must fail.
TEST_CASE("every single-byte change to a signed checkpoint is rejected", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  const std::string note = SignCheckpoint(SampleCheckpoint(), *key);
  REQUIRE(OpenCheckpoint(note, verifier).ok());
  std::size_t accepted = 0;
  for (std::size_t i = 0; i < note.size(); ++i) {
    for (int delta = 1; delta < 256; ++delta) {
      std::string changed = note;
      changed[i] = static_cast<char>(static_cast<unsigned char>(note[i]) + delta);
      auto opened = OpenCheckpoint(changed, verifier);
      if (opened.ok() || !IsCheckpointError(opened.status())) {
        ++accepted;
        UNSCOPED_INFO("position " << i << " byte " << int(static_cast<unsigned char>(changed[i])));
      }
    }
  }
  CHECK(accepted == 0);
}

TEST_CASE("every truncation and every single-byte deletion of a checkpoint is rejected",
          "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  const std::string note = SignCheckpoint(SampleCheckpoint(), *key);
  for (std::size_t n = 0; n < note.size(); ++n) {
    INFO("prefix of " << n << " bytes");
    auto opened = OpenCheckpoint(note.substr(0, n), verifier);
    REQUIRE_FALSE(opened.ok());
    CHECK(IsCheckpointError(opened.status()));
  }
  for (std::size_t i = 0; i < note.size(); ++i) {
    INFO("without byte " << i);
    std::string changed = note;
    changed.erase(i, 1);
    auto opened = OpenCheckpoint(changed, verifier);
    REQUIRE_FALSE(opened.ok());
    CHECK(IsCheckpointError(opened.status()));
  }
}

TEST_CASE("a checkpoint signed by another key with the same name is rejected", "[eventstore]") {
  auto trusted = TestKey(1);
  auto other = TestKey(2);
  VerifierKey verifier = VerifierKey::For(kOrigin, trusted->PublicKey());
  std::string note = SignCheckpoint(SampleCheckpoint(), *other);
  CheckRejected(OpenCheckpoint(note, verifier), "checkpoint_bad_signature");
}

TEST_CASE("a signature by another key under the trusted key id is rejected", "[eventstore]") {
  auto trusted = TestKey(1);
  auto other = TestKey(2);
  VerifierKey verifier = VerifierKey::For(kOrigin, trusted->PublicKey());
  Checkpoint c = SampleCheckpoint();
  std::string body = std::string(kOrigin) + "\n42\n" + RootBase64(c) + "\n";
  Bytes blob(verifier.key_id.begin(), verifier.key_id.end());
  auto signature = other->Sign(AsBytes(body));
  blob.insert(blob.end(), signature.begin(), signature.end());
  std::string note = body + "\n" + std::string(kEmDash) + " " + std::string(kOrigin) + " " +
                     crypto::Base64Encode(blob) + "\n";
  CheckRejected(OpenCheckpoint(note, verifier), "checkpoint_bad_signature");
}

TEST_CASE("a checkpoint whose origin is not the key name is rejected", "[eventstore]") {
  auto key = TestKey(1);
  Checkpoint c = SampleCheckpoint();
  // Signed correctly, but the body claims another log.
  std::string body = "via.local/other\n42\n" + RootBase64(c) + "\n";
  std::string note = SignBody(body, *key, kOrigin);
  CheckRejected(OpenCheckpoint(note, VerifierKey::For(kOrigin, key->PublicKey())),
                "checkpoint_bad_signature");
}

TEST_CASE("a checkpoint opened with a key of another name is rejected", "[eventstore]") {
  auto key = TestKey(1);
  std::string note = SignCheckpoint(SampleCheckpoint(), *key);
  CheckRejected(OpenCheckpoint(note, VerifierKey::For("via.local/other", key->PublicKey())),
                "checkpoint_bad_signature");
}

TEST_CASE("signature lines from other keys are ignored", "[eventstore]") {
  auto key = TestKey(1);
  auto other = TestKey(2);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  Checkpoint c = SampleCheckpoint();
  std::string note = SignCheckpoint(c, *key);
  std::size_t split = note.rfind("\n\n") + 2;
  std::string body = note.substr(0, split - 1);
  std::string own = note.substr(split);
  // Same name, other key id; other name, other key; a witness-style name; and
  // a line that reuses the trusted key id under another name (so is not ours).
  std::string theirs = SignatureLine(body, *other, kOrigin) +
                       SignatureLine(body, *other, "witness.example/w1") +
                       SignatureLine("unrelated text\n", *other, "x");
  std::string same_id_other_name = own;
  same_id_other_name.replace(kEmDash.size() + 1, kOrigin.size(), "via.local/someone_else");
  for (const std::string& sigs : {theirs + own, own + theirs, theirs + own + same_id_other_name}) {
    auto opened = OpenCheckpoint(body + "\n" + sigs, verifier);
    REQUIRE(opened.ok());
    CHECK(*opened == c);
  }
  CheckRejected(OpenCheckpoint(body + "\n" + theirs, verifier), "checkpoint_bad_signature");
}

TEST_CASE("an invalid signature by the trusted key rejects the note beside a valid one",
          "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  std::string note = SignCheckpoint(SampleCheckpoint(), *key);
  std::size_t split = note.rfind("\n\n") + 2;
  std::string body = note.substr(0, split - 1);
  // The trusted key's signature over other text, presented for this body.
  std::string wrong = SignatureLine("other text\n", *key, kOrigin);
  CheckRejected(OpenCheckpoint(note + wrong, verifier), "checkpoint_bad_signature");
  CheckRejected(OpenCheckpoint(body + "\n" + wrong + note.substr(split), verifier),
                "checkpoint_bad_signature");
}

TEST_CASE("a trusted key id with a signature of the wrong length is rejected", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  Checkpoint c = SampleCheckpoint();
  std::string body = std::string(kOrigin) + "\n42\n" + RootBase64(c) + "\n";
  auto signature = key->Sign(AsBytes(body));
  for (std::size_t n : {1, 63, 65}) {
    Bytes blob(verifier.key_id.begin(), verifier.key_id.end());
    Bytes sig(signature.begin(), signature.end());
    sig.resize(n);
    blob.insert(blob.end(), sig.begin(), sig.end());
    std::string note = body + "\n" + std::string(kEmDash) + " " + std::string(kOrigin) + " " +
                       crypto::Base64Encode(blob) + "\n";
    CheckRejected(OpenCheckpoint(note, verifier), "checkpoint_bad_signature");
  }
}

// --- note syntax -------------------------------------------------------------

TEST_CASE("a checkpoint note accepts 100 signature lines and rejects 101", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  std::string note = SignCheckpoint(SampleCheckpoint(), *key);
  std::size_t split = note.rfind("\n\n") + 2;
  std::string head = note.substr(0, split);
  std::string line = note.substr(split);
  std::string sigs;
  for (int i = 0; i < 100; ++i) sigs += line;
  CHECK(OpenCheckpoint(head + sigs, verifier).ok());
  CheckRejected(OpenCheckpoint(head + sigs + line, verifier), "checkpoint_malformed");
  CheckRejected(ParseCheckpointUnverified(head + sigs + line), "checkpoint_malformed");
}

TEST_CASE("a checkpoint note with carriage returns is malformed", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  std::string note = SignCheckpoint(SampleCheckpoint(), *key);
  std::string crlf;
  for (char ch : note) crlf += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
  CheckRejected(OpenCheckpoint(crlf, verifier), "checkpoint_malformed");
  // A CR inside a signed body is refused even when the signature covers it.
  Checkpoint c = SampleCheckpoint();
  std::string body = std::string(kOrigin) + "\r\n42\n" + RootBase64(c) + "\n";
  CheckRejected(OpenCheckpoint(SignBody(body, *key), verifier), "checkpoint_malformed");
}

TEST_CASE("a checkpoint note without its final newline is malformed", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  std::string note = SignCheckpoint(SampleCheckpoint(), *key);
  note.pop_back();
  CheckRejected(OpenCheckpoint(note, verifier), "checkpoint_malformed");
  CheckRejected(ParseCheckpointUnverified(note), "checkpoint_malformed");
}

TEST_CASE("a checkpoint note without signature lines is malformed", "[eventstore]") {
  Checkpoint c = SampleCheckpoint();
  std::string body = std::string(kOrigin) + "\n42\n" + RootBase64(c) + "\n";
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  for (const std::string& note : {body, body + "\n", body + "\n\n", std::string()}) {
    CheckRejected(OpenCheckpoint(note, verifier), "checkpoint_malformed");
    CheckRejected(ParseCheckpointUnverified(note), "checkpoint_malformed");
  }
}

TEST_CASE("a checkpoint note with a trailing line after the signatures is malformed",
          "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  std::string note = SignCheckpoint(SampleCheckpoint(), *key);
  for (std::string_view extra : {"Unexpected line.\n", "\n", "- ascii dash x AAAA\n",
                                 "\xE2\x80\x94 name AAAAAA==\n", "\xE2\x80\x94 a+b AAAAAAAA\n",
                                 "\xE2\x80\x94  AAAAAAAA\n", "\xE2\x80\x94 name AAAAAAAA extra\n",
                                 "\xE2\x80\x94 name\n", "\xE2\x80\x94name AAAAAAAA\n"}) {
    INFO("extra line: " << extra);
    CheckRejected(OpenCheckpoint(note + std::string(extra), verifier), "checkpoint_malformed");
  }
}

TEST_CASE("a checkpoint note that is not UTF-8 or has control characters is malformed",
          "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  Checkpoint c = SampleCheckpoint();
  // Each is signed correctly, so only the text rules reject it.
  for (std::string_view origin :
       {std::string_view("via\xff"), std::string_view("via\xc0\xaf"),
        std::string_view("via\xed\xa0\x80"), std::string_view("via\xf4\x90\x80\x80"),
        std::string_view("via\xe2\x80"), std::string_view("via\x01"), std::string_view("via\tx"),
        std::string_view("via\0x", 5)}) {
    std::string body = std::string(origin) + "\n42\n" + RootBase64(c) + "\n";
    CheckRejected(OpenCheckpoint(SignBody(body, *key), verifier), "checkpoint_malformed");
    CheckRejected(ParseCheckpointUnverified(SignBody(body, *key)), "checkpoint_malformed");
  }
}

TEST_CASE("a huge checkpoint note is malformed", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  Checkpoint c = SampleCheckpoint();
  std::string body =
      std::string(kOrigin) + "\n42\n" + RootBase64(c) + "\n" + std::string(2 << 20, 'x') + "\n";
  CheckRejected(OpenCheckpoint(SignBody(body, *key), verifier), "checkpoint_malformed");
  CheckRejected(ParseCheckpointUnverified(std::string(4 << 20, '\n')), "checkpoint_malformed");
}

TEST_CASE("garbage is rejected as a malformed checkpoint", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  for (std::string_view garbage :
       {std::string_view(""), std::string_view("\n"), std::string_view("\n\n"),
        std::string_view("\n\n\n"), std::string_view("\xE2\x80\x94"),
        std::string_view("a\n\n\xE2\x80\x94 a AAAAAAAA\n"), std::string_view("\0\0\0", 3),
        std::string_view("\xE2\x80\x94 \n\n\xE2\x80\x94 \n")}) {
    auto opened = OpenCheckpoint(garbage, verifier);
    REQUIRE_FALSE(opened.ok());
    CHECK(IsCheckpointError(opened.status()));
    CheckRejected(ParseCheckpointUnverified(garbage), "checkpoint_malformed");
  }
}

// --- checkpoint body grammar (each body signed correctly) ----------------------

TEST_CASE("a checkpoint with a malformed size is rejected", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  std::string root = RootBase64(SampleCheckpoint());
  for (std::string_view size :
       {"", "00", "007", "-1", "+1", " 1", "1 ", "0x10", "1e3", "4.2", "18446744073709551616",
        "99999999999999999999", "000000000000000000001", "\xd9\xa1" /* ARABIC-INDIC DIGIT ONE */}) {
    INFO("size line: " << size);
    std::string body = std::string(kOrigin) + "\n" + std::string(size) + "\n" + root + "\n";
    CheckRejected(OpenCheckpoint(SignBody(body, *key), verifier), "checkpoint_malformed");
  }
}

TEST_CASE("a checkpoint with a malformed root hash is rejected", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  std::string root = RootBase64(SampleCheckpoint());
  std::string non_canonical = root;
  non_canonical[42] = static_cast<char>(non_canonical[42] + 1);  // sets a padding bit
  std::string url_safe = crypto::Base64Encode(Bytes(32, 0xfb));
  for (char& ch : url_safe) ch = ch == '+' ? '-' : ch == '/' ? '_' : ch;
  for (const std::string& bad :
       {crypto::Base64Encode(Bytes(31, 1)), crypto::Base64Encode(Bytes(33, 1)), std::string(),
        root.substr(0, 43), root + "=", non_canonical, url_safe, " " + root, root + " ",
        crypto::Base64UrlEncode(Bytes(32, 1))}) {
    INFO("root line: " << bad);
    std::string body = std::string(kOrigin) + "\n42\n" + bad + "\n";
    CheckRejected(OpenCheckpoint(SignBody(body, *key), verifier), "checkpoint_malformed");
  }
}

TEST_CASE("a checkpoint body with missing or empty lines is rejected", "[eventstore]") {
  auto key = TestKey(1);
  std::string root = RootBase64(SampleCheckpoint());
  std::string origin(kOrigin);
  for (const std::string& body : {origin + "\n", origin + "\n42\n", "42\n" + root + "\n",
                                  "\n42\n" + root + "\n", origin + "\n42\n" + root + "\n\next\n"}) {
    INFO("body: " << body);
    CheckRejected(ParseCheckpointUnverified(SignBody(body, *key)), "checkpoint_malformed");
  }
}

TEST_CASE("a checkpoint with extension lines opens without them", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  Checkpoint c = SampleCheckpoint();
  std::string body = std::string(kOrigin) + "\n42\n" + RootBase64(c) + "\nextension one\n— two\n";
  auto opened = OpenCheckpoint(SignBody(body, *key), verifier);
  REQUIRE(opened.ok());
  CHECK(*opened == c);
}

// --- links between notes (format 3) -------------------------------------------

Checkpoint LinkedCheckpoint() {
  Checkpoint c = SampleCheckpoint();
  c.previous_note.emplace();
  for (std::size_t i = 0; i < c.previous_note->size(); ++i) {
    (*c.previous_note)[i] = static_cast<std::uint8_t>(255 - i * 5);
  }
  return c;
}

std::string LinkedBody(const Checkpoint& c) {
  return std::string(kOrigin) + "\n42\n" + RootBase64(c) + "\nprev-note-sha256 " +
         crypto::Base64Encode(*c.previous_note) + "\n";
}

TEST_CASE("a linked checkpoint carries its link as the first extension line", "[eventstore]") {
  auto key = TestKey(1);
  Checkpoint c = LinkedCheckpoint();
  std::string note = SignCheckpoint(c, *key);
  // Byte for byte what a C2SP signed-note signer (Go's note.Sign) writes for
  // this text: the link is an extension line of the tlog-checkpoint body.
  CHECK(note == SignBody(LinkedBody(c), *key));
  auto opened = OpenCheckpoint(note, VerifierKey::For(kOrigin, key->PublicKey()));
  REQUIRE(opened.ok());
  CHECK(*opened == c);
  auto parsed = ParseCheckpointUnverified(note);
  REQUIRE(parsed.ok());
  CHECK(*parsed == c);
}

TEST_CASE("a linked checkpoint's signature covers its link", "[eventstore]") {
  auto key = TestKey(1);
  Checkpoint c = LinkedCheckpoint();
  std::string note = SignCheckpoint(c, *key);
  const std::string body = LinkedBody(c);
  std::string line = note.substr(body.size() + 1);
  std::string encoded = line.substr(line.rfind(' ') + 1);
  encoded.pop_back();
  auto blob = crypto::Base64Decode(encoded);
  REQUIRE(blob.has_value());
  REQUIRE(blob->size() == 68);
  ByteView signature(blob->data() + 4, 64);
  CHECK(crypto::Ed25519Verify(key->PublicKey(), AsBytes(body), signature));
  std::string_view without_link(body.data(), body.find("prev-note-sha256"));
  CHECK_FALSE(crypto::Ed25519Verify(key->PublicKey(), AsBytes(without_link), signature));
}

TEST_CASE("a checkpoint without a link, or with it removed, opens without one", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  auto plain = OpenCheckpoint(SignCheckpoint(SampleCheckpoint(), *key), verifier);
  REQUIRE(plain.ok());
  CHECK_FALSE(plain->previous_note.has_value());
  // Removing the line from a signed note breaks its signature.
  std::string note = SignCheckpoint(LinkedCheckpoint(), *key);
  std::size_t at = note.find("prev-note-sha256");
  std::string removed = note;
  removed.erase(at, note.find('\n', at) + 1 - at);
  CheckRejected(OpenCheckpoint(removed, verifier), "checkpoint_bad_signature");
  auto parsed = ParseCheckpointUnverified(removed);
  REQUIRE(parsed.ok());
  CHECK_FALSE(parsed->previous_note.has_value());
}

TEST_CASE("a link that is not 32 bytes of canonical base64 is malformed", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  Checkpoint c = LinkedCheckpoint();
  std::string link = crypto::Base64Encode(*c.previous_note);
  std::string non_canonical = link;
  non_canonical[42] = static_cast<char>(non_canonical[42] + 1);
  for (const std::string& bad :
       {std::string(), crypto::Base64Encode(Bytes(31, 1)), crypto::Base64Encode(Bytes(33, 1)),
        link.substr(0, 43), link + "=", non_canonical, " " + link, link + " ",
        crypto::Base64UrlEncode(Bytes(32, 0xfb))}) {
    INFO("link: " << bad);
    std::string body = std::string(kOrigin) + "\n42\n" + RootBase64(c) + "\nprev-note-sha256 " +
                       bad + "\n";
    CheckRejected(OpenCheckpoint(SignBody(body, *key), verifier), "checkpoint_malformed");
    CheckRejected(ParseCheckpointUnverified(SignBody(body, *key)), "checkpoint_malformed");
  }
}

TEST_CASE("only the first extension line is read as a link", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  Checkpoint c = LinkedCheckpoint();
  std::string link_line = "prev-note-sha256 " + crypto::Base64Encode(*c.previous_note) + "\n";
  std::string head = std::string(kOrigin) + "\n42\n" + RootBase64(c) + "\n";
  auto second = OpenCheckpoint(SignBody(head + "other\n" + link_line, *key), verifier);
  REQUIRE(second.ok());
  CHECK_FALSE(second->previous_note.has_value());
  auto first = OpenCheckpoint(SignBody(head + link_line + "other\n", *key), verifier);
  REQUIRE(first.ok());
  CHECK(first->previous_note == c.previous_note);
  // A prefix of the keyword is an opaque extension line.
  auto other = OpenCheckpoint(SignBody(head + "prev-note-sha25 x\n", *key), verifier);
  REQUIRE(other.ok());
  CHECK_FALSE(other->previous_note.has_value());
}

TEST_CASE("every single-byte change to a linked checkpoint is rejected", "[eventstore]") {
  auto key = TestKey(1);
  eventstore::CheckpointVerifier verifier(VerifierKey::For(kOrigin, key->PublicKey()));
  const std::string note = SignCheckpoint(LinkedCheckpoint(), *key);
  REQUIRE(verifier.Open(note).ok());
  std::size_t accepted = 0;
  for (std::size_t i = 0; i < note.size(); ++i) {
    for (int delta = 1; delta < 256; ++delta) {
      std::string changed = note;
      changed[i] = static_cast<char>(static_cast<unsigned char>(note[i]) + delta);
      auto opened = verifier.Open(changed);
      if (opened.ok() || !IsCheckpointError(opened.status())) {
        ++accepted;
        UNSCOPED_INFO("position " << i << " byte " << int(static_cast<unsigned char>(changed[i])));
      }
    }
  }
  CHECK(accepted == 0);
}

TEST_CASE("a note's hash is SHA-256 of all its bytes", "[eventstore]") {
  auto key = TestKey(1);
  std::string note = SignCheckpoint(LinkedCheckpoint(), *key);
  CHECK(eventstore::NoteHash(note) == crypto::Sha256::Digest(note));
  std::string changed = note;
  changed[changed.size() - 3] ^= 1;  // inside the signature line
  CHECK(eventstore::NoteHash(changed) != eventstore::NoteHash(note));
}

// --- CheckpointVerifier -------------------------------------------------------

TEST_CASE("a checkpoint verifier gives OpenCheckpoint's answers", "[eventstore]") {
  auto key = TestKey(1);
  auto other = TestKey(2);
  VerifierKey trusted = VerifierKey::For(kOrigin, key->PublicKey());
  eventstore::CheckpointVerifier verifier(trusted);
  CHECK(verifier.key() == trusted);
  std::string good = SignCheckpoint(LinkedCheckpoint(), *key);
  std::string flipped = good;
  flipped[flipped.size() - 5] = flipped[flipped.size() - 5] == 'A' ? 'B' : 'A';
  Checkpoint elsewhere = LinkedCheckpoint();
  elsewhere.origin = "via.local/other";
  std::vector<std::string> notes = {good,
                                    SignCheckpoint(SampleCheckpoint(), *key),
                                    SignCheckpoint(LinkedCheckpoint(), *other),
                                    SignCheckpoint(elsewhere, *key),
                                    flipped,
                                    good.substr(0, good.size() - 1),
                                    "garbage"};
  for (const std::string& note : notes) {
    INFO(note);
    auto expected = OpenCheckpoint(note, trusted);
    for (int round = 0; round < 2; ++round) {
      auto opened = verifier.Open(note);
      REQUIRE(opened.ok() == expected.ok());
      if (expected.ok()) {
        CHECK(*opened == *expected);
      } else {
        CHECK(opened.status().reason() == expected.status().reason());
        CHECK(opened.status().message() == expected.status().message());
      }
    }
  }
}

TEST_CASE("opening a note without its signature checks everything else", "[eventstore]") {
  auto key = TestKey(1);
  auto other = TestKey(2);
  eventstore::CheckpointVerifier verifier(VerifierKey::For(kOrigin, key->PublicKey()));
  // Signed by another key: only the signature is wrong.
  std::string forged = SignCheckpoint(LinkedCheckpoint(), *other);
  CheckRejected(verifier.Open(forged), "checkpoint_bad_signature");
  auto unsigned_open = verifier.OpenWithoutSignature(forged);
  REQUIRE(unsigned_open.ok());
  CHECK(*unsigned_open == LinkedCheckpoint());
  // Grammar and origin are still checked.
  Checkpoint elsewhere = LinkedCheckpoint();
  elsewhere.origin = "via.local/other";
  CheckRejected(verifier.OpenWithoutSignature(SignCheckpoint(elsewhere, *key)),
                "checkpoint_bad_signature");
  std::string note = SignCheckpoint(LinkedCheckpoint(), *key);
  CheckRejected(verifier.OpenWithoutSignature(note.substr(0, note.size() - 1)),
                "checkpoint_malformed");
  std::string body = std::string(kOrigin) + "\n042\n" + RootBase64(SampleCheckpoint()) + "\n";
  CheckRejected(verifier.OpenWithoutSignature(SignBody(body, *key)), "checkpoint_malformed");
}

TEST_CASE("the exact-note check accepts what SignCheckpoint writes", "[eventstore]") {
  auto key = TestKey(1);
  eventstore::CheckpointVerifier verifier(VerifierKey::For(kOrigin, key->PublicKey()));
  for (const Checkpoint& c : {SampleCheckpoint(), LinkedCheckpoint()}) {
    std::string note = SignCheckpoint(c, *key);
    CHECK(verifier.IsNoteFor(note, c.size, c.root, c.previous_note));
    // Another signer's note of the same checkpoint has the same form.
    CHECK(verifier.IsNoteFor(SignCheckpoint(c, *TestKey(2)), c.size, c.root, c.previous_note));
  }
}

TEST_CASE("the exact-note check refuses any other size, root, link or form", "[eventstore]") {
  auto key = TestKey(1);
  eventstore::CheckpointVerifier verifier(VerifierKey::For(kOrigin, key->PublicKey()));
  const Checkpoint c = LinkedCheckpoint();
  const std::string note = SignCheckpoint(c, *key);
  Hash256 other_root = c.root;
  other_root[31] ^= 1;
  Hash256 other_link = *c.previous_note;
  other_link[0] ^= 1;
  CHECK_FALSE(verifier.IsNoteFor(note, c.size + 1, c.root, c.previous_note));
  CHECK_FALSE(verifier.IsNoteFor(note, c.size, other_root, c.previous_note));
  CHECK_FALSE(verifier.IsNoteFor(note, c.size, c.root, other_link));
  CHECK_FALSE(verifier.IsNoteFor(note, c.size, c.root, std::nullopt));
  CHECK_FALSE(verifier.IsNoteFor(SignCheckpoint(SampleCheckpoint(), *key), c.size, c.root,
                                 c.previous_note));
  const std::string body = LinkedBody(c);
  const std::string line = note.substr(body.size() + 1);
  for (const std::string& changed :
       {SignBody(body + "extension\n", *key), note + line, note.substr(0, note.size() - 1),
        note + "\n", body + "\n" + line.substr(0, line.size() - 3) + "B=\n"}) {
    INFO(changed);
    CHECK_FALSE(verifier.IsNoteFor(changed, c.size, c.root, c.previous_note));
  }
  // A key whose name is not a valid key name never matches.
  eventstore::CheckpointVerifier spaced(VerifierKey::For("via local", key->PublicKey()));
  Checkpoint named = c;
  named.origin = "via local";
  CHECK_FALSE(spaced.IsNoteFor(SignCheckpoint(named, *key), c.size, c.root, c.previous_note));
}

TEST_CASE("whatever the exact-note check accepts opens to the same checkpoint", "[eventstore]") {
  auto key = TestKey(1);
  eventstore::CheckpointVerifier verifier(VerifierKey::For(kOrigin, key->PublicKey()));
  const Checkpoint c = LinkedCheckpoint();
  const std::string note = SignCheckpoint(c, *key);
  std::size_t accepted = 0;
  for (std::size_t i = 0; i < note.size(); ++i) {
    for (int delta = 1; delta < 256; delta += 3) {
      std::string changed = note;
      changed[i] = static_cast<char>(static_cast<unsigned char>(note[i]) + delta);
      if (!verifier.IsNoteFor(changed, c.size, c.root, c.previous_note)) continue;
      ++accepted;
      INFO("position " << i);
      auto opened = verifier.OpenWithoutSignature(changed);
      REQUIRE(opened.ok());
      CHECK(*opened == c);
      CHECK_FALSE(verifier.Open(changed).ok());  // only signature bytes can differ
    }
  }
  CHECK(accepted > 0);  // changes inside the signature keep the form
}

// --- verifier keys -----------------------------------------------------------

TEST_CASE("a verifier key round-trips through its text form", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  std::string text = verifier.ToString();
  auto parsed = VerifierKey::Parse(text);
  REQUIRE(parsed.ok());
  CHECK(*parsed == verifier);
  CHECK(parsed->ToString() == text);
}

TEST_CASE("a verifier key id is SHA-256 of name, newline, type 0x01 and key", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  Bytes preimage = ToBytes(kOrigin);
  preimage.push_back(0x0a);
  preimage.push_back(0x01);
  preimage.insert(preimage.end(), key->PublicKey().begin(), key->PublicKey().end());
  Hash256 digest = crypto::Sha256::Digest(preimage);
  CHECK(verifier.key_id == std::array<std::uint8_t, 4>{digest[0], digest[1], digest[2], digest[3]});
  CHECK(verifier.public_key == key->PublicKey());
  CHECK(verifier.name == kOrigin);
}

TEST_CASE("a verifier key with a wrong key id is rejected", "[eventstore]") {
  auto key = TestKey(1);
  std::string text = VerifierKey::For(kOrigin, key->PublicKey()).ToString();
  std::size_t id_at = kOrigin.size() + 1;
  for (std::size_t i = 0; i < 8; ++i) {
    std::string changed = text;
    changed[id_at + i] = changed[id_at + i] == '0' ? '1' : '0';
    auto parsed = VerifierKey::Parse(changed);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == StatusCode::kInvalidArgument);
    CHECK(parsed.status().reason() == "bad_verifier_key");
  }
  // The key of another name under this key id.
  std::string renamed = "via.local/other" + text.substr(kOrigin.size());
  CHECK_FALSE(VerifierKey::Parse(renamed).ok());
}

TEST_CASE("malformed verifier keys are rejected", "[eventstore]") {
  auto key = TestKey(1);
  VerifierKey verifier = VerifierKey::For(kOrigin, key->PublicKey());
  std::string text = verifier.ToString();
  std::string id = HexEncode(verifier.key_id);
  std::string upper_id = id;
  for (char& ch : upper_id) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  Bytes wrong_type = {0x02};
  wrong_type.insert(wrong_type.end(), key->PublicKey().begin(), key->PublicKey().end());
  Bytes short_key(key->PublicKey().begin(), key->PublicKey().end() - 1);
  short_key.insert(short_key.begin(), 0x01);
  std::string name(kOrigin);
  std::vector<std::string> bad = {
      "",
      "+",
      "++",
      name,
      name + "+" + id,
      name + "+" + id + "+",
      "+" + id + text.substr(name.size() + 1 + 8),  // empty name
      "a b" + text.substr(name.size()),             // space in the name
      text + "\n",                                  // trailing newline
      text + "=",                                   // bad padding
      name + "+" + id.substr(0, 7) + text.substr(name.size() + 1 + 8),
      name + "+" + id + "0" + text.substr(name.size() + 1 + 8),
      name + "+" + id + "+" + crypto::Base64Encode(wrong_type),
      name + "+" + id + "+" + crypto::Base64Encode(short_key),
      name + "+" + id + "+" + crypto::Base64Encode(Bytes{0x01}),
  };
  if (upper_id != id) bad.push_back(name + "+" + upper_id + text.substr(name.size() + 1 + 8));
  for (const std::string& b : bad) {
    INFO("verifier key: " << b);
    auto parsed = VerifierKey::Parse(b);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == StatusCode::kInvalidArgument);
    CHECK(parsed.status().reason() == "bad_verifier_key");
  }
}

TEST_CASE("every substring and every single-byte change of a verifier key is rejected",
          "[eventstore]") {
  const std::string text = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
  REQUIRE(VerifierKey::Parse(text).ok());
  for (std::size_t i = 0; i <= text.size(); ++i) {
    for (std::size_t j = i + 1; j <= text.size(); ++j) {
      if (i == 0 && j == text.size()) continue;
      INFO("substring " << i << ".." << j);
      CHECK_FALSE(VerifierKey::Parse(text.substr(i, j - i)).ok());
    }
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    std::string changed = text;
    ++changed[i];
    INFO("changed byte " << i);
    CHECK_FALSE(VerifierKey::Parse(changed).ok());
  }
}

// --- known answers from other implementations ---------------------------------

// golang.org/x/mod/sumdb/note note_test.go: the PeterNeumann verifier key, its
// private key ("PRIVATE+KEY+PeterNeumann+c74f20a3+" base64(0x01 || seed)) and
// the note that Go's note.Sign writes with it.
constexpr std::string_view kPeterVerifier =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
constexpr std::string_view kPeterPrivate = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
constexpr std::string_view kPeterNote =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\xE2\x80\x94 PeterNeumann "
    "x08go/ZJkuBS9UG/"
    "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

TEST_CASE("the Go sumdb note verifier key parses with its key id", "[eventstore]") {
  auto parsed = VerifierKey::Parse(kPeterVerifier);
  REQUIRE(parsed.ok());
  CHECK(parsed->name == "PeterNeumann");
  CHECK(HexEncode(parsed->key_id) == "c74f20a3");
  CHECK(parsed->ToString() == kPeterVerifier);
}

TEST_CASE("signing the Go sumdb note text reproduces Go's note byte for byte", "[eventstore]") {
  auto decoded = crypto::Base64Decode(kPeterPrivate);
  REQUIRE(decoded.has_value());
  REQUIRE(decoded->size() == 33);
  REQUIRE((*decoded)[0] == 0x01);
  auto key = crypto::Ed25519PrivateKey::FromSeed(ByteView(decoded->data() + 1, 32));
  REQUIRE(key);
  auto verifier = VerifierKey::Parse(kPeterVerifier);
  REQUIRE(verifier.ok());
  CHECK(key->PublicKey() == verifier->public_key);
  CHECK(VerifierKey::For("PeterNeumann", key->PublicKey()) == *verifier);
  std::string_view text = kPeterNote.substr(0, kPeterNote.find("\n\n") + 1);
  CHECK(SignBody(text, *key, "PeterNeumann") == kPeterNote);
}

TEST_CASE("a checkpoint signed with the Go sumdb test key opens with Go's verifier key",
          "[eventstore]") {
  auto decoded = crypto::Base64Decode(kPeterPrivate);
  REQUIRE(decoded.has_value());
  auto key = crypto::Ed25519PrivateKey::FromSeed(ByteView(decoded->data() + 1, 32));
  REQUIRE(key);
  auto verifier = VerifierKey::Parse(kPeterVerifier);
  REQUIRE(verifier.ok());
  Checkpoint c = SampleCheckpoint();
  c.origin = "PeterNeumann";
  auto opened = OpenCheckpoint(SignCheckpoint(c, *key), *verifier);
  REQUIRE(opened.ok());
  CHECK(*opened == c);
}

TEST_CASE("the Go sumdb note verifies but is not a checkpoint", "[eventstore]") {
  auto verifier = VerifierKey::Parse(kPeterVerifier);
  REQUIRE(verifier.ok());
  // OpenCheckpoint checks the signature before the body grammar, so
  // "malformed" (not "bad signature") means Go's signature verified.
  CheckRejected(OpenCheckpoint(kPeterNote, *verifier), "checkpoint_malformed");
  std::string tampered(kPeterNote);
  tampered[3] = 'Y';
  CheckRejected(OpenCheckpoint(tampered, *verifier), "checkpoint_bad_signature");
}

// A checkpoint from transparency-dev test data (the spicy-signature tests):
// log "example.com/log/testdata" at size 100270, with its verifier key.
constexpr std::string_view kTestdataVerifier =
    "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";
constexpr std::string_view kTestdataCheckpoint =
    "example.com/log/testdata\n"
    "100270\n"
    "GRV1O0dCqmjjPvYi7CtOT79zb/fPwLNsMFWsynwU8Ac=\n"
    "\n"
    "\xE2\x80\x94 example.com/log/testdata "
    "M9e0lkcvy5bAe7rrC8tCyAP+my+CLzswA91zOpBNWVU7qCojkUOHnfdQzDImoYeYH8G8PJSwOqsx0RkSa261OmKVwwM="
    "\n";

TEST_CASE("a checkpoint signed by transparency-dev tooling opens", "[eventstore]") {
  auto verifier = VerifierKey::Parse(kTestdataVerifier);
  REQUIRE(verifier.ok());
  CHECK(verifier->ToString() == kTestdataVerifier);
  auto opened = OpenCheckpoint(kTestdataCheckpoint, *verifier);
  REQUIRE(opened.ok());
  CHECK(opened->origin == "example.com/log/testdata");
  CHECK(opened->size == 100270);
  auto root = crypto::Base64Decode("GRV1O0dCqmjjPvYi7CtOT79zb/fPwLNsMFWsynwU8Ac=");
  REQUIRE(root.has_value());
  CHECK(Bytes(opened->root.begin(), opened->root.end()) == *root);
}

TEST_CASE("a transparency-dev checkpoint with a changed size is rejected", "[eventstore]") {
  auto verifier = VerifierKey::Parse(kTestdataVerifier);
  REQUIRE(verifier.ok());
  std::string tampered(kTestdataCheckpoint);
  tampered.replace(tampered.find("100270"), 6, "100271");
  CheckRejected(OpenCheckpoint(tampered, *verifier), "checkpoint_bad_signature");
}

// sum.golang.org's tree head (from transparency-dev/formats log/note_test.go).
// Its origin "go.sum database tree" is not its key name "sum.golang.org", which
// this log's checkpoints require, so it parses but does not open.
constexpr std::string_view kSumdbVerifier =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
constexpr std::string_view kSumdbCheckpoint =
    "go.sum database tree\n"
    "6476701\n"
    "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n"
    "\n"
    "\xE2\x80\x94 sum.golang.org "
    "Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw="
    "\n";

TEST_CASE("the sum.golang.org tree head parses but its origin is not its key name",
          "[eventstore]") {
  auto verifier = VerifierKey::Parse(kSumdbVerifier);
  REQUIRE(verifier.ok());
  CHECK(HexEncode(verifier->key_id) == "033de0ae");
  auto parsed = ParseCheckpointUnverified(kSumdbCheckpoint);
  REQUIRE(parsed.ok());
  CHECK(parsed->origin == "go.sum database tree");
  CHECK(parsed->size == 6476701);
  CheckRejected(OpenCheckpoint(kSumdbCheckpoint, *verifier), "checkpoint_bad_signature");
  // The signature itself is sound: it verifies over the body with the key.
  std::string_view body = kSumdbCheckpoint.substr(0, kSumdbCheckpoint.find("\n\n") + 1);
  std::string_view line = kSumdbCheckpoint.substr(body.size() + 1);
  std::string_view encoded = line.substr(line.rfind(' ') + 1);
  encoded.remove_suffix(1);
  auto blob = crypto::Base64Decode(encoded);
  REQUIRE(blob.has_value());
  REQUIRE(blob->size() == 68);
  CHECK(crypto::Ed25519Verify(verifier->public_key, AsBytes(body), ByteView(blob->data() + 4, 64)));
}
