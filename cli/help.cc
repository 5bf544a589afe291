#include "cli/help.h"

#include <algorithm>
#include <iostream>
#include <sstream>

#include "cli/shell.h"

namespace via::cli {
namespace {

// Examples shown at the end of each command's --help, by command path. A
// command missing here shows none, which tests/cli/help_test.cc refuses.
// Keep them runnable as written (names as in docs/cli.md).
struct Example {
  std::string_view path;
  std::string_view lines;  // one command per line
};
constexpr Example kExamples[] = {
    {"",
     "via init\n"
     "via addon create sqlite app-db --app api --bind DATABASE\n"
     "via release create --app api\n"
     "via addon status app-db"},
    {"init", "via init\nvia --home /var/lib/via init"},
    {"addon", "via addon create sqlite app-db --app api --bind DATABASE\nvia addon list"},
    {"addon create",
     "via addon create sqlite app-db --app api --bind DATABASE\n"
     "via addon create sqlite copy-db --app api --from-file /backup/app-db.sqlite"},
    {"addon bind", "via addon bind app-db --app api --bind DATABASE"},
    {"addon unbind", "via addon unbind app-db --app api --bind DATABASE"},
    {"addon ensure",
     "via addon ensure sqlite app-db --app api --bind DATABASE\n"
     "via addon ensure sqlite app-db --app api --bind DATABASE --repair"},
    {"addon status",
     "via addon status app-db\nvia --json addon status ad_01JD3QZ5Y8N4M2K7T6R9W0XBCE"},
    {"addon check", "via addon check app-db"},
    {"addon list", "via addon list\nvia addon list --all"},
    {"addon history", "via addon history app-db"},
    {"addon destroy", "via addon destroy app-db --yes"},
    {"addon snapshot", "via addon snapshot app-db --label before-migration"},
    {"addon snapshots", "via addon snapshots app-db"},
    {"addon snapshot delete", "via addon snapshot delete sn_01JD3R2M5T8V0W3X6Y9Z1A4B7C --yes"},
    {"addon snapshot export",
     "via addon snapshot export sn_01JD3R2M5T8V0W3X6Y9Z1A4B7C --to /backup/app-db.sqlite"},
    {"addon snapshots verify",
     "via addon snapshots verify app-db\n"
     "via addon snapshots verify app-db --snapshot sn_01JD3R2M5T8V0W3X6Y9Z1A4B7C"},
    {"addon snapshots policy",
     "via addon snapshots policy app-db --keep-last 3 --keep-daily 7 --keep-weekly 4 --every 24h"},
    {"addon snapshots prune", "via addon snapshots prune app-db --dry-run\nvia addon snapshots prune app-db"},
    {"addon restore", "via addon restore app-db --snapshot sn_01JD3R2M5T8V0W3X6Y9Z1A4B7C --yes"},
    {"addon rotate-credentials", "via addon rotate-credentials app-db"},
    {"addon revoke-credentials", "via addon revoke-credentials app-db --generation 1"},
    {"release", "via release create --app api\nvia release list --app api"},
    {"release create",
     "via release create --app api\nvia release create --app api --id 2026-01-15.1"},
    {"release list", "via release list --app api"},
    {"audit", "via audit verify\nvia audit log --addon app-db"},
    {"audit verify",
     "via audit verify\n"
     "via audit checkpoint > saved.checkpoint && via audit verify --checkpoint saved.checkpoint"},
    {"audit log", "via audit log --addon app-db\nvia --json audit log --since 100 --limit 20"},
    {"audit checkpoint", "via audit checkpoint > saved.checkpoint"},
    {"audit key", "via audit key"},
    {"audit replay", "via audit replay\nvia audit replay --until 42"},
    {"audit prove", "via audit prove --inclusion 7\nvia --json audit prove --consistency 5"},
    {"audit timeline", "via audit timeline --html timeline.html"},
    {"recover", "via recover --dry-run\nvia recover"},
    {"provider", "via provider add postgres --admin-url postgresql://via@db.internal:5432/postgres "
                 "--password-file /etc/via/pg-admin.password"},
    {"provider add",
     "via provider add postgres --admin-url postgresql://via@db.internal:5432/postgres "
     "--password-file /etc/via/pg-admin.password"},
    {"workload", "via workload token --app api --release v1"},
    {"workload token",
     "export VIA_WORKLOAD_TOKEN=$(via workload token --app api --release v1 --ttl 15m)"},
    {"serve",
     "via serve --listen 127.0.0.1:7600 --access-log /var/log/via/access.log\n"
     "via serve --config /etc/via/serve.conf"},
    {"sql",
     "VIA_CONFIG_URL=http://127.0.0.1:7600 VIA_WORKLOAD_TOKEN=$TOKEN via sql DATABASE \"SELECT "
     "1\"\n"
     "via sql DATABASE \"INSERT INTO notes (body) VALUES (?)\" --arg hello\n"
     "via sql DATABASE --file migrations/002_notes.sql\n"
     "VIA_CONFIG_URL=https://via.internal:7600 via sql DATABASE \"SELECT 1\" --ca-file ca.pem"},
    {"completion",
     "source <(via completion bash)\n"
     "via completion zsh > \"${fpath[1]}/_via\"\n"
     "via completion fish > ~/.config/fish/completions/via.fish"},
    {"completion bash", "source <(via completion bash)"},
    {"completion zsh", "via completion zsh > \"${fpath[1]}/_via\""},
    {"completion fish", "via completion fish > ~/.config/fish/completions/via.fish"},
    {"help", "via help\nvia help addon create"},
};

// Each line indented by two spaces; no newline after the last.
std::string Indented(std::string_view lines) {
  std::string out;
  std::size_t start = 0;
  while (start <= lines.size()) {
    std::size_t end = lines.find('\n', start);
    if (end == std::string_view::npos) end = lines.size();
    if (!out.empty()) out += "\n";
    out += "  ";
    out.append(lines.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Subcommands by name, in registration order.
std::vector<const CLI::App*> Children(const CLI::App& command) {
  return command.get_subcommands(std::function<bool(const CLI::App*)>(
      [](const CLI::App* sub) { return !sub->get_name().empty() && !sub->get_disabled(); }));
}

// A command whose subcommands take nothing (`completion bash|zsh|fish`) is
// listed on one line with its alternatives.
bool ListsAsAlternatives(const CLI::App& command) {
  auto children = Children(command);
  if (children.empty()) return false;
  for (const CLI::App* child : children) {
    if (!Children(*child).empty()) return false;
    // Only the help flag.
    if (child->get_options().size() > 1) return false;
  }
  return true;
}

std::string OptionLabel(const CLI::Option& opt) {
  std::string names;
  for (const auto& s : opt.get_snames()) names += (names.empty() ? "-" : ", -") + s;
  for (const auto& l : opt.get_lnames()) names += (names.empty() ? "--" : ", --") + l;
  if (opt.get_expected_max() > 0) names += " " + opt.get_type_name();
  return names;
}

void Row(std::ostream& out, const std::string& left, const std::string& right, std::size_t width) {
  out << "  " << left;
  if (left.size() <= width) {
    out << std::string(width - left.size(), ' ');
  } else {
    out << "\n  " << std::string(width, ' ');
  }
  out << "  " << right << "\n";
}

class HelpFormatter : public CLI::Formatter {
 public:
  // Subcommands are listed under "Commands" (their group, set by FinishHelp).
  HelpFormatter() {
    label("SUBCOMMAND", "COMMAND");
    label("SUBCOMMANDS", "COMMANDS");
    column_width(34);
  }

  std::string make_help(const CLI::App* app, std::string name,
                        CLI::AppFormatMode mode) const override {
    if (app->get_parent() != nullptr || mode != CLI::AppFormatMode::Normal) {
      return CLI::Formatter::make_help(app, name, mode);
    }
    return RootHelp(*app);
  }

 private:
  static std::string RootHelp(const CLI::App& root) {
    std::ostringstream out;
    out << root.get_description() << "\n\n"
        << "Usage: via [GLOBAL FLAGS] COMMAND [ARGS...]\n\n"
        << "Commands:\n";
    std::vector<std::pair<std::string, std::string>> rows;
    for (const CLI::App* top : Children(root)) {
      if (ListsAsAlternatives(*top)) {
        std::string alternatives;
        for (const CLI::App* child : Children(*top)) {
          alternatives += (alternatives.empty() ? "" : "|") + child->get_name();
        }
        rows.emplace_back(top->get_name() + " " + alternatives, top->get_description());
        continue;
      }
      for (const CLI::App* leaf : Leaves(*top)) {
        rows.emplace_back(CommandPath(*leaf), leaf->get_description());
      }
    }
    std::size_t width = 0;
    for (const auto& [left, right] : rows) width = std::max(width, left.size());
    width = std::min<std::size_t>(width, 28);
    for (const auto& [left, right] : rows) Row(out, left, right, width);

    out << "\nGlobal flags (before or after the command):\n";
    std::vector<std::pair<std::string, std::string>> flags;
    for (const CLI::Option* opt : root.get_options()) {
      if (opt->get_positional()) continue;
      flags.emplace_back(OptionLabel(*opt), opt->get_description());
    }
    width = 0;
    for (const auto& [left, right] : flags) width = std::max(width, left.size());
    for (const auto& [left, right] : flags) Row(out, left, right, width);

    out << "\nRun `via help COMMAND` or `via COMMAND --help` for its flags and an example.\n"
        << "Exit codes: 0 ok, 1 unexpected failure, 2 usage, 3 add-on not usable,\n"
        << "4 refused by current state, 5 not found, 6 integrity failure.\n";
    const std::string footer = root.get_footer();
    if (!footer.empty()) out << "\n" << footer << "\n";
    return out.str();
  }
};

// Long and short names of the flags a command accepts: its own and, as the
// root falls through, those of its parents.
std::vector<std::string> FlagNames(const CLI::App& command) {
  std::vector<std::string> names;
  for (const CLI::App* c = &command; c != nullptr; c = c->get_parent()) {
    for (const CLI::Option* opt : c->get_options()) {
      for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
      for (const auto& s : opt->get_snames()) names.push_back("-" + s);
    }
  }
  return names;
}

std::vector<std::string> Names(const std::vector<const CLI::App*>& commands) {
  std::vector<std::string> out;
  for (const CLI::App* c : commands) out.push_back(c->get_name());
  return out;
}

// Quotes a word for a POSIX shell when it needs it.
std::string ShellWord(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789-_./:=@%+,") == std::string::npos) {
    return word;
  }
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// The command line with args[index] replaced (its "=value" part kept for a flag).
std::string Corrected(const std::vector<std::string>& args, std::size_t index,
                      const std::string& replacement) {
  std::string line = "via";
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string word = args[i];
    if (i == index) {
      std::size_t eq = word.find('=');
      const bool flag = !word.empty() && word[0] == '-';
      word = replacement + (flag && eq != std::string::npos ? word.substr(eq) : "");
    }
    line += " " + ShellWord(word);
  }
  return line;
}

std::string Quoted(const CLI::App& command) {
  const std::string path = CommandPath(command);
  return "`via" + (path.empty() ? "" : " " + path) + "`";
}

}  // namespace

std::string CommandPath(const CLI::App& command) {
  std::string path;
  for (const CLI::App* c = &command; c->get_parent() != nullptr; c = c->get_parent()) {
    path = c->get_name() + (path.empty() ? "" : " " + path);
  }
  return path;
}

std::vector<const CLI::App*> Leaves(const CLI::App& command) {
  std::vector<const CLI::App*> out;
  for (const CLI::App* child : Children(command)) {
    if (Children(*child).empty()) {
      out.push_back(child);
    } else {
      auto below = Leaves(*child);
      out.insert(out.end(), below.begin(), below.end());
    }
  }
  if (out.empty() && command.get_parent() != nullptr) out.push_back(&command);
  return out;
}

std::shared_ptr<CLI::Formatter> MakeHelpFormatter() { return std::make_shared<HelpFormatter>(); }

std::string HelpText(const CLI::App& command) {
  const std::string path = CommandPath(command);
  return command.get_formatter()->make_help(&command, "via" + (path.empty() ? "" : " " + path),
                                            CLI::AppFormatMode::Normal);
}

void FinishHelp(CLI::App& root) {
  std::vector<CLI::App*> pending{&root};
  while (!pending.empty()) {
    CLI::App* command = pending.back();
    pending.pop_back();
    const std::string path = CommandPath(*command);
    const auto* example = std::find_if(std::begin(kExamples), std::end(kExamples),
                                       [&path](const Example& e) { return e.path == path; });
    if (example != std::end(kExamples)) {
      std::string_view lines = example->lines;
      command->footer((lines.find('\n') == std::string_view::npos ? "Example:\n" : "Examples:\n") +
                      Indented(lines));
    }
    for (CLI::App* sub : command->get_subcommands(std::function<bool(CLI::App*)>())) {
      sub->group("Commands");
      pending.push_back(sub);
    }
  }
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::optional<std::string> ClosestMatch(std::string_view word,
                                        const std::vector<std::string>& candidates) {
  // Dashes of a flag are not letters the user mistyped.
  auto bare = [](std::string_view s) {
    while (!s.empty() && s.front() == '-') s.remove_prefix(1);
    return s;
  };
  const std::string_view w = bare(word);
  if (w.empty()) return std::nullopt;
  const std::size_t allowed = w.size() <= 1 ? 0 : w.size() <= 3 ? 1 : w.size() <= 8 ? 2 : 3;
  std::optional<std::string> best;
  std::size_t best_distance = 0;
  for (const auto& candidate : candidates) {
    const std::string_view c = bare(candidate);
    std::size_t distance = EditDistance(w, c);
    // A prefix of a longer name ("rot" for "rotate-credentials") counts as close.
    if (distance > allowed && w.size() >= 3 && c.substr(0, w.size()) == w) distance = allowed;
    if (distance > allowed) continue;
    if (!best || distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

UsageProblem DiagnoseParseError(const CLI::App& root, const CLI::ParseError& error,
                                const std::vector<std::string>& args) {
  // The deepest command that was recognized.
  const CLI::App* command = &root;
  while (!command->get_subcommands().empty()) command = command->get_subcommands().front();
  UsageProblem problem;
  const std::string path = CommandPath(*command);
  problem.hint = "Run `via " + (path.empty() ? "" : path + " ") + "--help` for " +
                 (path.empty()                  ? "the list of commands."
                  : !Children(*command).empty() ? "its commands."
                                                : "its flags and an example.");

  const std::vector<std::string> leftover = root.remaining(true);
  if (!leftover.empty()) {
    const std::string& token = leftover.front();
    // Its position in the command line, for the corrected line.
    auto at = std::find(args.begin(), args.end(), token);
    const std::size_t index = static_cast<std::size_t>(at - args.begin());
    if (token.size() > 1 && token[0] == '-') {
      const std::string name = token.substr(0, token.find('='));
      std::string message = "unknown flag " + name + " for " + Quoted(*command);
      Status status = InvalidArgument("usage", message);
      // A long flag is not a typo of a short one.
      std::vector<std::string> candidates = FlagNames(*command);
      if (name.rfind("--", 0) == 0) {
        std::erase_if(candidates, [](const std::string& c) { return c.rfind("--", 0) != 0; });
      }
      if (auto close = ClosestMatch(name, candidates)) {
        status = InvalidArgument("usage", message + "; did you mean " + *close + "?");
        if (at != args.end()) status = status.WithRemediation(Corrected(args, index, *close));
      }
      problem.status = status;
      return problem;
    }
    const auto children = Children(*command);
    if (!children.empty()) {
      std::string message = "unknown command '" + token + "' for " + Quoted(*command);
      Status status = InvalidArgument("usage", message);
      if (auto close = ClosestMatch(token, Names(children))) {
        status = InvalidArgument("usage", message + "; did you mean `" + *close + "`?");
        if (at != args.end()) status = status.WithRemediation(Corrected(args, index, *close));
      }
      problem.status = status;
      return problem;
    }
    problem.status =
        InvalidArgument("usage", "unexpected argument '" + token + "' for " + Quoted(*command));
    return problem;
  }
  if (!Children(*command).empty() && command->get_subcommands().empty()) {
    problem.status = InvalidArgument("usage", Quoted(*command) + " needs a command");
    problem.show_help = command;
    return problem;
  }
  problem.status = InvalidArgument("usage", std::string(error.what()) + " for " + Quoted(*command));
  return problem;
}

void RegisterHelp(CLI::App& app, Shell& shell) {
  auto topic = std::make_shared<std::vector<std::string>>();
  CLI::App* help = app.add_subcommand("help", "show the command list, or a command's help");
  help->add_option("command", *topic, "a command, e.g. `addon create`");
  CLI::App* root = &app;
  help->callback([&shell, root, topic]() {
    shell.action = [&shell, root, topic]() {
      const CLI::App* command = root;
      for (const std::string& word : *topic) {
        const auto children = Children(*command);
        auto found = std::find_if(children.begin(), children.end(),
                                  [&word](const CLI::App* c) { return c->check_name(word); });
        if (found == children.end()) {
          std::string message = "unknown command '" + word + "' for " + Quoted(*command);
          Status status = InvalidArgument("usage", message);
          if (auto close = ClosestMatch(word, Names(children))) {
            status = InvalidArgument("usage", message + "; did you mean `" + *close + "`?")
                         .WithRemediation(
                             "via help " +
                             (CommandPath(*command).empty() ? "" : CommandPath(*command) + " ") +
                             *close);
          }
          return shell.Fail(status);
        }
        command = *found;
      }
      std::cout << HelpText(*command);
      return 0;
    };
  });
}

}  // namespace via::cli
