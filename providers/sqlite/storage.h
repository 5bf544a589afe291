#pragma once

// File-level operations on SQLite database files, with no knowledge of events:
// create, probe, snapshot, restore, quarantine. The provider (provider.h) wraps
// these in two-phase events. Every function is safe to call while other
// processes read and write the database through SQLite.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "domain/bytes.h"
#include "domain/status.h"

namespace via::providers::sqlite {

enum class StorageHealth {
  kOk,          // opens read-only, header and schema read (and, for a full check, integrity_check ok)
  kMissing,     // no file
  kUnreadable,  // exists but cannot be opened/read (permissions, not a database, locked out)
  kCorrupt,     // opens but reading it reports damage
};

struct Probe {
  StorageHealth health = StorageHealth::kMissing;
  std::string detail;  // human-readable: the first problem, errno text, ...
};

// The readiness probe: the file is there and readable, opens read-only, and
// its header and whole schema read. Costs the same on an empty and a 10 GB
// database (damage inside tables and indexes is CheckDatabase's job). Never
// modifies or creates the file, and never open(2)s it outside SQLite (which
// would drop this process's SQLite locks on it). Never throws.
Probe ProbeDatabase(const std::filesystem::path& db);

// The full check: ProbeDatabase, then PRAGMA integrity_check in one read
// transaction. Reads every page; safe while other connections write.
Probe CheckDatabase(const std::filesystem::path& db);

// True when `file` exists and begins with the 16-byte SQLite header
// "SQLite format 3\0" (any SQLite bytes at all, even if damaged).
bool HoldsSqliteBytes(const std::filesystem::path& file);

// Creates an empty database in WAL mode at `db` (parent directories included),
// durably (file and directory fsynced). AlreadyExists when a file is there.
Status CreateDatabase(const std::filesystem::path& db);

struct FileDigest {
  Hash256 sha256{};
  std::uint64_t bytes = 0;
  std::uint64_t page_count = 0;
  bool operator==(const FileDigest&) const = default;
};

// Progress callback: (done, total) in pages. May be null.
using Progress = std::function<void(std::uint64_t done, std::uint64_t total)>;

// Online backup of the live database `db` into `dest`: writes `dest` + ".tmp"
// through the SQLite backup API, fsyncs it, runs integrity_check on it, hashes
// it, renames it to `dest` and fsyncs the directory. On any error the temp file
// is removed and `dest` is never created. Works while other connections write.
// The fsync, the hash and the check need only the finished temp file, so they
// run side by side on two threads (this one and one it starts and joins); the
// check is split into parts (quick_check and integrity_check of each table)
// that together check exactly what one integrity_check does.
Result<FileDigest> TakeSnapshot(const std::filesystem::path& db, const std::filesystem::path& dest,
                                const Progress& progress = nullptr);

// SHA-256, size and page count of a snapshot file as it is on disk.
Result<FileDigest> DigestFile(const std::filesystem::path& file);

// Writes the content of `snapshot` into the live database `db` through SQLite
// (backup API into an open connection to `db`), as one write transaction, so
// that concurrent readers see either the old or the new content, never a mix,
// and concurrent writers wait (busy timeout) or get SQLITE_BUSY. Never copies
// a file over an open database. The snapshot is opened read-only and must pass
// integrity_check (on two threads, as in TakeSnapshot) before `db` is touched:
// DataLoss "snapshot_corrupt" otherwise. The copy is page-exact from the state
// that passed, so the restored database is not checked again.
Status RestoreInto(const std::filesystem::path& snapshot, const std::filesystem::path& db,
                   const Progress& progress = nullptr);

// Moves `db` and its -wal/-shm companions aside to `<db>.corrupt-<suffix>`
// (never deletes bytes) and returns the new path of the main file.
Result<std::filesystem::path> Quarantine(const std::filesystem::path& db,
                                         const std::string& suffix);

}  // namespace via::providers::sqlite
