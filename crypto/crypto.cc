#include "crypto/crypto.h"

// Sha256Concat uses SHA256_Init/Update/Final, deprecated in OpenSSL 3.0 in
// favour of EVP, which costs an allocation per message there.
#define OPENSSL_SUPPRESS_DEPRECATED

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace via::crypto {
namespace {

// OpenSSL's library start-up without reading openssl.cnf (nothing here is
// configured through it, and loading it was a tenth of a short command's
// instructions) and without an atexit cleanup. Called before every EVP use.
void InitOnce() {
  static const bool done = OPENSSL_init_crypto(
      OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, nullptr) == 1;
  (void)done;
}

// PKCS#8 (RFC 8410) of an Ed25519 private key, without attributes or public
// key: SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING {
// OCTET STRING seed } }. What ToPem() writes, so it is read without OpenSSL's
// decoder machinery (most of a command's start-up).
constexpr std::uint8_t kEd25519Pkcs8Prefix[] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30,
                                                0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
                                                0x04, 0x22, 0x04, 0x20};

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

}  // namespace

// SHA-256 goes through OpenSSL's low-level functions: no EVP fetch, no
// provider to start, no allocation per message.
struct Sha256::Impl {
  SHA256_CTX ctx;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) { SHA256_Init(&impl_->ctx); }
Sha256::~Sha256() = default;

Sha256& Sha256::Update(ByteView data) {
  SHA256_Update(&impl_->ctx, data.data(), data.size());
  return *this;
}

Hash256 Sha256::Final() {
  Hash256 out{};
  SHA256_Final(out.data(), &impl_->ctx);
  SHA256_Init(&impl_->ctx);
  return out;
}

// OpenSSL 3's one-shot SHA256() goes through EVP (a provider fetch per call,
// about 3x the low-level calls for short inputs such as Merkle nodes).
Hash256 Sha256::Digest(ByteView data) { return Sha256Concat({data}); }

Hash256 Sha256Concat(std::initializer_list<ByteView> parts) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  for (ByteView part : parts) SHA256_Update(&ctx, part.data(), part.size());
  Hash256 out{};
  SHA256_Final(out.data(), &ctx);
  return out;
}

// RFC 2104 over the low-level SHA-256 (OpenSSL's HMAC() would start its
// provider machinery for a few derivations per command).
Hash256 HmacSha256(ByteView key, ByteView data) {
  constexpr std::size_t kBlock = 64;
  std::uint8_t block[kBlock] = {};
  if (key.size() > kBlock) {
    Hash256 hashed = Sha256::Digest(key);
    std::memcpy(block, hashed.data(), hashed.size());
  } else if (!key.empty()) {
    std::memcpy(block, key.data(), key.size());
  }
  std::uint8_t inner_pad[kBlock], outer_pad[kBlock];
  for (std::size_t i = 0; i < kBlock; ++i) {
    inner_pad[i] = block[i] ^ 0x36;
    outer_pad[i] = block[i] ^ 0x5c;
  }
  Hash256 inner = Sha256Concat({ByteView(inner_pad, kBlock), data});
  Hash256 out = Sha256Concat({ByteView(outer_pad, kBlock), ByteView(inner)});
  OPENSSL_cleanse(block, sizeof block);
  OPENSSL_cleanse(inner_pad, sizeof inner_pad);
  OPENSSL_cleanse(outer_pad, sizeof outer_pad);
  return out;
}

// The kernel's CSPRNG (getrandom(2)): no DRBG to instantiate in every short
// process. Blocks only before the kernel pool is initialized at boot.
Bytes RandomBytes(std::size_t n) {
  Bytes out(n);
  std::size_t done = 0;
  while (done < n) {
    ssize_t got = ::getrandom(out.data() + done, n - done, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) throw std::runtime_error("getrandom failed");  // a broken host
    done += static_cast<std::size_t>(got);
  }
  return out;
}

