// `via audit ...`: verify, log, checkpoint, key, prove (DESIGN.md section 9).

#include <iostream>

#include "cli/event_json.h"
#include "cli/event_text.h"
#include "cli/shell.h"
#include "cli/timeline_html.h"
#include "commands/audit.h"
#include "commands/timeline.h"
#include "domain/state.h"
#include "eventstore/home.h"

namespace via::cli {
namespace {

nlohmann::json HashList(const std::vector<Hash256>& hashes) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& h : hashes) out.push_back(B64(h));
  return out;
}

struct VerifyFlags {
  std::string checkpoint_file;
  std::string key;
};

int RunVerify(Shell& shell, const VerifyFlags& flags) {
  VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
  eventstore::VerifyOptions options;
  options.pinned_key = flags.key;
  if (!flags.checkpoint_file.empty()) {
    auto note = eventstore::ReadFile(flags.checkpoint_file);
    if (!note.ok()) return shell.Fail(note.status().WithContext("--checkpoint"));
    options.auditor_checkpoint.assign(note->begin(), note->end());
  }
  if (auto progress = shell.ProgressPrinter()) {
    options.progress = [progress](std::uint64_t done, std::uint64_t total) {
      progress("verifying", done, total);
    };
  }
  auto report = commands::AuditVerify(ctx, options);
  if (!report.ok()) return shell.Fail(report.status());
  if (!report->status.ok()) {
    if (shell.globals.json) {
      nlohmann::json error = {{"code", report->status.reason()},
                              {"message", report->status.message()},
                              {"remediation", "see docs/operations.md: corruption"},
                              {"owner", "operator"},
                              {"first_bad_seq", report->first_bad_seq}};
      shell.PrintJson({{"ok", false}, {"first_bad_seq", report->first_bad_seq}, {"error", error}});
    } else {
      std::cerr << "FAILED: first bad seq " << report->first_bad_seq << ": "
                << report->status.message() << " [" << report->status.reason() << "]\n";
    }
    return ExitCodeFor(report->status.code());
  }
  if (shell.globals.json) {
    return shell.PrintJson({{"ok", true},
                            {"size", report->size},
                            {"root", B64(report->root)},
                            {"origin", report->origin},
                            {"verifier_key", report->verifier_key},
                            {"checkpoints_verified", report->checkpoints_verified},
                            {"signatures_verified", report->signatures_verified},
                            {"nodes_verified", report->nodes_verified},
                            {"auditor_checkpoint_verified", report->auditor_checkpoint_verified}});
  }
  std::cout << "ok: " << report->size << " records, chain and Merkle tree intact\n"
            << "root: " << B64(report->root) << "\n"
            << "checkpoints verified: " << report->checkpoints_verified;
  const std::uint64_t linked = report->checkpoints_verified - report->signatures_verified;
  if (linked == 0) {
    std::cout << " (each signature checked)\n";
  } else {
    std::cout << " (" << report->signatures_verified << " signature checked, " << linked
              << " bound into the newest signed note by their links)\n";
  }
  if (report->auditor_checkpoint_verified) {
    std::cout << "saved checkpoint: consistent with today's log\n";
  }
  return 0;
}

// Width of the longest event type name ("WorkloadTokenIssued").
constexpr std::size_t kTypeWidth = 19;

int RunLog(Shell& shell, const commands::LogFilter& filter) {
  VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
  Status status = commands::AuditLog(ctx, filter, [&](const commands::LogEntry& entry) {
    const Record& r = entry.record;
    if (shell.globals.json) {
      nlohmann::json fields = EventFieldsJson(r.event);
      nlohmann::json line = {{"seq", entry.seq},
                             {"type", EventTypeName(r.event)},
                             {"recorded_at", Rfc3339(r.recorded_at_ms)},
                             {"actor", r.actor},
                             {"command_id", r.command_id},
                             {"prev_hash", B64(r.prev_hash)},
                             {"hash", B64(entry.hash)},
                             {"record", B64(entry.bytes)}};
      for (auto& [key, value] : fields.items()) line[key] = value;
      shell.PrintJson(line);
    } else {
      // seq, time, actor, type (padded to the longest name), summary.
      std::string type = EventTypeName(r.event);
      type.resize(std::max<std::size_t>(type.size(), kTypeWidth), ' ');
      std::cout << entry.seq << "  " << Rfc3339(r.recorded_at_ms) << "  " << TerminalSafe(r.actor)
                << "  " << type << "  " << TerminalSafe(EventSummary(r.event, entry.addon_names))
                << "\n";
    }
  });
  if (!status.ok()) return shell.Fail(status);
  return 0;
}

