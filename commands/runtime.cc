#include "commands/runtime.h"

#include "domain/names.h"
#include "projections/read_model.h"

namespace via::commands {
namespace {

constexpr std::int64_t kMinTtlMs = 1000;
constexpr std::int64_t kMaxTtlMs = 30LL * 24 * 3600 * 1000;
constexpr int kMaxRaceRetries = 200;

}  // namespace

Result<std::vector<Event>> DecideIssueToken(const State& state, const TokenRequest& request,
                                            const std::string& token_id,
                                            std::int64_t expires_at_ms) {
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
  return std::vector<Event>{WorkloadTokenIssued{request.app, request.release, token_id, expires_at_ms}};
}

Result<TokenIssued> IssueWorkloadToken(const Context& ctx, const TokenRequest& request) {
  VIA_ASSIGN_OR_RETURN(auto log, ctx.OpenLog());
  VIA_ASSIGN_OR_RETURN(auto model, projections::ReadModel::Open(ctx.home.state_db().string()));
  const std::string token_id = ctx.ids->NewId("wt_");
  for (int attempt = 0; attempt < kMaxRaceRetries; ++attempt) {
    // Decide on one snapshot of the caught-up model; append after exactly
    // the head it describes.
    VIA_RETURN_IF_ERROR(model->CatchUp(log->store()).status());
    eventstore::Head head;
    State state;
    {
      VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, model->BeginRead());
      VIA_ASSIGN_OR_RETURN(head, model->CursorHead());
      VIA_ASSIGN_OR_RETURN(state, model->Load());
    }
    const std::int64_t now = ctx.clock->NowMs();
    const std::int64_t expires = now + request.ttl_ms;
    VIA_ASSIGN_OR_RETURN(std::vector<Event> events,
                         DecideIssueToken(state, request, token_id, expires));
    eventstore::AppendRequest append;
    append.actor = ctx.actor;
    append.command_id = "workload-token/" + token_id;
    append.recorded_at_ms = now;
    append.events = std::move(events);
    append.expected_head = head;
    auto appended = log->Append(append);
    if (appended.ok()) {
      return TokenIssued{request.app, request.release, token_id, now, expires,
                         appended->last_seq};
    }
    if (appended.status().code() != StatusCode::kAborted &&
        appended.status().code() != StatusCode::kUnavailable) {
      return appended.status();
    }
  }
  return Unavailable("busy", "too many concurrent changes; try again");
}

}  // namespace via::commands
