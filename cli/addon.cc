// `via addon ...`: create, bind, unbind, ensure, status, list, history, destroy.

#include <algorithm>
#include <array>
#include <iostream>

#include "cli/event_json.h"
#include "cli/event_text.h"
#include "cli/shell.h"
#include "commands/addon.h"

namespace via::cli {
namespace {

nlohmann::json AddonJson(const AddonState& a) {
  return {{"id", a.id},
          {"name", a.name},
          {"provider", a.provider},
          {"app", a.app},
          {"state", PhaseName(a.phase)},
          {"generation", a.current_generation()},
          {"revoked_generations", a.revoked_generations()},
          {"node", a.node.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.node)}};
}

nlohmann::json OrNull(const std::string& s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

// The last full check of an add-on's storage (`via addon check`), or null.
nlohmann::json LastCheckJson(const AddonState& a) {
  if (a.check_seq == 0) return nullptr;
  return {{"seq", a.check_seq},
          {"at", Rfc3339(a.check_at_ms)},
          {"ok", a.check_ok},
          {"detail", a.check_detail},
          {"current", a.check_seq > a.content_seq}};
}

nlohmann::json ReportJson(const commands::ReadinessReport& r) {
  const Readiness& x = r.readiness;
  nlohmann::json out;
  out["addon"] = r.addon ? AddonJson(*r.addon) : nlohmann::json(nullptr);
  out["binding"] = r.binding.empty() ? nlohmann::json(nullptr)
                                     : nlohmann::json{{"app", r.app}, {"name", r.binding}};
  if (r.is_ensure && !r.refusal.ok()) {
    const Status& e = r.refusal;
    out["error"] = {{"code", e.reason()},
                    {"message", e.message()},
                    {"remediation", OrNull(e.remediation())},
                    {"owner", OrNull(e.owner())}};
  }
  if (r.is_binding_change) out["changed"] = r.changed;
  if (r.is_ensure) {
    out["restored_from"] = OrNull(r.restored_from);
    out["created"] = r.created;
    out["already_exists"] = r.already_exists;
    out["changed"] = r.changed;
    out["compatible"] = r.compatible;
    out["warning"] = OrNull(r.warning);
  }
  out["metadata_ready"] = x.metadata_ready;
  out["storage_ready"] = x.storage_ready;
  // Several nodes: false when the storage is on another node, judged from the log.
  out["storage_probed"] = r.storage_node.empty();
  out["binding_ready"] = x.binding_ready;
  out["runtime_ready"] = x.runtime_ready;
  out["usable_by_app"] = x.usable_by_app;
  out["blocking"] = x.blocking ? nlohmann::json(*x.blocking) : nlohmann::json(nullptr);
  out["owner"] = OrNull(x.owner);
  out["reason"] = OrNull(x.reason);
  out["remediation"] = OrNull(x.remediation);
  out["log"] = {{"size", r.log_size}, {"root", B64(r.log_root)}};
  if (r.addon) out["last_check"] = LastCheckJson(*r.addon);
  return out;
}

void PrintReport(const commands::ReadinessReport& r) {
  const Readiness& x = r.readiness;
  if (r.addon) {
    std::cout << r.addon->name << " (" << r.addon->id << ")  provider " << r.addon->provider
              << "  app " << r.addon->app << "  state " << PhaseName(r.addon->phase)
              << "  generation " << r.addon->current_generation() << "\n";
    const AddonState& a = *r.addon;
    if (a.check_seq == 0) {
      std::cout << "last full check: never (via addon check " << a.name << ")\n";
    } else {
      std::cout << "last full check: seq " << a.check_seq << ", "
                << (a.check_ok ? "ok" : "damage found: " + a.check_detail)
                << (a.check_seq > a.content_seq ? "" : " (before the content was replaced)")
                << "\n";
    }
  }
  if (!r.binding.empty()) std::cout << "binding: " << r.app << "/" << r.binding << "\n";
  if (r.is_ensure && !r.refusal.ok()) {
    std::cout << "refused: " << r.refusal.message() << " [" << r.refusal.reason() << "]\n";
    if (!r.refusal.remediation().empty()) std::cout << "  fix:    " << r.refusal.remediation() << "\n";
    if (!r.refusal.owner().empty()) std::cout << "  owner:  " << r.refusal.owner() << "\n";
  }
  if (r.is_binding_change) std::cout << (r.changed ? "changed" : "nothing changed") << "\n";
  if (!r.restored_from.empty()) std::cout << "restored from snapshot " << r.restored_from << "\n";
  if (r.is_ensure) {
    std::cout << (r.created ? "created" : "already exists")
              << (r.changed ? ", changed" : ", nothing changed") << "\n";
  }
  if (!r.warning.empty()) std::cout << "warning: " << r.warning << "\n";
  auto mark = [](bool ok) { return ok ? "ok" : "--"; };
  std::cout << "metadata " << mark(x.metadata_ready) << "  storage " << mark(x.storage_ready)
            << "  binding " << mark(x.binding_ready) << "  runtime " << mark(x.runtime_ready)
            << "\n";
  if (!r.storage_node.empty()) {
    std::cout << "storage: on node " << r.storage_node
              << ", judged from the log (its files are not in this home)\n";
  }
  if (x.usable_by_app) {
    std::cout << "usable by app: yes\n";
  } else {
    std::cout << "usable by app: no  [" << *x.blocking << ", owner " << x.owner << "]\n"
              << "  reason: " << x.reason << "\n"
              << "  fix:    "
              << (x.remediation.empty() ? "none to paste: the " + x.owner + " decides"
                                        : x.remediation)
              << "\n";
  }
}

// Exit code of a readiness report: 0 usable, 5 not found, 3 otherwise.
int ReadinessExit(const commands::ReadinessReport& r) {
  if (r.readiness.usable_by_app) return 0;
  return r.readiness.blocking == "addon_not_found" ? 5 : 3;
}

int Render(Shell& shell, const Result<commands::ReadinessReport>& report, int exit_code) {
  if (!report.ok()) return shell.Fail(report.status());
  if (shell.globals.json) {
    shell.PrintJson(ReportJson(*report));
  } else {
    PrintReport(*report);
  }
  return exit_code;
}

struct Flags {
  std::string provider = "sqlite";
  std::string name;
  std::string app;
  std::string binding;
  bool repair = false;
  bool allow_empty = false;
  bool all = false;
  bool force = false;
  std::string label;
  std::string snapshot;
  std::uint32_t generation = 0;
  std::string from_file;
  std::string from_snapshot;
  std::string node;
  std::string owner_timeout = "60s";
  std::string to;
  bool dry_run = false;
  std::uint32_t keep_last = 0;
  std::uint32_t keep_daily = 0;
  std::uint32_t keep_weekly = 0;
  std::string every;
};

nlohmann::json SnapshotJson(const SnapshotState& s) {
  return {{"id", s.id},
          {"addon_id", s.addon_id},
          {"label", s.label},
          {"status", SnapshotStatusName(s.status)},
          {"bytes", s.bytes},
          {"page_count", s.page_count},
          {"sha256", HexEncode(s.sha256)},
          {"actor", s.actor},
          {"requested_at", Rfc3339(s.requested_at_ms)},
          {"reason", OrNull(s.failure_reason)},
          {"safety", IsSafetySnapshot(s)},
          {"verification", SnapshotVerificationName(s.verification)},
          {"verify_detail", OrNull(s.verify_detail)},
          {"verified_at", s.verified_at_ms == 0 ? nlohmann::json(nullptr)
                                                : nlohmann::json(Rfc3339(s.verified_at_ms))},
          {"deleted", s.deleted},
          {"deleted_reason", OrNull(s.deleted_reason)}};
}

// "taken verified", "taken unverified", "deleted (retention)", "failed".
std::string SnapshotStateText(const SnapshotState& s) {
  if (s.deleted) return "deleted (" + s.deleted_reason + ")";
  if (s.status != SnapshotStatus::kTaken) return SnapshotStatusName(s.status);
  return std::string("taken ") + SnapshotVerificationName(s.verification);
}

void PrintSnapshotLine(const SnapshotState& snap) {
  std::cout << snap.id << "  " << SnapshotStateText(snap) << "  " << snap.bytes << " bytes  by "
            << snap.actor << "  sha256 " << HexEncode(snap.sha256)
            << (IsSafetySnapshot(snap) ? "  [safety]" : "")
            << (snap.label.empty() ? "" : "  \"" + snap.label + "\"") << "\n";
  if (snap.verification == SnapshotVerification::kFailed) {
    std::cout << "    verification failed: " << snap.verify_detail << "\n";
  }
}

// `addon list`: one row per add-on, the columns of kListHeader; `--json`
// has the same fields under these names.
using ListRowCells = std::array<std::string, 8>;
const ListRowCells kListHeader = {"NAME", "ID", "PROVIDER", "APP", "STATE", "GEN", "READY",
                                  "BINDINGS"};
// Widths that fit the usual values (an id is 29 characters, the longest
// blocker 21); a longer value widens its own row only.
constexpr std::array<std::size_t, 7> kListWidths = {16, 29, 8, 10, 12, 3, 21};

// "yes", or the blocker `addon status` reports (storage_missing, ...).
std::string ReadyText(const commands::AddonSummary& s) {
  if (!s.report) return "?";
  const Readiness& x = s.report->readiness;
  return x.usable_by_app ? "yes" : x.blocking.value_or("no");
}

ListRowCells ListRow(const commands::AddonSummary& s) {
  std::string bindings;
  for (const auto& [app, name] : s.bindings) {
    bindings += (bindings.empty() ? "" : ",") + app + "/" + name;
  }
  return {s.addon.name,  s.addon.id,
          s.addon.provider, s.addon.app,
          PhaseName(s.addon.phase), std::to_string(s.addon.current_generation()),
          ReadyText(s), bindings.empty() ? "-" : bindings};
}

void PrintListRow(const ListRowCells& cells) {
  std::string line;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    std::string cell = TerminalSafe(cells[i]);
    if (i + 1 < cells.size()) cell.resize(std::max(cell.size(), kListWidths[i]), ' ');
    line += (i == 0 ? "" : "  ") + cell;
  }
  std::cout << line << "\n";
}

nlohmann::json ListEntryJson(const commands::AddonSummary& s) {
  nlohmann::json j = AddonJson(s.addon);
  nlohmann::json bindings = nlohmann::json::array();
  for (const auto& [a, b] : s.bindings) bindings.push_back(nlohmann::json{{"app", a}, {"name", b}});
  j["bindings"] = std::move(bindings);
  if (s.report) {
    const commands::ReadinessReport& r = *s.report;
    const Readiness& x = r.readiness;
    j["usable_by_app"] = x.usable_by_app;
    j["blocking"] = x.blocking ? nlohmann::json(*x.blocking) : nlohmann::json(nullptr);
    j["owner"] = OrNull(x.owner);
    j["checked_binding"] = r.binding.empty() ? nlohmann::json(nullptr)
                                             : nlohmann::json{{"app", r.app}, {"name", r.binding}};
  }
  return j;
}

// "24h" -> 86400; 0 for "" or "0" (no schedule).
Result<std::uint32_t> EverySeconds(const std::string& text) {
  if (text.empty() || text == "0") return 0;
  VIA_ASSIGN_OR_RETURN(std::int64_t ms, ParseDurationMs(text));
  if (ms < 60 * 1000 || ms > std::int64_t{366} * 24 * 3600 * 1000) {
    return InvalidArgument("invalid_schedule", "--every must be between 1m and 366d, got '" + text + "'");
  }
  return static_cast<std::uint32_t>(ms / 1000);
}

}  // namespace

