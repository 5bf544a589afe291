// Fuzzes the CLI's other file and key inputs: the key files of a home
// (keys/signing.key and keys/workload.key, PKCS#8 PEM; keys/credentials.key,
// 32 raw bytes), read by every command that opens the log or serves, and the
// verifier key string of `via audit verify --key`. Invariants (abort() on a
// breach):
//   - a damaged key file is DataLoss "bad_key", never another error or a crash,
//     and it is never replaced (its bytes are unchanged afterwards);
//   - a PEM file that loads holds an Ed25519 key whose PEM loads again to the
//     same key;
//   - a credentials key loads exactly when it holds 32 bytes, and then as is;
//   - a verifier key string is InvalidArgument "bad_verifier_key" or parses
//     to a key whose text parses back to the same key.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "crypto/crypto.h"
#include "eventstore/checkpoint.h"
#include "eventstore/event_log.h"

namespace fs = std::filesystem;

namespace {

fs::path WorkDir() {
  static fs::path dir = [] {
    std::string pattern = (fs::temp_directory_path() / "via-fuzz-keys-XXXXXX").string();
    return fs::path(::mkdtemp(pattern.data()));
  }();
  return dir;
}

void WriteFile(const fs::path& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string ReadBack(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void CheckBadKey(const via::Status& status) {
  if (status.code() != via::StatusCode::kDataLoss || status.reason() != "bad_key") std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const fs::path key_file = WorkDir() / "signing.key";
  const fs::path secret_file = WorkDir() / "credentials.key";

  WriteFile(key_file, input);
  auto key = via::eventstore::LoadOrCreateSigningKey(key_file);
  if (ReadBack(key_file) != input) std::abort();
  if (key.ok()) {
    auto again = via::crypto::Ed25519PrivateKey::FromPem((*key)->ToPem());
    if (!again || again->PublicKey() != (*key)->PublicKey()) std::abort();
  } else {
    CheckBadKey(key.status());
  }

  WriteFile(secret_file, input);
  auto secret = via::eventstore::LoadOrCreateSecret(secret_file);
  if (ReadBack(secret_file) != input) std::abort();
  if (secret.ok() != (size == 32)) std::abort();
  if (secret.ok() && std::string_view(reinterpret_cast<const char*>(secret->data()),
                                      secret->size()) != input) {
    std::abort();
  }
  if (!secret.ok()) CheckBadKey(secret.status());

  auto verifier = via::eventstore::VerifierKey::Parse(input);
  if (verifier.ok()) {
    auto again = via::eventstore::VerifierKey::Parse(verifier->ToString());
    if (!again.ok() || !(*again == *verifier)) std::abort();
  } else if (verifier.status().code() != via::StatusCode::kInvalidArgument ||
             verifier.status().reason() != "bad_verifier_key") {
    std::abort();
  }
  return 0;
}
