#pragma once

// The one POSIX file layer: an owned descriptor and the few durable-file steps
// every layer needs (open, write-all, fsync of a file or a directory, rename
// without replacing, atomic replace through a temporary file, close with its
// error checked). Key files, the log's small files, snapshots and the
// providers' files all go through it, so that EINTR, O_CLOEXEC, the fsync of
// the directory after a rename and the error wording are handled in one place.
//
// Errors (Status reasons):
//   NotFound "file_not_found"      open(2) of a missing path (Open)
//   NotFound "file_missing"        a missing file to read (ReadFile)
//   AlreadyExists "file_exists"    RenameNoReplace onto an existing path
//   Internal "disk_full"           ENOSPC, EFBIG or EDQUOT while writing
//   Internal                       any other errno, with its text
// Never throws.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "domain/bytes.h"
#include "domain/status.h"

namespace via::fileio {

// strerror(3) text of `err`, thread-safe.
std::string ErrnoText(int err);

// An owned file descriptor. Destruction closes it and ignores the result (a
// read-only descriptor, or a path already failed); Close() reports it.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // close(2) now; `path` names the file in the error. After it the Fd is empty.
  Status Close(const std::filesystem::path& path);

 private:
  int fd_ = -1;
};

// open(2) with O_CLOEXEC, retried on EINTR; `mode` for O_CREAT.
Result<Fd> Open(const std::filesystem::path& path, int flags, unsigned mode = 0600);

// Writes all of `data` at the descriptor's offset (retrying short writes and
// EINTR); `path` names the file in errors.
Status WriteAll(const Fd& fd, ByteView data, const std::filesystem::path& path);

// fsync(2) of an open file.
Status Sync(const Fd& fd, const std::filesystem::path& path);

// fsync(2) of the file at `path` (opened read-only for it).
Status SyncFile(const std::filesystem::path& path);

// fsync(2) of a directory, so that a rename or create inside it is durable.
Status SyncDirectory(const std::filesystem::path& dir);

// SyncDirectory of the folder holding `path` ("." for a bare name).
Status SyncParentDirectory(const std::filesystem::path& path);

// Whether anything (file, directory, dangling link) is at `path`.
Result<bool> Exists(const std::filesystem::path& path);

// Renames `from` to `to`, failing with AlreadyExists "file_exists" instead of
// replacing `to` (RENAME_NOREPLACE; check-then-rename on file systems that
// lack it). No directory fsync: the caller decides when.
Status RenameNoReplace(const std::filesystem::path& from, const std::filesystem::path& to);

// Renames `from` over `to` (replacing it atomically). No directory fsync.
Status Rename(const std::filesystem::path& from, const std::filesystem::path& to);

// unlink(2); a missing file is fine.
Status Remove(const std::filesystem::path& path);

// Creates `dir` and its missing parents, fsyncing the parent of each new one.
Status CreateDirectories(const std::filesystem::path& dir);

// Writes `data` to `path` with `mode` durably, replacing what was there:
// `path`.tmp, write-all, fsync, close (checked), rename, fsync of the
// directory. On error the temporary file is removed and `path` is untouched.
Status WriteFileAtomically(const std::filesystem::path& path, ByteView data, unsigned mode);

// Creates `path` with `data` and `mode` only if nothing is there yet: writes
// a private temporary file (TempPathFor plus the pid), fsyncs it and link()s
// it into place (link fails when the name exists), so exactly one of several
// racing processes wins; the others find the winner's file. Ok in both cases.
Status CreateExclusively(const std::filesystem::path& path, ByteView data, unsigned mode);

// The temporary name a file is written under before it is renamed into
// place: `path`.tmp. Never trusted by a reader (`via recover` reports them).
std::filesystem::path TempPathFor(const std::filesystem::path& path);

// Progress of long work by phase ("sha256", "copy", "fsync"): (phase, done,
// total) in bytes. May be null. (The same type as providers::PhaseProgress.)
using Progress = std::function<void(const char* phase, std::uint64_t done, std::uint64_t total)>;

struct Digest {
  Hash256 sha256{};
  std::uint64_t bytes = 0;
  bool operator==(const Digest&) const = default;
};

// SHA-256 and size of a regular file as it is on disk, read sequentially
// (phase "sha256", reported every 16 MiB and at the end). Errors: NotFound
// "file_not_found"; InvalidArgument "not_a_file" for anything but a regular
// file; Internal for I/O errors.
Result<Digest> DigestFile(const std::filesystem::path& file, const Progress& phases = nullptr);

// Copies `from` to `to`, which must not exist (AlreadyExists "file_exists";
// InvalidArgument "invalid_path" without a file name), hashing while copying:
// writes `temp` (created exclusively, 0600), then asks `accept` whether the
// digest of the bytes read is the expected one; only then fsync, rename
// without replacing, fsync of the folder. On any error (`accept`'s included)
// `temp` is removed and `to` never appears. NotFound "directory_missing" when
// the folder of `to` does not exist. Phases "copy" and "fsync".
Result<Digest> CopyVerified(const std::filesystem::path& from, const std::filesystem::path& to,
                            const std::filesystem::path& temp,
                            const std::function<Status(const Digest&)>& accept,
                            const Progress& phases = nullptr);

// Files read whole (keys, checkpoint notes, configuration) are small.
inline constexpr std::size_t kMaxSmallFileBytes = 1 << 20;

// Reads a whole regular file of at most `max_bytes` bytes, without following
// a symlink in its last component (so a key file replaced by a link to
// /dev/zero or another file is refused, not read). Errors: NotFound
// "file_missing"; InvalidArgument "not_a_regular_file" (a symlink, device,
// FIFO or directory) or "file_too_large"; Internal for I/O errors.
Result<Bytes> ReadFile(const std::filesystem::path& path,
                       std::size_t max_bytes = kMaxSmallFileBytes);

}  // namespace via::fileio
