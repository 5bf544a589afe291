// `via provider add NAME --admin-url URL --password-file FILE`.

#include <iostream>
#include <memory>

#include "cli/shell.h"
#include "domain/bytes.h"
#include "commands/provider.h"

namespace via::cli {
namespace {

struct AddFlags {
  std::string provider;
  std::string admin_url;
  std::string password_file;
};

}  // namespace

void RegisterProvider(CLI::App& app, Shell& shell) {
  CLI::App* provider = app.add_subcommand("provider", "register the servers that providers use");
  provider->require_subcommand(1);
  auto f = std::make_shared<AddFlags>();
  CLI::App* add = provider->add_subcommand(
      "add", "register a provider's server (postgres); the password never enters the log");
  add->add_option("PROVIDER", f->provider, "provider (postgres)")->required();
  add->add_option("--admin-url", f->admin_url, "postgresql://USER@HOST:PORT/DB (no password)")
      ->required();
  add->add_option("--password-file", f->password_file, "file holding the admin password")
      ->required();
  add->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(
          auto added,
          commands::AddProvider(ctx, {f->provider, f->admin_url, f->password_file}), shell);
      const ProviderConfigured& e = added.event;
      if (shell.globals.json) {
        return shell.PrintJson({{"provider", e.provider},
                                {"host", e.host},
                                {"port", e.port},
                                {"user", e.user},
                                {"database", e.database},
                                {"secret_fingerprint", HexEncode(e.secret_fingerprint)},
                                {"seq", added.seq}});
      }
      std::cout << "provider " << e.provider << ": " << e.user << "@" << e.host << ":" << e.port
                << "/" << e.database << " registered (seq " << added.seq << ")\n";
      return 0;
    };
  });
}

}  // namespace via::cli
