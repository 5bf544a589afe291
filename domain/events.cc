#include "domain/events.h"

#include <type_traits>

namespace via {
namespace {

template <typename T>
constexpr const char* NameOf() {
  if constexpr (std::is_same_v<T, LogInitialized>) return "LogInitialized";
  if constexpr (std::is_same_v<T, AddonCreated>) return "AddonCreated";
  if constexpr (std::is_same_v<T, StorageProvisioned>) return "StorageProvisioned";
  if constexpr (std::is_same_v<T, ProvisioningFailed>) return "ProvisioningFailed";
  if constexpr (std::is_same_v<T, AddonRenamed>) return "AddonRenamed";
  if constexpr (std::is_same_v<T, BindingAttached>) return "BindingAttached";
  if constexpr (std::is_same_v<T, BindingDetached>) return "BindingDetached";
  if constexpr (std::is_same_v<T, BindingSnapshotted>) return "BindingSnapshotted";
  if constexpr (std::is_same_v<T, GenerationRotated>) return "GenerationRotated";
  if constexpr (std::is_same_v<T, GenerationRevoked>) return "GenerationRevoked";
  if constexpr (std::is_same_v<T, SnapshotRequested>) return "SnapshotRequested";
  if constexpr (std::is_same_v<T, SnapshotTaken>) return "SnapshotTaken";
  if constexpr (std::is_same_v<T, SnapshotFailed>) return "SnapshotFailed";
  if constexpr (std::is_same_v<T, RestoreRequested>) return "RestoreRequested";
  if constexpr (std::is_same_v<T, SnapshotRestored>) return "SnapshotRestored";
  if constexpr (std::is_same_v<T, RestoreFailed>) return "RestoreFailed";
  if constexpr (std::is_same_v<T, StorageRepaired>) return "StorageRepaired";
  if constexpr (std::is_same_v<T, AddonDestroyed>) return "AddonDestroyed";
  if constexpr (std::is_same_v<T, WorkloadTokenIssued>) return "WorkloadTokenIssued";
  if constexpr (std::is_same_v<T, GenerationDelivered>) return "GenerationDelivered";
  if constexpr (std::is_same_v<T, RepairRequested>) return "RepairRequested";
  if constexpr (std::is_same_v<T, StorageChecked>) return "StorageChecked";
  if constexpr (std::is_same_v<T, SnapshotVerified>) return "SnapshotVerified";
  if constexpr (std::is_same_v<T, SnapshotDeleted>) return "SnapshotDeleted";
  if constexpr (std::is_same_v<T, SnapshotPolicySet>) return "SnapshotPolicySet";
  if constexpr (std::is_same_v<T, ProviderConfigured>) return "ProviderConfigured";
  if constexpr (std::is_same_v<T, NodeAnnounced>) return "NodeAnnounced";
  if constexpr (std::is_same_v<T, AddonPlaced>) return "AddonPlaced";
  if constexpr (std::is_same_v<T, OwnerWorkRequested>) return "OwnerWorkRequested";
  if constexpr (std::is_same_v<T, OwnerWorkFinished>) return "OwnerWorkFinished";
}

template <typename T>
concept HasAddonId = requires(const T& t) { t.addon_id; };
template <typename T>
concept HasApp = requires(const T& t) { t.app; };

}  // namespace

const char* EventTypeName(const Event& event) {
  return std::visit([](const auto& e) { return NameOf<std::decay_t<decltype(e)>>(); }, event);
}

std::string EventAddonId(const Event& event) {
  return std::visit(
      [](const auto& e) -> std::string {
        if constexpr (HasAddonId<std::decay_t<decltype(e)>>) return e.addon_id;
        return {};
      },
      event);
}

std::string EventApp(const Event& event) {
  return std::visit(
      [](const auto& e) -> std::string {
        if constexpr (HasApp<std::decay_t<decltype(e)>>) return e.app;
        return {};
      },
      event);
}

}  // namespace via
