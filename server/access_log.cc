#include "server/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace via::server {

Result<int> AccessLog::OpenFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return InvalidArgument("invalid_access_log",
                           "cannot open access log " + path + ": " + std::strerror(errno));
  }
  return fd;
}

Result<std::unique_ptr<AccessLog>> AccessLog::Open(const std::string& path) {
  if (path.empty() || path == "-") {
    return std::unique_ptr<AccessLog>(new AccessLog("", STDOUT_FILENO));
  }
  VIA_ASSIGN_OR_RETURN(int fd, OpenFile(path));
  return std::unique_ptr<AccessLog>(new AccessLog(path, fd));
}

AccessLog::~AccessLog() {
  if (!path_.empty() && fd_ >= 0) ::close(fd_);
}

void AccessLog::Write(std::string_view line) {
  std::string text;
  text.reserve(line.size() + 1);
  text.append(line);
  text.push_back('\n');
  std::lock_guard lock(mu_);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ++dropped_;
      return;
    }
    done += static_cast<std::size_t>(n);
  }
}

Status AccessLog::Reopen() {
  if (path_.empty()) return Status::Ok();
  VIA_ASSIGN_OR_RETURN(int fd, OpenFile(path_));
  std::lock_guard lock(mu_);
  ::close(fd_);
  fd_ = fd;
  return Status::Ok();
}

std::uint64_t AccessLog::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

}  // namespace via::server
