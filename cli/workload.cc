// `via workload token --app APP --release REL [--ttl 1h]`: issues a workload
// identity JWT for a release. The handler records WorkloadTokenIssued (id and
// expiry); the token is signed here with keys/workload.key and printed, never
// stored.

#include <cctype>
#include <iostream>

#include "cli/event_text.h"
#include "cli/shell.h"
#include "commands/runtime.h"
#include "crypto/crypto.h"
#include "eventstore/home.h"
#include "server/jwt.h"

namespace via::cli {

Result<std::int64_t> ParseDurationMs(const std::string& text) {
  const Status bad = InvalidArgument(
      "invalid_duration", "bad duration '" + text + "': use a number and a unit (500ms, 30s, 15m, 1h, 7d)");
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 12) return bad;
  const std::int64_t n = std::stoll(text.substr(0, digits));
  const std::string unit = text.substr(digits);
  std::int64_t scale = 0;
  if (unit == "ms") scale = 1;
  else if (unit == "s" || unit.empty()) scale = 1000;
  else if (unit == "m") scale = 60 * 1000;
  else if (unit == "h") scale = 3600 * 1000;
  else if (unit == "d") scale = 24 * 3600 * 1000;
  else return bad;
  return n * scale;
}

Result<std::unique_ptr<crypto::Ed25519PrivateKey>> LoadWorkloadKey(const eventstore::Home& home) {
  auto pem = eventstore::ReadFile(home.workload_key());
  if (!pem.ok()) {
    return FailedPrecondition("workload_key_missing",
                              home.workload_key().string() + " is missing: " + pem.status().message())
        .WithRemediation("via init (new home) or restore keys/workload.key from backup");
  }
  auto key = crypto::Ed25519PrivateKey::FromPem(AsChars(*pem));
  if (!key) {
    return DataLoss("workload_key_damaged", home.workload_key().string() + " is not an Ed25519 key")
        .WithRemediation("restore keys/workload.key from backup");
  }
  return key;
}

namespace {

struct TokenFlags {
  std::string app;
  std::string release;
  std::string ttl = "1h";
};

}  // namespace

void RegisterWorkload(CLI::App& app, Shell& shell) {
  CLI::App* workload = app.add_subcommand("workload", "workload identity for app releases");
  workload->require_subcommand(1);
  auto f = std::make_shared<TokenFlags>();
  CLI::App* token = workload->add_subcommand(
      "token", "issue a workload identity token (JWT) for an app release");
  token->add_option("--app", f->app, "app")->required();
  token->add_option("--release", f->release, "release id")->required();
  token->add_option("--ttl", f->ttl, "lifetime (30s, 15m, 1h, 7d; 1s..30d)");
  token->callback([&shell, f]() {
    shell.action = [&shell, f]() {
      VIA_ASSIGN_OR_RETURN_EXIT(std::int64_t ttl_ms, ParseDurationMs(f->ttl), shell);
      VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(Shell::Appends::kYes), shell);
      // Load the key first: a home without it must not record a token it cannot sign.
      VIA_ASSIGN_OR_RETURN_EXIT(auto key, LoadWorkloadKey(ctx.home), shell);
      commands::TokenRequest request{f->app, f->release, ttl_ms};
      VIA_ASSIGN_OR_RETURN_EXIT(auto issued, commands::IssueWorkloadToken(ctx, request), shell);
      server::jwt::Claims claims;
      claims.app = issued.app;
      claims.release = issued.release;
      claims.token_id = issued.token_id;
      claims.issued_at_s = issued.issued_at_ms / 1000;
      claims.not_before_s = claims.issued_at_s;
      // Rounded down: the token never outlives the recorded expiry.
      claims.expires_at_s = issued.expires_at_ms / 1000;
      std::string jwt = server::jwt::Sign(*key, claims);
      if (shell.globals.json) {
        return shell.PrintJson({{"token", jwt},
                                {"token_id", issued.token_id},
                                {"app", issued.app},
                                {"release", issued.release},
                                {"subject", server::jwt::SpiffeId(claims.trust_domain, issued.app,
                                                                  issued.release)},
                                {"audience", claims.audience},
                                {"expires_at", Rfc3339(claims.expires_at_s * 1000)},
                                {"seq", issued.seq}});
      }
      std::cout << jwt << "\n";
      if (shell.StderrIsTty()) {
        std::cerr << "token " << issued.token_id << " for " << issued.app << "/" << issued.release
                  << " expires at " << Rfc3339(claims.expires_at_s * 1000) << "\n";
      }
      return 0;
    };
  });
}

}  // namespace via::cli
