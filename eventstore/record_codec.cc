#include "eventstore/record_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>

#include "eventstore/record.capnp.h"

namespace via::eventstore {
namespace {

using CRecord = schema::Record;

capnp::Data::Reader DataOf(const Bytes& b) { return capnp::Data::Reader(b.data(), b.size()); }
Bytes BytesOf(capnp::Data::Reader d) { return Bytes(d.begin(), d.end()); }
// A Text field's bytes. A NUL inside is refused (docs/event-log-format.md 4.5:
// the terminator is a text's only NUL; EncodeRecord cannot write one, and a C
// string reader would see a different value than this one); the KJ exception
// becomes record_malformed in DecodeRecord.
std::string TextOf(capnp::Text::Reader t) {
  std::string text(t.cStr(), t.size());
  KJ_REQUIRE(text.find('\0') == std::string::npos, "a Text field holds a NUL byte");
  return text;
}

// Writes one domain event into the builder's union.
struct EventWriter {
  CRecord::Event::Builder b;

  void operator()(const LogInitialized& e) {
    auto x = b.initLogInitialized();
    x.setLogId(e.log_id);
    x.setOrigin(e.origin);
    x.setCheckpointVerifierKey(e.checkpoint_verifier_key);
    x.setWorkloadVerifierKey(e.workload_verifier_key);
  }
  void operator()(const AddonCreated& e) {
    auto x = b.initAddonCreated();
    x.setAddonId(e.addon_id);
    x.setName(e.name);
    x.setProvider(e.provider);
    x.setApp(e.app);
    x.setBinding(e.binding);
  }
  void operator()(const StorageProvisioned& e) {
    b.initStorageProvisioned().setAddonId(e.addon_id);
  }
  void operator()(const ProvisioningFailed& e) {
    auto x = b.initProvisioningFailed();
    x.setAddonId(e.addon_id);
    x.setReason(e.reason);
    x.setDataPresent(e.data_present);
  }
  void operator()(const AddonRenamed& e) {
    auto x = b.initAddonRenamed();
    x.setAddonId(e.addon_id);
    x.setOldName(e.old_name);
    x.setNewName(e.new_name);
  }
  void operator()(const BindingAttached& e) {
    auto x = b.initBindingAttached();
    x.setApp(e.app);
    x.setBinding(e.binding);
    x.setAddonId(e.addon_id);
  }
  void operator()(const BindingDetached& e) {
    auto x = b.initBindingDetached();
    x.setApp(e.app);
    x.setBinding(e.binding);
    x.setAddonId(e.addon_id);
  }
  void operator()(const BindingSnapshotted& e) {
    auto x = b.initBindingSnapshotted();
    x.setApp(e.app);
    x.setReleaseId(e.release_id);
    auto claims = x.initClaims(static_cast<unsigned>(e.claims.size()));
    for (unsigned i = 0; i < e.claims.size(); ++i) {
      claims[i].setBinding(e.claims[i].binding);
      claims[i].setAddonId(e.claims[i].addon_id);
    }
  }
  void operator()(const GenerationRotated& e) {
    auto x = b.initGenerationRotated();
    x.setAddonId(e.addon_id);
    x.setGeneration(e.generation);
    x.setFingerprint(DataOf(e.fingerprint));
    x.setSalt(DataOf(e.salt));
  }
  void operator()(const GenerationRevoked& e) {
    auto x = b.initGenerationRevoked();
    x.setAddonId(e.addon_id);
    x.setGeneration(e.generation);
  }
  void operator()(const SnapshotRequested& e) {
    auto x = b.initSnapshotRequested();
    x.setAddonId(e.addon_id);
    x.setSnapshotId(e.snapshot_id);
    x.setLabel(e.label);
  }
  void operator()(const SnapshotTaken& e) {
    auto x = b.initSnapshotTaken();
    x.setAddonId(e.addon_id);
    x.setSnapshotId(e.snapshot_id);
    x.setSha256(DataOf(e.sha256));
    x.setBytes(e.bytes);
    x.setPageCount(e.page_count);
  }
  void operator()(const SnapshotFailed& e) {
    auto x = b.initSnapshotFailed();
    x.setAddonId(e.addon_id);
    x.setSnapshotId(e.snapshot_id);
    x.setReason(e.reason);
  }
  void operator()(const RestoreRequested& e) {
    auto x = b.initRestoreRequested();
    x.setAddonId(e.addon_id);
    x.setSnapshotId(e.snapshot_id);
    x.setSafetySnapshotId(e.safety_snapshot_id);
  }
  void operator()(const SnapshotRestored& e) {
    auto x = b.initSnapshotRestored();
    x.setAddonId(e.addon_id);
    x.setSnapshotId(e.snapshot_id);
    x.setSafetySnapshotId(e.safety_snapshot_id);
  }
  void operator()(const RestoreFailed& e) {
    auto x = b.initRestoreFailed();
    x.setAddonId(e.addon_id);
    x.setSnapshotId(e.snapshot_id);
    x.setReason(e.reason);
  }
  void operator()(const StorageRepaired& e) {
    auto x = b.initStorageRepaired();
    x.setAddonId(e.addon_id);
    x.setAction(e.action);
    x.setSnapshotId(e.snapshot_id);
    x.setDetail(e.detail);
  }
  void operator()(const AddonDestroyed& e) {
    auto x = b.initAddonDestroyed();
    x.setAddonId(e.addon_id);
    x.setTombstoneName(e.tombstone_name);
  }
  void operator()(const WorkloadTokenIssued& e) {
    auto x = b.initWorkloadTokenIssued();
    x.setApp(e.app);
    x.setReleaseId(e.release_id);
    x.setTokenId(e.token_id);
    x.setExpiresAtMs(e.expires_at_ms);
    x.setIssuedAtMs(e.issued_at_ms);
  }
  void operator()(const GenerationDelivered& e) {
    auto x = b.initGenerationDelivered();
    x.setAddonId(e.addon_id);
    x.setGeneration(e.generation);
    x.setApp(e.app);
    x.setReleaseId(e.release_id);
  }
  void operator()(const RepairRequested& e) {
    auto x = b.initRepairRequested();
    x.setAddonId(e.addon_id);
    x.setAction(e.action);
  }
  void operator()(const StorageChecked& e) {
    auto x = b.initStorageChecked();
    x.setAddonId(e.addon_id);
    x.setOk(e.ok);
    x.setCheck(e.check);
    x.setDetail(e.detail);
  }
  void operator()(const SnapshotVerified& e) {
    auto x = b.initSnapshotVerified();
    x.setAddonId(e.addon_id);
    x.setSnapshotId(e.snapshot_id);
    x.setOk(e.ok);
    x.setCheck(e.check);
    x.setDetail(e.detail);
  }
  void operator()(const SnapshotDeleted& e) {
    auto x = b.initSnapshotDeleted();
    x.setAddonId(e.addon_id);
    x.setSnapshotId(e.snapshot_id);
    x.setReason(e.reason);
  }
  void operator()(const ProviderConfigured& e) {
    auto x = b.initProviderConfigured();
    x.setProvider(e.provider);
    x.setHost(e.host);
    x.setPort(e.port);
    x.setUser(e.user);
    x.setDatabase(e.database);
    x.setSecretFingerprint(DataOf(e.secret_fingerprint));
  }
  void operator()(const NodeAnnounced& e) {
    auto x = b.initNodeAnnounced();
    x.setNode(e.node);
    x.setPublicUrl(e.public_url);
  }
  void operator()(const AddonPlaced& e) {
    auto x = b.initAddonPlaced();
    x.setAddonId(e.addon_id);
    x.setNode(e.node);
  }
  void operator()(const OwnerWorkRequested& e) {
    auto x = b.initOwnerWorkRequested();
    x.setAddonId(e.addon_id);
    x.setWork(e.work);
    x.setArgument(e.argument);
  }
  void operator()(const OwnerWorkFinished& e) {
    auto x = b.initOwnerWorkFinished();
    x.setAddonId(e.addon_id);
    x.setRequest(e.request);
    x.setCode(e.code);
    x.setStatus(e.status);
    x.setMessage(e.message);
    x.setRemediation(e.remediation);
  }
  void operator()(const SnapshotPolicySet& e) {
    auto x = b.initSnapshotPolicySet();
    x.setAddonId(e.addon_id);
    x.setKeepLast(e.keep_last);
    x.setKeepDaily(e.keep_daily);
    x.setKeepWeekly(e.keep_weekly);
    x.setEverySeconds(e.every_seconds);
  }
};

std::optional<Event> ReadEvent(CRecord::Event::Reader r) {
  switch (r.which()) {
    case CRecord::Event::LOG_INITIALIZED: {
      auto x = r.getLogInitialized();
      return LogInitialized{TextOf(x.getLogId()), TextOf(x.getOrigin()),
                            TextOf(x.getCheckpointVerifierKey()),
                            TextOf(x.getWorkloadVerifierKey())};
    }
    case CRecord::Event::ADDON_CREATED: {
      auto x = r.getAddonCreated();
      return AddonCreated{TextOf(x.getAddonId()), TextOf(x.getName()), TextOf(x.getProvider()),
                          TextOf(x.getApp()), TextOf(x.getBinding())};
    }
    case CRecord::Event::STORAGE_PROVISIONED:
      return StorageProvisioned{TextOf(r.getStorageProvisioned().getAddonId())};
    case CRecord::Event::PROVISIONING_FAILED: {
      auto x = r.getProvisioningFailed();
      return ProvisioningFailed{TextOf(x.getAddonId()), TextOf(x.getReason()),
                                x.getDataPresent()};
    }
    case CRecord::Event::ADDON_RENAMED: {
      auto x = r.getAddonRenamed();
      return AddonRenamed{TextOf(x.getAddonId()), TextOf(x.getOldName()),
                          TextOf(x.getNewName())};
    }
    case CRecord::Event::BINDING_ATTACHED: {
      auto x = r.getBindingAttached();
      return BindingAttached{TextOf(x.getApp()), TextOf(x.getBinding()), TextOf(x.getAddonId())};
    }
    case CRecord::Event::BINDING_DETACHED: {
      auto x = r.getBindingDetached();
      return BindingDetached{TextOf(x.getApp()), TextOf(x.getBinding()), TextOf(x.getAddonId())};
    }
    case CRecord::Event::BINDING_SNAPSHOTTED: {
      auto x = r.getBindingSnapshotted();
      BindingSnapshotted e{TextOf(x.getApp()), TextOf(x.getReleaseId()), {}};
      for (auto c : x.getClaims()) {
        e.claims.push_back(BindingClaim{TextOf(c.getBinding()), TextOf(c.getAddonId())});
      }
      return e;
    }
    case CRecord::Event::GENERATION_ROTATED: {
      auto x = r.getGenerationRotated();
      return GenerationRotated{TextOf(x.getAddonId()), x.getGeneration(),
                               BytesOf(x.getFingerprint()), BytesOf(x.getSalt())};
    }
    case CRecord::Event::GENERATION_REVOKED: {
      auto x = r.getGenerationRevoked();
      return GenerationRevoked{TextOf(x.getAddonId()), x.getGeneration()};
    }
    case CRecord::Event::SNAPSHOT_REQUESTED: {
      auto x = r.getSnapshotRequested();
      return SnapshotRequested{TextOf(x.getAddonId()), TextOf(x.getSnapshotId()),
                               TextOf(x.getLabel())};
    }
    case CRecord::Event::SNAPSHOT_TAKEN: {
      auto x = r.getSnapshotTaken();
      return SnapshotTaken{TextOf(x.getAddonId()), TextOf(x.getSnapshotId()),
                           BytesOf(x.getSha256()), x.getBytes(), x.getPageCount()};
    }
    case CRecord::Event::SNAPSHOT_FAILED: {
      auto x = r.getSnapshotFailed();
      return SnapshotFailed{TextOf(x.getAddonId()), TextOf(x.getSnapshotId()),
                            TextOf(x.getReason())};
    }
    case CRecord::Event::RESTORE_REQUESTED: {
      auto x = r.getRestoreRequested();
      return RestoreRequested{TextOf(x.getAddonId()), TextOf(x.getSnapshotId()),
                              TextOf(x.getSafetySnapshotId())};
    }
    case CRecord::Event::SNAPSHOT_RESTORED: {
      auto x = r.getSnapshotRestored();
      return SnapshotRestored{TextOf(x.getAddonId()), TextOf(x.getSnapshotId()),
                              TextOf(x.getSafetySnapshotId())};
    }
    case CRecord::Event::RESTORE_FAILED: {
      auto x = r.getRestoreFailed();
      return RestoreFailed{TextOf(x.getAddonId()), TextOf(x.getSnapshotId()),
                           TextOf(x.getReason())};
    }
    case CRecord::Event::STORAGE_REPAIRED: {
      auto x = r.getStorageRepaired();
      return StorageRepaired{TextOf(x.getAddonId()), TextOf(x.getAction()),
                             TextOf(x.getSnapshotId()), TextOf(x.getDetail())};
    }
    case CRecord::Event::ADDON_DESTROYED: {
      auto x = r.getAddonDestroyed();
      return AddonDestroyed{TextOf(x.getAddonId()), TextOf(x.getTombstoneName())};
    }
    case CRecord::Event::WORKLOAD_TOKEN_ISSUED: {
      auto x = r.getWorkloadTokenIssued();
      return WorkloadTokenIssued{TextOf(x.getApp()), TextOf(x.getReleaseId()),
                                 TextOf(x.getTokenId()), x.getExpiresAtMs(),
                                 x.getIssuedAtMs()};
    }
    case CRecord::Event::GENERATION_DELIVERED: {
      auto x = r.getGenerationDelivered();
      return GenerationDelivered{TextOf(x.getAddonId()), x.getGeneration(), TextOf(x.getApp()),
                                 TextOf(x.getReleaseId())};
    }
    case CRecord::Event::REPAIR_REQUESTED: {
      auto x = r.getRepairRequested();
      return RepairRequested{TextOf(x.getAddonId()), TextOf(x.getAction())};
    }
    case CRecord::Event::STORAGE_CHECKED: {
      auto x = r.getStorageChecked();
      return StorageChecked{TextOf(x.getAddonId()), x.getOk(), TextOf(x.getCheck()),
                            TextOf(x.getDetail())};
    }
    case CRecord::Event::SNAPSHOT_VERIFIED: {
      auto x = r.getSnapshotVerified();
      return SnapshotVerified{TextOf(x.getAddonId()), TextOf(x.getSnapshotId()), x.getOk(),
                              TextOf(x.getCheck()), TextOf(x.getDetail())};
    }
    case CRecord::Event::SNAPSHOT_DELETED: {
      auto x = r.getSnapshotDeleted();
      return SnapshotDeleted{TextOf(x.getAddonId()), TextOf(x.getSnapshotId()),
                             TextOf(x.getReason())};
    }
    case CRecord::Event::SNAPSHOT_POLICY_SET: {
      auto x = r.getSnapshotPolicySet();
      return SnapshotPolicySet{TextOf(x.getAddonId()), x.getKeepLast(), x.getKeepDaily(),
                               x.getKeepWeekly(), x.getEverySeconds()};
    }
    case CRecord::Event::PROVIDER_CONFIGURED: {
      auto x = r.getProviderConfigured();
      return ProviderConfigured{TextOf(x.getProvider()), TextOf(x.getHost()), x.getPort(),
                                TextOf(x.getUser()), TextOf(x.getDatabase()),
                                BytesOf(x.getSecretFingerprint())};
    }
    case CRecord::Event::NODE_ANNOUNCED: {
      auto x = r.getNodeAnnounced();
      return NodeAnnounced{TextOf(x.getNode()), TextOf(x.getPublicUrl())};
    }
    case CRecord::Event::ADDON_PLACED: {
      auto x = r.getAddonPlaced();
      return AddonPlaced{TextOf(x.getAddonId()), TextOf(x.getNode())};
    }
    case CRecord::Event::OWNER_WORK_REQUESTED: {
      auto x = r.getOwnerWorkRequested();
      return OwnerWorkRequested{TextOf(x.getAddonId()), TextOf(x.getWork()),
                                TextOf(x.getArgument())};
    }
    case CRecord::Event::OWNER_WORK_FINISHED: {
      auto x = r.getOwnerWorkFinished();
      return OwnerWorkFinished{TextOf(x.getAddonId()), TextOf(x.getRequest()),
                               TextOf(x.getCode()),    TextOf(x.getStatus()),
                               TextOf(x.getMessage()), TextOf(x.getRemediation())};
    }
  }
  return std::nullopt;  // a discriminant this build does not know
}

}  // namespace

Bytes EncodeRecord(const Record& record) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<schema::Record>();
  root.setSeq(record.seq);
  root.setPrevHash(capnp::Data::Reader(record.prev_hash.data(), record.prev_hash.size()));
  root.setRecordedAtMs(record.recorded_at_ms);
  root.setActor(record.actor);
  root.setCommandId(record.command_id);
  std::visit(EventWriter{root.initEvent()}, record.event);
  kj::Array<capnp::word> words = capnp::canonicalize(root.asReader());
  auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

Result<Record> DecodeRecord(ByteView bytes) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return DataLoss("record_malformed",
                    "record length " + std::to_string(bytes.size()) + " is not a whole number of words");
  }
  if (bytes.size() > kMaxRecordBytes) {
    return DataLoss("record_malformed", "record is larger than " +
                                            std::to_string(kMaxRecordBytes) + " bytes");
  }
  // Copy into word-aligned memory: SQLite blobs carry no alignment guarantee.
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  kj::ArrayPtr<const capnp::word> segments[1] = {words.asPtr()};

  Record out;
  std::optional<Status> error;
  kj::Maybe<kj::Exception> exception = kj::runCatchingExceptions([&]() {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = words.size() * 4 + 64;
    options.nestingLimit = 16;
    capnp::SegmentArrayMessageReader reader(kj::arrayPtr(segments, 1), options);
    if (!reader.isCanonical()) {
      error = DataLoss("record_not_canonical", "record bytes are not in canonical form");
      return;
    }
    auto root = reader.getRoot<schema::Record>();
    // isCanonical() tolerates a few encodings that canonicalize() never writes
    // (e.g. an empty list's offset); the bytes must be exactly canonical.
    kj::Array<capnp::word> again = capnp::canonicalize(root);
    auto again_bytes = again.asBytes();
    if (again_bytes.size() != bytes.size() ||
        std::memcmp(again_bytes.begin(), bytes.data(), bytes.size()) != 0) {
      error = DataLoss("record_not_canonical", "record bytes are not in canonical form");
      return;
    }
    out.seq = root.getSeq();
    auto prev = root.getPrevHash();
    if (prev.size() != out.prev_hash.size()) {
      error = DataLoss("record_malformed", "prevHash is " + std::to_string(prev.size()) +
                                               " bytes, expected 32");
      return;
    }
    std::memcpy(out.prev_hash.data(), prev.begin(), prev.size());
    out.recorded_at_ms = root.getRecordedAtMs();
    out.actor = TextOf(root.getActor());
    out.command_id = TextOf(root.getCommandId());
    std::optional<Event> event = ReadEvent(root.getEvent());
    if (!event) {
      error = DataLoss("record_unknown_event", "record carries an event type this build does not know");
      return;
    }
    out.event = std::move(*event);
  });
  KJ_IF_MAYBE(e, exception) {
    return DataLoss("record_malformed",
                    std::string("record does not decode: ") + e->getDescription().cStr());
  }
  if (error) return *error;
  return out;
}

}  // namespace via::eventstore
