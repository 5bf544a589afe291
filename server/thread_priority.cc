#include "server/thread_priority.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace via::server {
namespace {

id_t ThreadId() { return static_cast<id_t>(::syscall(SYS_gettid)); }

}  // namespace

int CurrentThreadNice() {
  errno = 0;
  const int nice = ::getpriority(PRIO_PROCESS, ThreadId());
  return errno == 0 ? nice : 0;
}

bool SetCurrentThreadNice(int nice) { return ::setpriority(PRIO_PROCESS, ThreadId(), nice) == 0; }

}  // namespace via::server
