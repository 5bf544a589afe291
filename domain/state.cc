#include "domain/state.h"

#include <algorithm>
#include <cstdio>
#include <type_traits>

namespace via {

const char* PhaseName(AddonPhase phase) {
  switch (phase) {
    case AddonPhase::kProvisioning: return "provisioning";
    case AddonPhase::kActive: return "active";
    case AddonPhase::kFailed: return "failed";
    case AddonPhase::kDestroyed: return "destroyed";
  }
  return "unknown";
}

const char* SnapshotVerificationName(SnapshotVerification verification) {
  switch (verification) {
    case SnapshotVerification::kUnverified: return "unverified";
    case SnapshotVerification::kVerified: return "verified";
    case SnapshotVerification::kFailed: return "failed";
  }
  return "unknown";
}

const char* SnapshotStatusName(SnapshotStatus status) {
  switch (status) {
    case SnapshotStatus::kRequested: return "requested";
    case SnapshotStatus::kTaken: return "taken";
    case SnapshotStatus::kFailed: return "failed";
  }
  return "unknown";
}

std::uint32_t AddonState::current_generation() const {
  std::uint32_t n = 0;
  for (const auto& g : generations) n = std::max(n, g.number);
  return n;
}

std::vector<std::uint32_t> AddonState::revoked_generations() const {
  std::vector<std::uint32_t> out;
  for (const auto& g : generations) {
    if (g.revoked) out.push_back(g.number);
  }
  return out;
}

bool AddonState::has_active_generation() const {
  return std::any_of(generations.begin(), generations.end(),
                     [](const GenerationState& g) { return !g.revoked; });
}

const AddonState* State::FindById(const std::string& id) const {
  auto it = addons.find(id);
  return it == addons.end() ? nullptr : &it->second;
}

const AddonState* State::FindAddon(const std::string& name_or_id) const {
  if (auto it = names.find(name_or_id); it != names.end()) return FindById(it->second);
  return FindById(name_or_id);
}

std::vector<BindingKey> State::BindingsOf(const std::string& addon_id) const {
  std::vector<BindingKey> out;
  for (const auto& [key, id] : bindings) {
    if (id == addon_id) out.push_back(key);
  }
  return out;
}

namespace {

struct Applier {
  State& s;
  const Record& r;

  AddonState* Addon(const std::string& id) {
    auto it = s.addons.find(id);
    if (it == s.addons.end()) return nullptr;
    it->second.updated_seq = r.seq;
    return &it->second;
  }

