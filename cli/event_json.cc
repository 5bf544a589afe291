#include "cli/event_json.h"

#include "crypto/crypto.h"
#include "domain/bytes.h"
#include "domain/time_text.h"

namespace via {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(LogInitialized, log_id, origin, checkpoint_verifier_key,
                                   workload_verifier_key)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AddonCreated, addon_id, name, provider, app, binding)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StorageProvisioned, addon_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ProvisioningFailed, addon_id, reason, data_present)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AddonRenamed, addon_id, old_name, new_name)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(BindingAttached, app, binding, addon_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(BindingDetached, app, binding, addon_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(BindingClaim, binding, addon_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(BindingSnapshotted, app, release_id, claims)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(GenerationRevoked, addon_id, generation)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SnapshotRequested, addon_id, snapshot_id, label)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SnapshotFailed, addon_id, snapshot_id, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RestoreRequested, addon_id, snapshot_id, safety_snapshot_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SnapshotRestored, addon_id, snapshot_id, safety_snapshot_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RestoreFailed, addon_id, snapshot_id, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StorageRepaired, addon_id, action, snapshot_id, detail)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AddonDestroyed, addon_id, tombstone_name)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(GenerationDelivered, addon_id, generation, app, release_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RepairRequested, addon_id, action)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StorageChecked, addon_id, ok, check, detail)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SnapshotVerified, addon_id, snapshot_id, ok, check, detail)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SnapshotDeleted, addon_id, snapshot_id, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NodeAnnounced, node, public_url)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AddonPlaced, addon_id, node)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OwnerWorkRequested, addon_id, work, argument)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OwnerWorkFinished, addon_id, request, code, status, message,
                                   remediation)

// Events whose fields follow the JSON conventions of docs/cli.md rather than
// their schema form: digests of content and secrets as lowercase hex, other
// bytes as base64, times (`*_at_ms`) as RFC 3339 under `*_at`, durations
// under `*_ms`.
static void to_json(nlohmann::json& j, const GenerationRotated& e) {
  j = {{"addon_id", e.addon_id},
       {"generation", e.generation},
       {"fingerprint", HexEncode(e.fingerprint)},
       {"salt", crypto::Base64Encode(e.salt)}};
}
static void to_json(nlohmann::json& j, const ProviderConfigured& e) {
  j = nlohmann::json{{"provider", e.provider},
                     {"host", e.host},
                     {"port", e.port},
                     {"user", e.user},
                     {"database", e.database},
                     {"secret_fingerprint", HexEncode(e.secret_fingerprint)}};
}
static void to_json(nlohmann::json& j, const SnapshotTaken& e) {
  j = {{"addon_id", e.addon_id},   {"snapshot_id", e.snapshot_id},
       {"sha256", HexEncode(e.sha256)}, {"bytes", e.bytes},
       {"page_count", e.page_count}};
}
static void to_json(nlohmann::json& j, const WorkloadTokenIssued& e) {
  j = {{"app", e.app},
       {"release_id", e.release_id},
       {"token_id", e.token_id},
       {"expires_at", Rfc3339Ms(e.expires_at_ms)},
       // 0 in records written before the issue time was recorded.
       {"issued_at", e.issued_at_ms == 0 ? nlohmann::json(nullptr)
                                         : nlohmann::json(Rfc3339Ms(e.issued_at_ms))}};
}
static void to_json(nlohmann::json& j, const SnapshotPolicySet& e) {
  j = {{"addon_id", e.addon_id},
       {"keep_last", e.keep_last},
       {"keep_daily", e.keep_daily},
       {"keep_weekly", e.keep_weekly},
       {"every_ms", std::uint64_t{e.every_seconds} * 1000}};
}

}  // namespace via

namespace via::cli {

nlohmann::json EventFieldsJson(const Event& event) {
  return std::visit([](const auto& e) { return nlohmann::json(e); }, event);
}

}  // namespace via::cli
