// `via completion bash|zsh|fish`: shell completion scripts generated from the
// CLI11 tree at run time, so they list exactly the commands and flags this
// binary has. The packaged files (packaging/CMakeLists.txt) are this output.
//
// Every script works the same way: it walks the words typed so far, skipping
// flags and the value of a flag that takes one, to find the command path
// ("addon create"); then it offers that command's subcommands, its flags
// (the global ones included, as they may follow the verb), or file names after
// a flag whose value is a FILE or DIR.

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/help.h"
#include "cli/shell.h"

#ifndef VIA_VERSION
#define VIA_VERSION "0.0.0"
#endif

namespace via::cli {
namespace {

struct FlagSpec {
  std::vector<std::string> names;  // "--home", "-y"
  std::string description;
  bool takes_value = false;
  std::string kind;     // for a value: "file", "dir" or "value"
  bool global = false;  // a root flag, accepted after any command
};

struct CommandSpec {
  std::string path;                                              // "" for the root
  std::vector<std::pair<std::string, std::string>> subcommands;  // name, description
  std::vector<FlagSpec> flags;                                   // own flags, then the global ones
};

FlagSpec Flag(const CLI::Option& opt, bool global) {
  FlagSpec flag;
  for (const auto& l : opt.get_lnames()) flag.names.push_back("--" + l);
  for (const auto& s : opt.get_snames()) flag.names.push_back("-" + s);
  flag.description = opt.get_description();
  flag.takes_value = opt.get_expected_max() > 0;
  flag.global = global;
  if (flag.takes_value) {
    const std::string type = opt.get_type_name();
    flag.kind = type.find("FILE") != std::string::npos  ? "file"
                : type.find("DIR") != std::string::npos ? "dir"
                                                        : "value";
  }
  return flag;
}

void Collect(const CLI::App& command, const std::vector<FlagSpec>& globals,
             std::vector<CommandSpec>& out) {
  CommandSpec spec;
  spec.path = CommandPath(command);
  auto children = command.get_subcommands(std::function<bool(const CLI::App*)>(
      [](const CLI::App* sub) { return !sub->get_name().empty() && !sub->get_disabled(); }));
  for (const CLI::App* child : children) {
    spec.subcommands.emplace_back(child->get_name(), child->get_description());
  }
  for (const CLI::Option* opt : command.get_options()) {
    if (opt->get_positional()) continue;
    spec.flags.push_back(Flag(*opt, command.get_parent() == nullptr));
  }
  if (command.get_parent() != nullptr) {
    for (const FlagSpec& g : globals) {
      // Each command has its own --help; --version belongs to the root alone.
      if (g.names.front() == "--help" || g.names.front() == "--version") continue;
      spec.flags.push_back(g);
    }
  }
  out.push_back(spec);
  for (const CLI::App* child : children) Collect(*child, globals, out);
}

std::vector<CommandSpec> Model(const CLI::App& root) {
  std::vector<FlagSpec> globals;
  for (const CLI::Option* opt : root.get_options()) {
    if (!opt->get_positional()) globals.push_back(Flag(*opt, true));
  }
  std::vector<CommandSpec> out;
  Collect(root, globals, out);
  return out;
}

// Text inside '…' for bash and zsh.
std::string ShQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else if (c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Text inside '…' for fish.
std::string FishQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c == '\n' ? ' ' : c;
  }
  return out + "'";
}

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

std::vector<std::string> SubcommandNames(const CommandSpec& spec) {
  std::vector<std::string> out;
  for (const auto& [name, description] : spec.subcommands) out.push_back(name);
  return out;
}

std::vector<std::string> FlagNames(const CommandSpec& spec) {
  std::vector<std::string> out;
  for (const FlagSpec& f : spec.flags) out.insert(out.end(), f.names.begin(), f.names.end());
  return out;
}

// `case "$1|$2"` arms naming the kind of each flag that takes a value: the
// commands' own flags first, then the global ones at any path.
std::string FlagKindCases(const std::vector<CommandSpec>& model, const std::string& indent) {
  std::ostringstream out;
  // One arm: `'PATH|--flag'|'PATH|-f') echo KIND ;;`, PATH "*" for any.
  auto arm = [&out, &indent](const std::string& path, const FlagSpec& f) {
    out << indent;
    for (std::size_t i = 0; i < f.names.size(); ++i) {
      if (i > 0) out << '|';
      if (path == "*") {
        out << '*' << ShQuote("|" + f.names[i]);
      } else {
        out << ShQuote(path + "|" + f.names[i]);
      }
    }
    out << ") echo " << f.kind << " ;;\n";
  };
  for (const CommandSpec& spec : model) {
    for (const FlagSpec& f : spec.flags) {
      if (f.takes_value && !f.global) arm(spec.path, f);
    }
  }
  for (const FlagSpec& f : model.front().flags) {
    if (f.takes_value) arm("*", f);
  }
  return out.str();
}

std::string Bash(const std::vector<CommandSpec>& model) {
  std::ostringstream out;
  out << "# bash completion for via                                  -*- shell-script -*-\n"
         "# Generated by `via completion bash` (via " VIA_VERSION
         ") from its command tree.\n"
         "# Use: source <(via completion bash), or save it as\n"
         "# /usr/share/bash-completion/completions/via.\n\n";
  out << "_via_subcommands() {\n  case \"$1\" in\n";
  for (const CommandSpec& spec : model) {
    if (spec.subcommands.empty()) continue;
    out << "    " << ShQuote(spec.path) << ") echo " << ShQuote(Join(SubcommandNames(spec)))
        << " ;;\n";
  }
  out << "  esac\n}\n\n";
  out << "_via_flags() {\n  case \"$1\" in\n";
  for (const CommandSpec& spec : model) {
    out << "    " << ShQuote(spec.path) << ") echo " << ShQuote(Join(FlagNames(spec))) << " ;;\n";
  }
  out << "  esac\n}\n\n";
  out << "# The kind of value a flag takes at a command path: file, dir or value.\n"
         "_via_flag_kind() {\n  case \"$1|$2\" in\n"
      << FlagKindCases(model, "    ") << "  esac\n}\n\n";
  out << R"SH(_via() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  local cmdpath="" word i skip=0
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    if ((skip)); then skip=0; continue; fi
    case $word in
      -*=*) ;;
      -*) [[ -n $(_via_flag_kind "$cmdpath" "$word") ]] && skip=1 ;;
      *) [[ " $(_via_subcommands "$cmdpath") " == *" $word "* ]] && cmdpath=${cmdpath:+$cmdpath }$word ;;
    esac
  done
  if ((skip)); then
    case $(_via_flag_kind "$cmdpath" "$prev") in
      file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
      dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")) ;;
      *) COMPREPLY=() ;;
    esac
    return 0
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_via_flags "$cmdpath")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_via_subcommands "$cmdpath")" -- "$cur"))
  fi
  return 0
}
complete -F _via via
)SH";
  return out.str();
}

