// Known-answer tests for the OpenSSL wrappers: SHA-256 (FIPS 180-4 examples),
// HMAC-SHA256 (RFC 4231), base64 (RFC 4648 section 10) and Ed25519
// (RFC 8032 section 7.1).

#include "crypto/crypto.h"
#include "domain/bytes.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <string_view>

using namespace via;

namespace {

Bytes FromHex(std::string_view hex) {
  auto nibble = [](char c) -> std::uint8_t {
    if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
    FAIL("bad hex digit in a test vector");
    return 0;
  };
  REQUIRE(hex.size() % 2 == 0);
  Bytes out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  }
  return out;
}

Bytes Repeat(std::uint8_t byte, std::size_t n) { return Bytes(n, byte); }

std::string Hex(ByteView b) { return HexEncode(b); }

struct Ed25519Vector {
  const char* name;
  const char* secret_key;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032 section 7.1, TEST 1, TEST 2, TEST 3 and TEST SHA(abc).
const Ed25519Vector kRfc8032Vectors[] = {
    {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701c"
     "f9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0"
     "f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f76098"
     "4dc6594a7c15e9716ed28dc027beceea1ec40a"},
    {"TEST SHA(abc)", "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3"
     "feebbd454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c664"
     "31e0303dca179c138ac17ad9bef1177331a704"},
};

std::unique_ptr<crypto::Ed25519PrivateKey> KeyFromSeed(const Bytes& seed) {
  auto key = crypto::Ed25519PrivateKey::FromSeed(seed);
  REQUIRE(key);
  return key;
}

}  // namespace

// --- SHA-256 ---------------------------------------------------------------