  void operator()(const LogInitialized& e) {
    s.log_id = e.log_id;
    s.origin = e.origin;
  }
  void operator()(const AddonCreated& e) {
    AddonState a;
    a.id = e.addon_id;
    a.name = e.name;
    a.original_name = e.name;
    a.provider = e.provider;
    a.app = e.app;
    a.requested_binding = e.binding;
    a.created_at_ms = r.recorded_at_ms;
    a.created_seq = r.seq;
    a.updated_seq = r.seq;
    s.addons[e.addon_id] = a;
    s.names[e.name] = e.addon_id;
  }
  void operator()(const StorageProvisioned& e) {
    if (auto* a = Addon(e.addon_id)) {
      a->phase = AddonPhase::kActive;
      a->failure_reason.clear();
    }
  }
  void operator()(const ProvisioningFailed& e) {
    if (auto* a = Addon(e.addon_id)) {
      a->phase = AddonPhase::kFailed;
      a->failure_reason = e.reason;
      a->data_present = e.data_present;
    }
  }
  void operator()(const AddonRenamed& e) {
    if (auto* a = Addon(e.addon_id)) {
      a->name = e.new_name;
      if (auto it = s.names.find(e.old_name); it != s.names.end() && it->second == e.addon_id) {
        s.names.erase(it);
      }
    }
  }
  void operator()(const BindingAttached& e) { s.bindings[{e.app, e.binding}] = e.addon_id; }
  void operator()(const BindingDetached& e) {
    auto it = s.bindings.find({e.app, e.binding});
    if (it != s.bindings.end() && it->second == e.addon_id) s.bindings.erase(it);
  }
  void operator()(const BindingSnapshotted& e) {
    s.releases[e.app].push_back(ReleaseState{e.app, e.release_id, e.claims, r.recorded_at_ms, r.seq});
  }
  void operator()(const GenerationRotated& e) {
    if (auto* a = Addon(e.addon_id)) {
      a->generations.push_back(GenerationState{e.generation, e.fingerprint, e.salt, false});
    }
  }
  void operator()(const GenerationRevoked& e) {
    if (auto* a = Addon(e.addon_id)) {
      for (auto& g : a->generations) {
        if (g.number == e.generation) g.revoked = true;
      }
    }
  }
  void operator()(const SnapshotRequested& e) {
    SnapshotState snap;
    snap.id = e.snapshot_id;
    snap.addon_id = e.addon_id;
    snap.label = e.label;
    snap.actor = r.actor;
    snap.requested_at_ms = r.recorded_at_ms;
    snap.requested_seq = r.seq;
    s.snapshots[e.snapshot_id] = snap;
    if (auto* a = Addon(e.addon_id)) a->pending_snapshot = e.snapshot_id;
  }
  void operator()(const SnapshotTaken& e) {
    if (auto it = s.snapshots.find(e.snapshot_id); it != s.snapshots.end()) {
      it->second.status = SnapshotStatus::kTaken;
      it->second.sha256 = e.sha256;
      it->second.bytes = e.bytes;
      it->second.page_count = e.page_count;
    }
    if (auto* a = Addon(e.addon_id); a && a->pending_snapshot == e.snapshot_id) {
      a->pending_snapshot.clear();
    }
  }
  void operator()(const SnapshotFailed& e) {
    if (auto it = s.snapshots.find(e.snapshot_id); it != s.snapshots.end()) {
      it->second.status = SnapshotStatus::kFailed;
      it->second.failure_reason = e.reason;
    }
    if (auto* a = Addon(e.addon_id); a && a->pending_snapshot == e.snapshot_id) {
      a->pending_snapshot.clear();
    }
  }
  void operator()(const RestoreRequested& e) {
    if (auto* a = Addon(e.addon_id)) {
      a->restoring_snapshot = e.snapshot_id;
      a->restore_safety_snapshot = e.safety_snapshot_id;
    }
  }
  void operator()(const SnapshotRestored& e) {
    if (auto* a = Addon(e.addon_id)) {
      a->restoring_snapshot.clear();
      a->restore_safety_snapshot.clear();
      a->content_seq = r.seq;
    }
  }
  void operator()(const RestoreFailed& e) {
    if (auto* a = Addon(e.addon_id)) {
      a->restoring_snapshot.clear();
      a->restore_safety_snapshot.clear();
    }
  }
  void operator()(const RepairRequested& e) {
    if (auto* a = Addon(e.addon_id)) a->pending_repair = e.action;
  }
  void operator()(const StorageRepaired& e) {
    if (auto* a = Addon(e.addon_id)) {
      a->pending_repair.clear();
      a->content_seq = r.seq;
      if (a->phase != AddonPhase::kDestroyed) {
        a->phase = AddonPhase::kActive;
        a->failure_reason.clear();
        a->data_present = false;
      }
    }
  }
  void operator()(const AddonDestroyed& e) {
    if (auto* a = Addon(e.addon_id)) {
      if (auto it = s.names.find(a->name); it != s.names.end() && it->second == e.addon_id) {
        s.names.erase(it);
      }
      a->name = e.tombstone_name;
      a->phase = AddonPhase::kDestroyed;
    }
    for (auto it = s.bindings.begin(); it != s.bindings.end();) {
      it = it->second == e.addon_id ? s.bindings.erase(it) : std::next(it);
    }
  }
  void operator()(const WorkloadTokenIssued&) { ++s.tokens_issued; }
  void operator()(const GenerationDelivered& e) {
    s.deliveries.insert({e.addon_id, e.generation, e.app, e.release_id});
  }
  void operator()(const StorageChecked& e) {
    if (auto* a = Addon(e.addon_id)) {
      a->check_seq = r.seq;
      a->check_at_ms = r.recorded_at_ms;
      a->check_ok = e.ok;
      a->check_detail = e.detail;
    }
  }
  void operator()(const SnapshotVerified& e) {
    if (auto it = s.snapshots.find(e.snapshot_id); it != s.snapshots.end()) {
      it->second.verification = e.ok ? SnapshotVerification::kVerified : SnapshotVerification::kFailed;
      it->second.verify_detail = e.detail;
      it->second.verified_at_ms = r.recorded_at_ms;
    }
  }
  void operator()(const SnapshotDeleted& e) {
    if (auto it = s.snapshots.find(e.snapshot_id); it != s.snapshots.end()) {
      it->second.deleted = true;
      it->second.deleted_reason = e.reason;
    }
  }
  // Provider settings live with the provider (keys/providers/); the record
  // is for auditors.
  void operator()(const ProviderConfigured&) {}
  void operator()(const NodeAnnounced& e) { s.nodes[e.node] = e.public_url; }
  void operator()(const AddonPlaced& e) {
    if (auto* a = Addon(e.addon_id)) a->node = e.node;
  }
  // Owner work without an intent of its own changes no state: its outcome
  // events (StorageRepaired, StorageChecked, SnapshotVerified) do.
  void operator()(const OwnerWorkRequested&) {}
  void operator()(const OwnerWorkFinished&) {}
  void operator()(const SnapshotPolicySet& e) {
    if (auto* a = Addon(e.addon_id)) {
      a->keep_last = e.keep_last;
      a->keep_daily = e.keep_daily;
      a->keep_weekly = e.keep_weekly;
      a->snapshot_every_s = e.every_seconds;
    }
  }
};

// Quotes a string so that the canonical form is unambiguous.
std::string Q(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string Hex(const Bytes& b) { return HexEncode(b); }

}  // namespace

void StateKeys::Merge(const StateKeys& other) {
  addons.insert(other.addons.begin(), other.addons.end());
  names.insert(other.names.begin(), other.names.end());
  bindings.insert(other.bindings.begin(), other.bindings.end());
  bindings_of.insert(other.bindings_of.begin(), other.bindings_of.end());
  snapshots.insert(other.snapshots.begin(), other.snapshots.end());
  releases_of.insert(other.releases_of.begin(), other.releases_of.end());
  bindings_for_app.insert(other.bindings_for_app.begin(), other.bindings_for_app.end());
  claims_on.insert(other.claims_on.begin(), other.claims_on.end());
  snapshots_of.insert(other.snapshots_of.begin(), other.snapshots_of.end());
  deliveries_of.insert(other.deliveries_of.begin(), other.deliveries_of.end());
  incarnations_of.insert(other.incarnations_of.begin(), other.incarnations_of.end());
  latest_release_of.insert(other.latest_release_of.begin(), other.latest_release_of.end());
}

StateKeys KeysOf(const Record& record) {
  StateKeys keys;
  std::visit(
      [&keys](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (requires { e.addon_id; }) keys.addons.insert(e.addon_id);
        if constexpr (requires { e.snapshot_id; }) keys.snapshots.insert(e.snapshot_id);
        if constexpr (std::is_same_v<T, AddonCreated>) keys.names.insert(e.name);
        if constexpr (std::is_same_v<T, AddonRenamed>) keys.names.insert(e.old_name);
        if constexpr (std::is_same_v<T, BindingAttached> || std::is_same_v<T, BindingDetached>) {
          keys.bindings.insert({e.app, e.binding});
        }
        if constexpr (std::is_same_v<T, AddonDestroyed>) keys.bindings_of.insert(e.addon_id);
        if constexpr (std::is_same_v<T, BindingSnapshotted>) keys.releases_of.insert(e.app);
        // LogInitialized, WorkloadTokenIssued and GenerationDelivered change
        // the log identity, the token count and the delivery set, which every
        // slice carries (the identity and count) or only ever gains entries.
      },
      record.event);
  return keys;
}

void Apply(State& state, const Record& record) {
  std::visit(Applier{state, record}, record.event);
  state.seq = record.seq;
}

std::string CanonicalForm(const State& s) {
  std::string out = "via-state 1\n";
  out += "seq " + std::to_string(s.seq) + "\n";
  out += "log " + Q(s.log_id) + " " + Q(s.origin) + "\n";
  for (const auto& [id, a] : s.addons) {
    out += "addon " + Q(id) + " name=" + Q(a.name) + " original=" + Q(a.original_name) +
           " provider=" + Q(a.provider) + " app=" + Q(a.app) + " binding=" +
           Q(a.requested_binding) + " phase=" + PhaseName(a.phase) + " reason=" +
           Q(a.failure_reason) + " data=" + (a.data_present ? "1" : "0") + " restoring=" +
           Q(a.restoring_snapshot) + "/" + Q(a.restore_safety_snapshot) + " snapshotting=" + Q(a.pending_snapshot) + " repairing=" +
           Q(a.pending_repair) + " created=" + std::to_string(a.created_at_ms) + "@" +
           std::to_string(a.created_seq) + " updated=" + std::to_string(a.updated_seq) +
           " checked=" + std::to_string(a.check_seq) + "@" + std::to_string(a.check_at_ms) +
           (a.check_ok ? " ok " : " bad ") + Q(a.check_detail) +
           " content=" + std::to_string(a.content_seq) + " keep=" + std::to_string(a.keep_last) +
           "/" + std::to_string(a.keep_daily) + "/" + std::to_string(a.keep_weekly) +
           " every=" + std::to_string(a.snapshot_every_s) +
           // Only placed add-ons say so, so the digest of a state without
           // nodes is what it was before placement existed.
           (a.node.empty() ? std::string() : " node=" + Q(a.node)) + "\n";
    for (const auto& g : a.generations) {
      out += "  generation " + std::to_string(g.number) + " fp=" + Hex(g.fingerprint) +
             " salt=" + Hex(g.salt) + (g.revoked ? " revoked" : " active") + "\n";
    }
  }
  for (const auto& [name, id] : s.names) out += "name " + Q(name) + " " + Q(id) + "\n";
  for (const auto& [key, id] : s.bindings) {
    out += "binding " + Q(key.first) + " " + Q(key.second) + " " + Q(id) + "\n";
  }
  for (const auto& [id, snap] : s.snapshots) {
    out += "snapshot " + Q(id) + " addon=" + Q(snap.addon_id) + " label=" + Q(snap.label) +
           " status=" + SnapshotStatusName(snap.status) + " sha256=" + Hex(snap.sha256) +
           " bytes=" + std::to_string(snap.bytes) + " pages=" + std::to_string(snap.page_count) +
           " reason=" + Q(snap.failure_reason) + " actor=" + Q(snap.actor) + " at=" +
           std::to_string(snap.requested_at_ms) + "@" + std::to_string(snap.requested_seq) +
           " verification=" + SnapshotVerificationName(snap.verification) + " " +
           Q(snap.verify_detail) + "@" + std::to_string(snap.verified_at_ms) +
           (snap.deleted ? " deleted=" + Q(snap.deleted_reason) : std::string()) + "\n";
  }
  for (const auto& [app, list] : s.releases) {
    for (const auto& rel : list) {
      out += "release " + Q(app) + " " + Q(rel.id) + " at=" + std::to_string(rel.created_at_ms) +
             "@" + std::to_string(rel.seq) + "\n";
      for (const auto& c : rel.claims) out += "  claim " + Q(c.binding) + " " + Q(c.addon_id) + "\n";
    }
  }
  for (const auto& [addon, gen, app, release] : s.deliveries) {
    out += "delivery " + Q(addon) + " " + std::to_string(gen) + " " + Q(app) + " " + Q(release) +
           "\n";
  }
  out += "tokens " + std::to_string(s.tokens_issued) + "\n";
  for (const auto& [name, url] : s.nodes) out += "node " + Q(name) + " " + Q(url) + "\n";
  return out;
}

}  // namespace via
