#pragma once

// An exclusive advisory lock (flock(2)) on a lock file, held for the object's
// lifetime: how processes queue for work that only one may do at a time (an
// add-on's file work, appending to the log, catching up the read model).
// A waiting process sleeps in the kernel and wakes as soon as the holder
// releases, unlike SQLite's busy handler, which polls with growing sleeps.
// The lock file is created (0600) when missing and never deleted; it holds no
// data. Locks are per open file description: two FileLocks on one path in
// one process exclude each other too.

#include <filesystem>

#include "domain/status.h"

namespace via::eventstore {

class FileLock {
 public:
  // Blocks until the lock is held. Errors: Internal (the file cannot be
  // created or locked), home_not_writable for a read-only directory.
  static Result<FileLock> Exclusive(const std::filesystem::path& path);

  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  FileLock(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace via::eventstore
