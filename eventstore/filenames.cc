#include "eventstore/filenames.h"

#include "storage/file.h"

namespace via::eventstore {
namespace fs = std::filesystem;

fs::path AddonLockFile(const Home& home, const std::string& addon_id) {
  return home.addon_dir(addon_id) / ".lock";
}

fs::path AddonFile(const Home& home, const std::string& addon_id, std::string_view name) {
  return home.addon_dir(addon_id) / std::string(name);
}

fs::path SnapshotFile(const Home& home, const std::string& addon_id,
                      const std::string& snapshot_id, std::string_view extension) {
  return home.snapshot_dir(addon_id) / (snapshot_id + "." + std::string(extension));
}

fs::path ProviderKeyFile(const Home& home, std::string_view provider,
                         std::string_view extension) {
  return home.keys_dir() / "providers" / (std::string(provider) + "." + std::string(extension));
}

fs::path SideFile(const fs::path& file, std::string_view suffix) {
  return fs::path(file.native() + std::string(suffix));
}

fs::path CreatingFile(const fs::path& file, std::string_view hex) {
  return SideFile(file, ".creating-" + std::string(hex));
}

fs::path ExportTempFile(const fs::path& file, std::string_view hex) {
  return SideFile(file, ".via-export-" + std::string(hex));
}

fs::path QuarantineFile(const fs::path& file, std::string_view suffix) {
  return SideFile(file, ".corrupt-" + std::string(suffix));
}

bool IsTemporaryFileName(std::string_view name) {
  // The .tmp of fileio::TempPathFor, with a pid after it for CreateExclusively.
  return name.size() > 4 &&
         (name.ends_with(".tmp") || name.find(".tmp.") != std::string_view::npos ||
          name.find(".creating-") != std::string_view::npos ||
          name.find(".via-export-") != std::string_view::npos);
}

bool IsSnapshotTempFileName(std::string_view name) {
  return name.size() > 4 && name.ends_with(".tmp");
}

std::string ProvisionCommandId(const std::string& addon_id) { return "provision/" + addon_id; }

std::string SnapshotCommandId(const std::string& snapshot_id) { return "snapshot/" + snapshot_id; }

std::string RestoreCommandId(const std::string& addon_id, const std::string& snapshot_id,
                             const std::string& safety_snapshot_id) {
  return "restore/" + addon_id + "/" + snapshot_id + "/" + safety_snapshot_id;
}

std::string RepairCommandId(const std::string& addon_id, std::uint64_t seq) {
  return "repair/" + addon_id + "/" + std::to_string(seq);
}

std::string RepairDoneCommandId(const std::string& addon_id, std::uint64_t seq) {
  return RepairCommandId(addon_id, seq) + "/done";
}

std::string RepairFinishCommandId(const std::string& addon_id, std::uint64_t seq) {
  return "repair-finish/" + addon_id + "/" + std::to_string(seq);
}

std::string DeliverCommandId(const std::string& addon_id, std::uint32_t generation,
                             const std::string& app, const std::string& release) {
  return "deliver/" + addon_id + "/" + std::to_string(generation) + "/" + app + "/" + release;
}

std::string StepCommandId(const std::string& command_id, const std::string& step) {
  return command_id.empty() ? "" : command_id + "/" + step;
}

std::string OperatorCommandId(const std::string& id, std::string_view line_digest_hex) {
  return "cli/" + id + "/" + std::string(line_digest_hex);
}

}  // namespace via::eventstore
