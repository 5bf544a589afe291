#pragma once

// Finding one's way in the CLI: the command list that `via`, `via help` and
// `via --help` print, each command's examples (its --help footer), `via help
// COMMAND...`, and usage errors that name the closest command or flag.
// Everything here is read from the CLI11 tree, so it cannot drift from the
// commands that exist.

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/status.h"

namespace via::cli {

// "addon create" for that command, "" for the root.
std::string CommandPath(const CLI::App& command);

// The commands below `command` that run (those without subcommands of their
// own), depth first in registration order.
std::vector<const CLI::App*> Leaves(const CLI::App& command);

// The help formatter of every command: the root prints the command list, the
// others CLI11's layout with "Commands" for subcommands; every footer holds
// the command's examples. Set it on the root before adding subcommands.
std::shared_ptr<CLI::Formatter> MakeHelpFormatter();

// The full help text of a command, as `via COMMAND --help` prints it.
std::string HelpText(const CLI::App& command);

// Call once the tree is complete: sets each command's footer to its examples
// (one table, in help.cc) and lists subcommands under "Commands".
void FinishHelp(CLI::App& root);

// Damerau-Levenshtein distance (optimal string alignment), byte-wise.
std::size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is close enough to be what the user
// meant (a few typos, or a prefix of it); the first such candidate on ties.
std::optional<std::string> ClosestMatch(std::string_view word,
                                        const std::vector<std::string>& candidates);

// A parse that failed, explained: an InvalidArgument with reason "usage" whose
// message names the unknown command or flag and the closest known one, and
// whose remediation is the corrected command line when there is one.
struct UsageProblem {
  Status status;
  // A command whose help should be shown instead of an error line (a command
  // that needs a subcommand and got none, e.g. `via` alone or `via addon`).
  const CLI::App* show_help = nullptr;
  // Where to read on: "Run `via addon --help` for its commands."
  std::string hint;
};
// `args` are argv[1..] as given.
UsageProblem DiagnoseParseError(const CLI::App& root, const CLI::ParseError& error,
                                const std::vector<std::string>& args);

}  // namespace via::cli
