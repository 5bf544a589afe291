#include "commands/context.h"

#include <chrono>
#include <cstring>

#include "crypto/crypto.h"

namespace via::commands {

Result<std::unique_ptr<eventstore::EventLog>> Context::OpenLog() const {
  eventstore::EventLog::Options options;
  options.home = home;
  options.clock = clock;
  options.ids = ids;
  options.actor = actor;
  options.crash = CrashPoints(crash_at);
  return eventstore::EventLog::Open(options);
}

Result<std::unique_ptr<eventstore::EventLog>> Context::OpenLogForAudit() const {
  eventstore::EventLog::Options options;
  options.home = home;
  options.read_only = true;
  options.check_tail = false;
  return eventstore::EventLog::Open(options);
}

std::int64_t SystemClock::NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string RandomIdGenerator::NewId(const std::string& prefix) {
  Bytes random = crypto::RandomBytes(10);
  std::array<std::uint8_t, 10> r{};
  std::memcpy(r.data(), random.data(), r.size());
  return prefix + MakeUlid(clock_.NowMs(), r);
}

}  // namespace via::commands
