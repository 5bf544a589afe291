#include "cli/event_text.h"

#include <type_traits>

#include "domain/bytes.h"
#include "domain/time_text.h"

namespace via::cli {
namespace {

class Summarizer {
 public:
  explicit Summarizer(const std::map<std::string, std::string>& names) : names_(names) {}

  std::string operator()(const LogInitialized& e) const {
    return "log " + e.log_id + " initialized, origin " + e.origin;
  }
  std::string operator()(const AddonCreated& e) const {
    std::string out = Addon(e.addon_id, e.name) + " created: " + e.provider + " for app " + e.app;
    if (!e.binding.empty()) out += ", binding " + e.binding;
    return out;
  }
  std::string operator()(const StorageProvisioned& e) const {
    return Addon(e.addon_id) + " storage provisioned";
  }
  std::string operator()(const ProvisioningFailed& e) const {
    return Addon(e.addon_id) + " provisioning failed: " + e.reason +
           (e.data_present ? " (the file holds data)" : "");
  }
  std::string operator()(const AddonRenamed& e) const {
    return Addon(e.addon_id) + " renamed " + e.old_name + " -> " + e.new_name;
  }
  std::string operator()(const BindingAttached& e) const {
    return e.app + "/" + e.binding + " bound to " + Addon(e.addon_id);
  }
  std::string operator()(const BindingDetached& e) const {
    return e.app + "/" + e.binding + " unbound from " + Addon(e.addon_id);
  }
  std::string operator()(const BindingSnapshotted& e) const {
    std::string out = "release " + e.release_id + " of " + e.app + " claims ";
    if (e.claims.empty()) return out + "no binding";
    for (std::size_t i = 0; i < e.claims.size(); ++i) {
      out += (i ? ", " : "") + e.claims[i].binding + " -> " + Addon(e.claims[i].addon_id);
    }
    return out;
  }
  std::string operator()(const GenerationRotated& e) const {
    return Addon(e.addon_id) + " generation " + std::to_string(e.generation);
  }
  std::string operator()(const GenerationRevoked& e) const {
    return Addon(e.addon_id) + " generation " + std::to_string(e.generation) + " revoked";
  }
  std::string operator()(const SnapshotRequested& e) const {
    return Addon(e.addon_id) + " snapshot " + e.snapshot_id + " requested" +
           (e.label.empty() ? "" : ", label \"" + e.label + "\"");
  }
  std::string operator()(const SnapshotTaken& e) const {
    return Addon(e.addon_id) + " snapshot " + e.snapshot_id + " taken: " + std::to_string(e.bytes) +
           " bytes, " + std::to_string(e.page_count) + " pages, sha256 " + HexEncode(e.sha256);
  }
  std::string operator()(const SnapshotFailed& e) const {
    return Addon(e.addon_id) + " snapshot " + e.snapshot_id + " failed: " + e.reason;
  }
  std::string operator()(const RestoreRequested& e) const {
    return Addon(e.addon_id) + " restore from " + e.snapshot_id + " requested (safety snapshot " +
           e.safety_snapshot_id + ")";
  }
  std::string operator()(const SnapshotRestored& e) const {
    return Addon(e.addon_id) + " restored from " + e.snapshot_id +
           " (undo: " + e.safety_snapshot_id + ")";
  }
  std::string operator()(const RestoreFailed& e) const {
    return Addon(e.addon_id) + " restore from " + e.snapshot_id + " failed: " + e.reason;
  }
  std::string operator()(const StorageRepaired& e) const {
    std::string out = Addon(e.addon_id) + " storage repaired: " + e.action;
    if (!e.snapshot_id.empty()) out += " from " + e.snapshot_id;
    if (!e.detail.empty()) out += " (" + e.detail + ")";
    return out;
  }
  std::string operator()(const AddonDestroyed& e) const {
    return Addon(e.addon_id) + " destroyed; its record is now " + e.tombstone_name;
  }
  std::string operator()(const WorkloadTokenIssued& e) const {
    return "token " + e.token_id + " for " + e.app + "/" + e.release_id + ", expires " +
           Rfc3339(e.expires_at_ms);
  }
  std::string operator()(const GenerationDelivered& e) const {
    return Addon(e.addon_id) + " generation " + std::to_string(e.generation) +
           " first delivered to " + e.app + "/" + e.release_id;
  }
  std::string operator()(const RepairRequested& e) const {
    return Addon(e.addon_id) + " repair requested: " + e.action;
  }
  std::string operator()(const StorageChecked& e) const {
    return Addon(e.addon_id) + " storage checked (" + e.check + "): " +
           (e.ok ? "ok" : "damage found: " + e.detail);
  }
  std::string operator()(const SnapshotVerified& e) const {
    return Addon(e.addon_id) + " snapshot " + e.snapshot_id + " verified (" + e.check + "): " +
           (e.ok ? "ok" : "failed: " + e.detail);
  }
  std::string operator()(const SnapshotDeleted& e) const {
    return Addon(e.addon_id) + " snapshot " + e.snapshot_id + " deleted (" + e.reason + ")";
  }
  std::string operator()(const NodeAnnounced& e) const {
    return "node " + e.node + " announced at " + e.public_url;
  }
  std::string operator()(const AddonPlaced& e) const {
    return Addon(e.addon_id) + " placed on node " + e.node;
  }
  std::string operator()(const OwnerWorkRequested& e) const {
    return Addon(e.addon_id) + " " + e.work + (e.argument.empty() ? "" : " (" + e.argument + ")") +
           " asked of its node";
  }
  std::string operator()(const OwnerWorkFinished& e) const {
    return Addon(e.addon_id) + " owner work " + e.request + " finished: " +
           (e.code.empty() ? e.message : "failed: " + e.code + ": " + e.message);
  }
  std::string operator()(const ProviderConfigured& e) const {
    return "provider " + e.provider + " configured: " + e.user + "@" + e.host + ":" +
           std::to_string(e.port) + "/" + e.database + " (secret fingerprint " +
           HexEncode(e.secret_fingerprint).substr(0, 16) + ")";
  }
  std::string operator()(const SnapshotPolicySet& e) const {
    std::string out = Addon(e.addon_id) + " snapshot policy: keep last " +
                      std::to_string(e.keep_last) + ", daily " + std::to_string(e.keep_daily) +
                      ", weekly " + std::to_string(e.keep_weekly);
    return out + (e.every_seconds ? ", every " + std::to_string(e.every_seconds) + "s"
                                  : ", no schedule");
  }

 private:
  // "NAME (ID)", or the id alone when no name is known.
  std::string Addon(const std::string& id, const std::string& name = {}) const {
    std::string known = name;
    if (known.empty()) {
      if (auto it = names_.find(id); it != names_.end()) known = it->second;
    }
    return known.empty() ? id : known + " (" + id + ")";
  }

  const std::map<std::string, std::string>& names_;
};

}  // namespace

std::string EventSummary(const Event& event, const std::map<std::string, std::string>& names) {
  return std::visit(Summarizer(names), event);
}

std::string Rfc3339(std::int64_t ms) { return Rfc3339Ms(ms); }

std::string TerminalSafe(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace via::cli
