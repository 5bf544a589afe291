#include "cli/shell.h"

#include <pwd.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <memory>
#include <cstdlib>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "crypto/crypto.h"
#include "eventstore/filenames.h"
#ifdef VIA_TEST_HOOKS
#include "providers/sqlite/fault_vfs.h"
#endif

namespace via::cli {

Shell::Shell() {
  if (const char* user = std::getenv("USER"); user && *user) {
    globals.actor = user;
  } else if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_name) {
    globals.actor = pw->pw_name;
  }
}

Result<commands::Context> Shell::MakeContext(Appends appends) {
  VIA_ASSIGN_OR_RETURN(eventstore::Home home,
                       eventstore::Home::Resolve(globals.home.empty()
                                                     ? std::nullopt
                                                     : std::optional<std::string>(globals.home)));
  commands::Context ctx;
  ctx.home = home;
  ctx.actor = globals.actor.empty() ? "unknown" : globals.actor;
  ctx.clock = &clock_;
  ctx.ids = &ids_;
  ctx.providers = &providers_;
  ctx.progress = ProgressPrinter(/*bytes=*/true);
  if (!globals.command_id.empty()) {
    const std::string& id = globals.command_id;
    bool ok = id.size() <= 128;
    for (char c : id) {
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == ':');
    }
    if (!ok) {
      return InvalidArgument("invalid_command_id",
                             "--command-id takes 1 to 128 of A-Z a-z 0-9 - _ . :");
    }
    if (appends != Appends::kYes) {
      return InvalidArgument("command_id_unsupported",
                             "--command-id is for commands that change state; this one only "
                             "reads (docs/cli.md lists the commands that take it)");
    }
    // Keyed on the command line too: the same id on another command is
    // another command, never a replay of this one's records.
    Hash256 line = crypto::Sha256::Digest(globals.command_line);
    ctx.command_id = eventstore::OperatorCommandId(id, HexEncode(ByteView(line.data(), 8)));
  }
#ifdef VIA_TEST_HOOKS
  // Test-only faults and crash points (docs/operations.md), compiled in only
  // when the build asks for them (cmake -DVIA_TEST_HOOKS=ON).
  if (const char* fault = std::getenv("VIA_TEST_FAULT"); fault && *fault) {
    ctx.test_faults = providers::sqlite::TestFaultsFromSpec(fault);
  }
  if (const char* crash = std::getenv("VIA_CRASH_AT"); crash && *crash) {
    ctx.crash = CrashPoints(crash);
  }
#endif
  return ctx;
}

int Shell::Fail(const Status& given) {
  Status status = given;
  if (auto home = eventstore::Home::Resolve(globals.home.empty()
                                                ? std::nullopt
                                                : std::optional<std::string>(globals.home));
      home.ok()) {
    status = commands::ExplainFault(*home, status);
  }
  std::string code = status.reason().empty() ? StatusCodeName(status.code()) : status.reason();
  if (globals.json) {
    nlohmann::json error = {{"code", code}, {"message", status.message()}};
    error["remediation"] = status.remediation().empty() ? nlohmann::json(nullptr)
                                                        : nlohmann::json(status.remediation());
    error["owner"] = status.owner().empty() ? nlohmann::json(nullptr) : nlohmann::json(status.owner());
    // Messages carry names from the log and the command line: bad UTF-8 is
    // replaced, never thrown on.
    std::cout << nlohmann::json{{"error", error}}.dump(-1, ' ', false,
                                                      nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    std::cerr << "error: " << status.message() << " [" << code << "]\n";
    if (!status.remediation().empty()) std::cerr << "  fix: " << status.remediation() << "\n";
    if (!status.owner().empty()) std::cerr << "  owner: " << status.owner() << "\n";
  }
  return ExitCodeFor(status.code());
}

int Shell::PrintJson(const nlohmann::json& value) {
  std::cout << value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return 0;
}

bool Shell::StdoutIsTty() const { return ::isatty(STDOUT_FILENO) == 1; }
bool Shell::StderrIsTty() const { return ::isatty(STDERR_FILENO) == 1; }

Status Shell::ConfirmDestructive(const std::string& what) {
  if (globals.yes) return Status::Ok();
  if (::isatty(STDIN_FILENO) != 1) {
    return InvalidArgument("confirmation_required",
                           what + " is destructive and there is no terminal to confirm it: "
                                  "pass --yes");
  }
  std::cerr << what << ". Type 'yes' to continue: " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  if (answer != "yes") return FailedPrecondition("not_confirmed", "not confirmed; nothing done");
  return Status::Ok();
}

namespace {

// "512.0 MiB"; plain counts when not bytes.
std::string Amount(double value, bool bytes) {
  if (!bytes) return std::to_string(static_cast<std::uint64_t>(value));
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return text;
}

// One line per phase, redrawn in place at most ten times a second: phase,
// amount done of the total, percent, rate and ETA. The line of a phase ends
// when it is done, so a phase that follows (fsync, a check) shows at once.
struct ProgressLine {
  bool bytes = false;
  std::string what;
  std::chrono::steady_clock::time_point started, drawn;
  bool open = false;  // a line is drawn and not ended

  void Report(const std::string& now_what, std::uint64_t done, std::uint64_t total) {
    auto now = std::chrono::steady_clock::now();
    const bool finished = total > 0 && done >= total;
    if (now_what != what) {
      if (open) std::cerr << "\n";
      what = now_what;
      started = now;
      open = false;
    } else if (!finished && now - drawn < std::chrono::milliseconds(100)) {
      return;
    } else if (!open && finished) {
      return;  // this phase's line already ended
    }
    drawn = now;
    double seconds = std::chrono::duration<double>(now - started).count();
    std::string line = what + ": " + Amount(static_cast<double>(done), bytes);
    if (total > 0) {
      line += " / " + Amount(static_cast<double>(total), bytes) + " (" +
              std::to_string(done * 100 / total) + "%)";
    }
    if (seconds > 0.2 && done > 0) {
      double rate = static_cast<double>(done) / seconds;
      line += "  " + Amount(rate, bytes) + "/s";
      if (total > done) {
        line += "  ETA " + std::to_string(static_cast<long long>(static_cast<double>(total - done) / rate + 0.5)) + "s";
      }
    }
    std::cerr << "\r\x1b[K" << line;
    open = !finished;
    if (finished) std::cerr << "\n";
    std::cerr << std::flush;
  }
};

}  // namespace

std::function<void(const std::string&, std::uint64_t, std::uint64_t)> Shell::ProgressPrinter(
    bool bytes) {
  if (!StderrIsTty() || globals.json) return nullptr;
  auto line = std::make_shared<ProgressLine>();
  line->bytes = bytes;
  return [line](const std::string& what, std::uint64_t done, std::uint64_t total) {
    line->Report(what, done, total);
  };
}

std::string B64(ByteView bytes) { return crypto::Base64Encode(bytes); }

CLI::Validator WholeNumber(std::uint64_t min, std::uint64_t max) {
  const std::string range =
      "a whole number between " + std::to_string(min) + " and " + std::to_string(max);
  return CLI::Validator(
      [min, max, range](std::string& text) -> std::string {
        std::uint64_t value = 0;
        const char* end = text.data() + text.size();
        auto [ptr, ec] = std::from_chars(text.data(), end, value);
        const bool digits = !text.empty() && text.size() <= 20 &&
                            text.find_first_not_of("0123456789") == std::string::npos;
        if (!digits || ec != std::errc() || ptr != end || value < min || value > max) {
          return "must be " + range + ", got '" + text + "'";
        }
        return std::string();
      },
      range);
}

}  // namespace via::cli
