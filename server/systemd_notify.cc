#include "server/systemd_notify.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace via::server {
namespace {

// sd_notify(3): int sd_notify(int unset_environment, const char *state);
// negative errno on failure, 0 when $NOTIFY_SOCKET is unset, positive when sent.
using SdNotify = int (*)(int, const char*);

struct Loaded {
  SdNotify notify = nullptr;
  std::string error;  // why it is null
};

const Loaded& Libsystemd() {
  static const Loaded loaded = [] {
    Loaded out;
    void* lib = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* why = ::dlerror();
      out.error = why ? why : "dlopen failed";
      return out;
    }
    out.notify = reinterpret_cast<SdNotify>(::dlsym(lib, "sd_notify"));
    if (out.notify == nullptr) out.error = "libsystemd.so.0 has no sd_notify";
    return out;
  }();
  return loaded;
}

}  // namespace

void NotifySystemd(const std::string& state,
                   const std::function<void(const std::string&)>& error_log) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (socket == nullptr || *socket == '\0') return;
  static std::atomic<bool> complained{false};
  const Loaded& lib = Libsystemd();
  std::string problem;
  if (lib.notify == nullptr) {
    problem = "NOTIFY_SOCKET is set, but libsystemd cannot be loaded: " + lib.error;
  } else if (const int rc = lib.notify(0, state.c_str()); rc < 0) {
    problem = std::string("sd_notify failed: ") + std::strerror(-rc);
  }
  if (!problem.empty() && error_log && !complained.exchange(true)) {
    error_log("via serve: systemd readiness: " + problem);
  }
}

}  // namespace via::server