namespace {

constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Encoded length without padding.
std::size_t UnpaddedSize(std::size_t bytes) {
  return bytes / 3 * 4 + (bytes % 3 == 0 ? 0 : bytes % 3 + 1);
}

// Writes UnpaddedSize(data.size()) characters, then the padding if `pad`.
void EncodeTo(ByteView data, const char* alphabet, bool pad, char* out) {
  const std::size_t full = data.size() / 3;
  const std::size_t rest = data.size() % 3;
  std::size_t o = 0;
  for (std::size_t i = 0; i < full * 3; i += 3) {
    std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    out[o++] = alphabet[(v >> 18) & 63];
    out[o++] = alphabet[(v >> 12) & 63];
    out[o++] = alphabet[(v >> 6) & 63];
    out[o++] = alphabet[v & 63];
  }
  if (rest > 0) {
    const std::size_t i = full * 3;
    std::uint32_t v = (data[i] << 16) | (rest == 2 ? data[i + 1] << 8 : 0);
    out[o++] = alphabet[(v >> 18) & 63];
    out[o++] = alphabet[(v >> 12) & 63];
    if (rest == 2) out[o++] = alphabet[(v >> 6) & 63];
    if (pad) {
      for (std::size_t k = rest; k < 3; ++k) out[o++] = '=';
    }
  }
}

std::string Encode(ByteView data, const char* alphabet, bool pad) {
  std::string out(pad ? Base64EncodedSize(data.size()) : UnpaddedSize(data.size()), '\0');
  EncodeTo(data, alphabet, pad, out.data());
  return out;
}

// The 6-bit value of every byte in one alphabet, -1 for bytes outside it.
struct DecodeTable {
  std::int8_t value[256];
  explicit constexpr DecodeTable(const char* alphabet) : value() {
    for (int c = 0; c < 256; ++c) value[c] = -1;
    for (int i = 0; i < 64; ++i) {
      value[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    }
  }
  int operator[](char c) const { return value[static_cast<unsigned char>(c)]; }
};

constexpr DecodeTable kStdTable(kStd);
constexpr DecodeTable kUrlTable(kUrl);

// The characters that carry data (padding stripped), or nullopt for a length
// no encoding has.
std::optional<std::string_view> Unpadded(std::string_view text, bool url) {
  std::size_t len = text.size();
  if (!url) {
    if (len % 4 != 0) return std::nullopt;
    if (len > 0 && text[len - 1] == '=') --len;
    if (len > 0 && text[len - 1] == '=') --len;
  }
  if (len % 4 == 1) return std::nullopt;
  return text.substr(0, len);
}

// Decodes unpadded characters into out[0 .. len * 6 / 8), which must fit.
bool DecodeTo(std::string_view text, const DecodeTable& table, std::uint8_t* out) {
  const std::size_t len = text.size();
  std::size_t o = 0;
  std::size_t i = 0;
  for (; i + 4 <= len; i += 4) {
    const int a = table[text[i]], b = table[text[i + 1]], c = table[text[i + 2]],
              d = table[text[i + 3]];
    if ((a | b | c | d) < 0) return false;
    const std::uint32_t v = (static_cast<std::uint32_t>(a) << 18) |
                            (static_cast<std::uint32_t>(b) << 12) |
                            (static_cast<std::uint32_t>(c) << 6) | static_cast<std::uint32_t>(d);
    out[o++] = static_cast<std::uint8_t>(v >> 16);
    out[o++] = static_cast<std::uint8_t>(v >> 8);
    out[o++] = static_cast<std::uint8_t>(v);
  }
  // Two or three characters left: one or two bytes, and the bits left over
  // must be zero, so that every byte string has one encoding.
  if (len - i >= 2) {
    const int a = table[text[i]], b = table[text[i + 1]];
    const int c = len - i == 3 ? table[text[i + 2]] : 0;
    if ((a | b | c) < 0) return false;
    if (len - i == 2 ? (b & 0x0f) != 0 : (c & 0x03) != 0) return false;
    out[o++] = static_cast<std::uint8_t>((a << 2) | (b >> 4));
    if (len - i == 3) out[o++] = static_cast<std::uint8_t>(((b & 0x0f) << 4) | (c >> 2));
  }
  return true;
}

std::optional<Bytes> Decode(std::string_view text, bool url) {
  auto data = Unpadded(text, url);
  if (!data) return std::nullopt;
  Bytes out(data->size() * 6 / 8);
  if (!DecodeTo(*data, url ? kUrlTable : kStdTable, out.data())) return std::nullopt;
  return out;
}

}  // namespace

std::string Base64Encode(ByteView data) { return Encode(data, kStd, true); }
void Base64EncodeTo(ByteView data, char* out) { EncodeTo(data, kStd, true, out); }
std::optional<std::size_t> Base64DecodeTo(std::string_view text, std::span<std::uint8_t> out) {
  auto data = Unpadded(text, false);
  if (!data) return std::nullopt;
  const std::size_t size = data->size() * 6 / 8;
  if (size > out.size() || !DecodeTo(*data, kStdTable, out.data())) return std::nullopt;
  return size;
}
std::optional<Bytes> Base64Decode(std::string_view text) { return Decode(text, false); }
std::string Base64UrlEncode(ByteView data) { return Encode(data, kUrl, false); }
std::optional<Bytes> Base64UrlDecode(std::string_view text) { return Decode(text, true); }

bool ConstantTimeEqual(ByteView a, ByteView b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

struct Ed25519PrivateKey::Key {
  PkeyPtr pkey;
  // A signing context initialized once for pkey. Sign() copies it rather than
  // initializing a new one, which in OpenSSL 3 fetches the algorithm anew
  // (measured at up to a quarter of a signature in an append, where caches are
  // cold). Null if the initialization failed.
  MdCtxPtr sign_template;
  std::mutex sign_template_mutex;  // EVP_MD_CTX_copy_ex is not documented as thread-safe
};

Ed25519PrivateKey::Ed25519PrivateKey(std::unique_ptr<Key> key) : key_(std::move(key)) {
  std::size_t len = public_key_.size();
  EVP_PKEY_get_raw_public_key(key_->pkey.get(), public_key_.data(), &len);
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx && EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_->pkey.get()) == 1) {
    key_->sign_template = std::move(ctx);
  }
}
Ed25519PrivateKey::~Ed25519PrivateKey() = default;

