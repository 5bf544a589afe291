#pragma once

// The access log of `via serve`: JSON lines appended to a file (or written to
// stdout), one write(2) per line so that concurrent lines never interleave
// and a line is never split between two files. Reopen() (on SIGHUP) closes
// the file and opens the path again, so after a rotation (rename, then
// SIGHUP) new lines go to a new file at the old path; lines written before
// go to the renamed one.
//
// Thread-safety: every method may be called from any thread at once.

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "domain/status.h"

namespace via::server {

class AccessLog {
 public:
  // `path` "" or "-": stdout (Reopen() then does nothing). Else the file is
  // created (0640) or appended to. Errors: InvalidArgument
  // "invalid_access_log" naming the path when it cannot be opened.
  static Result<std::unique_ptr<AccessLog>> Open(const std::string& path);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Appends `line` and a newline. A failed write is dropped (the request
  // is not failed for its log line) and counted.
  void Write(std::string_view line);

  // Opens the path again; the old file is closed once the new one is open.
  // On failure the old file stays in use and the error is returned.
  Status Reopen();

  const std::string& path() const { return path_; }
  // Lines that could not be written (disk full, ...).
  std::uint64_t dropped() const;

 private:
  AccessLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  static Result<int> OpenFile(const std::string& path);

  const std::string path_;  // "" for stdout
  mutable std::mutex mu_;   // guards fd_ and dropped_
  int fd_;
  std::uint64_t dropped_ = 0;
};

}  // namespace via::server
