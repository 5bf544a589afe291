#include "eventstore/home.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "eventstore/postgres/pg_log_store.h"

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

namespace {

// The folders of a home (DESIGN.md section 3).
constexpr const char* kHomeEntries[] = {"log", "state", "keys", "addons", "snapshots", "log.url"};

bool IsHomeEntry(const std::string& name) {
  for (const char* entry : kHomeEntries) {
    if (name == entry) return true;
  }
  return false;
}

}  // namespace

Status Home::EnsureDirectories() const {
  std::error_code ec;
  auto status = fs::symlink_status(root, ec);
  if (!ec && fs::exists(status)) {
    if (!fs::is_directory(fs::status(root, ec))) {
      return InvalidArgument("not_a_via_home", root.string() + " exists and is not a directory");
    }
    // Taken over only when empty or already a home: never chmod or fill an
    // unrelated directory (`--home /`).
    if (!fs::exists(log_db(), ec) && !fs::exists(log_url_file(), ec)) {
      for (const auto& entry : fs::directory_iterator(root, ec)) {
        if (!IsHomeEntry(entry.path().filename().string())) {
          return InvalidArgument("not_a_via_home",
                                 root.string() + " is not empty and holds no via log (found " +
                                     entry.path().filename().string() +
                                     "); refusing to make it a home")
              .WithRemediation("pass --home with a new or empty directory, or an existing home");
        }
      }
      if (ec) return Internal("cannot list " + root.string() + ": " + ec.message());
    }
  }
  for (const fs::path& dir : {root, root / "log", root / "state", keys_dir(), root / "addons",
                              root / "snapshots"}) {
    if (fs::is_directory(dir, ec)) continue;
    fs::create_directories(dir, ec);
    if (ec) {
      const bool denied = ec == std::errc::permission_denied ||
                          ec == std::errc::read_only_file_system ||
                          ec == std::errc::operation_not_permitted;
      const bool full = ec == std::errc::no_space_on_device;
      return Status(StatusCode::kInternal,
                    denied ? "home_not_writable" : full ? "disk_full" : "internal",
                    "cannot create " + dir.string() + ": " + ec.message());
    }
    if (dir == root || dir == keys_dir()) ::chmod(dir.c_str(), 0700);
  }
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

Result<Bytes> ReadFile(const fs::path& path, std::size_t max_bytes) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return NotFound("file_missing", path.string() + " does not exist");
    if (err == ELOOP) {
      return InvalidArgument("not_a_regular_file", path.string() + " is a symbolic link");
    }
    return Internal("cannot read " + path.string() + ": " + std::strerror(err));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Internal("stat " + path.string() + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    return InvalidArgument("not_a_regular_file", path.string() + " is not a regular file");
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    return InvalidArgument("file_too_large", path.string() + " is larger than " +
                                                 std::to_string(max_bytes) + " bytes");
  }
  Bytes out;
  std::uint8_t buffer[8192];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Internal("read " + path.string() + ": " + std::strerror(errno));
    if (n == 0) break;
    out.insert(out.end(), buffer, buffer + n);
    if (out.size() > max_bytes) {  // it grew while being read
      return InvalidArgument("file_too_large", path.string() + " is larger than " +
                                                   std::to_string(max_bytes) + " bytes");
    }
  }
  return out;
}

Result<std::optional<std::string>> Home::LogUrl() const {
  auto bytes = ReadFile(log_url_file(), 4096);
  if (!bytes.ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) return std::optional<std::string>();
    return bytes.status();
  }
  std::string url(AsChars(*bytes));
  while (!url.empty() && (url.back() == '\n' || url.back() == '\r')) url.pop_back();
  VIA_RETURN_IF_ERROR(postgres::ValidateLogUrl(url).WithContext(log_url_file().string()));
  return std::optional<std::string>(url);
}

}  // namespace via::eventstore
