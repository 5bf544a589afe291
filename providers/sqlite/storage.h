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

// Progress of long work by phase ("copy", "fsync+sha256", "integrity_check",
// ...): (phase, done, total) in bytes. Every phase is reported at least once
// when it starts and once when done == total. May be null.
using PhaseProgress =
    std::function<void(const char* phase, std::uint64_t done, std::uint64_t total)>;

// Online backup of the live database `db` into `dest`: writes `dest` + ".tmp"
// through the SQLite backup API, fsyncs and hashes it (two threads, side by
// side), renames it to `dest` and fsyncs the directory. On any error the temp
// file is removed and `dest` is never created. Works while other connections
// write. No integrity_check here: the copy is usable once durable and hashed,
// and VerifySnapshot checks it later (DESIGN.md section 5).
Result<FileDigest> TakeSnapshot(const std::filesystem::path& db, const std::filesystem::path& dest,
                                const Progress& progress = nullptr,
                                const PhaseProgress& phases = nullptr);

// SHA-256, size (fileio::DigestFile, storage/file.h) and page count of a
// snapshot file as it is on disk.
Result<FileDigest> DigestFile(const std::filesystem::path& file,
                              const PhaseProgress& phases = nullptr);

// The verification of a snapshot file: its SHA-256 and size against what the
// log recorded, and PRAGMA integrity_check, side by side on two threads (the
// check split into parts as in CheckFileIntegrity). `ok` false with `detail`
// naming the first problem (a missing file, another hash, damage); an error
// only when the check could not run at all (a lock held elsewhere).
struct SnapshotCheck {
  bool ok = false;
  std::string detail;  // "ok" or the problem
};
Result<SnapshotCheck> VerifySnapshot(const std::filesystem::path& file, ByteView expected_sha256,
                                     std::uint64_t expected_bytes,
                                     const PhaseProgress& phases = nullptr);

// Creates the database `db` (which must not exist) from the SQLite database
// in `source` (an operator's file or a snapshot): in one read transaction on
// `source`, integrity_check (unless `source_verified`) and an online backup
// into a temporary file, then WAL mode, fsync, rename, fsync of the
// directory. DataLoss "import_corrupt" when the check fails; `db` is never
// created on error.
Status ImportDatabase(const std::filesystem::path& source, const std::filesystem::path& db,
                      bool source_verified, const PhaseProgress& phases = nullptr);

// Writes the content of `snapshot` into the live database `db` through SQLite
// (backup API into an open connection to `db`), as one write transaction, so
// that concurrent readers see either the old or the new content, never a mix,
// and concurrent writers wait (busy timeout) or get SQLITE_BUSY. Never copies
// a file over an open database. The snapshot is opened read-only and must pass
// integrity_check (on two threads) before `db` is touched: DataLoss
// "snapshot_corrupt" otherwise, unless `verified` says that the caller has
// just matched the file's SHA-256 to a snapshot that VerifySnapshot passed
// (then no integrity_check runs). The copy is page-exact from the state that
// passed, so the restored database is not checked again.
Status RestoreInto(const std::filesystem::path& snapshot, const std::filesystem::path& db,
                   const Progress& progress = nullptr, bool verified = false,
                   const PhaseProgress& phases = nullptr);

// Moves `db` and its -wal/-shm companions aside to `<db>.corrupt-<suffix>`
// (never deletes bytes) and returns the new path of the main file.
Result<std::filesystem::path> Quarantine(const std::filesystem::path& db,
                                         const std::string& suffix);

}  // namespace via::providers::sqlite
