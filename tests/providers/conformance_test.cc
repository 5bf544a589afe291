// The provider conformance suite (docs/providers.md): the same lifecycle,
// ensure, credentials, snapshot/restore, repair and destroy checks run through
// commands/ against every provider of the build, each on its real storage. A
// Harness per provider reads and writes the add-on's data the way its apps
// would, and removes storage behind Via's back.

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string>

#include "commands/addon.h"
#include "commands/context.h"
#include "providers/registry.h"
#include "providers/sqlite/provider.h"
#include "testing.h"

#ifdef VIA_TEST_PG_PROVIDER
#include <fstream>
#include <optional>

#include "commands/provider.h"
#include "crypto/credentials.h"
#include "eventstore/postgres/pq.h"
#include "providers/postgres/provider.h"
#endif

using namespace via;

namespace {

// How a test reaches one provider's data, as an app would.
class Harness {
 public:
  virtual ~Harness() = default;
  virtual std::string Name() const = 0;
  // Writes `value` as the one row of table t (creating it when missing).
  virtual void Write(const commands::Context& ctx, const std::string& addon_id,
                     const std::string& value) = 0;
  // The value of that row, or "" when the table or row is missing.
  virtual std::string Read(const commands::Context& ctx, const std::string& addon_id) = 0;
  // Removes the add-on's storage behind Via's back.
  virtual void Remove(const commands::Context& ctx, const std::string& addon_id) = 0;
  // Registers the provider's server on a new home (nothing for SQLite).
  virtual void Setup(const commands::Context& ctx) { (void)ctx; }
  // Whether generation `generation` logs in to the storage directly, for a
  // provider whose apps connect directly (nullopt: the SQL proxy enforces it).
  virtual std::optional<bool> CanLogIn(const commands::Context& ctx, const std::string& addon_id,
                                       std::uint32_t generation) {
    (void)ctx, (void)addon_id, (void)generation;
    return std::nullopt;
  }
};

class SqliteHarness : public Harness {
 public:
  std::string Name() const override { return "sqlite"; }
  void Write(const commands::Context& ctx, const std::string& addon_id,
             const std::string& value) override {
    sqlite3* db = Open(ctx, addon_id);
    std::string sql = "CREATE TABLE IF NOT EXISTS t(v TEXT); DELETE FROM t; INSERT INTO t VALUES('" +
                      value + "');";
    char* error = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    std::string message = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
    INFO(message);
  }
  std::string Read(const commands::Context& ctx, const std::string& addon_id) override {
    sqlite3* db = Open(ctx, addon_id);
    std::string out;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT v FROM t", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return out;
  }
  void Remove(const commands::Context& ctx, const std::string& addon_id) override {
    std::filesystem::path db = providers::sqlite::DatabasePath(ctx.home, addon_id);
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(db.string() + suffix, ec);
    }
  }

 private:
  static sqlite3* Open(const commands::Context& ctx, const std::string& addon_id) {
    sqlite3* db = nullptr;
    const std::string path = providers::sqlite::DatabasePath(ctx.home, addon_id).string();
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    return db;
  }
};

#ifdef VIA_TEST_PG_PROVIDER
// The throwaway cluster of the ctest fixture "postgres" ($VIA_TEST_PG_DIR).
struct PgCluster {
  std::string url;       // postgresql://via@127.0.0.1:PORT/postgres
  std::string password;  // the superuser's
  static PgCluster Get() {
    const char* dir = std::getenv("VIA_TEST_PG_DIR");
    REQUIRE(dir != nullptr);  // ctest sets it (fixture "postgres"): never skipped
    PgCluster c;
    std::ifstream(std::filesystem::path(dir) / "url") >> c.url;
    std::string line;
    std::ifstream(std::filesystem::path(dir) / "pgpass") >> line;
    for (int i = 0; i < 4; ++i) line = line.substr(line.find(':') + 1);
    c.password = line;
    REQUIRE_FALSE(c.url.empty());
    REQUIRE_FALSE(c.password.empty());
    return c;
  }
};

