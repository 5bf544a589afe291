#include "providers/provider.h"

#include <algorithm>

#include "crypto/crypto.h"
#include "eventstore/filenames.h"

namespace via::providers {

Result<fileio::Digest> Provider::ExportSnapshot(const std::string& addon_id,
                                                const std::string& snapshot_id,
                                                const std::filesystem::path& dest,
                                                ByteView expected_sha256,
                                                const PhaseProgress& progress) {
  const std::filesystem::path file = SnapshotPath(addon_id, snapshot_id);
  auto matches = [&](const fileio::Digest& digest) -> Status {
    if (!std::equal(digest.sha256.begin(), digest.sha256.end(), expected_sha256.begin(),
                    expected_sha256.end())) {
      return DataLoss("snapshot_hash_mismatch",
                      file.string() + " does not match the SHA-256 recorded in the log");
    }
    return Status::Ok();
  };
  return fileio::CopyVerified(
      file, dest, eventstore::ExportTempFile(dest, HexEncode(crypto::RandomBytes(8))), matches,
      progress);
}

}  // namespace via::providers
