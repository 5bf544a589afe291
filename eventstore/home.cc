#include "eventstore/home.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

namespace via::eventstore {
namespace fs = std::filesystem;

Result<Home> Home::Resolve(const std::optional<std::string>& flag) {
  if (flag && !flag->empty()) return Home{fs::path(*flag)};
  if (const char* env = std::getenv("VIA_HOME"); env && *env) return Home{fs::path(env)};
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) {
    return Home{fs::path(xdg) / "via"};
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return Home{fs::path(home) / ".local" / "share" / "via"};
  }
  return InvalidArgument("no_home", "cannot find a home directory: pass --home DIR or set VIA_HOME");
}

Status Home::EnsureDirectories() const {
  std::error_code ec;
  for (const fs::path& dir : {root, root / "log", root / "state", keys_dir(), root / "addons",
                              root / "snapshots"}) {
    if (fs::is_directory(dir, ec)) continue;
    fs::create_directories(dir, ec);
    if (ec) {
      return Internal("cannot create " + dir.string() + ": " + ec.message());
    }
  }
  ::chmod(root.c_str(), 0700);
  ::chmod(keys_dir().c_str(), 0700);
  return Status::Ok();
}

Status SyncDirectory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Internal("open " + dir.string() + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Internal("fsync " + dir.string() + ": " + std::strerror(err));
  return Status::Ok();
}

Status WriteFileAtomically(const fs::path& path, ByteView data, unsigned mode) {
  fs::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Internal("create " + tmp.string() + ": " + std::strerror(errno));
  ::fchmod(fd, mode);
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Internal("write " + tmp.string() + ": " + std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Internal("fsync " + tmp.string() + ": " + std::strerror(err));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Internal("rename " + tmp.string() + ": " + std::strerror(err));
  }
  return SyncDirectory(path.parent_path());
}

Result<Bytes> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return NotFound("file_missing", path.string() + " does not exist");
    return Internal("cannot read " + path.string());
  }
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace via::eventstore