class PostgresHarness : public Harness {
 public:
  std::string Name() const override { return "postgres"; }
  void Setup(const commands::Context& ctx) override {
    PgCluster c = PgCluster::Get();
    // Outside the home: a home is only made in an empty directory.
    std::filesystem::path file = secrets_.path() / "admin.password";
    std::ofstream(file) << c.password << "\n";
    auto added = commands::AddProvider(ctx, {"postgres", c.url, file.string()});
    INFO(added.status().ToString());
    REQUIRE(added.ok());
  }
  void Write(const commands::Context& ctx, const std::string& addon_id,
             const std::string& value) override {
    auto conn = AsOwner(ctx, addon_id);
    Status s = conn.Exec("CREATE TABLE IF NOT EXISTS t(v text); DELETE FROM t; INSERT INTO t VALUES ('" +
                         value + "')");
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
  std::string Read(const commands::Context& ctx, const std::string& addon_id) override {
    auto conn = AsOwner(ctx, addon_id);
    auto rows = conn.Query("SELECT v FROM t");
    if (!rows.ok() || rows->rows() == 0) return "";
    return std::string(rows->Text(0, 0));
  }
  void Remove(const commands::Context& ctx, const std::string& addon_id) override {
    auto admin = Admin(ctx, "");
    REQUIRE(admin.Exec("DROP DATABASE " + Db(ctx, addon_id) + " WITH (FORCE)").ok());
  }
  std::optional<bool> CanLogIn(const commands::Context& ctx, const std::string& addon_id,
                               std::uint32_t generation) override {
    auto report = commands::AddonStatus(ctx, addon_id);
    REQUIRE(report.ok());
    const GenerationState* g = nullptr;
    for (const auto& x : report->addon->generations) {
      if (x.number == generation) g = &x;
    }
    REQUIRE(g != nullptr);
    auto key = eventstore::ReadFile(ctx.home.credentials_key());
    REQUIRE(key.ok());
    Hash256 credential = crypto::DeriveCredential(*key, addon_id, generation, g->salt);
    auto cfg = providers::postgres::LoadConfig(ctx.home);
    REQUIRE(cfg.ok());
    std::string url = "postgresql://" + providers::postgres::RoleName(cfg->tag, addon_id, generation) +
                      ":" + providers::postgres::RolePassword(credential) + "@" + cfg->host + ":" +
                      std::to_string(cfg->port) + "/" + Db(ctx, addon_id);
    auto conn = eventstore::postgres::Conn::Connect(url, 5);
    return conn.ok() && conn->Query("SELECT 1").ok();
  }

 private:
  testing::TempDir secrets_;
  static std::string Db(const commands::Context& ctx, const std::string& addon_id) {
    auto cfg = providers::postgres::LoadConfig(ctx.home);
    REQUIRE(cfg.ok());
    return providers::postgres::DatabaseName(cfg->tag, addon_id);
  }
  static eventstore::postgres::Conn Admin(const commands::Context& ctx, const std::string& db) {
    auto cfg = providers::postgres::LoadConfig(ctx.home);
    REQUIRE(cfg.ok());
    auto password = providers::postgres::LoadPassword(ctx.home);
    REQUIRE(password.ok());
    auto conn = providers::postgres::ConnectAdmin(*cfg, *password, db, 5);
    INFO(conn.status().ToString());
    REQUIRE(conn.ok());
    return std::move(conn).value();
  }
  static eventstore::postgres::Conn AsOwner(const commands::Context& ctx, const std::string& addon_id) {
    auto cfg = providers::postgres::LoadConfig(ctx.home);
    REQUIRE(cfg.ok());
    auto conn = Admin(ctx, Db(ctx, addon_id));
    REQUIRE(conn.Exec("SET ROLE " + providers::postgres::OwnerRole(cfg->tag, addon_id)).ok());
    return conn;
  }
};
#endif

struct World {
  testing::TempDir dir;
  testing::FakeClock clock;
  testing::CountingIds ids;
  providers::Registry registry;
  std::unique_ptr<Harness> harness;
  commands::Context ctx;

  explicit World(std::unique_ptr<Harness> h) : harness(std::move(h)) {
    providers::sqlite::Register(registry);
#ifdef VIA_TEST_PG_PROVIDER
    providers::postgres::Register(registry);
#endif
    ctx.home = eventstore::Home{dir.path()};
    ctx.actor = "conformance";
    ctx.clock = &clock;
    ctx.ids = &ids;
    ctx.providers = &registry;
    harness->Setup(ctx);
  }
  std::string provider() const { return harness->Name(); }