std::unique_ptr<Ed25519PrivateKey> Ed25519PrivateKey::Generate() {
  Bytes seed = RandomBytes(32);
  return FromSeed(seed);
}

std::unique_ptr<Ed25519PrivateKey> Ed25519PrivateKey::FromSeed(ByteView seed) {
  if (seed.size() != 32) return nullptr;
  InitOnce();
  PkeyPtr pkey(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  if (!pkey) return nullptr;
  auto key = std::make_unique<Key>();
  key->pkey = std::move(pkey);
  return std::unique_ptr<Ed25519PrivateKey>(new Ed25519PrivateKey(std::move(key)));
}

std::unique_ptr<Ed25519PrivateKey> Ed25519PrivateKey::FromPem(std::string_view pem) {
  if (pem.empty() || pem.size() > (1 << 20)) return nullptr;
  {
    // The form ToPem() writes, read directly.
    constexpr std::string_view kBegin = "-----BEGIN PRIVATE KEY-----\n";
    constexpr std::string_view kEnd = "\n-----END PRIVATE KEY-----\n";
    if (pem.size() > kBegin.size() + kEnd.size() && pem.substr(0, kBegin.size()) == kBegin &&
        pem.substr(pem.size() - kEnd.size()) == kEnd) {
      auto der = Base64Decode(pem.substr(kBegin.size(), pem.size() - kBegin.size() - kEnd.size()));
      constexpr std::size_t kPrefix = sizeof kEd25519Pkcs8Prefix;
      if (der && der->size() == kPrefix + 32 &&
          std::memcmp(der->data(), kEd25519Pkcs8Prefix, kPrefix) == 0) {
        auto key = FromSeed(ByteView(der->data() + kPrefix, 32));
        OPENSSL_cleanse(der->data(), der->size());
        return key;
      }
    }
  }
  // Any other PKCS#8 form (attributes, a public key, other line lengths).
  InitOnce();
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  // Never prompt for a passphrase: an encrypted key is simply not usable here.
  auto no_passphrase = [](char*, int, int, void*) { return 0; };
  PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!pkey || EVP_PKEY_get_id(pkey.get()) != EVP_PKEY_ED25519) return nullptr;
  auto key = std::make_unique<Key>();
  key->pkey = std::move(pkey);
  return std::unique_ptr<Ed25519PrivateKey>(new Ed25519PrivateKey(std::move(key)));
}

Bytes Ed25519PrivateKey::Seed() const {
  Bytes seed(32);
  std::size_t len = seed.size();
  EVP_PKEY_get_raw_private_key(key_->pkey.get(), seed.data(), &len);
  return seed;
}

std::string Ed25519PrivateKey::ToPem() const {
  InitOnce();
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key_->pkey.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

Ed25519Signature Ed25519PrivateKey::Sign(ByteView message) const {
  Ed25519Signature sig{};
  std::size_t len = sig.size();
  if (key_->sign_template) {
    MdCtxPtr copy(EVP_MD_CTX_new());
    bool copied = false;
    if (copy) {
      std::lock_guard<std::mutex> lock(key_->sign_template_mutex);
      copied = EVP_MD_CTX_copy_ex(copy.get(), key_->sign_template.get()) == 1;
    }
    if (copied &&
        EVP_DigestSign(copy.get(), sig.data(), &len, message.data(), message.size()) == 1) {
      return sig;
    }
    len = sig.size();  // an OpenSSL that cannot copy this context: initialize one
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1) {
    throw std::runtime_error("Ed25519 signing failed");  // cannot fail with a loaded key
  }
  return sig;
}

namespace {

bool VerifyWith(EVP_PKEY* pkey, ByteView message, ByteView signature) {
  if (signature.size() != kEd25519SignatureSize) return false;
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                          message.size()) == 1;
}

PkeyPtr PublicKeyObject(ByteView public_key) {
  if (public_key.size() != kEd25519PublicKeySize) return nullptr;
  InitOnce();
  return PkeyPtr(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(),
                                             public_key.size()));
}

}  // namespace

bool Ed25519Verify(ByteView public_key, ByteView message, ByteView signature) {
  if (signature.size() != kEd25519SignatureSize) return false;
  PkeyPtr pkey = PublicKeyObject(public_key);
  return pkey && VerifyWith(pkey.get(), message, signature);
}

struct Ed25519Verifier::Key {
  PkeyPtr pkey;
};

Ed25519Verifier::Ed25519Verifier(std::unique_ptr<Key> key) : key_(std::move(key)) {}
Ed25519Verifier::~Ed25519Verifier() = default;

std::unique_ptr<Ed25519Verifier> Ed25519Verifier::Create(ByteView public_key) {
  PkeyPtr pkey = PublicKeyObject(public_key);
  if (!pkey) return nullptr;
  auto key = std::make_unique<Key>();
  key->pkey = std::move(pkey);
  return std::unique_ptr<Ed25519Verifier>(new Ed25519Verifier(std::move(key)));
}

bool Ed25519Verifier::Verify(ByteView message, ByteView signature) const {
  return VerifyWith(key_->pkey.get(), message, signature);
}

}  // namespace via::crypto
