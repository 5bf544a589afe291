#include "providers/provider.h"

#include <algorithm>

#include "crypto/crypto.h"
#include "eventstore/filenames.h"

namespace via::providers {

Result<const SnapshotState*> TakenSnapshot(const State& state, const std::string& addon_id,
                                           const std::string& snapshot_id) {
  auto it = state.snapshots.find(snapshot_id);
  if (it == state.snapshots.end() || it->second.addon_id != addon_id) {
    return NotFound("snapshot_not_found", "no snapshot " + snapshot_id + " of " + addon_id);
  }
  const SnapshotState& snap = it->second;
  if (snap.status != SnapshotStatus::kTaken) {
    return FailedPrecondition("snapshot_not_taken", "snapshot " + snapshot_id + " is " +
                                                        SnapshotStatusName(snap.status));
  }
  if (snap.deleted) {
    return FailedPrecondition("snapshot_deleted", "snapshot " + snapshot_id + " was deleted");
  }
  return &snap;
}

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
