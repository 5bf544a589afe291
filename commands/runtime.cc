#include "commands/runtime.h"

#include "commands/session.h"
#include "domain/names.h"

namespace via::commands {
namespace {

constexpr std::int64_t kMinTtlMs = 1000;
constexpr std::int64_t kMaxTtlMs = 30LL * 24 * 3600 * 1000;

}  // namespace

Result<std::vector<Event>> DecideIssueToken(const State& state, const TokenRequest& request,
                                            const std::string& token_id,
                                            std::int64_t issued_at_ms) {
  VIA_RETURN_IF_ERROR(ValidateAppName(request.app));
  VIA_RETURN_IF_ERROR(ValidateReleaseId(request.release));
  if (request.ttl_ms < kMinTtlMs || request.ttl_ms > kMaxTtlMs) {
    return InvalidArgument("invalid_ttl", "--ttl must be between 1s and 30d");
  }
  bool found = false;
  auto it = state.releases.find(request.app);
  if (it != state.releases.end()) {
    for (const auto& r : it->second) found |= r.id == request.release;
  }
  if (!found) {
    return NotFound("release_not_found",
                    "app " + request.app + " has no release " + request.release)
        .WithRemediation("via release list --app " + request.app);
  }
  return std::vector<Event>{WorkloadTokenIssued{request.app, request.release, token_id,
                                                issued_at_ms + request.ttl_ms, issued_at_ms}};
}

Result<TokenIssued> IssueWorkloadToken(const Context& ctx, const TokenRequest& request) {
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  const std::string token_id = ctx.ids->NewId("wt_");
  StateKeys keys;
  keys.releases_of.insert(request.app);
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, keys, [&](const State& s) {
                         return DecideIssueToken(s, request, token_id, ctx.clock->NowMs());
                       }));
  if (decided.events.empty() || !std::holds_alternative<WorkloadTokenIssued>(decided.events.back())) {
    return Internal("workload token: no WorkloadTokenIssued among the command's records");
  }
  // The recorded claims (a replayed retry: the first run's).
  const auto& e = std::get<WorkloadTokenIssued>(decided.events.back());
  return TokenIssued{e.app, e.release_id, e.token_id, e.issued_at_ms, e.expires_at_ms,
                     decided.appended.last_seq};
}

}  // namespace via::commands
