#include "eventstore/file_lock.h"
#include "domain/reasons.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace via::eventstore {

Result<FileLock> FileLock::Exclusive(const std::filesystem::path& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int err = errno;
    const std::string what = "open " + path.string() + ": " + std::strerror(err);
    if (err == EACCES || err == EROFS || err == EPERM) {
      return Status(StatusCode::kInternal, reason::kHomeNotWritable, what);
    }
    if (err == ENOSPC) return Status(StatusCode::kInternal, reason::kDiskFull, what);
    return Internal(what);
  }
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      const int err = errno;
      ::close(fd);
      return Internal("lock " + path.string() + ": " + std::strerror(err));
    }
  }
  return FileLock(fd);
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace via::eventstore
