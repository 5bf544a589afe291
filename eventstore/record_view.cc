#include "eventstore/record_view.h"

// Invariants:
//   - The walk keeps a read head, as docs/event-log-format.md section 5 does:
//     every object must start exactly at the head, and the head only moves
//     forward and never past the end, so every read is in bounds and the walk
//     is linear in the record size.
//   - Every pointer field must be set (EncodeRecord sets them all), so no
//     pointer section is truncated and a null pointer is refused.
//   - Accepted bytes are exactly EncodeRecord's output for the record they
//     hold (tests/eventstore/record_view_test.cc mutates records to check it).
//   - The layouts below are checked against the generated schema at compile
//     time; an event type added to the schema but not here is refused, and the
//     caller's DecodeRecord fallback handles it.

#include <bit>
#include <cstring>
#include <iterator>

#include "eventstore/record.capnp.h"
#include "eventstore/record_codec.h"

namespace via::eventstore {
namespace {

// What a pointer field of an event struct holds.
enum class Field : std::uint8_t { kText, kData, kClaims };

// One event struct as EncodeRecord writes it, before canonical truncation.
struct EventLayout {
  std::uint16_t data_words;
  std::uint64_t data_masks[2];  // the bits of each data word that fields use
  std::uint16_t pointer_count;
  Field fields[6];
};

constexpr std::uint64_t kAllBits = ~std::uint64_t{0};
constexpr std::uint64_t kUInt32Bits = 0xffffffffu;
constexpr std::uint64_t kBoolBit = 1;
constexpr Field T = Field::kText;
constexpr Field D = Field::kData;
constexpr Field C = Field::kClaims;

// Indexed by the union discriminant (docs/event-log-format.md 3.2 and 3.3).
constexpr EventLayout kEvents[] = {
    {0, {}, 4, {T, T, T, T}},                 // 0 LogInitialized
    {0, {}, 5, {T, T, T, T, T}},              // 1 AddonCreated
    {0, {}, 1, {T}},                          // 2 StorageProvisioned
    {1, {kBoolBit}, 2, {T, T}},               // 3 ProvisioningFailed
    {0, {}, 3, {T, T, T}},                    // 4 AddonRenamed
    {0, {}, 3, {T, T, T}},                    // 5 BindingAttached
    {0, {}, 3, {T, T, T}},                    // 6 BindingDetached
    {0, {}, 3, {T, T, C}},                    // 7 BindingSnapshotted
    {1, {kUInt32Bits}, 3, {T, D, D}},         // 8 GenerationRotated
    {1, {kUInt32Bits}, 1, {T}},               // 9 GenerationRevoked
    {0, {}, 3, {T, T, T}},                    // 10 SnapshotRequested
    {2, {kAllBits, kAllBits}, 3, {T, T, D}},  // 11 SnapshotTaken
    {0, {}, 3, {T, T, T}},                    // 12 SnapshotFailed
    {0, {}, 3, {T, T, T}},                    // 13 RestoreRequested
    {0, {}, 3, {T, T, T}},                    // 14 SnapshotRestored
    {0, {}, 3, {T, T, T}},                    // 15 RestoreFailed
    {0, {}, 4, {T, T, T, T}},                 // 16 StorageRepaired
    {0, {}, 2, {T, T}},                       // 17 AddonDestroyed
    {2, {kAllBits, kAllBits}, 3, {T, T, T}},  // 18 WorkloadTokenIssued
    {1, {kUInt32Bits}, 3, {T, T, T}},         // 19 GenerationDelivered
    {0, {}, 2, {T, T}},                       // 20 RepairRequested
    {1, {kBoolBit}, 3, {T, T, T}},            // 21 StorageChecked
    {1, {kBoolBit}, 4, {T, T, T, T}},         // 22 SnapshotVerified
    {0, {}, 3, {T, T, T}},                    // 23 SnapshotDeleted
    {2, {kAllBits, kAllBits}, 1, {T}},        // 24 SnapshotPolicySet
    {1, {kUInt32Bits}, 5, {T, T, T, T, D}},   // 25 ProviderConfigured
    {0, {}, 2, {T, T}},                       // 26 NodeAnnounced
    {0, {}, 2, {T, T}},                       // 27 AddonPlaced
    {0, {}, 3, {T, T, T}},                    // 28 OwnerWorkRequested
    {0, {}, 6, {T, T, T, T, T, T}},           // 29 OwnerWorkFinished
};

template <typename S>
constexpr bool Matches(std::size_t which, schema::Record::Event::Which tag) {
  return which == static_cast<std::size_t>(tag) &&
         kEvents[which].data_words == S::_capnpPrivate::dataWordSize &&
         kEvents[which].pointer_count == S::_capnpPrivate::pointerCount;
}

using E = schema::Record::Event;
static_assert(Matches<schema::LogInitialized>(0, E::LOG_INITIALIZED));
static_assert(Matches<schema::AddonCreated>(1, E::ADDON_CREATED));
static_assert(Matches<schema::StorageProvisioned>(2, E::STORAGE_PROVISIONED));
static_assert(Matches<schema::ProvisioningFailed>(3, E::PROVISIONING_FAILED));
static_assert(Matches<schema::AddonRenamed>(4, E::ADDON_RENAMED));
static_assert(Matches<schema::BindingAttached>(5, E::BINDING_ATTACHED));
static_assert(Matches<schema::BindingDetached>(6, E::BINDING_DETACHED));
static_assert(Matches<schema::BindingSnapshotted>(7, E::BINDING_SNAPSHOTTED));
static_assert(Matches<schema::GenerationRotated>(8, E::GENERATION_ROTATED));
static_assert(Matches<schema::GenerationRevoked>(9, E::GENERATION_REVOKED));
static_assert(Matches<schema::SnapshotRequested>(10, E::SNAPSHOT_REQUESTED));
static_assert(Matches<schema::SnapshotTaken>(11, E::SNAPSHOT_TAKEN));
static_assert(Matches<schema::SnapshotFailed>(12, E::SNAPSHOT_FAILED));
static_assert(Matches<schema::RestoreRequested>(13, E::RESTORE_REQUESTED));
static_assert(Matches<schema::SnapshotRestored>(14, E::SNAPSHOT_RESTORED));
static_assert(Matches<schema::RestoreFailed>(15, E::RESTORE_FAILED));
static_assert(Matches<schema::StorageRepaired>(16, E::STORAGE_REPAIRED));
static_assert(Matches<schema::AddonDestroyed>(17, E::ADDON_DESTROYED));
static_assert(Matches<schema::WorkloadTokenIssued>(18, E::WORKLOAD_TOKEN_ISSUED));
static_assert(Matches<schema::GenerationDelivered>(19, E::GENERATION_DELIVERED));
static_assert(Matches<schema::RepairRequested>(20, E::REPAIR_REQUESTED));
static_assert(Matches<schema::StorageChecked>(21, E::STORAGE_CHECKED));
static_assert(Matches<schema::SnapshotVerified>(22, E::SNAPSHOT_VERIFIED));
static_assert(Matches<schema::SnapshotDeleted>(23, E::SNAPSHOT_DELETED));
static_assert(Matches<schema::SnapshotPolicySet>(24, E::SNAPSHOT_POLICY_SET));
static_assert(Matches<schema::ProviderConfigured>(25, E::PROVIDER_CONFIGURED));
static_assert(Matches<schema::NodeAnnounced>(26, E::NODE_ANNOUNCED));
static_assert(Matches<schema::AddonPlaced>(27, E::ADDON_PLACED));
static_assert(Matches<schema::OwnerWorkRequested>(28, E::OWNER_WORK_REQUESTED));
static_assert(Matches<schema::OwnerWorkFinished>(29, E::OWNER_WORK_FINISHED));
static_assert(schema::BindingClaim::_capnpPrivate::dataWordSize == 0 &&
              schema::BindingClaim::_capnpPrivate::pointerCount == 2);
static_assert(schema::Record::_capnpPrivate::dataWordSize == 3 &&
              schema::Record::_capnpPrivate::pointerCount == 4);

// The Record struct: seq, recordedAtMs, then the 16-bit discriminant.
constexpr std::uint64_t kRecordMasks[3] = {kAllBits, kAllBits, 0xffff};

std::uint64_t LoadWord(const std::uint8_t* p) {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
  return w;
}

struct StructAt {
  std::size_t data = 0;  // word index of the data section
  std::size_t data_words = 0;
  std::size_t pointers = 0;  // word index of the pointer section
};

class Walker {
 public:
  explicit Walker(ByteView bytes) : bytes_(bytes.data()), words_(bytes.size() / 8) {}

