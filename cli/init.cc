// `via init`: creates the home, its keys and the log; prints the verifier key.

#include <iostream>
#include <memory>

#include "cli/shell.h"
#include "commands/audit.h"

namespace via::cli {

void RegisterInit(CLI::App& app, Shell& shell) {
  CLI::App* init = app.add_subcommand("init", "create the home, keys and event log");
  auto log_url = std::make_shared<std::string>();
  init->add_option("--log", *log_url,
                   "keep the event log on PostgreSQL: postgresql://USER@HOST:PORT/DB (password "
                   "from PGPASSFILE, never in the URL)");
  init->callback([&shell, log_url]() {
    shell.action = [&shell, log_url]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      ctx.log_url = *log_url;
      auto result = commands::Init(ctx);
      if (!result.ok()) return shell.Fail(result.status());
      if (shell.globals.json) {
        return shell.PrintJson({{"created", result->created},
                                {"home", result->home},
                                {"log", result->log},
                                {"log_id", result->log_id},
                                {"origin", result->origin},
                                {"verifier_key", result->verifier_key},
                                {"size", result->size}});
      }
      std::cout << (result->created ? "initialized " : "already initialized: ") << result->home
                << "\n"
                << "log:          " << result->log << "\n"
                << "log id:       " << result->log_id << "\n"
                << "verifier key: " << result->verifier_key << "\n"
                << "Save the verifier key: `via audit verify` checks checkpoints against it.\n";
      return 0;
    };
  });
}

}  // namespace via::cli