int RunCheckpoint(Shell& shell) {
  VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
  VIA_ASSIGN_OR_RETURN_EXIT(std::string note, commands::AuditCheckpoint(ctx), shell);
  if (shell.globals.json) {
    auto parsed = eventstore::ParseCheckpointUnverified(note);
    nlohmann::json out = {{"note", note}};
    if (parsed.ok()) {
      out["origin"] = parsed->origin;
      out["size"] = parsed->size;
      out["root"] = B64(parsed->root);
    }
    return shell.PrintJson(out);
  }
  std::cout << note;
  return 0;
}

int RunKey(Shell& shell) {
  VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
  VIA_ASSIGN_OR_RETURN_EXIT(std::string key, commands::AuditKey(ctx), shell);
  if (shell.globals.json) return shell.PrintJson({{"verifier_key", key}});
  std::cout << key << "\n";
  return 0;
}

int RunProve(Shell& shell, std::uint64_t inclusion, std::uint64_t consistency) {
  VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
  if (inclusion > 0) {
    VIA_ASSIGN_OR_RETURN_EXIT(auto p, commands::ProveInclusion(ctx, inclusion), shell);
    if (shell.globals.json) {
      return shell.PrintJson({{"leaf_index", p.leaf_index},
                              {"tree_size", p.tree_size},
                              {"leaf_hash", B64(p.leaf_hash)},
                              {"root", B64(p.root)},
                              {"proof", HashList(p.proof)},
                              {"checkpoint", p.checkpoint}});
    }
    std::cout << "leaf index: " << p.leaf_index << " (seq " << inclusion << ")\n"
              << "tree size:  " << p.tree_size << "\n"
              << "leaf hash:  " << B64(p.leaf_hash) << "\n"
              << "root:       " << B64(p.root) << "\n";
    for (const auto& h : p.proof) std::cout << "proof:      " << B64(h) << "\n";
    return 0;
  }
  VIA_ASSIGN_OR_RETURN_EXIT(auto p, commands::ProveConsistency(ctx, consistency), shell);
  if (shell.globals.json) {
    return shell.PrintJson({{"size1", p.size1},
                            {"size2", p.size2},
                            {"root1", B64(p.root1)},
                            {"root2", B64(p.root2)},
                            {"proof", HashList(p.proof)},
                            {"checkpoint", p.checkpoint}});
  }
  std::cout << "size1: " << p.size1 << "\nsize2: " << p.size2 << "\nroot1: " << B64(p.root1)
            << "\nroot2: " << B64(p.root2) << "\n";
  for (const auto& h : p.proof) std::cout << "proof: " << B64(h) << "\n";
  return 0;
}