  std::uint64_t Word(std::size_t i) const { return LoadWord(bytes_ + 8 * i); }
  bool AtEnd() const { return head_ == words_; }

  // A struct at the head with at most `max_data_words` data words using only
  // `masks` bits, truncated (last data word non-zero), and `pointer_count`
  // pointers (>= 1, so never the zero-sized form).
  bool Struct(std::size_t at, std::size_t max_data_words, const std::uint64_t* masks,
              std::size_t pointer_count, StructAt* out) {
    std::uint64_t hi;
    if (!PointsAtHead(at, 0, &hi)) return false;
    std::size_t dw = hi & 0xffff;
    std::size_t pc = hi >> 16;
    if (dw > max_data_words || pc != pointer_count || dw + pc > words_ - head_) return false;
    for (std::size_t i = 0; i < dw; ++i) {
      if ((Word(head_ + i) & ~masks[i]) != 0) return false;
    }
    if (dw > 0 && Word(head_ + dw - 1) == 0) return false;
    out->data = head_;
    out->data_words = dw;
    out->pointers = head_ + dw;
    head_ += dw + pc;
    return true;
  }

  // A list of bytes (Data) at the head, zero-padded to a whole word.
  bool Bytes(std::size_t at, ByteView* out) {
    std::uint64_t hi;
    if (!PointsAtHead(at, 1, &hi) || (hi & 7) != 2) return false;
    std::size_t count = hi >> 3;
    std::size_t words = (count + 7) / 8;
    if (words > words_ - head_) return false;
    const std::uint8_t* start = bytes_ + 8 * head_;
    for (std::size_t i = count; i < words * 8; ++i) {
      if (start[i] != 0) return false;
    }
    *out = ByteView(start, count);
    head_ += words;
    return true;
  }

