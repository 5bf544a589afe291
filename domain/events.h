#pragma once

// Events as plain C++ values (DESIGN.md section 5). Names are part of the
// contract: fields are only ever added. The eventstore maps these one-to-one
// onto the Cap'n Proto union in eventstore/record.capnp.
//
// No event carries a secret: credentials appear only as fingerprints.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "domain/bytes.h"

namespace via {

struct LogInitialized {
  std::string log_id;
  std::string origin;
  std::string checkpoint_verifier_key;  // signed-note verifier key
  std::string workload_verifier_key;    // signed-note style verifier key of keys/workload.key
  bool operator==(const LogInitialized&) const = default;
};

struct AddonCreated {
  std::string addon_id;
  std::string name;
  std::string provider;
  std::string app;
  std::string binding;  // requested binding; empty when none
  bool operator==(const AddonCreated&) const = default;
};

struct StorageProvisioned {
  std::string addon_id;
  bool operator==(const StorageProvisioned&) const = default;
};

struct ProvisioningFailed {
  std::string addon_id;
  std::string reason;
  bool data_present = false;  // the file holds SQLite bytes
  bool operator==(const ProvisioningFailed&) const = default;
};

struct AddonRenamed {
  std::string addon_id;
  std::string old_name;
  std::string new_name;  // NAME#failed#ID
  bool operator==(const AddonRenamed&) const = default;
};

struct BindingAttached {
  std::string app;
  std::string binding;
  std::string addon_id;
  bool operator==(const BindingAttached&) const = default;
};

struct BindingDetached {
  std::string app;
  std::string binding;
  std::string addon_id;
  bool operator==(const BindingDetached&) const = default;
};

struct BindingClaim {
  std::string binding;
  std::string addon_id;
  bool operator==(const BindingClaim&) const = default;
};

struct BindingSnapshotted {
  std::string app;
  std::string release_id;
  std::vector<BindingClaim> claims;
  bool operator==(const BindingSnapshotted&) const = default;
};

struct GenerationRotated {
  std::string addon_id;
  std::uint32_t generation = 0;
  Bytes fingerprint;  // SHA-256 of the derived credential
  Bytes salt;         // public input of the derivation
  bool operator==(const GenerationRotated&) const = default;
};

struct GenerationRevoked {
  std::string addon_id;
  std::uint32_t generation = 0;
  bool operator==(const GenerationRevoked&) const = default;
};

struct SnapshotRequested {
  std::string addon_id;
  std::string snapshot_id;
  std::string label;
  bool operator==(const SnapshotRequested&) const = default;
};

struct SnapshotTaken {
  std::string addon_id;
  std::string snapshot_id;
  Bytes sha256;
  std::uint64_t bytes = 0;
  std::uint64_t page_count = 0;
  bool operator==(const SnapshotTaken&) const = default;
};

struct SnapshotFailed {
  std::string addon_id;
  std::string snapshot_id;
  std::string reason;
  bool operator==(const SnapshotFailed&) const = default;
};

struct RestoreRequested {
  std::string addon_id;
  std::string snapshot_id;
  std::string safety_snapshot_id;
  bool operator==(const RestoreRequested&) const = default;
};

struct SnapshotRestored {
  std::string addon_id;
  std::string snapshot_id;
  std::string safety_snapshot_id;
  bool operator==(const SnapshotRestored&) const = default;
};

struct RestoreFailed {
  std::string addon_id;
  std::string snapshot_id;
  std::string reason;
  bool operator==(const RestoreFailed&) const = default;
};

struct StorageRepaired {
  std::string addon_id;
  std::string action;       // recreated_empty | restored_from_snapshot | quarantined_corrupt
  std::string snapshot_id;  // for restored_from_snapshot
  std::string detail;       // e.g. where a corrupt file was moved
  bool operator==(const StorageRepaired&) const = default;
};

struct AddonDestroyed {
  std::string addon_id;
  std::string tombstone_name;  // NAME#destroyed#ID
  bool operator==(const AddonDestroyed&) const = default;
};

struct WorkloadTokenIssued {
  std::string app;
  std::string release_id;
  std::string token_id;
  std::int64_t expires_at_ms = 0;
  // The token's iat (0 in records written before it was recorded): with the
  // rest, every claim, so the same token can be signed again (a retry of the
  // same --command-id) without storing it.
  std::int64_t issued_at_ms = 0;
  bool operator==(const WorkloadTokenIssued&) const = default;
};

// The first delivery of a credential generation to a release (DESIGN.md section 8).
struct GenerationDelivered {
  std::string addon_id;
  std::uint32_t generation = 0;
  std::string app;
  std::string release_id;
  bool operator==(const GenerationDelivered&) const = default;
};

// Intent of `ensure --repair`; StorageRepaired (or ProvisioningFailed) completes it.
struct RepairRequested {
  std::string addon_id;
  std::string action;
  bool operator==(const RepairRequested&) const = default;
};

// A full check of an add-on's live storage (`via addon check`), recorded.
struct StorageChecked {
  std::string addon_id;
  bool ok = false;
  std::string check;   // what ran, e.g. "integrity_check"
  std::string detail;  // "ok", or the first problem found
  bool operator==(const StorageChecked&) const = default;
};

// A later, recorded verification of a snapshot that was taken (DESIGN.md
// section 5: usable once durable and hashed, verified afterwards).
struct SnapshotVerified {
  std::string addon_id;
  std::string snapshot_id;
  bool ok = false;
  std::string check;   // e.g. "sha256+integrity_check"
  std::string detail;  // "ok", or what failed
  bool operator==(const SnapshotVerified&) const = default;
};

// A snapshot file removed (after this event) by an operator or by retention.
struct SnapshotDeleted {
  std::string addon_id;
  std::string snapshot_id;
  std::string reason;  // "operator" | "retention"
  bool operator==(const SnapshotDeleted&) const = default;
};

// Retention and schedule of an add-on's snapshots; zero means "not set".
// `via provider add`: a provider's server registered on this home. The
// secret (an admin password) stays in keys/providers/; only its fingerprint
// is recorded.
struct ProviderConfigured {
  std::string provider;
  std::string host;
  std::uint32_t port = 0;
  std::string user;
  std::string database;
  Bytes secret_fingerprint;
  bool operator==(const ProviderConfigured&) const = default;
};

struct SnapshotPolicySet {
  std::string addon_id;
  std::uint32_t keep_last = 0;
  std::uint32_t keep_daily = 0;
  std::uint32_t keep_weekly = 0;
  std::uint32_t every_seconds = 0;  // take one every this many seconds (via serve)
  bool operator==(const SnapshotPolicySet&) const = default;
};

// A `via serve` node on a shared (PostgreSQL) log announced itself: its name
// and the public base URL its descriptors and forwarded requests use. A later
// announcement of the same name replaces its URL.
struct NodeAnnounced {
  std::string node;
  std::string public_url;
  bool operator==(const NodeAnnounced&) const = default;
};

// The node that owns an add-on: its files live in that node's home, and its
// provider work and SQL run there (docs/operations.md "Several nodes").
struct AddonPlaced {
  std::string addon_id;
  std::string node;
  bool operator==(const AddonPlaced&) const = default;
};

// Several nodes: file work that has no intent event of its own (a repair, a
// check, a verification), asked of the add-on's owner by a command run on
// another node's home, under an owner-work command id (domain/names.h). The
// owner's `via serve` does it, recording its outcome events as the command
// would, then OwnerWorkFinished.
struct OwnerWorkRequested {
  std::string addon_id;
  std::string work;      // "repair" | "check" | "verify"
  std::string argument;  // repair: "allow_empty" or ""; verify: a snapshot id or "" (all unverified)
  bool operator==(const OwnerWorkRequested&) const = default;
};

// The owner finished an OwnerWorkRequested (appended under
// OwnerWorkDoneCommandId of the request's command id).
struct OwnerWorkFinished {
  std::string addon_id;
  std::string request;      // the request's command id
  std::string code;         // "" when done; else the stable code of the refusal or error
  std::string status;       // "" when done; else its class (StatusCodeName, e.g. FAILED_PRECONDITION)
  std::string message;      // what was done, or the error's message
  std::string remediation;  // the error's remediation ("" when none)
  bool operator==(const OwnerWorkFinished&) const = default;
};

using Event = std::variant<LogInitialized, AddonCreated, StorageProvisioned, ProvisioningFailed,
                           AddonRenamed, BindingAttached, BindingDetached, BindingSnapshotted,
                           GenerationRotated, GenerationRevoked, SnapshotRequested, SnapshotTaken,
                           SnapshotFailed, RestoreRequested, SnapshotRestored, RestoreFailed,
                           StorageRepaired, AddonDestroyed, WorkloadTokenIssued,
                           GenerationDelivered, RepairRequested, StorageChecked,
                           SnapshotVerified, SnapshotDeleted, SnapshotPolicySet,
                           ProviderConfigured, NodeAnnounced, AddonPlaced,
                           OwnerWorkRequested, OwnerWorkFinished>;

// The contract name of an event's type ("AddonCreated").
const char* EventTypeName(const Event& event);

// The add-on an event is about, or empty (LogInitialized, releases, tokens).
std::string EventAddonId(const Event& event);

// The app an event is about, or empty.
std::string EventApp(const Event& event);

// One entry of the log: the envelope around an event (DESIGN.md section 5).
struct Record {
  std::uint64_t seq = 0;
  Hash256 prev_hash{};
  std::int64_t recorded_at_ms = 0;
  std::string actor;
  std::string command_id;
  Event event;
  bool operator==(const Record&) const = default;
};

}  // namespace via