int RunReplay(Shell& shell, std::uint64_t until) {
  VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
  VIA_ASSIGN_OR_RETURN_EXIT(auto replay, commands::AuditReplay(ctx, until), shell);
  const State& st = replay.state;
  nlohmann::json addons = nlohmann::json::array();
  for (const auto& [id, a] : st.addons) {
    addons.push_back({{"id", id},
                      {"name", a.name},
                      {"provider", a.provider},
                      {"app", a.app},
                      {"state", PhaseName(a.phase)},
                      {"generation", a.current_generation()},
                      {"revoked_generations", a.revoked_generations()}});
  }
  nlohmann::json bindings = nlohmann::json::array();
  for (const auto& [key, id] : st.bindings) {
    bindings.push_back({{"app", key.first}, {"binding", key.second}, {"addon_id", id}});
  }
  nlohmann::json releases = nlohmann::json::array();
  for (const auto& [app, list] : st.releases) {
    for (const auto& r : list) {
      nlohmann::json claims = nlohmann::json::array();
      for (const auto& c : r.claims) claims.push_back({{"binding", c.binding}, {"addon_id", c.addon_id}});
      releases.push_back({{"app", app}, {"release", r.id}, {"claims", claims}});
    }
  }
  nlohmann::json out = {{"seq", st.seq},
                        {"digest", B64(replay.digest)},
                        {"addons", addons},
                        {"bindings", bindings},
                        {"releases", releases},
                        {"snapshots", st.snapshots.size()}};
  bool mismatch = replay.read_model_digest && *replay.read_model_digest != replay.digest;
  if (replay.read_model_digest) {
    out["read_model_digest"] = B64(*replay.read_model_digest);
    out["read_model_matches"] = !mismatch;
  }
  if (shell.globals.json) {
    shell.PrintJson(out);
  } else {
    std::cout << "state as of seq " << st.seq << "\n"
              << "digest: " << B64(replay.digest) << "\n";
    if (replay.read_model_digest) {
      std::cout << "read model digest: " << B64(*replay.read_model_digest)
                << (mismatch ? "  MISMATCH" : "  (matches)") << "\n";
    }
    for (const auto& a : addons) {
      std::cout << "addon " << a["id"].get<std::string>() << "  " << a["name"].get<std::string>()
                << "  app=" << a["app"].get<std::string>() << "  " << a["state"].get<std::string>()
                << "\n";
    }
    for (const auto& b : bindings) {
      std::cout << "binding " << b["app"].get<std::string>() << "/" << b["binding"].get<std::string>()
                << " -> " << b["addon_id"].get<std::string>() << "\n";
    }
  }
  if (mismatch) {
    return shell.Fail(DataLoss("read_model_mismatch",
                               "the read model's digest differs from a replay of the log")
                          .WithRemediation("via recover"));
  }
  return 0;
}

int RunTimeline(Shell& shell, const std::string& html_file) {
  VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
  VIA_ASSIGN_OR_RETURN_EXIT(commands::Timeline timeline, commands::BuildTimeline(ctx), shell);
  const std::string page = RenderTimelineHtml(timeline, ctx.clock->NowMs(), VIA_VERSION);
  // Absolute, so that a bare file name has a directory to sync.
  Status written =
      eventstore::WriteFileAtomically(std::filesystem::absolute(html_file), AsBytes(page), 0644);
  if (!written.ok()) return shell.Fail(written.WithContext("--html " + html_file));

  std::size_t verified = 0;
  for (const auto& c : timeline.checkpoints) verified += c.check == commands::CheckpointCheck::kVerified;
  const Status& check = timeline.verify.status;
  if (shell.globals.json) {
    nlohmann::json out = {{"file", html_file},
                          {"ok", check.ok()},
                          {"size", timeline.size},
                          {"events", timeline.entries.size()},
                          {"addons", timeline.spans.size()},
                          {"apps", timeline.apps.size()},
                          {"checkpoints", timeline.checkpoints.size()},
                          {"checkpoints_verified", verified}};
    if (!check.ok()) {
      out["first_bad_seq"] = timeline.verify.first_bad_seq;
      out["error"] = {{"code", check.reason()},
                      {"message", check.message()},
                      {"remediation", "see docs/operations.md: corruption"},
                      {"owner", "operator"},
                      {"first_bad_seq", timeline.verify.first_bad_seq}};
    }
    shell.PrintJson(out);
  } else {
    std::cout << "wrote " << html_file << ": " << timeline.entries.size() << " events, "
              << timeline.spans.size() << " add-ons, " << timeline.apps.size() << " apps, "
              << timeline.checkpoints.size() << " checkpoints (" << verified << " verified)\n";
    if (!check.ok()) {
      std::cerr << "FAILED: first bad seq " << timeline.verify.first_bad_seq << ": "
                << check.message() << " [" << check.reason() << "]; the page shows where\n";
    }
  }
  // A damaged log is an integrity failure, as for `audit verify`; the page is written.
  return check.ok() ? 0 : ExitCodeFor(check.code());
}

}  // namespace