std::string Zsh(const std::vector<CommandSpec>& model) {
  std::ostringstream out;
  out << "#compdef via\n"
         "# zsh completion for via, generated by `via completion zsh` (via " VIA_VERSION
         ")\n"
         "# from its command tree. Use: source <(via completion zsh), or save it as\n"
         "# _via in a directory of $fpath (Debian: /usr/share/zsh/vendor-completions).\n\n";
  out << "_via_names() {\n  case \"$1\" in\n";
  for (const CommandSpec& spec : model) {
    if (spec.subcommands.empty()) continue;
    out << "    " << ShQuote(spec.path) << ") print -r -- " << ShQuote(Join(SubcommandNames(spec)))
        << " ;;\n";
  }
  out << "  esac\n}\n\n";
  out << "# name:description, one per line.\n_via_subcommands() {\n  case \"$1\" in\n";
  for (const CommandSpec& spec : model) {
    if (spec.subcommands.empty()) continue;
    out << "    " << ShQuote(spec.path) << ") print -rl --";
    for (const auto& [name, description] : spec.subcommands) {
      out << " \\\n      " << ShQuote(name + ":" + description);
    }
    out << " ;;\n";
  }
  out << "  esac\n}\n\n";
  out << "_via_flags() {\n  case \"$1\" in\n";
  for (const CommandSpec& spec : model) {
    out << "    " << ShQuote(spec.path) << ") print -rl --";
    for (const FlagSpec& f : spec.flags) {
      for (const auto& name : f.names) out << " \\\n      " << ShQuote(name + ":" + f.description);
    }
    out << " ;;\n";
  }
  out << "  esac\n}\n\n";
  out << "# The kind of value a flag takes at a command path: file, dir or value.\n"
         "_via_flag_kind() {\n  case \"$1|$2\" in\n"
      << FlagKindCases(model, "    ") << "  esac\n}\n\n";
  out << R"SH(_via() {
  local cmdpath="" word
  local -a items
  local -i i skip=0
  for ((i = 2; i < CURRENT; i++)); do
    word=${words[i]}
    if ((skip)); then skip=0; continue; fi
    case $word in
      -*=*) ;;
      -*) [[ -n $(_via_flag_kind "$cmdpath" "$word") ]] && skip=1 ;;
      *) [[ " $(_via_names "$cmdpath") " == *" $word "* ]] && cmdpath=${cmdpath:+$cmdpath }$word ;;
    esac
  done
  if ((skip)); then
    case $(_via_flag_kind "$cmdpath" "${words[CURRENT-1]}") in
      file) _files ;;
      dir) _files -/ ;;
    esac
    return
  fi
  if [[ ${words[CURRENT]} == -* ]]; then
    items=("${(@f)$(_via_flags "$cmdpath")}")
    _describe -t flags 'flag' items
  else
    items=("${(@f)$(_via_subcommands "$cmdpath")}")
    (( ${#items[@]} )) && [[ -n ${items[1]} ]] && _describe -t commands 'command' items
  fi
}

if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
  _via "$@"
else
  compdef _via via
fi
)SH";
  return out.str();
}

