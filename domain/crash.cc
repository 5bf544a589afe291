#include "domain/crash.h"

#include <csignal>
#include <cstdio>

namespace via {

void CrashPoints::At(std::string_view name) const {
  if (armed_.empty() || name != armed_) return;
  std::fflush(nullptr);
  std::raise(SIGKILL);
}

}  // namespace via
