#pragma once

// The data of `via audit timeline`: every record of the log as a value, the
// lifecycle span of each add-on, the apps, and every stored checkpoint with
// what a full verification of the log (the one `audit verify` runs) says about
// it. Rendering (the HTML page) belongs to cli/.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "commands/context.h"
#include "domain/events.h"
#include "domain/state.h"
#include "eventstore/verify.h"

namespace via::commands {

struct TimelineEntry {
  std::uint64_t seq = 0;
  std::int64_t recorded_at_ms = 0;
  std::string actor;
  Event event;
  std::string addon_id;  // the add-on the event is about, or ""
  // The app it concerns: the event's own app, else its add-on's app, else "".
  std::string app;
  // The name each add-on the event names was created with, by id.
  std::map<std::string, std::string> addon_names;
};

// One add-on from AddonCreated to AddonDestroyed (or to the end of the log).
struct TimelineSpan {
  std::string addon_id;
  std::string name;  // as created
  std::string provider;
  std::string app;
  std::uint64_t created_seq = 0;
  std::int64_t created_at_ms = 0;
  std::uint64_t destroyed_seq = 0;  // 0 while it lives
  std::int64_t destroyed_at_ms = 0;
  AddonPhase phase = AddonPhase::kProvisioning;  // at the end of the timeline
};

// What verification says about a stored checkpoint.
enum class CheckpointCheck {
  kVerified,    // its signature and root were checked and hold
  kFailed,      // verification failed at the record that carries it
  kNotReached,  // verification stopped at an earlier record
};
const char* CheckpointCheckName(CheckpointCheck check);  // "verified", "failed", "not_reached"

struct TimelineCheckpoint {
  std::uint64_t size = 0;           // also the seq of the record that carries it
  std::int64_t recorded_at_ms = 0;  // of that record (0 when it did not decode)
  std::string root_base64;          // as the note says ("" when it does not parse)
  CheckpointCheck check = CheckpointCheck::kNotReached;
};

struct Timeline {
  std::string log_id;
  std::string origin;
  std::uint64_t size = 0;              // records covered (the head when the timeline began)
  std::vector<TimelineEntry> entries;  // seq order
  std::vector<TimelineSpan> spans;     // creation order
  std::vector<std::string> apps;       // sorted, every app named
  std::vector<TimelineCheckpoint> checkpoints;  // size order
  // The verification of the whole log: OK, or DataLoss naming first_bad_seq.
  eventstore::VerifyReport verify;
  // A record that did not decode: entries stop before it (OK otherwise).
  Status decode_error;
};

// Reads the log up to its current head, verifies it exactly as `audit verify`
// does (the report is in `verify`; a damaged log is a timeline that says so,
// not an error) and folds it into a Timeline. Errors: the log cannot be
// opened or read (NotFound for a home without a log).
Result<Timeline> BuildTimeline(const Context& ctx);

}  // namespace via::commands
