#pragma once

// Handlers for the runtime side of the control plane that append events:
// `via workload token` records WorkloadTokenIssued (the token's claims,
// never the token: cli/ signs the JWT with keys/workload.key through server/).

#include <cstdint>
#include <string>
#include <vector>

#include "commands/context.h"
#include "domain/state.h"

namespace via::commands {

struct TokenRequest {
  std::string app;
  std::string release;
  std::int64_t ttl_ms = 3600 * 1000;
};

struct TokenIssued {
  std::string app;
  std::string release;
  std::string token_id;  // the JWT's jti
  std::int64_t issued_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  std::uint64_t seq = 0;  // of the WorkloadTokenIssued record
};

// Pure: the event that issues a token for (app, release), or InvalidArgument
// (bad names, ttl outside 1 s .. 30 days) / NotFound ("release_not_found")
// when the app has no such release.
Result<std::vector<Event>> DecideIssueToken(const State& state, const TokenRequest& request,
                                            const std::string& token_id,
                                            std::int64_t issued_at_ms);

// Appends WorkloadTokenIssued for a new token id, with every claim of the
// token (jti, iat, exp). A retry of the same --command-id appends nothing and
// returns the first run's claims, so the caller signs the same token again.
// Errors: as DecideIssueToken, plus the log's errors.
Result<TokenIssued> IssueWorkloadToken(const Context& ctx, const TokenRequest& request);

}  // namespace via::commands
