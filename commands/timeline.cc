#include "commands/timeline.h"

#include <set>

#include "commands/audit.h"
#include "eventstore/checkpoint.h"
#include "eventstore/record_codec.h"

namespace via::commands {

const char* CheckpointCheckName(CheckpointCheck check) {
  switch (check) {
    case CheckpointCheck::kVerified:
      return "verified";
    case CheckpointCheck::kFailed:
      return "failed";
    case CheckpointCheck::kNotReached:
      return "not_reached";
  }
  return "not_reached";
}

Result<Timeline> BuildTimeline(const Context& ctx) {
  VIA_ASSIGN_OR_RETURN(auto log, ctx.OpenLogForAudit());
  auto& store = log->store();
  Timeline timeline;
  // Records are only ever appended, so everything below is about the first
  // `size` of them, whatever is appended meanwhile.
  VIA_ASSIGN_OR_RETURN(eventstore::Head head, store.GetHead());
  timeline.size = head.seq;

  eventstore::VerifyOptions options;
  if (ctx.progress) {
    options.progress = [&ctx](std::uint64_t done, std::uint64_t total) {
      ctx.progress("verifying", done, total);
    };
  }
  timeline.verify = eventstore::VerifyLog(store, options);
  const Status& verified = timeline.verify.status;
  if (!verified.ok() && verified.code() != StatusCode::kDataLoss) return verified;

  // Records, names and spans, in seq order.
  std::map<std::string, std::size_t> span_of;     // add-on id -> index in spans
  std::map<std::string, std::string> names;       // add-on id -> name as created
  std::map<std::uint64_t, std::int64_t> time_of;  // seq -> recordedAtMs
  std::set<std::string> apps;
  VIA_RETURN_IF_ERROR(store.Scan(1, head.seq, [&](const eventstore::StoredRecord& row) {
    auto record = eventstore::DecodeRecord(row.bytes);
    if (!record.ok()) {
      timeline.decode_error = record.status().WithContext("seq " + std::to_string(row.seq));
      return false;
    }
    TimelineEntry entry;
    entry.seq = row.seq;
    entry.recorded_at_ms = record->recorded_at_ms;
    entry.actor = record->actor;
    entry.event = record->event;
    entry.addon_id = EventAddonId(entry.event);
    time_of[row.seq] = record->recorded_at_ms;

    if (const auto* init = std::get_if<LogInitialized>(&entry.event)) {
      timeline.log_id = init->log_id;
      timeline.origin = init->origin;
    }
    if (const auto* created = std::get_if<AddonCreated>(&entry.event)) {
      names[created->addon_id] = created->name;
      span_of[created->addon_id] = timeline.spans.size();
      TimelineSpan span;
      span.addon_id = created->addon_id;
      span.name = created->name;
      span.provider = created->provider;
      span.app = created->app;
      span.created_seq = row.seq;
      span.created_at_ms = record->recorded_at_ms;
      timeline.spans.push_back(span);
    }
    if (const auto* destroyed = std::get_if<AddonDestroyed>(&entry.event)) {
      if (auto it = span_of.find(destroyed->addon_id); it != span_of.end()) {
        timeline.spans[it->second].destroyed_seq = row.seq;
        timeline.spans[it->second].destroyed_at_ms = record->recorded_at_ms;
      }
    }

    entry.app = EventApp(entry.event);
    if (entry.app.empty() && !entry.addon_id.empty()) {
      if (auto it = span_of.find(entry.addon_id); it != span_of.end()) {
        entry.app = timeline.spans[it->second].app;
      }
    }
    if (!entry.app.empty()) apps.insert(entry.app);

    for (const auto& id : MentionedAddonIds(entry.event)) {
      if (auto it = names.find(id); it != names.end()) entry.addon_names[id] = it->second;
    }
    timeline.entries.push_back(std::move(entry));
    return true;
  }));

  // Each span's phase at the end, as the state fold says.
  State state;
  for (const auto& entry : timeline.entries) {
    Apply(state, Record{entry.seq, {}, entry.recorded_at_ms, entry.actor, {}, entry.event});
  }
  for (auto& span : timeline.spans) {
    if (const AddonState* addon = state.FindById(span.addon_id)) span.phase = addon->phase;
  }
  timeline.apps.assign(apps.begin(), apps.end());

  // Checkpoints: verified below the first bad seq, failed at it, not reached after.
  const std::uint64_t first_bad = verified.ok() ? 0 : timeline.verify.first_bad_seq;
  VIA_RETURN_IF_ERROR(store.ScanCheckpoints([&](std::uint64_t size, const std::string& note) {
    if (size > head.seq) return false;
    TimelineCheckpoint checkpoint;
    checkpoint.size = size;
    if (auto it = time_of.find(size); it != time_of.end()) checkpoint.recorded_at_ms = it->second;
    if (auto parsed = eventstore::ParseCheckpointUnverified(note); parsed.ok()) {
      checkpoint.root_base64 = crypto::Base64Encode(parsed->root);
    }
    if (verified.ok()) {
      checkpoint.check = CheckpointCheck::kVerified;
    } else if (first_bad == 0 || size > first_bad) {
      checkpoint.check = CheckpointCheck::kNotReached;
    } else {
      checkpoint.check = size < first_bad ? CheckpointCheck::kVerified : CheckpointCheck::kFailed;
    }
    timeline.checkpoints.push_back(std::move(checkpoint));
    return true;
  }));
  return timeline;
}

}  // namespace via::commands