void RegisterAddon(CLI::App& app, Shell& shell) {
  CLI::App* addon = app.add_subcommand("addon", "create, bind, inspect and destroy add-ons");
  addon->require_subcommand(1);
  auto f = std::make_shared<Flags>();

  CLI::App* create = addon->add_subcommand("create", "create an add-on and provision its storage");
  create->add_option("provider", f->provider, "provider (sqlite)")->required();
  create->add_option("name", f->name, "add-on name")->required();
  create->add_option("--app", f->app, "owning app")->required();
  create->add_option("--bind", f->binding, "binding name to attach, e.g. DATABASE");
  auto* from_file = create->add_option("--from-file", f->from_file,
                                       "import an existing SQLite database (checked first)");
  create->add_option("--from-snapshot", f->from_snapshot,
                     "start from a snapshot (any add-on's, a destroyed one's too)")
      ->excludes(from_file);
  create->add_option("--node", f->node,
                     "the node that owns it (default: this home's node; several nodes only)");
  create->add_option("--owner-timeout", f->owner_timeout,
                     "several nodes: how long to wait for another --node to provision it (default 60s)");
  create->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(ctx.owner_timeout_ms, ParseDurationMs(f->owner_timeout), shell);
      auto report = commands::CreateAddon(ctx, {f->name, f->provider, f->app, f->binding, f->node},
                                          {f->from_file, f->from_snapshot});
      // A fresh add-on without a binding is fine; a provider failure is not.
      int code = report.ok() && !(report->readiness.metadata_ready && report->readiness.storage_ready) ? 3 : 0;
      return Render(shell, report, code);
    };
  });

  for (const char* verb : {"bind", "unbind"}) {
    bool bind = std::string(verb) == "bind";
    CLI::App* cmd = addon->add_subcommand(verb, bind ? "attach an app's binding name to an add-on"
                                                     : "detach an app's binding name from an add-on");
    cmd->add_option("name", f->name, "add-on name or id")->required();
    cmd->add_option("--app", f->app, "app")->required();
    cmd->add_option("--bind", f->binding, "binding name")->required();
    cmd->callback([&shell, f, bind]() {
      shell.action = [&shell, f, bind]() {
        VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
        auto report = bind ? commands::BindAddon(ctx, f->name, f->app, f->binding)
                           : commands::UnbindAddon(ctx, f->name, f->app, f->binding);
        return Render(shell, report, 0);
      };
    });
  }

  CLI::App* ensure = addon->add_subcommand("ensure", "create, bind or check idempotently; --repair fixes storage");
  ensure->add_option("provider", f->provider, "provider (sqlite)")->required();
  ensure->add_option("name", f->name, "add-on name")->required();
  ensure->add_option("--app", f->app, "owning app")->required();
  ensure->add_option("--bind", f->binding, "binding name to attach when missing (none: attach nothing)");
  ensure->add_flag("--repair", f->repair, "repair missing or corrupt storage (never deletes bytes)");
  ensure->add_flag("--allow-empty", f->allow_empty,
                   "with --repair: accept an empty database where data existed and no snapshot verifies");
  ensure->add_option("--owner-timeout", f->owner_timeout,
                     "several nodes: how long to wait for the owning node to repair it (default 60s)");
  ensure->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(ctx.owner_timeout_ms, ParseDurationMs(f->owner_timeout), shell);
      if (f->allow_empty && !f->repair) {
        return shell.Fail(InvalidArgument("allow_empty_without_repair",
                                          "--allow-empty only applies to --repair"));
      }
      auto report = commands::EnsureAddon(ctx, {f->name, f->provider, f->app, f->binding},
                                          f->repair, f->allow_empty);
      int code = 1;
      if (report.ok()) {
        code = report->refusal.ok() ? ReadinessExit(*report) : ExitCodeFor(report->refusal.code());
      }
      return Render(shell, report, code);
    };
  });

  CLI::App* status = addon->add_subcommand("status", "readiness of an add-on (name or id)");
  status->add_option("name", f->name, "add-on name or id")->required();
  status->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
      auto report = commands::AddonStatus(ctx, f->name);
      return Render(shell, report, report.ok() ? ReadinessExit(*report) : 1);
    };
  });

  CLI::App* check = addon->add_subcommand(
      "check", "full integrity check of an add-on's live storage, recorded in the log");
  check->add_option("name", f->name, "add-on name or id")->required();
  check->add_option("--owner-timeout", f->owner_timeout,
                    "several nodes: how long to wait for the owning node to check it (default 60s)");
  check->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(ctx.owner_timeout_ms, ParseDurationMs(f->owner_timeout), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(auto result, commands::CheckAddon(ctx, f->name), shell);
      const int code = result.checked.ok ? 0 : 3;
      if (shell.globals.json) {
        shell.PrintJson({{"addon_id", result.addon_id},
                         {"name", result.name},
                         {"ok", result.checked.ok},
                         {"check", result.checked.check},
                         {"detail", result.checked.detail},
                         {"seq", result.seq},
                         {"remediation", OrNull(result.remediation)}});
        return code;
      }
      if (result.checked.ok) {
        std::cout << result.name << ": " << result.checked.check << " ok (recorded at seq "
                  << result.seq << ")\n";
      } else {
        std::cout << result.name << ": damage found by " << result.checked.check << ": "
                  << result.checked.detail << " (recorded at seq " << result.seq << ")\n"
                  << "  fix: " << result.remediation << "\n";
      }
      return code;
    };
  });

  CLI::App* list = addon->add_subcommand(
      "list", "live add-ons with their readiness, as a table (--all: tombstones too)");
  list->add_flag("--all", f->all, "include destroyed and retired records");
  list->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
      // Streamed: one add-on at a time, whatever their number, so the table's
      // columns have fixed widths that a longer value widens for its row only.
      std::size_t shown = 0;
      Status listed = commands::ListAddons(
          ctx, f->all,
          [&](const commands::AddonSummary& s) {
            if (shell.globals.json) {
              std::cout << (shown == 0 ? "{\"addons\":[" : ",")
                        << ListEntryJson(s).dump(-1, ' ', false,
                                                 nlohmann::json::error_handler_t::replace);
            } else {
              if (shown == 0) PrintListRow(kListHeader);
              PrintListRow(ListRow(s));
            }
            ++shown;
            return true;
          },
          /*readiness=*/true);
      if (!listed.ok()) {
        if (shown > 0) std::cout << (shell.globals.json ? "]}\n" : "");
        return shell.Fail(listed);
      }
      if (shell.globals.json) {
        std::cout << (shown == 0 ? "{\"addons\":[]}\n" : "]}\n");
      } else if (shown == 0) {
        std::cout << (f->all ? "no add-ons\n" : "no add-ons (via addon list --all shows destroyed ones)\n");
      }
      return 0;
    };
  });

  CLI::App* history = addon->add_subcommand("history", "every incarnation of a name, tombstones included");
  history->add_option("name", f->name, "add-on name")->required();
  history->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(auto incarnations, commands::AddonHistory(ctx, f->name), shell);
      if (shell.globals.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& inc : incarnations) {
          nlohmann::json events = nlohmann::json::array();
          for (const auto& r : inc.records) {
            events.push_back({{"seq", r.seq},
                              {"type", EventTypeName(r.event)},
                              {"recorded_at", Rfc3339(r.recorded_at_ms)},
                              {"actor", r.actor},
                              {"fields", EventFieldsJson(r.event)}});
          }
          nlohmann::json j = AddonJson(inc.addon);
          j["events"] = events;
          out.push_back(j);
        }
        return shell.PrintJson({{"name", f->name}, {"addons", out}});
      }
      for (const auto& inc : incarnations) {
        std::cout << inc.addon.name << "  " << inc.addon.id << "  " << PhaseName(inc.addon.phase)
                  << "\n";
        for (const auto& r : inc.records) {
          std::cout << "  " << r.seq << "  " << EventTypeName(r.event) << "  by " << r.actor << "\n";
        }
      }
      return 0;
    };
  });

  CLI::App* destroy = addon->add_subcommand("destroy", "destroy an add-on (refused while bound)");
  destroy->add_option("name", f->name, "add-on name or id")->required();
  destroy->add_flag("--force", f->force,
                    "destroy even when an app's latest release, or a release with a live "
                    "workload token, claims it");
  destroy->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      Status confirmed = shell.ConfirmDestructive("destroy add-on " + f->name);
      if (!confirmed.ok()) return shell.Fail(confirmed);
      VIA_ASSIGN_OR_RETURN_EXIT(auto result, commands::DestroyAddon(ctx, f->name, f->force), shell);
      if (shell.globals.json) {
        return shell.PrintJson({{"addon_id", result.addon_id},
                                {"tombstone_name", result.tombstone_name},
                                {"seq", result.seq}});
      }
      std::cout << "destroyed " << result.addon_id << "; its record stays as "
                << result.tombstone_name << " and the name is free\n";
      return 0;
    };
  });

  CLI::App* snapshot = addon->add_subcommand(
      "snapshot", "take a snapshot (online backup); also: snapshot delete | export");
  snapshot->add_option("name", f->name, "add-on name or id");
  snapshot->add_option("--label", f->label, "a note kept with the snapshot");
  snapshot->add_option("--owner-timeout", f->owner_timeout,
                       "several nodes: how long to wait for the owning node to take it (default 60s)");
  snapshot->require_subcommand(0, 1);
  snapshot->callback([&shell, f, snapshot]() {
    if (!snapshot->get_subcommands().empty()) return;  // delete | export
    shell.action = [&shell, f]() {
      if (f->name.empty()) {
        return shell.Fail(InvalidArgument("usage", "via addon snapshot needs an add-on NAME"));
      }
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(ctx.owner_timeout_ms, ParseDurationMs(f->owner_timeout), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(auto snap, commands::SnapshotAddon(ctx, f->name, f->label), shell);
      if (shell.globals.json) return shell.PrintJson(SnapshotJson(snap));
      std::cout << "snapshot " << snap.id << ": " << snap.bytes << " bytes, " << snap.page_count
                << " pages, sha256 " << HexEncode(snap.sha256) << " (unverified: via addon "
                << "snapshots verify " << f->name << " --snapshot " << snap.id << ")\n";
      return 0;
    };
  });

  CLI::App* del = snapshot->add_subcommand("delete", "delete a snapshot (its record stays)");
  del->add_option("snapshot_id", f->snapshot, "snapshot id")->required();
  del->add_flag("--force", f->force, "delete even the newest verified snapshot of its add-on");
  del->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      Status confirmed = shell.ConfirmDestructive("delete snapshot " + f->snapshot);
      if (!confirmed.ok()) return shell.Fail(confirmed);
      VIA_ASSIGN_OR_RETURN_EXIT(auto snap, commands::DeleteSnapshot(ctx, f->snapshot, f->force), shell);
      if (shell.globals.json) return shell.PrintJson(SnapshotJson(snap));
      std::cout << "deleted snapshot " << snap.id << " of " << snap.addon_id << " ("
                << snap.bytes << " bytes freed)\n";
      return 0;
    };
  });

  CLI::App* exp = snapshot->add_subcommand("export", "copy a snapshot to a file (prints its SHA-256)");
  exp->add_option("snapshot_id", f->snapshot, "snapshot id")->required();
  exp->add_option("--to", f->to, "new file to write")->required();
  exp->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(auto result, commands::ExportSnapshot(ctx, f->snapshot, f->to), shell);
      if (shell.globals.json) {
        return shell.PrintJson({{"snapshot_id", result.snapshot_id},
                                {"addon_id", result.addon_id},
                                {"path", result.path},
                                {"sha256", HexEncode(result.sha256)},
                                {"bytes", result.bytes}});
      }
      std::cout << HexEncode(result.sha256) << "  " << result.path << "\n";
      return 0;
    };
  });

  CLI::App* snapshots = addon->add_subcommand(
      "snapshots", "list snapshots (also of a destroyed add-on, by id); also: verify | policy | prune");
  snapshots->add_option("name", f->name, "add-on name or id");
  snapshots->require_subcommand(0, 1);
  snapshots->callback([&shell, f, snapshots]() {
    if (!snapshots->get_subcommands().empty()) return;  // verify | policy | prune
    shell.action = [&shell, f]() {
      if (f->name.empty()) {
        return shell.Fail(InvalidArgument("usage", "via addon snapshots needs an add-on NAME or id"));
      }
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(auto list, commands::ListSnapshots(ctx, f->name), shell);
      if (shell.globals.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& snap : list) out.push_back(SnapshotJson(snap));
        return shell.PrintJson({{"snapshots", out}});
      }
      if (list.empty()) std::cout << "no snapshots\n";
      for (const auto& snap : list) PrintSnapshotLine(snap);
      return 0;
    };
  });

  CLI::App* verify = snapshots->add_subcommand(
      "verify", "verify snapshots (SHA-256 and integrity_check), recorded in the log");
  verify->add_option("name", f->name, "add-on name or id")->required();
  verify->add_option("--snapshot", f->snapshot, "only this snapshot (default: every unverified one)");
  verify->add_option("--owner-timeout", f->owner_timeout,
                     "several nodes: how long to wait for the owning node to verify (default 60s)");
  verify->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(ctx.owner_timeout_ms, ParseDurationMs(f->owner_timeout), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(auto list, commands::VerifySnapshots(ctx, f->name, f->snapshot), shell);
      bool all_ok = true;
      for (const auto& snap : list) all_ok = all_ok && snap.verification == SnapshotVerification::kVerified;
      if (shell.globals.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& snap : list) out.push_back(SnapshotJson(snap));
        shell.PrintJson({{"ok", all_ok}, {"snapshots", out}});
      } else {
        if (list.empty()) std::cout << "nothing to verify\n";
        for (const auto& snap : list) PrintSnapshotLine(snap);
      }
      return all_ok ? 0 : 6;
    };
  });

  CLI::App* policy = snapshots->add_subcommand(
      "policy", "set the retention (and schedule) of an add-on's snapshots");
  policy->add_option("name", f->name, "add-on name or id")->required();
  policy->add_option("--keep-last", f->keep_last, "keep the newest N")->check(WholeNumber(0, 100000));
  policy->add_option("--keep-daily", f->keep_daily, "keep the newest of each of the last D days that have one")
      ->check(WholeNumber(0, 100000));
  policy->add_option("--keep-weekly", f->keep_weekly, "keep the newest of each of the last W weeks that have one")
      ->check(WholeNumber(0, 100000));
  policy->add_option("--every", f->every, "take one this often under via serve (e.g. 24h; 0: never)");
  policy->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(std::uint32_t every, EverySeconds(f->every), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      SnapshotPolicy p{f->keep_last, f->keep_daily, f->keep_weekly, every};
      VIA_ASSIGN_OR_RETURN_EXIT(auto a, commands::SetSnapshotPolicy(ctx, f->name, p), shell);
      if (shell.globals.json) {
        return shell.PrintJson({{"addon_id", a.id},
                                {"keep_last", a.keep_last},
                                {"keep_daily", a.keep_daily},
                                {"keep_weekly", a.keep_weekly},
                                {"every_ms", std::uint64_t{a.snapshot_every_s} * 1000}});
      }
      std::cout << "policy of " << a.name << ": keep last " << a.keep_last << ", daily "
                << a.keep_daily << ", weekly " << a.keep_weekly << "; "
                << (a.snapshot_every_s ? "a snapshot every " + std::to_string(a.snapshot_every_s) +
                                             " s under via serve"
                                       : std::string("no schedule"))
                << "\n";
      return 0;
    };
  });

  CLI::App* prune = snapshots->add_subcommand("prune", "delete the snapshots the retention policy does not keep");
  prune->add_option("name", f->name, "add-on name or id")->required();
  prune->add_flag("--dry-run", f->dry_run, "only say what would be deleted");
  prune->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(auto result, commands::PruneSnapshots(ctx, f->name, f->dry_run), shell);
      if (shell.globals.json) {
        nlohmann::json deleted = nlohmann::json::array(), kept = nlohmann::json::array();
        for (const auto& snap : result.deleted) deleted.push_back(SnapshotJson(snap));
        for (const auto& snap : result.kept) kept.push_back(SnapshotJson(snap));
        return shell.PrintJson({{"addon_id", result.addon_id},
                                {"dry_run", result.dry_run},
                                {"deleted", deleted},
                                {"kept", kept}});
      }
      for (const auto& snap : result.deleted) {
        std::cout << (result.dry_run ? "would delete " : "deleted ") << snap.id << "  "
                  << snap.bytes << " bytes\n";
      }
      std::cout << result.kept.size() << " kept, " << result.deleted.size()
                << (result.dry_run ? " would be deleted\n" : " deleted\n");
      return 0;
    };
  });

  CLI::App* restore = addon->add_subcommand("restore", "restore a snapshot (takes a safety snapshot first)");
  restore->add_option("name", f->name, "add-on name or id")->required();
  restore->add_option("--snapshot", f->snapshot, "snapshot id")->required();
  restore->add_option("--owner-timeout", f->owner_timeout,
                      "several nodes: how long to wait for the owning node to restore it (default 60s)");
  restore->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      Status confirmed = shell.ConfirmDestructive("restore " + f->name + " from " + f->snapshot +
                                                  " (replaces its current data)");
      if (!confirmed.ok()) return shell.Fail(confirmed);
      VIA_ASSIGN_OR_RETURN_EXIT(ctx.owner_timeout_ms, ParseDurationMs(f->owner_timeout), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(auto result, commands::RestoreAddon(ctx, f->name, f->snapshot), shell);
      std::string undo = "via addon restore " + f->name + " --snapshot " + result.safety_snapshot_id;
      if (shell.globals.json) {
        return shell.PrintJson({{"addon_id", result.addon_id},
                                {"snapshot_id", result.snapshot_id},
                                {"safety_snapshot_id", result.safety_snapshot_id},
                                {"undo", undo}});
      }
      std::cout << "restored " << result.addon_id << " from " << result.snapshot_id << "\n"
                << "undo: " << undo << "\n";
      return 0;
    };
  });

  CLI::App* rotate = addon->add_subcommand("rotate-credentials", "add credential generation N+1 (older ones stay valid)");
  rotate->add_option("name", f->name, "add-on name or id")->required();
  rotate->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(auto result, commands::RotateCredentials(ctx, f->name), shell);
      if (shell.globals.json) {
        return shell.PrintJson({{"addon_id", result.addon_id},
                                {"generation", result.generation},
                                {"active_generations", result.active}});
      }
      std::cout << "generation " << result.generation << " of " << result.addon_id
                << " is active; older generations stay valid until revoked\n";
      return 0;
    };
  });

  CLI::App* revoke = addon->add_subcommand("revoke-credentials", "revoke a credential generation");
  revoke->add_option("name", f->name, "add-on name or id")->required();
  revoke->add_option("--generation", f->generation, "generation number")
      ->required()
      ->check(WholeNumber(1, 4294967295ULL));
  revoke->add_flag("--force", f->force, "allow revoking the last active generation");
  revoke->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(
          auto result, commands::RevokeCredentials(ctx, f->name, f->generation, f->force), shell);
      if (shell.globals.json) {
        return shell.PrintJson({{"addon_id", result.addon_id},
                                {"revoked_generation", result.generation},
                                {"active_generations", result.active},
                                {"served_to", result.served_to}});
      }
      std::cout << "revoked generation " << result.generation << " of " << result.addon_id << "\n";
      for (const auto& r : result.served_to) std::cout << "  it had been served to " << r << "\n";
      return 0;
    };
  });
}