void RegisterAudit(CLI::App& app, Shell& shell) {
  CLI::App* audit = app.add_subcommand("audit", "verify and inspect the event log");
  audit->require_subcommand(1);

  auto verify_flags = std::make_shared<VerifyFlags>();
  CLI::App* verify = audit->add_subcommand("verify", "re-derive and check everything from the log's bytes");
  verify->add_option("--checkpoint", verify_flags->checkpoint_file,
                     "a checkpoint saved earlier: check today's log is consistent with it")
      ->check(CLI::ExistingFile);
  verify->add_option("--key", verify_flags->key,
                     "verifier key to trust (default: the key the log was initialized with)");
  verify->callback([&shell, verify_flags]() {
    shell.action = [&shell, verify_flags]() { return RunVerify(shell, *verify_flags); };
  });

  auto filter = std::make_shared<commands::LogFilter>();
  CLI::App* log = audit->add_subcommand("log", "print records (JSON lines with --json)");
  log->add_option("--addon", filter->addon, "only this add-on (name: every incarnation, or id)");
  log->add_option("--app", filter->app, "only records about this app");
  log->add_option("--since", filter->since, "from this seq on")->check(WholeNumber(0, kMaxSeq));
  log->add_option("--limit", filter->limit, "at most this many records")
      ->check(WholeNumber(0, kMaxSeq));
  log->callback([&shell, filter]() {
    shell.action = [&shell, filter]() { return RunLog(shell, *filter); };
  });

  audit->add_subcommand("checkpoint", "print the latest signed checkpoint")->callback([&shell]() {
    shell.action = [&shell]() { return RunCheckpoint(shell); };
  });
  audit->add_subcommand("key", "print the checkpoint verifier key")->callback([&shell]() {
    shell.action = [&shell]() { return RunKey(shell); };
  });

  auto until = std::make_shared<std::uint64_t>(0);
  CLI::App* replay = audit->add_subcommand("replay", "fold the log into state in memory, with its digest");
  replay->add_option("--until", *until, "stop after this seq (default: the whole log)")
      ->check(WholeNumber(1, kMaxSeq));
  replay->callback([&shell, until]() {
    shell.action = [&shell, until]() { return RunReplay(shell, *until); };
  });

  auto html = std::make_shared<std::string>();
  CLI::App* timeline = audit->add_subcommand(
      "timeline", "write a self-contained HTML page of the log over time, verified");
  timeline->add_option("--html", *html, "the page to write (replaced atomically)")
      ->required()
      ->type_name("FILE");
  timeline->callback([&shell, html]() {
    shell.action = [&shell, html]() { return RunTimeline(shell, *html); };
  });

  auto inclusion = std::make_shared<std::uint64_t>(0);
  auto consistency = std::make_shared<std::uint64_t>(0);
  CLI::App* prove = audit->add_subcommand("prove", "inclusion or consistency proof (RFC 6962)");
  auto* inc = prove->add_option("--inclusion", *inclusion, "prove record SEQ is in the log")
                  ->check(WholeNumber(1, kMaxSeq));
  auto* con = prove->add_option("--consistency", *consistency,
                                "prove the log of OLD_SIZE records is a prefix of today's")
                  ->check(WholeNumber(1, kMaxSeq));
  inc->excludes(con);
  prove->callback([&shell, inclusion, consistency, inc, con]() {
    shell.action = [&shell, inclusion, consistency, inc, con]() {
      if (inc->count() == 0 && con->count() == 0) {
        return shell.Fail(InvalidArgument("usage", "pass --inclusion SEQ or --consistency OLD_SIZE"));
      }
      return RunProve(shell, *inclusion, *consistency);
    };
  });
}

}  // namespace via::cli
