#pragma once

// The PostgreSQL provider (docs/providers.md): each add-on is a database on a
// server the operator registered once (`via provider add postgres`), and each
// credential generation is a login role whose password is derived like the
// SQLite credentials (HMAC of keys/credentials.key, the add-on id, the
// generation and its salt): never stored, never logged. Apps connect directly
// with the descriptor's url; the SQL proxy does not serve these add-ons.
//
// On the server, for add-on ad_X:
//   database  via_<tag>_ad_x      owned by the group role via_<tag>_ad_x_owner (NOLOGIN)
//   roles     …_ad_x_g1, _g2 …    LOGIN, members of the owner role, whose
//                                 sessions run as it (ALTER ROLE … SET role), so
//                                 every generation sees and owns the same tables
// Revoking a generation sets NOLOGIN and terminates its open sessions.
//
// The server's address and admin user live in keys/providers/postgres.conf,
// the admin password in keys/providers/postgres.password (both 0600); the log
// records ProviderConfigured with the address, user and the password's
// fingerprint only.

#include <cstdint>
#include <filesystem>
#include <string>

#include "eventstore/postgres/pq.h"
#include "providers/provider.h"
#include "providers/registry.h"

namespace via::providers::postgres {

inline constexpr const char* kName = "postgres";

struct ServerConfig {
  std::string host;
  std::uint32_t port = 5432;
  std::string user;
  std::string database;  // the admin connection's database
  // Random, made at the first registration and kept by later ones: names
  // on the server carry it, so that homes sharing a server never collide.
  std::string tag;
  bool operator==(const ServerConfig&) const = default;
};

// postgresql://USER@HOST[:PORT]/DB. Errors: InvalidArgument "bad_admin_url"
// (including a URL that carries a password: it goes in --password-file).
Result<ServerConfig> ParseAdminUrl(const std::string& url);

std::filesystem::path ConfigPath(const eventstore::Home& home);
std::filesystem::path PasswordPath(const eventstore::Home& home);

// The registered server. Errors: FailedPrecondition "provider_not_configured"
// (with the `via provider add` remediation) when it was never registered.
Result<ServerConfig> LoadConfig(const eventstore::Home& home);
Result<std::string> LoadPassword(const eventstore::Home& home);

// Connects as the admin user to `database` ("" = the configured one).
// Errors: Unavailable "storage_unreachable" (the server does not answer),
// FailedPrecondition "admin_auth_failed" (the password was refused).
Result<eventstore::postgres::Conn> ConnectAdmin(const ServerConfig& config,
                                                const std::string& password,
                                                const std::string& database, int timeout_s);

// Checks that the server answers and accepts the admin password, then writes
// the two files under keys/providers/ (0600). Nothing is written when the
// check fails. Returns the settings and the password's fingerprint.
struct Registration {
  ServerConfig config;
  Bytes fingerprint;  // HMAC-SHA256(credentials.key, "via-provider-secret-v1" || password)
};
Result<Registration> RegisterServer(const eventstore::Home& home, const std::string& admin_url,
                                    const std::string& password);

// Names on the server (lower case: PostgreSQL folds unquoted names):
// via_<tag>_<addon id>, its _owner role and _g<N> login roles.
std::string DatabaseName(const std::string& tag, const std::string& addon_id);
std::string OwnerRole(const std::string& tag, const std::string& addon_id);
std::string RoleName(const std::string& tag, const std::string& addon_id, std::uint32_t generation);
// A generation's login password: base64url of its derived credential.
std::string RolePassword(const Hash256& credential);

// Adds the provider to `registry`.
void Register(Registry& registry);

class PostgresProvider final : public Provider {
 public:
  explicit PostgresProvider(Environment env) : env_(std::move(env)) {}

  std::string Name() const override { return kName; }
  StorageWords Words() const override {
    return {"database", "its database holds data"};
  }
  bool ProxiesSql() const override { return false; }
  StorageFact Probe(const std::string& addon_id, std::string* detail) const override;
  std::string StorageLocation(const std::string& addon_id) const override;
  std::filesystem::path SnapshotPath(const std::string& addon_id,
                                     const std::string& snapshot_id) const override;
  Result<DescriptorFields> Describe(const DescriptorInput& in) const override;

  Result<ProviderConfigured> Configure(const std::string& admin_url,
                                       const std::string& secret) override;
  Status Provision(const std::string& addon_id) override;
  Status EnsureGeneration(const std::string& addon_id, std::uint32_t generation) override;
  Status RevokeGeneration(const std::string& addon_id, std::uint32_t generation) override;
  Status Retire(const std::string& addon_id) override;

  Result<SnapshotTaken> Snapshot(const std::string& addon_id, const std::string& snapshot_id,
                                 const PhaseProgress& progress = nullptr) override;
  Result<SnapshotVerified> Verify(const std::string& addon_id, const std::string& snapshot_id,
                                  const PhaseProgress& progress = nullptr) override;
  Result<SnapshotVerified> CheckSnapshot(const std::string& addon_id,
                                         const std::string& snapshot_id,
                                         const PhaseProgress& progress = nullptr) override;
  Status RemoveSnapshotFile(const std::string& addon_id, const std::string& snapshot_id) override;
  Status Restore(const std::string& addon_id, const std::string& snapshot_id,
                 const std::string& safety_snapshot_id, bool verified = false,
                 const PhaseProgress& progress = nullptr) override;
  Result<bool> FinishSnapshot(const std::string& addon_id, const std::string& snapshot_id) override;
  Result<RepairOutcome> Repair(const std::string& addon_id, bool allow_empty = false) override;
  Result<RepairOutcome> FinishRepair(const State& state, const std::string& addon_id) override;
  Result<CheckOutcome> Check(const std::string& addon_id,
                             const std::string& command_id = "") override;

 private:
  Result<eventstore::postgres::Conn> Admin(const std::string& database = "") const;
  // The registered server's name tag ("" when none is registered: every
  // operation then fails on the missing configuration first).
  std::string Tag() const;
  Result<State> Current(const std::string& addon_id);
  Status Append(const std::string& command_id, std::vector<Event> events);
  // Creates the owner role, the database and the roles of `addon`'s active
  // generations; idempotent.
  Status EnsureDatabase(eventstore::postgres::Conn& admin, const AddonState& addon);
  Status EnsureRole(eventstore::postgres::Conn& admin, const AddonState& addon,
                    const GenerationState& generation);
  Result<Hash256> Credential(const AddonState& addon, const GenerationState& generation) const;

  Environment env_;
};

}  // namespace via::providers::postgres
