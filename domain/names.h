#pragma once

// Name rules (DESIGN.md section 4). Validators return InvalidArgument with a
// message that quotes the rule, so the CLI can print it as a usage error.

#include <string>
#include <string_view>

#include "domain/status.h"

namespace via {

inline constexpr const char* kAddonNameRule = "^[a-z][a-z0-9-]{0,62}$";
inline constexpr const char* kBindingNameRule = "^[A-Z][A-Z0-9_]{0,62}$";
inline constexpr const char* kReleaseIdRule = "^[A-Za-z0-9._-]{1,64}$";

Status ValidateAddonName(std::string_view name);
Status ValidateAppName(std::string_view name);
Status ValidateBindingName(std::string_view name);
Status ValidateReleaseId(std::string_view id);
// A `via serve` node name: the add-on name rule.
Status ValidateNodeName(std::string_view name);
// A node's public base URL: http:// or https://, then HOST[:PORT] (letters,
// digits, '.', '-', ':', '[', ']'), no user, path, query or fragment, at most
// 255 bytes. InvalidArgument "invalid_public_url".
Status ValidatePublicUrl(std::string_view url);

// The command id prefix of an intent that a home which does not own the
// add-on appended for the owner's `via serve` to carry out (several nodes):
// "owner/<intent id>/…". The owner acts only on intents under it.
inline constexpr std::string_view kOwnerWorkPrefix = "owner/";
inline std::string OwnerWorkCommandId(const std::string& intent_id) {
  return std::string(kOwnerWorkPrefix) + intent_id;
}
inline bool IsOwnerWorkCommandId(std::string_view command_id) {
  return command_id.starts_with(kOwnerWorkPrefix);
}
// The command id of the owner's OwnerWorkFinished for the request appended
// under `request_command_id` ("done/owner/…"; the outcome events of the work
// go under "<that>/<step>").
inline std::string OwnerWorkDoneCommandId(const std::string& request_command_id) {
  return "done/" + request_command_id;
}

// True for ids this system mints ("ad_", "sn_" + 26 Crockford base32 digits).
bool LooksLikeId(std::string_view text, std::string_view prefix);

// NAME#destroyed#ID and NAME#failed#ID.
std::string DestroyedTombstone(const std::string& name, const std::string& addon_id);
std::string FailedTombstone(const std::string& name, const std::string& addon_id);
bool IsTombstoneName(std::string_view name);

}  // namespace via