TEST_CASE("sha256 of the empty string matches the known digest", "[crypto]") {
  CHECK(Hex(crypto::Sha256::Digest(std::string_view(""))) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Hex(crypto::Sha256::Digest(ByteView())) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("sha256 of abc matches the FIPS 180-4 example", "[crypto]") {
  CHECK(Hex(crypto::Sha256::Digest(std::string_view("abc"))) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("sha256 of the two-block FIPS 180-4 example matches", "[crypto]") {
  CHECK(Hex(crypto::Sha256::Digest(
            std::string_view("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("incremental sha256 equals the one-shot digest and resets after Final", "[crypto]") {
  crypto::Sha256 sha;
  sha.Update(std::string_view("a")).Update(std::string_view("")).Update(std::string_view("bc"));
  CHECK(sha.Final() == crypto::Sha256::Digest(std::string_view("abc")));
  // Final() resets: the next message starts from scratch.
  sha.Update(std::string_view("abc"));
  CHECK(sha.Final() == crypto::Sha256::Digest(std::string_view("abc")));
  // Final() with no Update is the digest of the empty string.
  CHECK(sha.Final() == crypto::Sha256::Digest(std::string_view("")));
}

// --- HMAC-SHA256 (RFC 4231 section 4) ---------------------------------------

TEST_CASE("hmac-sha256 matches RFC 4231 test case 1", "[crypto]") {
  CHECK(Hex(crypto::HmacSha256(Repeat(0x0b, 20), AsBytes("Hi There"))) ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST_CASE("hmac-sha256 matches RFC 4231 test case 2", "[crypto]") {
  CHECK(Hex(crypto::HmacSha256(AsBytes("Jefe"), AsBytes("what do ya want for nothing?"))) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("hmac-sha256 matches RFC 4231 test case 3", "[crypto]") {
  CHECK(Hex(crypto::HmacSha256(Repeat(0xaa, 20), Repeat(0xdd, 50))) ==
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

TEST_CASE("hmac-sha256 matches RFC 4231 test case 6, a key longer than a block", "[crypto]") {
  CHECK(
      Hex(crypto::HmacSha256(Repeat(0xaa, 131),
                             AsBytes("Test Using Larger Than Block-Size Key - Hash Key First"))) ==
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST_CASE("hmac-sha256 accepts an empty message", "[crypto]") {
  CHECK(Hex(crypto::HmacSha256(AsBytes("key"), Bytes{})) ==
        "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0");
}

// Regression: OpenSSL 3.0 HMAC() returns NULL for null (empty) spans, which
// once made HmacSha256 return 32 zero bytes. The expected value is
// Python's hmac.new(b"", b"", sha256).
TEST_CASE("hmac-sha256 with an empty key and an empty message is not all zeros", "[crypto]") {
  CHECK(Hex(crypto::HmacSha256(Bytes{}, Bytes{})) ==
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

// --- base64 (RFC 4648) ------------------------------------------------------

TEST_CASE("base64 encodes the RFC 4648 section 10 vectors", "[crypto]") {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (auto [plain, encoded] : vectors) {
    INFO("plain: " << plain);
    CHECK(crypto::Base64Encode(AsBytes(plain)) == encoded);
    auto decoded = crypto::Base64Decode(encoded);
    REQUIRE(decoded.has_value());
    CHECK(AsChars(*decoded) == plain);
  }
}

TEST_CASE("base64 uses + and / and base64url uses - and _", "[crypto]") {
  Bytes data = {0xfb, 0xff, 0xbf};
  CHECK(crypto::Base64Encode(data) == "+/+/");
  CHECK(crypto::Base64UrlEncode(data) == "-_-_");
  CHECK(crypto::Base64UrlDecode("-_-_") == std::optional<Bytes>(data));
  CHECK_FALSE(crypto::Base64UrlDecode("+/+/").has_value());
  CHECK_FALSE(crypto::Base64Decode("-_-_").has_value());
}

TEST_CASE("base64url round-trips every length without padding", "[crypto]") {
  Bytes data;
  for (int n = 0; n < 70; ++n) {
    std::string encoded = crypto::Base64UrlEncode(data);
    INFO("length " << n << " encoded " << encoded);
    CHECK(encoded.find('=') == std::string::npos);
    CHECK(encoded.size() == (data.size() * 4 + 2) / 3);
    CHECK(crypto::Base64UrlDecode(encoded) == std::optional<Bytes>(data));
    CHECK(crypto::Base64Decode(crypto::Base64Encode(data)) == std::optional<Bytes>(data));
    data.push_back(static_cast<std::uint8_t>(n * 37 + 250));
  }
}

TEST_CASE("base64url encodes the RFC 4648 vectors without padding", "[crypto]") {
  CHECK(crypto::Base64UrlEncode(AsBytes("f")) == "Zg");
  CHECK(crypto::Base64UrlEncode(AsBytes("fo")) == "Zm8");
  CHECK(crypto::Base64UrlEncode(AsBytes("foobar")) == "Zm9vYmFy");
  CHECK(crypto::Base64UrlDecode("Zg") == std::optional<Bytes>(ToBytes("f")));
  // Padding is not part of the unpadded form.
  CHECK_FALSE(crypto::Base64UrlDecode("Zg==").has_value());
}

TEST_CASE("base64 decoding rejects characters outside the alphabet", "[crypto]") {
  using namespace std::string_view_literals;
  for (std::string_view bad :
       {"Zm9v\n"sv, "Zm9v "sv, " Zm9v"sv, "Zm*v"sv, "Zm9\x80"sv, "Zm9v\r\n"sv, "Zm\0v"sv}) {
    INFO("input: " << bad);
    CHECK_FALSE(crypto::Base64Decode(bad).has_value());
    CHECK_FALSE(crypto::Base64UrlDecode(bad).has_value());
  }
}

TEST_CASE("base64 decoding rejects missing, extra and misplaced padding", "[crypto]") {
  for (std::string_view bad : {"Zg", "Zg=", "Zm8", "Zg===", "Z===", "====", "=",
                               "Zg==Zg==", "Z=g=", "Zm=v", "Zm9vYg=", "Zm9vYg===", "Zm8=="}) {
    INFO("input: " << bad);
    CHECK_FALSE(crypto::Base64Decode(bad).has_value());
  }
}

TEST_CASE("base64 decoding rejects an impossible length", "[crypto]") {
  CHECK_FALSE(crypto::Base64Decode("Zm9vY").has_value());
  CHECK_FALSE(crypto::Base64UrlDecode("Zm9vY").has_value());
  CHECK_FALSE(crypto::Base64UrlDecode("Z").has_value());
}

TEST_CASE("base64 decoding rejects non-zero trailing bits", "[crypto]") {
  // "Zg==" is "f"; "Zh==" carries the same byte with a set padding bit.
  CHECK_FALSE(crypto::Base64Decode("Zh==").has_value());
  CHECK_FALSE(crypto::Base64Decode("Zm9=").has_value());  // "fo" is "Zm8="
  CHECK_FALSE(crypto::Base64UrlDecode("Zh").has_value());
  CHECK_FALSE(crypto::Base64UrlDecode("Zm9").has_value());
  CHECK(crypto::Base64Decode("Zm8=").has_value());
}

// --- constant-time comparison -----------------------------------------------

TEST_CASE("constant-time comparison compares bytes and lengths", "[crypto]") {
  CHECK(crypto::ConstantTimeEqual(AsBytes("abc"), AsBytes("abc")));
  CHECK(crypto::ConstantTimeEqual(ByteView(), AsBytes("")));
  CHECK_FALSE(crypto::ConstantTimeEqual(AsBytes("abc"), AsBytes("abd")));
  CHECK_FALSE(crypto::ConstantTimeEqual(AsBytes("abc"), AsBytes("ab")));
}

// --- random bytes -----------------------------------------------------------

TEST_CASE("random bytes have the requested length and differ between calls", "[crypto]") {
  CHECK(crypto::RandomBytes(0).empty());
  Bytes a = crypto::RandomBytes(32);
  Bytes b = crypto::RandomBytes(32);
  CHECK(a.size() == 32);
  CHECK(a != b);
}

// --- Ed25519 (RFC 8032 section 7.1) -----------------------------------------

TEST_CASE("ed25519 derives the RFC 8032 public keys and signatures from the seeds", "[crypto]") {
  for (const Ed25519Vector& v : kRfc8032Vectors) {
    INFO(v.name);
    Bytes message = FromHex(v.message);
    auto key = KeyFromSeed(FromHex(v.secret_key));
    CHECK(Hex(key->PublicKey()) == v.public_key);
    CHECK(Hex(key->Sign(message)) == v.signature);
    CHECK(key->Seed() == FromHex(v.secret_key));
  }
}

TEST_CASE("ed25519 verify accepts the RFC 8032 signatures", "[crypto]") {
  for (const Ed25519Vector& v : kRfc8032Vectors) {
    INFO(v.name);
    CHECK(crypto::Ed25519Verify(FromHex(v.public_key), FromHex(v.message), FromHex(v.signature)));
  }
}

TEST_CASE("ed25519 verify rejects any flipped bit in the message", "[crypto]") {
  for (const Ed25519Vector& v : kRfc8032Vectors) {
    INFO(v.name);
    Bytes key = FromHex(v.public_key);
    Bytes message = FromHex(v.message);
    Bytes signature = FromHex(v.signature);
    for (std::size_t bit = 0; bit < message.size() * 8; ++bit) {
      message[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      CHECK_FALSE(crypto::Ed25519Verify(key, message, signature));
      message[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    }
    // A longer or shorter message is a different message.
    Bytes longer = message;
    longer.push_back(0);
    CHECK_FALSE(crypto::Ed25519Verify(key, longer, signature));
    if (!message.empty()) {
      Bytes shorter(message.begin(), message.end() - 1);
      CHECK_FALSE(crypto::Ed25519Verify(key, shorter, signature));
    }
  }
}

TEST_CASE("ed25519 verify rejects any flipped bit in the signature", "[crypto]") {
  for (const Ed25519Vector& v : kRfc8032Vectors) {
    INFO(v.name);
    Bytes key = FromHex(v.public_key);
    Bytes message = FromHex(v.message);
    Bytes signature = FromHex(v.signature);
    for (std::size_t bit = 0; bit < signature.size() * 8; ++bit) {
      signature[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      INFO("bit " << bit);
      CHECK_FALSE(crypto::Ed25519Verify(key, message, signature));
      signature[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    }
  }
}

TEST_CASE("ed25519 verify rejects any flipped bit in the public key", "[crypto]") {
  for (const Ed25519Vector& v : kRfc8032Vectors) {
    INFO(v.name);
    Bytes key = FromHex(v.public_key);
    Bytes message = FromHex(v.message);
    Bytes signature = FromHex(v.signature);
    for (std::size_t bit = 0; bit < key.size() * 8; ++bit) {
      key[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      INFO("bit " << bit);
      CHECK_FALSE(crypto::Ed25519Verify(key, message, signature));
      key[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    }
  }
}

TEST_CASE("ed25519 verify rejects a signature by another key", "[crypto]") {
  const Ed25519Vector& a = kRfc8032Vectors[1];
  const Ed25519Vector& b = kRfc8032Vectors[2];
  CHECK_FALSE(
      crypto::Ed25519Verify(FromHex(b.public_key), FromHex(a.message), FromHex(a.signature)));
}

TEST_CASE("ed25519 verify rejects a signature whose scalar is not reduced", "[crypto]") {
  // S + L, where L is the group order, is the same scalar mod L; RFC 8032
  // section 5.1.7 requires rejecting S >= L so signatures are not malleable.
  static constexpr std::uint8_t kOrder[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
                                              0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
                                              0,    0,    0,    0,    0,    0,    0,    0,
                                              0,    0,    0,    0,    0,    0,    0,    0x10};
  const Ed25519Vector& v = kRfc8032Vectors[0];
  Bytes signature = FromHex(v.signature);
  unsigned carry = 0;
  for (int i = 0; i < 32; ++i) {
    unsigned sum = signature[32 + i] + kOrder[i] + carry;
    signature[32 + i] = static_cast<std::uint8_t>(sum);
    carry = sum >> 8;
  }
  REQUIRE(carry == 0);
  CHECK_FALSE(crypto::Ed25519Verify(FromHex(v.public_key), FromHex(v.message), signature));
}

TEST_CASE("ed25519 verify rejects keys and signatures of the wrong size", "[crypto]") {
  const Ed25519Vector& v = kRfc8032Vectors[0];
  Bytes key = FromHex(v.public_key);
  Bytes signature = FromHex(v.signature);
  Bytes message = FromHex(v.message);
  Bytes short_key(key.begin(), key.end() - 1);
  Bytes long_signature = signature;
  long_signature.push_back(0);
  Bytes short_signature(signature.begin(), signature.end() - 1);
  CHECK_FALSE(crypto::Ed25519Verify(short_key, message, signature));
  CHECK_FALSE(crypto::Ed25519Verify(key, message, long_signature));
  CHECK_FALSE(crypto::Ed25519Verify(key, message, short_signature));
  CHECK_FALSE(crypto::Ed25519Verify(ByteView(), message, ByteView()));
}

TEST_CASE("ed25519 key loading rejects a seed that is not 32 bytes", "[crypto]") {
  for (std::size_t n : {0, 31, 33, 64}) {
    auto key = crypto::Ed25519PrivateKey::FromSeed(Bytes(n, 1));
    CHECK_FALSE(key);
  }
}

TEST_CASE("ed25519 keys round-trip through PEM", "[crypto]") {
  auto key = KeyFromSeed(FromHex(kRfc8032Vectors[0].secret_key));
  std::string pem = key->ToPem();
  CHECK(pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0) == 0);
  auto again = crypto::Ed25519PrivateKey::FromPem(pem);
  REQUIRE(again);
  CHECK(again->Seed() == key->Seed());
  CHECK(again->PublicKey() == key->PublicKey());
}

TEST_CASE("ed25519 PEM loading rejects text that is not an Ed25519 key", "[crypto]") {
  for (std::string_view bad :
       {std::string_view(""), std::string_view("garbage"),
        std::string_view("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}) {
    auto key = crypto::Ed25519PrivateKey::FromPem(bad);
    CHECK_FALSE(key);
  }
}

TEST_CASE("ed25519 generates distinct keys that sign and verify", "[crypto]") {
  auto a = crypto::Ed25519PrivateKey::Generate();
  auto b = crypto::Ed25519PrivateKey::Generate();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->PublicKey() != b->PublicKey());
  auto signature = a->Sign(AsBytes("hello"));
  CHECK(crypto::Ed25519Verify(a->PublicKey(), AsBytes("hello"), signature));
  CHECK_FALSE(crypto::Ed25519Verify(b->PublicKey(), AsBytes("hello"), signature));
}

// Regression: an empty view once reached BIO_new_mem_buf, which refuses a null
// pointer, and was reported as Internal("out of memory").
TEST_CASE("ed25519 PEM loading reports an empty null view as data loss", "[crypto]") {
  auto key = crypto::Ed25519PrivateKey::FromPem(std::string_view());
  CHECK_FALSE(key);
}

// --- Ed25519Verifier: the key parsed once --------------------------------------

TEST_CASE("an ed25519 verifier accepts the RFC 8032 signatures and rejects flipped bits",
          "[crypto]") {
  for (const Ed25519Vector& v : kRfc8032Vectors) {
    INFO(v.name);
    auto verifier = crypto::Ed25519Verifier::Create(FromHex(v.public_key));
    REQUIRE(verifier);
    Bytes message = FromHex(v.message);
    Bytes signature = FromHex(v.signature);
    // One object answers many calls, the way a log's checkpoints use it.
    for (int round = 0; round < 3; ++round) CHECK(verifier->Verify(message, signature));
    for (std::size_t bit = 0; bit < signature.size() * 8; bit += 7) {
      signature[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      INFO("signature bit " << bit);
      CHECK_FALSE(verifier->Verify(message, signature));
      signature[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    }
    Bytes longer = message;
    longer.push_back(0);
    CHECK_FALSE(verifier->Verify(longer, signature));
    CHECK(verifier->Verify(message, signature));
  }
}

TEST_CASE("an ed25519 verifier rejects another key's signature and wrong sizes", "[crypto]") {
  const Ed25519Vector& a = kRfc8032Vectors[1];
  const Ed25519Vector& b = kRfc8032Vectors[2];
  auto verifier = crypto::Ed25519Verifier::Create(FromHex(b.public_key));
  REQUIRE(verifier);
  CHECK_FALSE(verifier->Verify(FromHex(a.message), FromHex(a.signature)));
  Bytes signature = FromHex(b.signature);
  Bytes short_signature(signature.begin(), signature.end() - 1);
  CHECK_FALSE(verifier->Verify(FromHex(b.message), short_signature));
  CHECK_FALSE(verifier->Verify(FromHex(b.message), ByteView()));
  Bytes key = FromHex(b.public_key);
  CHECK_FALSE(crypto::Ed25519Verifier::Create(Bytes(key.begin(), key.end() - 1)));
  CHECK_FALSE(crypto::Ed25519Verifier::Create(ByteView()));
}

TEST_CASE("base64 decoding accepts exactly the canonical encodings of the last group", "[crypto]") {
  // Every final group of two or three alphabet characters with its padding,
  // after a full group: decodes iff it is what encoding its bytes gives back.
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t accepted = 0;
  for (char a : alphabet) {
    for (char b : alphabet) {
      for (const std::string& tail : {std::string{a, b, '=', '='}, std::string{a, b, 'A', '='},
                                      std::string{a, b, 'B', '='}, std::string{a, b, '/', '='}}) {
        const std::string text = "QUJD" + tail;
        auto decoded = crypto::Base64Decode(text);
        if (decoded) {
          ++accepted;
          CHECK(crypto::Base64Encode(*decoded) == text);
        }
      }
    }
  }
  // "ab==" carries one byte: 256 spellings. "abA=" always decodes ('A' has
  // its low two bits clear); 'B' and '/' never do.
  CHECK(accepted == 256 + 64 * 64);
  for (std::string_view bad : {"QUJD=AAA", "QUJDA===", "QU=D", "Q===", "QUJD\n"}) {
    INFO(bad);
    CHECK_FALSE(crypto::Base64Decode(bad).has_value());
  }
}

TEST_CASE("base64 into a caller's buffer gives the allocating functions' answers", "[crypto]") {
  for (std::size_t n = 0; n <= 70; ++n) {
    Bytes data(n);
    for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<std::uint8_t>(i * 37 + n);
    std::string text(crypto::Base64EncodedSize(n), '?');
    crypto::Base64EncodeTo(data, text.data());
    CHECK(text == crypto::Base64Encode(data));
    Bytes out(n);
    auto size = crypto::Base64DecodeTo(text, out);
    REQUIRE(size.has_value());
    CHECK(*size == n);
    CHECK(out == data);
    if (n > 0) {
      Bytes small(n - 1);
      CHECK_FALSE(crypto::Base64DecodeTo(text, small).has_value());
    }
  }
  Bytes room(16);
  for (std::string_view bad : {"QUJD=AAA", "QUJDA===", "QU=D", "Q===", "QUJD\n", "QR==", "QUJ="}) {
    INFO(bad);
    CHECK(crypto::Base64DecodeTo(bad, room).has_value() == crypto::Base64Decode(bad).has_value());
    CHECK_FALSE(crypto::Base64DecodeTo(bad, room).has_value());
  }
}
