// `via init`: creates the home, its keys and the log; prints the verifier key.

#include <iostream>

#include "cli/shell.h"
#include "commands/audit.h"

namespace via::cli {

void RegisterInit(CLI::App& app, Shell& shell) {
  CLI::App* init = app.add_subcommand("init", "create the home, keys and event log");
  init->callback([&shell]() {
    shell.action = [&shell]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
      auto result = commands::Init(ctx);
      if (!result.ok()) return shell.Fail(result.status());
      if (shell.globals.json) {
        return shell.PrintJson({{"created", result->created},
                                {"home", result->home},
                                {"log_id", result->log_id},
                                {"origin", result->origin},
                                {"verifier_key", result->verifier_key},
                                {"size", result->size}});
      }
      std::cout << (result->created ? "initialized " : "already initialized: ") << result->home
                << "\n"
                << "log id:       " << result->log_id << "\n"
                << "verifier key: " << result->verifier_key << "\n"
                << "Save the verifier key: `via audit verify` checks checkpoints against it.\n";
      return 0;
    };
  });
}

}  // namespace via::cli