  // Creates NAME for app api bound as DATABASE, with a release claiming it.
  std::string Create(const std::string& name) {
    auto created = commands::CreateAddon(ctx, {name, provider(), "api", "DATABASE"});
    REQUIRE(created.ok());
    REQUIRE(created->addon.has_value());
    REQUIRE(commands::CreateRelease(ctx, "api", "").ok());
    return created->addon->id;
  }
  Readiness Status(const std::string& name) {
    auto report = commands::AddonStatus(ctx, name);
    REQUIRE(report.ok());
    return report->readiness;
  }
};

std::unique_ptr<Harness> HarnessFor(const std::string& name) {
  if (name == "sqlite") return std::make_unique<SqliteHarness>();
#ifdef VIA_TEST_PG_PROVIDER
  if (name == "postgres") return std::make_unique<PostgresHarness>();
#endif
  FAIL("no harness for provider " << name);
  return nullptr;
}

// Every provider this suite covers (each needs its real storage running):
// built once per binary, providers_tests on SQLite and providers_pg_tests
// (VIA_TEST_PG_PROVIDER) on the throwaway PostgreSQL cluster as well.
#ifdef VIA_TEST_PG_PROVIDER
const char* const kProviders[] = {"postgres"};
#else
const char* const kProviders[] = {"sqlite"};
#endif

}  // namespace

TEST_CASE("conformance: lifecycle, readiness and data", "[providers][conformance]") {
  for (const char* name : kProviders) {
    DYNAMIC_SECTION(name) {
      World w(HarnessFor(name));
      std::string id = w.Create("app-db");
      Readiness r = w.Status("app-db");
      CHECK(r.usable_by_app);
      CHECK(r.storage_ready);
      w.harness->Write(w.ctx, id, "one");
      CHECK(w.harness->Read(w.ctx, id) == "one");
      // An unknown provider is refused before anything is appended.
      auto unknown = commands::CreateAddon(w.ctx, {"other", "redis", "api", ""});
      REQUIRE_FALSE(unknown.ok());
      CHECK(unknown.status().reason() == "unknown_provider");
      CHECK(unknown.status().message().find(name) != std::string::npos);
    }
  }
}

TEST_CASE("conformance: ensure is idempotent", "[providers][conformance]") {
  for (const char* name : kProviders) {
    DYNAMIC_SECTION(name) {
      World w(HarnessFor(name));
      commands::CreateRequest request{"app-db", name, "api", "DATABASE"};
      auto first = commands::EnsureAddon(w.ctx, request, false, false);
      REQUIRE(first.ok());
      CHECK(first->created);
      CHECK(first->changed);
      auto second = commands::EnsureAddon(w.ctx, request, false, false);
      REQUIRE(second.ok());
      CHECK_FALSE(second->created);
      CHECK_FALSE(second->changed);
      CHECK(second->already_exists);
      CHECK(second->addon->id == first->addon->id);
    }
  }
}

TEST_CASE("conformance: rotate and revoke", "[providers][conformance]") {
  for (const char* name : kProviders) {
    DYNAMIC_SECTION(name) {
      World w(HarnessFor(name));
      std::string id = w.Create("app-db");
      auto rotated = commands::RotateCredentials(w.ctx, "app-db");
      REQUIRE(rotated.ok());
      CHECK(rotated->generation == 2);
      CHECK(rotated->active == std::vector<std::uint32_t>{1, 2});
      if (auto direct = w.harness->CanLogIn(w.ctx, id, 1)) {
        // Both generations work until one is revoked (rotation without downtime).
        CHECK(*direct);
        CHECK(*w.harness->CanLogIn(w.ctx, id, 2));
      }
      auto revoked = commands::RevokeCredentials(w.ctx, "app-db", 1, false);
      REQUIRE(revoked.ok());
      CHECK(revoked->active == std::vector<std::uint32_t>{2});
      if (auto direct = w.harness->CanLogIn(w.ctx, id, 1)) {
        CHECK_FALSE(*direct);
        CHECK(*w.harness->CanLogIn(w.ctx, id, 2));
      }
      auto last = commands::RevokeCredentials(w.ctx, "app-db", 2, false);
      REQUIRE_FALSE(last.ok());
      CHECK(last.status().reason() == "last_active_generation");
      CHECK(w.Status("app-db").usable_by_app);
    }
  }
}

