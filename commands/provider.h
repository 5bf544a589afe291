#pragma once

// `via provider add NAME --admin-url URL --password-file FILE`: registers a
// provider's server on this home (docs/providers.md).

#include <cstdint>
#include <string>

#include "commands/context.h"
#include "domain/events.h"

namespace via::commands {

struct ProviderAddRequest {
  std::string provider;
  std::string admin_url;
  std::string password_file;
};

struct ProviderAddResult {
  ProviderConfigured event;
  std::uint64_t seq = 0;  // of the ProviderConfigured record
  bool replayed = false;  // a retry of the same --command-id
};

// Reads the password file (a regular file of at most 4 KiB), has the
// provider check the server with it and keep its settings, then appends
// ProviderConfigured (no secret: a fingerprint). A server that does not
// answer or refuses the password appends nothing. Errors: InvalidArgument
// "unknown_provider", "bad_admin_url", "empty_password"; NotFound
// "file_missing"; Unavailable "storage_unreachable"; FailedPrecondition
// "admin_auth_failed", "admin_lacks_privileges", "provider_not_configurable".
Result<ProviderAddResult> AddProvider(const Context& ctx, const ProviderAddRequest& request);

}  // namespace via::commands
