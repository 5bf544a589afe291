#include "commands/context.h"

#include <chrono>
#include <cstring>

#include "crypto/crypto.h"
#include "domain/reasons.h"

namespace via::commands {

Status ExplainFault(const eventstore::Home& home, Status status) {
  if (!status.remediation().empty()) return status;
  const std::string home_dir = home.root.string();
  if (status.reason() == reason::kDiskFull) {
    return status.WithRemediation("free space on the file system of " + home_dir + " (df -h " +
                                  home_dir + "), then run the command again");
  }
  if (status.reason() == reason::kHomeNotWritable) {
    return status.WithRemediation("make " + home_dir +
                                  " writable for this user (reading commands work without it)");
  }
  return status;
}

Result<std::unique_ptr<eventstore::EventLog>> Context::OpenLog() const {
  eventstore::EventLog::Options options;
  options.home = home;
  options.clock = clock;
  options.ids = ids;
  options.actor = actor;
  options.crash = crash;
  options.log_url = log_url;
  options.committer = committer;
  return eventstore::EventLog::Open(options);
}

Result<std::unique_ptr<eventstore::EventLog>> Context::OpenLogForAudit() const {
  eventstore::EventLog::Options options;
  options.home = home;
  options.read_only = true;
  options.check_tail = false;
  auto log = eventstore::EventLog::Open(options);
  if (!log.ok() && log.status().code() == StatusCode::kNotFound) {
    // No log yet (or one being created by another process right now): any
    // command makes a missing home (DESIGN.md section 3), race-free.
    VIA_RETURN_IF_ERROR(OpenLog().status());
    return eventstore::EventLog::Open(options);
  }
  return log;
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