std::string Fish(const std::vector<CommandSpec>& model) {
  std::ostringstream out;
  out << "# fish completion for via, generated by `via completion fish` (via " VIA_VERSION
         ")\n"
         "# from its command tree. Use: via completion fish | source, or save it as\n"
         "# ~/.config/fish/completions/via.fish.\n\n";
  out << "function __via_subcommands\n    switch \"$argv[1]\"\n";
  for (const CommandSpec& spec : model) {
    if (spec.subcommands.empty()) continue;
    out << "        case " << FishQuote(spec.path) << "\n            printf '%s\\n'";
    for (const auto& name : SubcommandNames(spec)) out << " " << FishQuote(name);
    out << "\n";
  }
  out << "    end\nend\n\n";
  out << "# Flags that take a value at a command path, the global ones included.\n"
         "function __via_value_flags\n    switch \"$argv[1]\"\n";
  for (const CommandSpec& spec : model) {
    std::vector<std::string> names;
    for (const FlagSpec& f : spec.flags) {
      if (f.takes_value) names.insert(names.end(), f.names.begin(), f.names.end());
    }
    if (names.empty()) continue;
    out << "        case " << FishQuote(spec.path) << "\n            printf '%s\\n'";
    for (const auto& name : names) out << " " << FishQuote(name);
    out << "\n";
  }
  out << "    end\nend\n\n";
  out << R"SH(# The command path of the words typed so far ("addon create").
function __via_path
    set -l words (commandline -opc)
    set -e words[1]
    set -l cmdpath ''
    set -l skip 0
    for word in $words
        if test $skip = 1
            set skip 0
            continue
        end
        switch $word
            case '-*=*'
            case '-*'
                if contains -- $word (__via_value_flags "$cmdpath")
                    set skip 1
                end
            case '*'
                if contains -- $word (__via_subcommands "$cmdpath")
                    set cmdpath (string trim -- "$cmdpath $word")
                end
        end
    end
    echo $cmdpath
end

function __via_at
    set -l at (__via_path)
    test "$at" = "$argv[1]"
end

complete -c via -f
)SH";
  for (const CommandSpec& spec : model) {
    const std::string at = "-n " + FishQuote("__via_at " + FishQuote(spec.path));
    for (const auto& [name, description] : spec.subcommands) {
      out << "complete -c via " << at << " -a " << FishQuote(name) << " -d "
          << FishQuote(description) << "\n";
    }
    for (const FlagSpec& f : spec.flags) {
      // Global flags are written once, for every path.
      if (f.global && !spec.path.empty()) continue;
      out << "complete -c via";
      if (!f.global) out << " " << at;
      for (const auto& name : f.names) {
        out << (name.rfind("--", 0) == 0 ? " -l " + name.substr(2) : " -s " + name.substr(1));
      }
      if (f.takes_value) out << (f.kind == "value" ? " -x" : " -r -F");
      out << " -d " << FishQuote(f.description) << "\n";
    }
  }
  return out.str();
}

}  // namespace

void RegisterCompletion(CLI::App& app, Shell& shell) {
  CLI::App* completion =
      app.add_subcommand("completion", "print a shell completion script (bash, zsh or fish)");
  completion->require_subcommand(1);
  const CLI::App* root = &app;
  struct Shellname {
    const char* name;
    const char* description;
    std::string (*generate)(const std::vector<CommandSpec>&);
  };
  static constexpr Shellname kShells[] = {
      {"bash", "bash completion script", &Bash},
      {"zsh", "zsh completion script", &Zsh},
      {"fish", "fish completion script", &Fish},
  };
  for (const Shellname& s : kShells) {
    CLI::App* sub = completion->add_subcommand(s.name, s.description);
    auto generate = s.generate;
    sub->callback([&shell, root, generate]() {
      shell.action = [root, generate]() {
        std::cout << generate(Model(*root));
        return 0;
      };
    });
  }
}

}  // namespace via::cli
