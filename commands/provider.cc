#include "commands/provider.h"

#include "commands/session.h"

namespace via::commands {

Result<ProviderAddResult> AddProvider(const Context& ctx, const ProviderAddRequest& request) {
  if (ctx.providers == nullptr) return Internal("no provider registry in the command context");
  if (!ctx.providers->Has(request.provider)) return ctx.providers->Unknown(request.provider);
  auto secret = eventstore::ReadFile(request.password_file, 4096);
  if (!secret.ok()) {
    return secret.status().WithContext("--password-file " + request.password_file);
  }
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  VIA_ASSIGN_OR_RETURN(auto provider, session.ProviderNamed(ctx, request.provider));
  VIA_ASSIGN_OR_RETURN(ProviderConfigured event,
                       provider->Configure(request.admin_url,
                                           std::string(secret->begin(), secret->end())));
  VIA_ASSIGN_OR_RETURN(Decided decided,
                       DecideAndAppend(ctx, session, StateKeys{},
                                       [&](const State&) -> Result<std::vector<Event>> {
                                         return std::vector<Event>{event};
                                       }));
  ProviderAddResult result;
  result.event = std::get<ProviderConfigured>(decided.events.front());
  result.seq = decided.appended.last_seq;
  result.replayed = decided.replayed;
  return result;
}

}  // namespace via::commands
