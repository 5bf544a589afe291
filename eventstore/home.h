#pragma once

// The home directory layout (DESIGN.md section 3) and its key files.
//
//   log/events.db  state/projections.db  keys/{log.key,log.pub,workload.key,credentials.key}
//   addons/<addon_id>/…  snapshots/<addon_id>/…  (each provider owns what is inside:
//   providers/<name>/)
//
// Secret key files are written 0600 through a temporary file, fsync and rename
// (fileio::WriteFileAtomically), so a crash never leaves a half-written key.

#include <filesystem>
#include <optional>
#include <string>

#include "domain/bytes.h"
#include "domain/status.h"
#include "storage/file.h"

namespace via::eventstore {

struct Home {
  std::filesystem::path root;

  std::filesystem::path log_db() const { return root / "log" / "events.db"; }
  // Present when the log lives on PostgreSQL: its URL (no password), one
  // line, written by `via init --log` and used by every command after it.
  std::filesystem::path log_url_file() const { return root / "log.url"; }
  // Present when this home is a `via serve` node's on a shared log: the
  // node's name, one line, written by `via serve --node NAME` once it
  // announced itself (docs/operations.md "Several nodes").
  std::filesystem::path node_file() const { return root / "node"; }
  // Commands queue on this lock (FileLock) to decide and append one at a time.
  std::filesystem::path append_lock() const { return root / "log" / "append.lock"; }
  std::filesystem::path state_db() const { return root / "state" / "projections.db"; }
  std::filesystem::path keys_dir() const { return root / "keys"; }
  std::filesystem::path log_key() const { return keys_dir() / "log.key"; }
  std::filesystem::path log_pub() const { return keys_dir() / "log.pub"; }
  std::filesystem::path workload_key() const { return keys_dir() / "workload.key"; }
  std::filesystem::path credentials_key() const { return keys_dir() / "credentials.key"; }
  std::filesystem::path addon_dir(const std::string& addon_id) const {
    return root / "addons" / addon_id;
  }
  std::filesystem::path snapshot_dir(const std::string& addon_id) const {
    return root / "snapshots" / addon_id;
  }

  // --home, else $VIA_HOME, else ${XDG_DATA_HOME:-$HOME/.local/share}/via.
  static Result<Home> Resolve(const std::optional<std::string>& flag);

  // Creates the directories that are missing (0700 for the root and keys/
  // when this call creates them). A home is created only in a missing or
  // empty directory, or used when it already holds a via log (or only the
  // folders a via home has, left by an interrupted first command); any other
  // directory is refused with InvalidArgument "not_a_via_home" and left
  // untouched.
  Status EnsureDirectories() const;

  // The URL of the home's PostgreSQL log, or nullopt for the embedded SQLite
  // log. Errors: as ReadFile; InvalidArgument "bad_log_url" for a file that
  // does not hold one valid URL.
  Result<std::optional<std::string>> LogUrl() const;
};

// A home's small files (keys, the log's URL and checkpoints) are read and
// written through the POSIX file layer (storage/file.h); these names stay
// for the callers that know them from here.
using fileio::kMaxSmallFileBytes;
using fileio::ReadFile;
using fileio::SyncDirectory;
using fileio::WriteFileAtomically;

}  // namespace via::eventstore
