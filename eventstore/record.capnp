# The event log record (DESIGN.md section 5; bytes described in
# docs/event-log-format.md). Stored bytes are capnp::canonicalize output.
# Fields and union members are only ever added, never renumbered.
@0xd50cb6647ed8babe;

$import "/capnp/c++.capnp".namespace("via::schema");

struct Record {
  seq @0 :UInt64;
  prevHash @1 :Data;          # 32 bytes; all zero for seq 1
  recordedAtMs @2 :Int64;     # Unix time, milliseconds
  actor @3 :Text;
  commandId @4 :Text;
  event :union {
    logInitialized @5 :LogInitialized;
    addonCreated @6 :AddonCreated;
    storageProvisioned @7 :StorageProvisioned;
    provisioningFailed @8 :ProvisioningFailed;
    addonRenamed @9 :AddonRenamed;
    bindingAttached @10 :BindingAttached;
    bindingDetached @11 :BindingDetached;
    bindingSnapshotted @12 :BindingSnapshotted;
    generationRotated @13 :GenerationRotated;
    generationRevoked @14 :GenerationRevoked;
    snapshotRequested @15 :SnapshotRequested;
    snapshotTaken @16 :SnapshotTaken;
    snapshotFailed @17 :SnapshotFailed;
    restoreRequested @18 :RestoreRequested;
    snapshotRestored @19 :SnapshotRestored;
    restoreFailed @20 :RestoreFailed;
    storageRepaired @21 :StorageRepaired;
    addonDestroyed @22 :AddonDestroyed;
    workloadTokenIssued @23 :WorkloadTokenIssued;
    generationDelivered @24 :GenerationDelivered;
    repairRequested @25 :RepairRequested;
    storageChecked @26 :StorageChecked;
    snapshotVerified @27 :SnapshotVerified;
    snapshotDeleted @28 :SnapshotDeleted;
    snapshotPolicySet @29 :SnapshotPolicySet;
    providerConfigured @30 :ProviderConfigured;
    nodeAnnounced @31 :NodeAnnounced;
    addonPlaced @32 :AddonPlaced;
    ownerWorkRequested @33 :OwnerWorkRequested;
    ownerWorkFinished @34 :OwnerWorkFinished;
  }
}

struct LogInitialized {
  logId @0 :Text;
  origin @1 :Text;
  checkpointVerifierKey @2 :Text;
  workloadVerifierKey @3 :Text;
}

struct AddonCreated {
  addonId @0 :Text;
  name @1 :Text;
  provider @2 :Text;
  app @3 :Text;
  binding @4 :Text;
}

struct StorageProvisioned {
  addonId @0 :Text;
}

struct ProvisioningFailed {
  addonId @0 :Text;
  reason @1 :Text;
  dataPresent @2 :Bool;
}

struct AddonRenamed {
  addonId @0 :Text;
  oldName @1 :Text;
  newName @2 :Text;
}

struct BindingAttached {
  app @0 :Text;
  binding @1 :Text;
  addonId @2 :Text;
}

struct BindingDetached {
  app @0 :Text;
  binding @1 :Text;
  addonId @2 :Text;
}

struct BindingClaim {
  binding @0 :Text;
  addonId @1 :Text;
}

struct BindingSnapshotted {
  app @0 :Text;
  releaseId @1 :Text;
  claims @2 :List(BindingClaim);
}

struct GenerationRotated {
  addonId @0 :Text;
  generation @1 :UInt32;
  fingerprint @2 :Data;
  salt @3 :Data;
}

struct GenerationRevoked {
  addonId @0 :Text;
  generation @1 :UInt32;
}

struct SnapshotRequested {
  addonId @0 :Text;
  snapshotId @1 :Text;
  label @2 :Text;
}

struct SnapshotTaken {
  addonId @0 :Text;
  snapshotId @1 :Text;
  sha256 @2 :Data;
  bytes @3 :UInt64;
  pageCount @4 :UInt64;
}

struct SnapshotFailed {
  addonId @0 :Text;
  snapshotId @1 :Text;
  reason @2 :Text;
}

struct RestoreRequested {
  addonId @0 :Text;
  snapshotId @1 :Text;
  safetySnapshotId @2 :Text;
}

struct SnapshotRestored {
  addonId @0 :Text;
  snapshotId @1 :Text;
  safetySnapshotId @2 :Text;
}

struct RestoreFailed {
  addonId @0 :Text;
  snapshotId @1 :Text;
  reason @2 :Text;
}

struct StorageRepaired {
  addonId @0 :Text;
  action @1 :Text;
  snapshotId @2 :Text;
  detail @3 :Text;
}

struct AddonDestroyed {
  addonId @0 :Text;
  tombstoneName @1 :Text;
}

struct WorkloadTokenIssued {
  app @0 :Text;
  releaseId @1 :Text;
  tokenId @2 :Text;
  expiresAtMs @3 :Int64;
  issuedAtMs @4 :Int64;  # the token's iat; 0 in records written before it existed
}

struct GenerationDelivered {
  addonId @0 :Text;
  generation @1 :UInt32;
  app @2 :Text;
  releaseId @3 :Text;
}

struct RepairRequested {
  addonId @0 :Text;
  action @1 :Text;
}

struct StorageChecked {
  addonId @0 :Text;
  ok @1 :Bool;
  check @2 :Text;
  detail @3 :Text;
}

struct SnapshotVerified {
  addonId @0 :Text;
  snapshotId @1 :Text;
  ok @2 :Bool;
  check @3 :Text;
  detail @4 :Text;
}

struct SnapshotDeleted {
  addonId @0 :Text;
  snapshotId @1 :Text;
  reason @2 :Text;
}

struct SnapshotPolicySet {
  addonId @0 :Text;
  keepLast @1 :UInt32;
  keepDaily @2 :UInt32;
  keepWeekly @3 :UInt32;
  everySeconds @4 :UInt32;
}

struct ProviderConfigured {
  provider @0 :Text;
  host @1 :Text;
  port @2 :UInt32;
  user @3 :Text;
  database @4 :Text;
  secretFingerprint @5 :Data;
}

struct NodeAnnounced {
  node @0 :Text;
  publicUrl @1 :Text;
}

struct AddonPlaced {
  addonId @0 :Text;
  node @1 :Text;
}

struct OwnerWorkRequested {
  addonId @0 :Text;
  work @1 :Text;
  argument @2 :Text;
}

struct OwnerWorkFinished {
  addonId @0 :Text;
  request @1 :Text;
  code @2 :Text;
  status @3 :Text;
  message @4 :Text;
  remediation @5 :Text;
}
