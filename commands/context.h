#pragma once

// What every command handler gets: the home, the actor, a clock and an id
// generator (injected so tests control time and ids), and a progress sink.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "domain/crash.h"
#include "domain/ids.h"
#include "eventstore/event_log.h"
#include "eventstore/home.h"
#include "providers/provider.h"
#include "providers/registry.h"

namespace via::commands {

struct Context {
  eventstore::Home home;
  std::string actor;
  Clock* clock = nullptr;
  IdGenerator* ids = nullptr;
  // The providers this build runs (built by cli/; required by every command
  // that reaches an add-on's storage).
  const providers::Registry* providers = nullptr;
  // Test-only fault injection for the providers (providers::TestFaults);
  // built by the CLI from $VIA_TEST_FAULT in a build with test hooks, else
  // null.
  std::shared_ptr<providers::TestFaults> test_faults;
  // `--command-id ID` (empty: none): the log command id prefix under which
  // this command's decisions are appended ("cli/ID/<digest of the command
  // line>"), so that a retry with the same id replays the first run's
  // records instead of appending again.
  std::string command_id;
  // Test-only crash points (domain/crash.h): armed by the CLI from
  // $VIA_CRASH_AT in a build with test hooks, or given a callback by tests.
  CrashPoints crash;
  // `via init --log URL`: the PostgreSQL log of a new home (EventLog::Options).
  std::string log_url;
  // Several nodes: how long a command run on another node's home waits for
  // the owner's `via serve` to finish the file work it asked for
  // (`--owner-timeout`; commands/nodes.h).
  std::int64_t owner_timeout_ms = 60000;
  // via serve's group committer (eventstore/group_commit.h): the logs this
  // context opens append through it, sharing transactions with the server's
  // other appends. Null (every CLI command): each log appends on its own
  // connection.
  eventstore::GroupCommitter* committer = nullptr;
  // Long work reports (what, done, total); may be null.
  std::function<void(const std::string& what, std::uint64_t done, std::uint64_t total)> progress;

  // Opens the home's log for commands that append (initializing a new home).
  Result<std::unique_ptr<eventstore::EventLog>> OpenLog() const;
  // Opens the log for reading only (auditors): no init, no tail check.
  Result<std::unique_ptr<eventstore::EventLog>> OpenLogForAudit() const;
};

// Adds the remediation of a fault of the machine (disk_full,
// home_not_writable) that lower layers report without one.
Status ExplainFault(const eventstore::Home& home, Status status);

// The wall clock.
class SystemClock : public Clock {
 public:
  std::int64_t NowMs() override;
};

// ULIDs from the system clock and OpenSSL's random generator.
class RandomIdGenerator : public IdGenerator {
 public:
  explicit RandomIdGenerator(Clock& clock) : clock_(clock) {}
  std::string NewId(const std::string& prefix) override;

 private:
  Clock& clock_;
};

}  // namespace via::commands
