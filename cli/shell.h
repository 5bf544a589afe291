#pragma once

// The CLI's shared shell: global flags, the object graph (clock, ids, context),
// and rendering of results and errors. Domain logic lives in commands/.

#include <functional>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands/context.h"
#include "domain/status.h"
#include "providers/registry.h"

namespace via::cli {

// The composition root of providers: every provider this build runs
// (providers.cc).
providers::Registry BuildProviderRegistry();

struct Globals {
  std::string home;
  bool json = false;
  std::string actor;
  bool yes = false;
  // `--command-id ID`: retrying the same command line with the same id
  // replays the first run's records instead of appending again.
  std::string command_id;
  // The command line without its global flags (what --command-id keys on).
  std::string command_line;
};

class Shell {
 public:
  Shell();

  Globals globals;
  // The chosen verb's action; returns the exit code.
  std::function<int()> action;

  // Whether a command appends decisions (and so takes --command-id).
  enum class Appends { kNo, kYes };
  // A context for command handlers built from the global flags. --command-id
  // is refused (InvalidArgument "command_id_unsupported") unless `appends`:
  // each command that changes state says so where it is registered, and
  // docs/cli.md lists them.
  Result<commands::Context> MakeContext(Appends appends = Appends::kNo);

  // Prints an error (text on stderr, or the JSON error object on stdout) and
  // returns its exit code.
  int Fail(const Status& status);
  // Prints `value` as one JSON document (or line) on stdout; returns 0.
  int PrintJson(const nlohmann::json& value);

  bool StdoutIsTty() const;
  bool StderrIsTty() const;
  // OK when destructive work may proceed: --yes, or a TTY user who types "yes".
  Status ConfirmDestructive(const std::string& what);

  // A progress sink that draws on stderr when it is a TTY and --json is not
  // given (else null): what, amount done of the total (as sizes when
  // `bytes`), rate and ETA, one line per phase.
  std::function<void(const std::string&, std::uint64_t, std::uint64_t)> ProgressPrinter(
      bool bytes = false);

 private:
  // The providers this build runs (providers.cc), handed to every context.
  providers::Registry providers_ = BuildProviderRegistry();
  commands::SystemClock clock_;
  commands::RandomIdGenerator ids_{clock_};
};

// Registers the nouns (one file each).
void RegisterInit(CLI::App& app, Shell& shell);
void RegisterAudit(CLI::App& app, Shell& shell);
void RegisterAddon(CLI::App& app, Shell& shell);
void RegisterRelease(CLI::App& app, Shell& shell);
void RegisterRecover(CLI::App& app, Shell& shell);
void RegisterWorkload(CLI::App& app, Shell& shell);
void RegisterServe(CLI::App& app, Shell& shell);
void RegisterSql(CLI::App& app, Shell& shell);
void RegisterProvider(CLI::App& app, Shell& shell);
// `via help [COMMAND...]` (help.cc) and `via completion bash|zsh|fish`
// (completion.cc); they read the tree when they run. Registered last, they
// come last in the command list.
void RegisterHelp(CLI::App& app, Shell& shell);
void RegisterCompletion(CLI::App& app, Shell& shell);

// "500ms", "30s", "15m", "1h", "7d" (a bare number is seconds) in milliseconds.
Result<std::int64_t> ParseDurationMs(const std::string& text);

// A CLI11 check for a whole number in [min, max], written in decimal digits
// only: a sign, a fraction, an exponent or a value out of range is a usage
// error (exit 2), never wrapped or clamped into another number.
CLI::Validator WholeNumber(std::uint64_t min, std::uint64_t max);
// The largest seq or count a flag takes (SQLite stores them as int64).
inline constexpr std::uint64_t kMaxSeq = 9223372036854775807ULL;

// Binds a Result's value or prints its error and returns the exit code.
#define VIA_ASSIGN_OR_RETURN_EXIT(lhs, expr, shell) \
  VIA_ASSIGN_OR_RETURN_EXIT_IMPL_(VIA_CONCAT_(via_exit_, __LINE__), lhs, expr, shell)
#define VIA_ASSIGN_OR_RETURN_EXIT_IMPL_(tmp, lhs, expr, shell) \
  auto tmp = (expr);                                           \
  if (!tmp.ok()) return (shell).Fail(tmp.status());            \
  lhs = std::move(tmp).value()

// Base64 of a digest.
std::string B64(ByteView bytes);

}  // namespace via::cli
