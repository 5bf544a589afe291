#pragma once

// Add-on state folded from the log. `Apply` is pure and deterministic: the
// same records give the same State, whether folded in memory (`audit replay`)
// or incrementally into the read model (projections/). `CanonicalForm` is a
// stable text rendering whose SHA-256 is the state digest.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <string>
#include <utility>
#include <vector>

#include "domain/events.h"

namespace via {

enum class AddonPhase {
  kProvisioning,  // AddonCreated, no provider outcome yet
  kActive,        // storage provisioned (or repaired)
  kFailed,        // ProvisioningFailed
  kDestroyed,     // AddonDestroyed
};
const char* PhaseName(AddonPhase phase);

struct GenerationState {
  std::uint32_t number = 0;
  Bytes fingerprint;
  Bytes salt;
  bool revoked = false;
  bool operator==(const GenerationState&) const = default;
};

struct AddonState {
  std::string id;
  std::string name;           // stored name: live name, or a tombstone name
  std::string original_name;  // the name it was created with
  std::string provider;
  std::string app;
  std::string requested_binding;
  AddonPhase phase = AddonPhase::kProvisioning;
  std::string failure_reason;
  bool data_present = false;  // for kFailed: the file held SQLite bytes
  std::vector<GenerationState> generations;
  std::string restoring_snapshot;  // non-empty while a restore is in flight
  std::string restore_safety_snapshot;  // its safety snapshot
  std::string pending_snapshot;    // non-empty while a snapshot is in flight
  std::string pending_repair;      // non-empty while a repair is in flight
  std::int64_t created_at_ms = 0;
  std::uint64_t created_seq = 0;
  std::uint64_t updated_seq = 0;
  // The last full check of its storage (StorageChecked); check_seq 0: never.
  std::uint64_t check_seq = 0;
  std::int64_t check_at_ms = 0;
  bool check_ok = false;
  std::string check_detail;
  // The last time its content was replaced (SnapshotRestored,
  // StorageRepaired): a check older than this says nothing about it.
  std::uint64_t content_seq = 0;
  // Snapshot retention and schedule (SnapshotPolicySet; zero: not set).
  std::uint32_t keep_last = 0;
  std::uint32_t keep_daily = 0;
  std::uint32_t keep_weekly = 0;
  std::uint32_t snapshot_every_s = 0;
  // The node that owns it (AddonPlaced); empty: not placed (one node, or an
  // add-on from before placement), served by whichever node gets a request.
  std::string node;

  // Highest generation number, 0 when none.
  std::uint32_t current_generation() const;
  std::vector<std::uint32_t> revoked_generations() const;
  bool has_active_generation() const;
  // True when the last full check found damage in the current content.
  bool checked_corrupt() const { return check_seq > content_seq && !check_ok; }
  bool operator==(const AddonState&) const = default;
};

enum class SnapshotStatus { kRequested, kTaken, kFailed };
const char* SnapshotStatusName(SnapshotStatus status);

// Verification of a taken snapshot (SnapshotVerified).
enum class SnapshotVerification { kUnverified, kVerified, kFailed };
const char* SnapshotVerificationName(SnapshotVerification verification);

struct SnapshotState {
  std::string id;
  std::string addon_id;
  std::string label;
  SnapshotStatus status = SnapshotStatus::kRequested;
  Bytes sha256;
  std::uint64_t bytes = 0;
  std::uint64_t page_count = 0;
  std::string failure_reason;
  std::string actor;
  std::int64_t requested_at_ms = 0;
  std::uint64_t requested_seq = 0;
  SnapshotVerification verification = SnapshotVerification::kUnverified;
  std::string verify_detail;
  std::int64_t verified_at_ms = 0;
  bool deleted = false;  // SnapshotDeleted: the file is gone (or going)
  std::string deleted_reason;
  bool operator==(const SnapshotState&) const = default;
};

struct ReleaseState {
  std::string app;
  std::string id;
  std::vector<BindingClaim> claims;
  std::int64_t created_at_ms = 0;
  std::uint64_t seq = 0;
  bool operator==(const ReleaseState&) const = default;
};

// (app, binding name)
using BindingKey = std::pair<std::string, std::string>;

struct State {
  std::uint64_t seq = 0;  // last applied record
  std::string log_id;
  std::string origin;
  std::map<std::string, AddonState> addons;          // by id
  std::map<std::string, std::string> names;          // live name -> add-on id
  std::map<BindingKey, std::string> bindings;        // -> add-on id
  std::map<std::string, SnapshotState> snapshots;    // by id
  std::map<std::string, std::vector<ReleaseState>> releases;  // app -> in order
  // (add-on id, generation, app, release) first deliveries
  std::set<std::tuple<std::string, std::uint32_t, std::string, std::string>> deliveries;
  std::uint64_t tokens_issued = 0;
  // Announced `via serve` nodes: name -> public base URL (NodeAnnounced).
  std::map<std::string, std::string> nodes;

  bool operator==(const State&) const = default;

  // Lookups. `FindAddon` takes a live name or an id.
  const AddonState* FindAddon(const std::string& name_or_id) const;
  const AddonState* FindById(const std::string& id) const;
  // Bindings of one add-on, as (app, binding) keys.
  std::vector<BindingKey> BindingsOf(const std::string& addon_id) const;
};

// Folds one record into the state. Records must come in seq order.
void Apply(State& state, const Record& record);

// The parts of a State that Apply(state, record) reads or writes. Applying a
// record to a partial State that holds at least these parts (absent ones
// being truly absent) changes those parts exactly as applying it to the whole
// State would; projections/ loads a slice this way instead of every row.
// An add-on in `addons` is meant with its generations and with the name
// entries of its current and original names (AddonRenamed and AddonDestroyed
// remove its live name).
struct StateKeys {
  std::set<std::string> addons;                  // by id
  std::set<std::string> names;                   // live names
  std::set<BindingKey> bindings;                 // (app, binding)
  std::set<std::string> bindings_of;             // every binding of these add-on ids
  std::set<std::string> snapshots;               // by id
  std::set<std::string> releases_of;             // apps whose release list is needed
  // Never set by KeysOf; what some decisions read besides (projections/
  // loads them on request).
  std::set<std::string> bindings_for_app;        // every binding of these apps
  std::set<std::string> claims_on;               // release lists of apps whose releases claim these add-ons
  std::set<std::string> snapshots_of;            // every snapshot of these add-ons
  std::set<std::string> deliveries_of;           // every delivery of these add-ons
  std::set<std::string> incarnations_of;         // every add-on ever created under these names
  // Only the latest release of these apps (readiness reads no other): it is
  // then the one element of `releases[app]`, so such a slice is for readers
  // of `.back()` (and never for deciding a release's number). `releases_of`
  // of the same app loads the whole list instead.
  std::set<std::string> latest_release_of;
  bool operator==(const StateKeys&) const = default;
  void Merge(const StateKeys& other);
};
StateKeys KeysOf(const Record& record);

// Stable text form of the whole state; its SHA-256 is the state digest.
std::string CanonicalForm(const State& state);

}  // namespace via
