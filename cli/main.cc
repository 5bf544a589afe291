// `via`: the operator CLI. Builds the object graph, parses flags with CLI11,
// runs one verb and maps its Status to an exit code (DESIGN.md section 6).

#include <exception>
#include <iostream>

#include "cli/shell.h"

int main(int argc, char** argv) {
  via::cli::Shell shell;
  CLI::App app{"via: managed add-ons for apps (event-sourced control plane)", "via"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the verb (`via addon destroy x --yes`)
  app.add_option("--home", shell.globals.home, "home directory (default $VIA_HOME or ~/.local/share/via)");
  app.add_flag("--json", shell.globals.json, "machine-readable output");
  app.add_option("--actor", shell.globals.actor, "who is acting (default $USER)");
  app.add_flag("--yes,-y", shell.globals.yes, "confirm destructive work without a prompt");
#ifdef VIA_TEST_HOOKS
  app.set_version_flag("--version",
                       "via 0.1.0 (built with test hooks: $VIA_TEST_FAULT, $VIA_CRASH_AT)");
#else
  app.set_version_flag("--version", "via 0.1.0");
#endif

  via::cli::RegisterInit(app, shell);
  via::cli::RegisterAddon(app, shell);
  via::cli::RegisterRelease(app, shell);
  via::cli::RegisterAudit(app, shell);
  via::cli::RegisterRecover(app, shell);
  via::cli::RegisterWorkload(app, shell);
  via::cli::RegisterServe(app, shell);
  via::cli::RegisterSql(app, shell);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (shell.globals.json) {
      return shell.Fail(via::InvalidArgument("usage", e.what()));
    }
    app.exit(e);
    return 2;
  }
  if (!shell.action) return shell.Fail(via::InvalidArgument("usage", "no command given"));
  try {
    return shell.action();
  } catch (const std::exception& e) {
    return shell.Fail(via::Internal(std::string("unexpected failure: ") + e.what()));
  }
}
