#include "commands/audit.h"

#include <set>

#include "eventstore/record_codec.h"
#include "projections/read_model.h"
#include "domain/reasons.h"

namespace via::commands {

Result<InitResult> Init(const Context& ctx) {
  VIA_ASSIGN_OR_RETURN(auto log, ctx.OpenLog());
  VIA_ASSIGN_OR_RETURN(eventstore::Head head, log->store().GetHead());
  InitResult result;
  result.created = log->initialized_now();
  result.home = ctx.home.root.string();
  VIA_ASSIGN_OR_RETURN(std::optional<std::string> url, ctx.home.LogUrl());
  result.log = url ? *url : ctx.home.log_db().string();
  result.log_id = log->log_id();
  result.origin = log->origin();
  result.verifier_key = log->verifier_key().ToString();
  result.size = head.seq;
  return result;
}

Result<eventstore::VerifyReport> AuditVerify(const Context& ctx,
                                             const eventstore::VerifyOptions& options) {
  VIA_ASSIGN_OR_RETURN(auto log, ctx.OpenLogForAudit());
  return eventstore::VerifyLog(log->store(), options);
}

std::vector<std::string> MentionedAddonIds(const Event& event) {
  std::vector<std::string> ids{EventAddonId(event)};
  if (const auto* release = std::get_if<BindingSnapshotted>(&event)) {
    for (const auto& claim : release->claims) ids.push_back(claim.addon_id);
  }
  return ids;
}

Status AuditLog(const Context& ctx, const LogFilter& filter,
                const std::function<void(const LogEntry&)>& visit) {
  VIA_ASSIGN_OR_RETURN(auto log, ctx.OpenLogForAudit());
  std::set<std::string> addon_ids;  // every incarnation of filter.addon
  if (!filter.addon.empty()) addon_ids.insert(filter.addon);
  std::set<std::string> app_addons;  // add-ons filter.app owns or ever bound
  std::map<std::string, std::string> names;  // add-on id -> name at creation
  std::uint64_t shown = 0;
  Status error;
  VIA_RETURN_IF_ERROR(log->store().Scan(1, 0, [&](const eventstore::StoredRecord& row) {
    auto record = eventstore::DecodeRecord(row.bytes);
    if (!record.ok()) {
      error = record.status().WithContext("seq " + std::to_string(row.seq));
      return false;
    }
    if (const auto* created = std::get_if<AddonCreated>(&record->event)) {
      names[created->addon_id] = created->name;
      if (!filter.addon.empty() && created->name == filter.addon) {
        addon_ids.insert(created->addon_id);
      }
      if (!filter.app.empty() && created->app == filter.app) app_addons.insert(created->addon_id);
    }
    if (const auto* attached = std::get_if<BindingAttached>(&record->event)) {
      if (!filter.app.empty() && attached->app == filter.app) app_addons.insert(attached->addon_id);
    }
    if (row.seq < filter.since) return true;
    // Every event that touches them: one naming the add-on (or, for --app,
    // the app or any add-on it owns or bound), a release claiming it
    // included, so destroys, revocations and restores show too.
    const std::vector<std::string> mentioned = MentionedAddonIds(record->event);
    auto any_of = [&](const std::set<std::string>& ids) {
      for (const auto& id : mentioned) {
        if (!id.empty() && ids.count(id)) return true;
      }
      return false;
    };
    if (!filter.addon.empty() && !any_of(addon_ids)) return true;
    if (!filter.app.empty() && EventApp(record->event) != filter.app && !any_of(app_addons)) {
      return true;
    }
    LogEntry entry{row.seq, row.hash, row.bytes, std::move(record).value(), {}};
    for (const auto& id : MentionedAddonIds(entry.record.event)) {
      if (auto it = names.find(id); it != names.end()) entry.addon_names[id] = it->second;
    }
    visit(entry);
    ++shown;
    return filter.limit == 0 || shown < filter.limit;
  }));
  return error;
}

Result<std::string> AuditCheckpoint(const Context& ctx) {
  VIA_ASSIGN_OR_RETURN(auto log, ctx.OpenLogForAudit());
  return log->store().LatestCheckpoint();
}

Result<std::string> AuditKey(const Context& ctx) {
  VIA_ASSIGN_OR_RETURN(auto log, ctx.OpenLogForAudit());
  VIA_RETURN_IF_ERROR(log->identity_error());
  return log->verifier_key().ToString();
}

Result<InclusionProof> ProveInclusion(const Context& ctx, std::uint64_t seq) {
  VIA_ASSIGN_OR_RETURN(auto log, ctx.OpenLogForAudit());
  auto& store = log->store();
  // The proof, the root and the checkpoint describe one tree size.
  VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, store.BeginRead());
  VIA_ASSIGN_OR_RETURN(eventstore::Head head, store.GetHead());
  if (seq == 0 || seq > head.seq) {
    return NotFound("seq_not_found", "seq " + std::to_string(seq) + " is not in the log (size " +
                                         std::to_string(head.seq) + ")");
  }
  InclusionProof out;
  out.leaf_index = seq - 1;
  out.tree_size = head.seq;
  VIA_ASSIGN_OR_RETURN(out.leaf_hash, store.nodes().Node(0, seq - 1));
  VIA_ASSIGN_OR_RETURN(out.root, eventstore::merkle::Root(store.nodes(), head.seq));
  VIA_ASSIGN_OR_RETURN(out.proof,
                       eventstore::merkle::InclusionProof(store.nodes(), seq - 1, head.seq));
  VIA_ASSIGN_OR_RETURN(out.checkpoint, store.CheckpointAt(head.seq));
  return out;
}