void RegisterRelease(CLI::App& app, Shell& shell) {
  CLI::App* release = app.add_subcommand("release", "snapshot an app's bindings into a release");
  release->require_subcommand(1);
  auto f = std::make_shared<Flags>();
  CLI::App* create = release->add_subcommand("create", "snapshot an app's bindings into a new release");
  create->add_option("--app", f->app, "app")->required();
  create->add_option("--id", f->snapshot, "release id (default v1, v2, ...)");
  create->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(auto result, commands::CreateRelease(ctx, f->app, f->snapshot), shell);
      nlohmann::json claims = nlohmann::json::array();
      for (const auto& c : result.release.claims) claims.push_back({{"binding", c.binding}, {"addon_id", c.addon_id}});
      if (shell.globals.json) {
        return shell.PrintJson({{"app", result.release.app},
                                {"release", result.release.id},
                                {"claims", claims},
                                {"warnings", result.warnings}});
      }
      std::cout << "release " << result.release.id << " of " << f->app << " claims "
                << result.release.claims.size() << " binding(s)\n";
      for (const auto& c : result.release.claims) std::cout << "  " << c.binding << " -> " << c.addon_id << "\n";
      for (const auto& w : result.warnings) std::cerr << "warning: " << w << "\n";
      return 0;
    };
  });
  CLI::App* list = release->add_subcommand("list", "list an app's releases");
  list->add_option("--app", f->app, "app")->required();
  list->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(auto releases, commands::ListReleases(ctx, f->app), shell);
      if (shell.globals.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& r : releases) {
          nlohmann::json claims = nlohmann::json::array();
          for (const auto& c : r.claims) claims.push_back({{"binding", c.binding}, {"addon_id", c.addon_id}});
          out.push_back({{"release", r.id}, {"created_at", Rfc3339(r.created_at_ms)}, {"seq", r.seq}, {"claims", claims}});
        }
        return shell.PrintJson({{"app", f->app}, {"releases", out}});
      }
      if (releases.empty()) std::cout << "no releases\n";
      for (const auto& r : releases) {
        std::cout << r.id << "  seq " << r.seq;
        for (const auto& c : r.claims) std::cout << "  " << c.binding << "->" << c.addon_id;
        std::cout << "\n";
      }
      return 0;
    };
  });
}

}  // namespace via::cli
