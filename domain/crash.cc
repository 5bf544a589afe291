#include "domain/crash.h"

#include <csignal>
#include <cstdio>
#include <map>
#include <mutex>

namespace via {
namespace {

// How many times this process has reached each point, for "NAME#N".
std::uint64_t CountHit(std::string_view name) {
  static std::mutex mu;
  static std::map<std::string, std::uint64_t, std::less<>> hits;
  std::lock_guard<std::mutex> lock(mu);
  auto it = hits.find(name);
  if (it == hits.end()) it = hits.emplace(std::string(name), 0).first;
  return ++it->second;
}

}  // namespace

CrashPoints::CrashPoints(std::string armed) : armed_(std::move(armed)) {
  if (auto hash = armed_.rfind('#'); hash != std::string::npos) {
    std::uint64_t n = 0;
    bool digits = hash + 1 < armed_.size();
    for (std::size_t i = hash + 1; i < armed_.size() && digits; ++i) {
      char c = armed_[i];
      digits = c >= '0' && c <= '9' && n < 1'000'000;
      n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    // A malformed suffix leaves the whole text as a name that no point has.
    if (digits && n >= 1) {
      occurrence_ = n;
      armed_.resize(hash);
    }
  }
}

CrashPoints CrashPoints::Calling(Callback callback) {
  CrashPoints points;
  points.callback_ = std::move(callback);
  return points;
}

void CrashPoints::At(std::string_view name) const {
  if (callback_) callback_(name);
  if (armed_.empty() || name != armed_) return;
  if (CountHit(name) != occurrence_) return;
  std::fflush(nullptr);
  std::raise(SIGKILL);
}

}  // namespace via