Result<ConsistencyProof> ProveConsistency(const Context& ctx, std::uint64_t old_size) {
  VIA_ASSIGN_OR_RETURN(auto log, ctx.OpenLogForAudit());
  auto& store = log->store();
  VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, store.BeginRead());
  VIA_ASSIGN_OR_RETURN(eventstore::Head head, store.GetHead());
  if (old_size == 0 || old_size > head.seq) {
    return InvalidArgument("bad_size", "OLD_SIZE must be between 1 and the log size " +
                                           std::to_string(head.seq));
  }
  ConsistencyProof out;
  out.size1 = old_size;
  out.size2 = head.seq;
  VIA_ASSIGN_OR_RETURN(out.root1, eventstore::merkle::Root(store.nodes(), old_size));
  VIA_ASSIGN_OR_RETURN(out.root2, eventstore::merkle::Root(store.nodes(), head.seq));
  VIA_ASSIGN_OR_RETURN(out.proof,
                       eventstore::merkle::ConsistencyProof(store.nodes(), old_size, head.seq));
  VIA_ASSIGN_OR_RETURN(out.checkpoint, store.CheckpointAt(head.seq));
  return out;
}

Result<ReplayResult> AuditReplay(const Context& ctx, std::uint64_t until) {
  VIA_ASSIGN_OR_RETURN(auto log, ctx.OpenLogForAudit());
  ReplayResult out;
  if (until == 0) {
    // A full replay is compared with the read model at one log size: the
    // model's cursor after catching up, read with its digest in one
    // snapshot. Rows up to it never change, so replaying to it is exact
    // whatever other processes append meanwhile.
    auto compared = projections::CompareWithLog(ctx.home.state_db().string(), log->store(),
                                                /*catch_up=*/true);
    if (compared.ok()) {
      out.state = std::move(compared->replayed);
      out.digest = compared->replay_digest;
      out.read_model_digest = compared->model_digest;
      return out;
    }
    // A home that cannot be written has no model to compare: replay alone.
    if (compared.status().reason() != reason::kHomeNotWritable) return compared.status();
  }
  VIA_ASSIGN_OR_RETURN(out.state, projections::Replay(log->store(), until));
  out.digest = projections::StateDigest(out.state);
  return out;
}

}  // namespace via::commands
