#include "eventstore/home.h"

#include <sys/stat.h>

#include <cstdlib>

#include "eventstore/postgres/pg_log_store.h"
#include "domain/reasons.h"

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
                    denied ? reason::kHomeNotWritable : full ? reason::kDiskFull : "internal",
                    "cannot create " + dir.string() + ": " + ec.message());
    }
    if (dir == root || dir == keys_dir()) ::chmod(dir.c_str(), 0700);
  }
  return Status::Ok();
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