TEST_CASE("conformance: snapshot, restore and its undo", "[providers][conformance]") {
  for (const char* name : kProviders) {
    DYNAMIC_SECTION(name) {
      World w(HarnessFor(name));
      std::string id = w.Create("app-db");
      w.harness->Write(w.ctx, id, "before");
      auto snap = commands::SnapshotAddon(w.ctx, "app-db", "");
      REQUIRE(snap.ok());
      CHECK(snap->status == SnapshotStatus::kTaken);
      CHECK(snap->sha256.size() == 32);
      providers::Environment env;
      env.home = w.ctx.home;
      CHECK(std::filesystem::exists(w.registry.Make(name, env)->get()->SnapshotPath(id, snap->id)));
      w.harness->Write(w.ctx, id, "after");
      auto restored = commands::RestoreAddon(w.ctx, "app-db", snap->id);
      REQUIRE(restored.ok());
      CHECK(w.harness->Read(w.ctx, id) == "before");
      CHECK(w.Status("app-db").usable_by_app);
      // The safety snapshot undoes it.
      REQUIRE(commands::RestoreAddon(w.ctx, "app-db", restored->safety_snapshot_id).ok());
      CHECK(w.harness->Read(w.ctx, id) == "after");
    }
  }
}

TEST_CASE("conformance: storage removed behind Via's back, then repaired", "[providers][conformance]") {
  for (const char* name : kProviders) {
    DYNAMIC_SECTION(name) {
      World w(HarnessFor(name));
      std::string id = w.Create("app-db");
      w.harness->Write(w.ctx, id, "kept");
      REQUIRE(commands::SnapshotAddon(w.ctx, "app-db", "").ok());
      REQUIRE(commands::VerifySnapshots(w.ctx, "app-db", "").ok());
      w.harness->Remove(w.ctx, id);
      Readiness r = w.Status("app-db");
      CHECK(r.blocking == std::optional<std::string>("storage_missing"));
      CHECK(r.remediation == "via addon ensure " + std::string(name) + " app-db --app api --repair");
      auto repaired = commands::EnsureAddon(w.ctx, {"app-db", name, "api", "DATABASE"}, true, false);
      REQUIRE(repaired.ok());
      CHECK_FALSE(repaired->restored_from.empty());
      CHECK(w.harness->Read(w.ctx, id) == "kept");
      CHECK(w.Status("app-db").usable_by_app);
    }
  }
}

TEST_CASE("conformance: destroy refuses while bound, then leaves a tombstone", "[providers][conformance]") {
  for (const char* name : kProviders) {
    DYNAMIC_SECTION(name) {
      World w(HarnessFor(name));
      std::string id = w.Create("app-db");
      w.harness->Write(w.ctx, id, "kept");
      auto refused = commands::DestroyAddon(w.ctx, "app-db");
      REQUIRE_FALSE(refused.ok());
      CHECK(refused.status().reason() == "addon_bound");
      REQUIRE(commands::UnbindAddon(w.ctx, "app-db", "api", "DATABASE").ok());
      auto destroyed = commands::DestroyAddon(w.ctx, "app-db", /*force=*/true);
      REQUIRE(destroyed.ok());
      CHECK(destroyed->tombstone_name == "app-db#destroyed#" + id);
      CHECK(w.Status(id).blocking == std::optional<std::string>("addon_destroyed"));
      if (auto direct = w.harness->CanLogIn(w.ctx, id, 1)) CHECK_FALSE(*direct);
      // The name is free again: a new incarnation with its own storage.
      auto again = commands::CreateAddon(w.ctx, {"app-db", name, "api", "DATABASE"});
      REQUIRE(again.ok());
      CHECK(again->addon->id != id);
      auto history = commands::AddonHistory(w.ctx, "app-db");
      REQUIRE(history.ok());
      CHECK(history->size() == 2);
    }
  }
}
