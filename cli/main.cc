// `via`: the operator CLI. Builds the object graph, parses flags with CLI11,
// runs one verb and maps its Status to an exit code (DESIGN.md section 6).

#include <exception>
#include <iostream>

#include "cli/help.h"
#include "cli/shell.h"

#ifndef VIA_VERSION
#define VIA_VERSION "0.0.0"
#endif

namespace {

// A command line that CLI11 refused: the command list when a command is
// missing (`via`, `via addon`), else the error with the closest command or
// flag and the corrected line. Exit 2.
int UsageError(via::cli::Shell& shell, const CLI::App& app, const CLI::ParseError& error,
               const std::vector<std::string>& args) {
  // --json may come after the word that failed, so CLI11 never saw it.
  for (const auto& arg : args) {
    if (arg == "--") break;
    if (arg == "--json") shell.globals.json = true;
  }
  via::cli::UsageProblem problem = via::cli::DiagnoseParseError(app, error, args);
  if (problem.show_help != nullptr && !shell.globals.json) {
    std::cerr << via::cli::HelpText(*problem.show_help);
    return 2;
  }
  int code = shell.Fail(problem.status);
  if (!shell.globals.json) std::cerr << problem.hint << "\n";
  return code;
}

// The command word of the command line (the first word that is neither a
// global flag nor its value), or "" when there is none.
std::string CommandWord(const std::vector<std::string>& args) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--home" || a == "--actor" || a == "--command-id") {
      ++i;  // its value
      continue;
    }
    if (a == "--") return "";
    if (!a.empty() && a[0] == '-') continue;
    return a;
  }
  return "";
}

// The words of the command line that say what to do (global flags dropped,
// `--flag=value` kept as written), joined by NUL: what --command-id keys on.
std::string CommandLineWithoutGlobals(const std::vector<std::string>& args) {
  std::string out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--home" || a == "--actor" || a == "--command-id") {
      ++i;
      continue;
    }
    if (a == "--json" || a == "--yes" || a == "-y" || a.rfind("--home=", 0) == 0 ||
        a.rfind("--actor=", 0) == 0 || a.rfind("--command-id=", 0) == 0) {
      continue;
    }
    out += a;
    out.push_back('\0');
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  via::cli::Shell shell;
  CLI::App app{"via " VIA_VERSION ": managed add-ons for apps (event-sourced control plane)",
               "via"};
  app.formatter(via::cli::MakeHelpFormatter());
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the verb (`via addon destroy x --yes`)
  app.add_option("--home", shell.globals.home,
                 "home directory (default $VIA_HOME or ~/.local/share/via)")
      ->type_name("DIR");
  app.add_flag("--json", shell.globals.json, "machine-readable output");
  app.add_option("--actor", shell.globals.actor, "who is acting (default $USER)")
      ->type_name("NAME");
  app.add_flag("--yes,-y", shell.globals.yes, "confirm destructive work without a prompt");
  app.add_option("--command-id", shell.globals.command_id,
                 "make a retry safe: the same command with the same id appends nothing again")
      ->type_name("ID");
#ifdef VIA_TEST_HOOKS
  app.set_version_flag("--version",
                       "via " VIA_VERSION " (built with test hooks: $VIA_TEST_FAULT, $VIA_CRASH_AT)",
                       "print the version and exit");
#else
  app.set_version_flag("--version", "via " VIA_VERSION, "print the version and exit");
#endif

  // Building every command's options is a good part of a short command's
  // start-up: a command line that names a command registers that one only.
  // Help, completion, an unknown word (for the closest-command suggestion)
  // or no word at all register everything.
  const std::vector<std::string> args(argv + 1, argv + argc);
  using Register = void (*)(CLI::App&, via::cli::Shell&);
  const std::pair<const char*, Register> kCommands[] = {
      {"init", via::cli::RegisterInit},         {"addon", via::cli::RegisterAddon},
      {"release", via::cli::RegisterRelease},   {"audit", via::cli::RegisterAudit},
      {"recover", via::cli::RegisterRecover},   {"workload", via::cli::RegisterWorkload},
      {"serve", via::cli::RegisterServe},       {"sql", via::cli::RegisterSql},
      {"provider", via::cli::RegisterProvider},
      {"completion", via::cli::RegisterCompletion}, {"help", via::cli::RegisterHelp}};
  const std::string word = CommandWord(args);
  shell.globals.command_line = CommandLineWithoutGlobals(args);
  bool one = false;
  for (const auto& [name, add] : kCommands) {
    if (word == name && word != "help" && word != "completion") {
      add(app, shell);
      one = true;
    }
  }
  if (!one) {
    for (const auto& [name, add] : kCommands) add(app, shell);
  }
  via::cli::FinishHelp(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return UsageError(shell, app, e, args);
  }
  if (!shell.action) return shell.Fail(via::InvalidArgument("usage", "no command given"));
  try {
    return shell.action();
  } catch (const std::exception& e) {
    return shell.Fail(via::Internal(std::string("unexpected failure: ") + e.what()));
  }
}
