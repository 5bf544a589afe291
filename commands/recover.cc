#include "commands/recover.h"

#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "domain/reasons.h"
#include "domain/state.h"
#include "eventstore/filenames.h"
#include "projections/read_model.h"
#include "commands/nodes.h"
#include "commands/session.h"
#include "storage/file.h"

namespace via::commands {
namespace fs = std::filesystem;

namespace {


}  // namespace

Result<RecoverReport> Recover(const Context& ctx, bool dry_run) {
  RecoverReport report;
  report.dry_run = dry_run;
  VIA_ASSIGN_OR_RETURN(auto log, ctx.OpenLog());

  // 1. The read model against a replay of the log at the model's own cursor
  //    (read with its digest in one snapshot), so that other processes
  //    appending meanwhile never make a healthy model look wrong.
  const std::string model_path = ctx.home.state_db().string();
  VIA_ASSIGN_OR_RETURN(auto compared,
                       projections::CompareWithLog(model_path, log->store(), !dry_run));
  report.replay_digest = compared.replay_digest;
  report.read_model_digest = compared.model_digest.value_or(Hash256{});
  VIA_ASSIGN_OR_RETURN(eventstore::Head head, log->store().GetHead());
  if (!compared.matches()) {
    if (!dry_run) {
      VIA_ASSIGN_OR_RETURN(auto model, projections::ReadModel::Open(model_path));
      VIA_RETURN_IF_ERROR(model->Rebuild(log->store()));
      VIA_ASSIGN_OR_RETURN(auto rebuilt,
                           projections::CompareWithLog(model_path, log->store(), false));
      if (!rebuilt.matches()) {
        return Internal("the rebuilt read model still differs from a replay of the log");
      }
      report.changed = true;
    }
    report.read_model_rebuilt = true;
  } else if (dry_run && compared.size < head.seq) {
    // Behind, which every command mends by catching up first: not a finding.
    report.read_model_behind = head.seq - compared.size;
  }
  // The whole log, for the intents below.
  State state = std::move(compared.replayed);
  if (state.seq < head.seq) {
    VIA_ASSIGN_OR_RETURN(state, projections::Replay(log->store(), head.seq));
  }
  VIA_ASSIGN_OR_RETURN(auto model, projections::ReadModel::Open(model_path));

  // 2. Intents without completion.
  // One instance per provider name (no crash points or faults: recovery
  // itself runs to the end).
  Context plain = ctx;
  plain.crash = CrashPoints();
  plain.test_faults = nullptr;
  std::map<std::string, std::unique_ptr<providers::Provider>> instances;
  auto provider_of = [&](const std::string& addon_id) -> Result<providers::Provider*> {
    auto a = state.addons.find(addon_id);
    if (a == state.addons.end()) return NotFound("addon_not_found", "no add-on " + addon_id);
    auto& slot = instances[a->second.provider];
    if (!slot) {
      if (ctx.providers == nullptr) return Internal("no provider registry in the command context");
      VIA_ASSIGN_OR_RETURN(slot, ctx.providers->Make(a->second.provider,
                                                     ProviderEnvironment(plain, log.get())));
    }
    return slot.get();
  };
  auto act = [&](const std::string& done, const std::string& would) {
    return dry_run ? would : done;
  };
  // Several nodes: an add-on placed on another node has its files, and its
  // unfinished intents, on that node's home; its `via recover` settles them.
  VIA_ASSIGN_OR_RETURN(std::optional<std::string> home_node, HomeNode(ctx.home));
  auto elsewhere = [&](const AddonState& a) {
    return !a.node.empty() && a.node != home_node.value_or("");
  };
  for (const auto& [id, addon] : state.addons) {
    const bool pending = addon.phase == AddonPhase::kProvisioning ||
                         !addon.pending_snapshot.empty() || !addon.restoring_snapshot.empty() ||
                         !addon.pending_repair.empty();
    if (!pending) continue;
    if (elsewhere(addon)) {
      report.intents.push_back({reason::kOwnerElsewhere, id, addon.node, "left",
                                "node " + addon.node + "'s home settles it (via recover there)"});
      continue;
    }
    VIA_ASSIGN_OR_RETURN(providers::Provider * found, provider_of(id));
    providers::Provider& provider = *found;
    if (addon.phase == AddonPhase::kProvisioning) {
      RecoverItem item{"provisioning", id, "", act("finished", "would_finish"), ""};
      if (!dry_run) {
        VIA_RETURN_IF_ERROR(provider.Provision(id));
        report.changed = true;
      }
      report.intents.push_back(item);
    }
    if (!addon.pending_snapshot.empty()) {
      RecoverItem item{"snapshot", id, addon.pending_snapshot, act("finished", "would_settle"), ""};
      if (!dry_run) {
        VIA_ASSIGN_OR_RETURN(bool kept, provider.FinishSnapshot(id, addon.pending_snapshot));
        item.action = kept ? "finished" : "failed";
        report.changed = true;
      }
      report.intents.push_back(item);
    }
    if (!addon.restoring_snapshot.empty()) {
      RecoverItem item{"restore", id, addon.restoring_snapshot, act("finished", "would_finish"), ""};
      if (!dry_run) {
        // Finish it: the restore is one SQLite transaction, so rerunning it
        // from the verified snapshot is safe whatever the crash interrupted.
        auto snap = state.snapshots.find(addon.restoring_snapshot);
        auto file = fileio::DigestFile(
            provider.SnapshotPath(id, addon.restoring_snapshot));
        bool verified = snap != state.snapshots.end() && file.ok() &&
                        Bytes(file->sha256.begin(), file->sha256.end()) == snap->second.sha256;
        Status restored =
            verified ? provider.Restore(id, addon.restoring_snapshot, addon.restore_safety_snapshot)
                     : Status(StatusCode::kDataLoss, "snapshot_hash_mismatch", "");
        if (!verified) {
          // Close the intent as failed; the live database was never touched
          // by a committed restore.
          eventstore::AppendRequest request;
          request.actor = ctx.actor;
          request.command_id = eventstore::RestoreCommandId(id, addon.restoring_snapshot,
                                                            addon.restore_safety_snapshot);
          request.recorded_at_ms = ctx.clock->NowMs();
          request.events.push_back(RestoreFailed{
              id, addon.restoring_snapshot,
              "interrupted by a crash; the snapshot file no longer matches its event"});
          VIA_RETURN_IF_ERROR(log->Append(request).status());
          item.action = "failed";
        } else if (!restored.ok()) {
          item.action = "failed";
          item.detail = restored.message();
        }
        report.changed = true;
      }
      report.intents.push_back(item);
    }
    if (!addon.pending_repair.empty()) {
      RecoverItem item{"repair", id, addon.pending_repair, act("finished", "would_finish"), ""};
      if (!dry_run) {
        VIA_ASSIGN_OR_RETURN(auto outcome, provider.FinishRepair(state, id));
        if (!outcome.actions.empty()) item.detail = outcome.actions.back();
        report.changed = true;
      }
      report.intents.push_back(item);
    }
  }

  // 3. Storage against metadata (re-read: recovery may have appended).
  if (report.changed) {
    VIA_ASSIGN_OR_RETURN(state, projections::Replay(log->store(), 0));
    VIA_RETURN_IF_ERROR(model->CatchUp(log->store()).status());
  }
  // Credentials that apps use directly (a provider the proxy does not
  // serve): rotations, revocations and destroys whose effect on the server a
  // crash or an unreachable server left undone are applied again (each is
  // idempotent and changes nothing in the log).
  for (const auto& [id, addon] : state.addons) {
    if (dry_run || (addon.phase != AddonPhase::kActive && addon.phase != AddonPhase::kDestroyed)) {
      continue;
    }
    auto found = provider_of(id);
    if (!found.ok() || (*found)->ProxiesSql()) continue;
    Status applied = addon.phase == AddonPhase::kDestroyed ? (*found)->Retire(id) : Status::Ok();
    for (const auto& g : addon.generations) {
      if (!applied.ok() || addon.phase == AddonPhase::kDestroyed) break;
      applied = g.revoked ? (*found)->RevokeGeneration(id, g.number)
                          : (*found)->EnsureGeneration(id, g.number);
    }
    if (!applied.ok()) {
      report.storage.push_back({"credentials", id, "", "reported", applied.ToString()});
    }
  }
  // Snapshot files by add-on id and file name (each provider names its own).
  std::set<std::pair<std::string, std::string>> trusted_snapshots;
  std::map<std::pair<std::string, std::string>, std::string> deleted_snapshots;  // -> id
  // The extension of each add-on's snapshot files ("" when this build does
  // not run its provider: its files are left alone).
  auto snapshot_ext = [&](const std::string& addon_id) -> std::string {
    auto provider = provider_of(addon_id);
    if (!provider.ok()) return "";
    return (*provider)->SnapshotPath(addon_id, "x").extension().string();
  };
  for (const auto& [sid, snap] : state.snapshots) {
    const std::string ext = snapshot_ext(snap.addon_id);
    if (ext.empty()) continue;
    std::string file = sid + ext;
    if (snap.status == SnapshotStatus::kTaken && !snap.deleted) {
      trusted_snapshots.insert({snap.addon_id, file});
    }
    if (snap.deleted) deleted_snapshots[{snap.addon_id, file}] = sid;
  }
  for (const auto& [id, addon] : state.addons) {
    if (addon.phase != AddonPhase::kActive || elsewhere(addon)) continue;
    auto found = provider_of(id);
    if (!found.ok()) {
      report.storage.push_back({"storage", id, "", "reported", found.status().message()});
      continue;
    }
    providers::Provider* provider = *found;
    std::string detail;
    StorageFact fact = provider->Probe(id, &detail);
    if (fact == StorageFact::kMissing) {
      report.storage.push_back({"storage", id, provider->StorageLocation(id), "reported",
                                "missing: via addon ensure " + addon.provider + " " + addon.name +
                                    " --app " + addon.app + " --bind DATABASE --repair"});
    } else if (fact != StorageFact::kOk) {
      report.storage.push_back({"storage", id, provider->StorageLocation(id), "reported", detail});
    }
  }
  std::error_code ec;
  for (const char* area : {"addons", "snapshots"}) {
    fs::path root = ctx.home.root / area;
    if (!fs::is_directory(root, ec)) continue;
    for (const auto& dir : fs::directory_iterator(root, ec)) {
      std::string id = dir.path().filename().string();
      if (!state.addons.count(id)) {
        report.storage.push_back({"orphan", "", dir.path().string(), "reported",
                                  "no add-on in the log owns this folder"});
        continue;
      }
      for (const auto& file : fs::directory_iterator(dir.path(), ec)) {
        std::string name = file.path().filename().string();
        if (eventstore::IsTemporaryFileName(name)) {
          // A snapshot temp file is trusted by no event: remove it. Other temp
          // files are reported only.
          bool removable =
              std::string(area) == "snapshots" && eventstore::IsSnapshotTempFileName(name);
          if (removable && !dry_run) fs::remove(file.path(), ec);
          report.storage.push_back({"temp_file", id, file.path().string(),
                                    removable ? act("removed", "would_remove") : "reported",
                                    "left by an interrupted operation"});
          if (removable && !dry_run) report.changed = true;
        } else if (std::string(area) == "snapshots" && deleted_snapshots.count({id, name})) {
          // A delete (or prune) that crashed after its event: finish it.
          if (!dry_run) {
            VIA_ASSIGN_OR_RETURN(providers::Provider * provider, provider_of(id));
            VIA_RETURN_IF_ERROR(provider->RemoveSnapshotFile(id, deleted_snapshots.at({id, name})));
            report.changed = true;
          }
          report.storage.push_back({"deleted_snapshot", id, file.path().string(),
                                    act("removed", "would_remove"),
                                    "SnapshotDeleted is in the log; the file was left by a crash"});
        } else if (std::string(area) == "snapshots" && !snapshot_ext(id).empty() &&
                   name.ends_with(snapshot_ext(id)) &&
                   !trusted_snapshots.count({id, name})) {
          report.storage.push_back({"orphan", id, file.path().string(), "reported",
                                    "no SnapshotTaken event trusts this file"});
        }
      }
    }
  }
  return report;
}

}  // namespace via::commands
