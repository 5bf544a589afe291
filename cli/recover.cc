// `via recover [--dry-run]`: rebuild the read model, settle dangling intents,
// compare storage with metadata.

#include <iostream>

#include "cli/shell.h"
#include "commands/recover.h"

namespace via::cli {
namespace {

nlohmann::json Items(const std::vector<commands::RecoverItem>& items) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& i : items) {
    out.push_back({{"kind", i.kind},
                   {"addon_id", i.addon_id},
                   {"subject", i.subject},
                   {"action", i.action},
                   {"detail", i.detail}});
  }
  return out;
}

}  // namespace

void RegisterRecover(CLI::App& app, Shell& shell) {
  auto dry_run = std::make_shared<bool>(false);
  CLI::App* recover = app.add_subcommand("recover", "rebuild state after a crash and settle unfinished work");
  recover->add_flag("--dry-run", *dry_run, "say what would be done, change nothing");
  recover->callback([&shell, dry_run]() {
    shell.action = [&shell, dry_run]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(auto r, commands::Recover(ctx, *dry_run), shell);
      if (shell.globals.json) {
        return shell.PrintJson({{"dry_run", r.dry_run},
                                {"replay_digest", B64(r.replay_digest)},
                                {"read_model_digest", B64(r.read_model_digest)},
                                {"read_model_rebuilt", r.read_model_rebuilt},
                                {"read_model_behind", r.read_model_behind},
                                {"intents", Items(r.intents)},
                                {"storage", Items(r.storage)},
                                {"changed", r.changed}});
      }
      std::cout << (r.read_model_rebuilt ? (r.dry_run ? "read model: would rebuild (differs from replay)\n"
                                                      : "read model: rebuilt (it differed from replay)\n")
                                         : "read model: matches a replay of the log\n");
      if (r.read_model_behind > 0) {
        std::cout << "read model: " << r.read_model_behind
                  << " record(s) behind the log, which the next command catches up with\n";
      }
      for (const auto& i : r.intents) {
        std::cout << i.kind << " " << i.addon_id << (i.subject.empty() ? "" : " " + i.subject)
                  << ": " << i.action << (i.detail.empty() ? "" : " (" + i.detail + ")") << "\n";
      }
      for (const auto& i : r.storage) {
        std::cout << i.kind << " " << i.subject << ": " << i.action << " (" << i.detail << ")\n";
      }
      if (!r.changed && r.intents.empty() && !r.read_model_rebuilt) std::cout << "nothing to do\n";
      return 0;
    };
  });
}

}  // namespace via::cli