  // Text: a list of bytes that ends in its only NUL; the view excludes the NUL.
  // (EncodeRecord cannot write a NUL inside a text; DecodeRecord refuses one.)
  bool Text(std::size_t at, std::string_view* out) {
    ByteView bytes;
    if (!Bytes(at, &bytes) || bytes.empty() || bytes.back() != 0) return false;
    *out = std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size() - 1);
    return out->find('\0') == std::string_view::npos;
  }

  // List(BindingClaim): a composite list whose tag says n elements of no data
  // and two Text pointers (an empty list has an all-zero tag), followed by each
  // element's two texts in element order.
  bool Claims(std::size_t at) {
    std::uint64_t hi;
    if (!PointsAtHead(at, 1, &hi) || (hi & 7) != 7) return false;
    std::size_t words = hi >> 3;
    if (head_ == words_ || words > words_ - head_ - 1) return false;
    std::uint64_t tag = Word(head_);
    std::size_t first = head_ + 1;
    head_ = first + words;
    if (words == 0) return tag == 0;
    std::uint64_t elements = (tag & 0xffffffff) >> 2;
    if ((tag & 3) != 0 || (tag >> 32) != (std::uint64_t{2} << 16) || elements * 2 != words) {
      return false;
    }
    std::string_view text;
    for (std::size_t e = 0; e < elements; ++e) {
      if (!Text(first + 2 * e, &text) || !Text(first + 2 * e + 1, &text)) return false;
    }
    return true;
  }

 private:
  // The pointer at word `at` (which lies before the head) has kind `kind` and
  // an offset that lands exactly on the head; `hi` gets its upper 32 bits.
  bool PointsAtHead(std::size_t at, std::uint64_t kind, std::uint64_t* hi) const {
    std::uint64_t w = Word(at);
    std::uint64_t expected = ((head_ - at - 1) << 2) | kind;
    if ((w & 0xffffffff) != expected) return false;
    *hi = w >> 32;
    return true;
  }

  const std::uint8_t* bytes_;
  std::size_t words_;
  std::size_t head_ = 1;  // word 0 is the root pointer
};

}  // namespace

std::optional<RecordView> ViewCanonicalRecord(ByteView bytes) {
  if (bytes.empty() || bytes.size() % 8 != 0 || bytes.size() > kMaxRecordBytes) {
    return std::nullopt;
  }
  Walker walker(bytes);
  StructAt root;
  if (!walker.Struct(0, 3, kRecordMasks, 4, &root)) return std::nullopt;
  RecordView view;
  if (root.data_words > 0) view.seq = walker.Word(root.data);
  if (root.data_words > 1) {
    view.recorded_at_ms = static_cast<std::int64_t>(walker.Word(root.data + 1));
  }
  if (root.data_words > 2) {
    view.event_type = static_cast<std::uint16_t>(walker.Word(root.data + 2));
  }
  if (view.event_type >= std::size(kEvents)) return std::nullopt;
  if (!walker.Bytes(root.pointers, &view.prev_hash) || view.prev_hash.size() != 32 ||
      !walker.Text(root.pointers + 1, &view.actor) ||
      !walker.Text(root.pointers + 2, &view.command_id)) {
    return std::nullopt;
  }
  const EventLayout& layout = kEvents[view.event_type];
  StructAt event;
  if (!walker.Struct(root.pointers + 3, layout.data_words, layout.data_masks, layout.pointer_count,
                     &event)) {
    return std::nullopt;
  }
  for (std::size_t i = 0; i < layout.pointer_count; ++i) {
    std::size_t at = event.pointers + i;
    bool ok = false;
    switch (layout.fields[i]) {
      case Field::kText: {
        std::string_view text;
        ok = walker.Text(at, &text);
        break;
      }
      case Field::kData: {
        ByteView data;
        ok = walker.Bytes(at, &data);
        break;
      }
      case Field::kClaims:
        ok = walker.Claims(at);
        break;
    }
    if (!ok) return std::nullopt;
  }
  if (!walker.AtEnd()) return std::nullopt;
  return view;
}

}  // namespace via::eventstore
