#pragma once

// Every on-disk name under a home below its top-level folders (those are
// Home's, eventstore/home.h), and every command id derived from an intent:
// built here and nowhere else, so that a provider, a command and `via recover`
// always agree on them (as leveldb's db/filename.h).
//
//   addons/<addon_id>/.lock                       the add-on's file lock
//   addons/<addon_id>/<name>                      a provider's storage file
//                                                 (SQLite: data.sqlite)
//   snapshots/<addon_id>/<snapshot_id>.<ext>      a snapshot (sqlite, dump, …)
//   keys/providers/<provider>.<ext>               a provider's server secrets
//   <file>.tmp                                    written, then renamed into place
//   <file>.creating-<hex>, <file>.via-export-<hex>  private temporary copies
//   <file>.corrupt-<suffix>                       moved aside, never deleted
//   <file>.<what>                                 a tool's side file (.log, .list)
//
// A provider picks its own storage file name and snapshot extension (it owns
// its layout); the shape of the path is this file's.
//
// Command ids of completions (the two-phase rule, providers/provider.h): a
// completion is appended under an id derived from its intent, so a retry, a
// second process or `via recover` appends it once.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "eventstore/home.h"

namespace via::eventstore {

// --- Files ------------------------------------------------------------------

std::filesystem::path AddonLockFile(const Home& home, const std::string& addon_id);
std::filesystem::path AddonFile(const Home& home, const std::string& addon_id,
                                std::string_view name);
std::filesystem::path SnapshotFile(const Home& home, const std::string& addon_id,
                                   const std::string& snapshot_id, std::string_view extension);
std::filesystem::path ProviderKeyFile(const Home& home, std::string_view provider,
                                      std::string_view extension);

// <file><suffix>: a side file next to `file` (".log", ".list", "-wal", …).
std::filesystem::path SideFile(const std::filesystem::path& file, std::string_view suffix);
// <file>.creating-<hex>: a private copy built before it is renamed to `file`.
std::filesystem::path CreatingFile(const std::filesystem::path& file, std::string_view hex);
// <file>.via-export-<hex>: an export's copy before it is renamed to `file`.
std::filesystem::path ExportTempFile(const std::filesystem::path& file, std::string_view hex);
// <file>.corrupt-<suffix>: where a damaged file is moved aside.
std::filesystem::path QuarantineFile(const std::filesystem::path& file, std::string_view suffix);

// True for a name the temporary forms above give (.tmp, .tmp.<pid>,
// .creating-, .via-export-): files no event trusts.
bool IsTemporaryFileName(std::string_view name);
// True for <snapshot>.tmp: an interrupted snapshot's file, which `via
// recover` may remove (no event names it).
bool IsSnapshotTempFileName(std::string_view name);

// --- Command ids --------------------------------------------------------------

std::string ProvisionCommandId(const std::string& addon_id);
std::string SnapshotCommandId(const std::string& snapshot_id);
std::string RestoreCommandId(const std::string& addon_id, const std::string& snapshot_id,
                             const std::string& safety_snapshot_id);
// RepairRequested under the state's seq; the completion of a repair that runs
// after its intent (PostgreSQL) and `via recover`'s finish of one (SQLite).
std::string RepairCommandId(const std::string& addon_id, std::uint64_t seq);
std::string RepairDoneCommandId(const std::string& addon_id, std::uint64_t seq);
std::string RepairFinishCommandId(const std::string& addon_id, std::uint64_t seq);
// GenerationDelivered, once per generation, app and release.
std::string DeliverCommandId(const std::string& addon_id, std::uint32_t generation,
                             const std::string& app, const std::string& release);
// A step of an operator's command run under `command_id` ("" stays "").
std::string StepCommandId(const std::string& command_id, const std::string& step);
// An operator's --command-id ID, keyed on the command line's digest too.
std::string OperatorCommandId(const std::string& id, std::string_view line_digest_hex);

}  // namespace via::eventstore
