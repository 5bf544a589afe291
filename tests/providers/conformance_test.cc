// The provider conformance suite (docs/providers.md): the same lifecycle,
// ensure, credentials, snapshot/restore, repair and destroy checks run through
// commands/ against every provider of the build, each on its real storage. A
// Harness per provider reads and writes the add-on's data the way its apps
// would, and removes storage behind Via's back.

#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

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

  // Real situations behind Via's back (the blockers test). Each returns ""
  // once the situation is in place, or why this provider can never be in
  // it (the test prints that and checks nothing else).
  //
  // The storage exists but cannot be read, for a reason only the platform
  // can fix; `FixUnreadable` is that fix.
  virtual std::string MakeUnreadable(const commands::Context& ctx, const std::string& addon_id) = 0;
  virtual void FixUnreadable(const commands::Context& ctx, const std::string& addon_id) = 0;
  // Damage in the live data that the probe does not see and a full check
  // (`via addon check`) finds.
  virtual std::string Corrupt(const commands::Context& ctx, const std::string& addon_id) = 0;
  // The logins of the add-on's generations taken away on the server.
  virtual std::string BreakLogins(const commands::Context& ctx, const std::string& addon_id) {
    (void)ctx, (void)addon_id;
    return "no logins to take: the SQL proxy checks credentials from the log, and nothing "
           "outside Via holds them";
  }
  // The server holding the storage stops, and starts again.
  virtual std::string StopServer() {
    return "no server: the storage is a file under the home";
  }
  virtual void StartServer() {}
  // The admin password changes on the server; `Reregister` is the
  // operator's `via provider add` with the new one.
  virtual std::string ChangeAdminPassword() {
    return "no admin secret: the provider needs no registration";
  }
  virtual void Reregister(const commands::Context& ctx) { (void)ctx; }
  // Creates NAME (app api, binding DATABASE) so that provisioning fails for
  // real; returns "" or why it cannot; `FixProvisioning` removes the cause.
  virtual std::string CreateFailing(commands::Context& ctx, testing::CountingIds& ids,
                                    const std::string& name) = 0;
  virtual void FixProvisioning() {}
  // Crash points (VIA_CRASH_AT) of this provider's restore.
  virtual std::string RestoreCrashPoint() const = 0;
  // Enough data that copying it takes several steps (a crash point "during"
  // a copy is reached: SQLite copies 1024 pages a step, so over 4 MiB).
  virtual void Fill(const commands::Context& ctx, const std::string& addon_id) {
    (void)ctx, (void)addon_id;
  }
};

// A command line of the real `via` on a home, its output and exit code.
testing::CommandResult RunVia(const std::filesystem::path& home, const std::string& args,
                              const std::string& env = "") {
  return testing::Run(env + (env.empty() ? "" : " ") + testing::ViaBinary() + " --home '" +
                      home.string() + "' " + args + " </dev/null");
}

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
  // A directory where the file should be (chmod would not stop root).
  std::string MakeUnreadable(const commands::Context& ctx, const std::string& addon_id) override {
    Remove(ctx, addon_id);
    std::filesystem::create_directory(providers::sqlite::DatabasePath(ctx.home, addon_id));
    return "";
  }
  void FixUnreadable(const commands::Context& ctx, const std::string& addon_id) override {
    std::filesystem::remove(providers::sqlite::DatabasePath(ctx.home, addon_id));
  }
  // Pages of a table overwritten with junk: the header and schema (what the
  // probe reads) stay intact, integrity_check finds the damage.
  std::string Corrupt(const commands::Context& ctx, const std::string& addon_id) override {
    sqlite3* db = Open(ctx, addon_id);
    REQUIRE(sqlite3_exec(db,
                         "CREATE TABLE filler(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT "
                         "i+1 FROM c WHERE i<2000) INSERT INTO filler SELECT randomblob(100) FROM c;",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    const auto path = providers::sqlite::DatabasePath(ctx.home, addon_id);
    REQUIRE(std::filesystem::file_size(path) > 3 * 4096);
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(4096);
    const std::string junk(4096 * 2, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    return "";
  }
  // The path of the new add-on's file taken by a directory: ids come from
  // the test's counting ids, so the next few are known before the create.
  std::string CreateFailing(commands::Context& ctx, testing::CountingIds& ids,
                            const std::string& name) override {
    testing::CountingIds peek = ids;
    std::set<std::string> next;
    for (int i = 0; i < 3; ++i) {
      next.insert(peek.NewId("ad_"));
      std::filesystem::create_directories(providers::sqlite::DatabasePath(ctx.home, *next.rbegin()));
    }
    auto created = commands::CreateAddon(ctx, {name, "sqlite", "api", "DATABASE"});
    INFO(created.status().ToString());
    REQUIRE(created.ok());
    REQUIRE(created->addon.has_value());
    REQUIRE(next.count(created->addon->id) == 1);
    return "";
  }
  std::string RestoreCrashPoint() const override { return "restore.before_file"; }
  void Fill(const commands::Context& ctx, const std::string& addon_id) override {
    sqlite3* db = Open(ctx, addon_id);
    REQUIRE(sqlite3_exec(db,
                         "CREATE TABLE IF NOT EXISTS bulk(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION "
                         "ALL SELECT i+1 FROM c WHERE i<4000) INSERT INTO bulk SELECT randomblob(2500) FROM c;",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
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

// A PostgreSQL cluster of one test's own (tools/pg_cluster.sh), for the
// situations that stop, restart or damage the server: the fixture's cluster
// is shared by every test running at the same time.
class OwnCluster {
 public:
  OwnCluster() {
    // The cluster's owner (not root) must reach the folder.
    ::chmod(dir_.path().c_str(), 0755);
    auto started = testing::Run(Script() + " start '" + Dir() + "' 2>&1");
    INFO(started.out);
    REQUIRE(started.exit_code == 0);
    std::ifstream(dir_.path() / "pg" / "url") >> cluster_.url;
    std::ifstream(dir_.path() / "pg" / "port") >> port_;
    std::string line;
    std::ifstream(dir_.path() / "pg" / "pgpass") >> line;
    for (int i = 0; i < 4; ++i) line = line.substr(line.find(':') + 1);
    cluster_.password = line;
    REQUIRE_FALSE(cluster_.url.empty());
  }
  ~OwnCluster() { testing::Run(Script() + " stop '" + Dir() + "' >/dev/null 2>&1"); }
  const PgCluster& cluster() const { return cluster_; }
  std::string Dir() const { return (dir_.path() / "pg").string(); }
  void Stop() {
    auto r = testing::Run(AsOwner("pg_ctl -D '" + Dir() + "/data' -m fast -w -t 60 stop") + " 2>&1");
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
  }
  void Start() {
    auto r = testing::Run(AsOwner("pg_ctl -D '" + Dir() + "/data' -l '" + Dir() +
                                  "/data/server.log' -w -t 60 -o \"-c listen_addresses=127.0.0.1 -c port=" +
                                  port_ + " -c unix_socket_directories=" + Dir() +
                                  "/socket -c fsync=off\" start") +
                          " 2>&1");
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
  }
  // SQL as the cluster's superuser, with psql.
  testing::CommandResult Sql(const std::string& db, const std::string& sql) const {
    std::string url = cluster_.url.substr(0, cluster_.url.rfind('/') + 1) + db;
    return testing::Run("PGPASSWORD='" + cluster_.password + "' PGCONNECT_TIMEOUT=5 psql -X -q -t -A '" +
                        url + "' -v ON_ERROR_STOP=1 -c \"" + sql + "\" 2>&1");
  }
  void SetPassword(const std::string& password) {
    auto r = Sql("postgres", "ALTER ROLE via PASSWORD '" + password + "'");
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
    cluster_.password = password;
  }

 private:
  static std::string Script() { return std::string(VIA_SOURCE_DIR) + "/tools/pg_cluster.sh"; }
  static std::string AsOwner(const std::string& command) {
    const std::string bin = "cd / && ";
    return bin + (::geteuid() == 0 ? "runuser -u via-pg-test -- " : "") +
           "/usr/lib/postgresql/15/bin/" + command;
  }
  testing::TempDir dir_;
  PgCluster cluster_;
  std::string port_;
};

class PostgresHarness : public Harness {
 public:
  // `own_server`: on a cluster of its own rather than the fixture's.
  explicit PostgresHarness(bool own_server = false) {
    if (own_server) own_.emplace();
  }
  std::string Name() const override { return "postgres"; }
  void Setup(const commands::Context& ctx) override {
    PgCluster c = own_ ? own_->cluster() : PgCluster::Get();
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

  // The database stops taking connections (ALTER DATABASE … ALLOW_CONNECTIONS
  // false, as a DBA might); only the server's administrator turns it back.
  std::string MakeUnreadable(const commands::Context& ctx, const std::string& addon_id) override {
    REQUIRE(Admin(ctx, "").Exec("ALTER DATABASE " + Db(ctx, addon_id) + " WITH ALLOW_CONNECTIONS false").ok());
    return "";
  }
  void FixUnreadable(const commands::Context& ctx, const std::string& addon_id) override {
    REQUIRE(Admin(ctx, "").Exec("ALTER DATABASE " + Db(ctx, addon_id) + " WITH ALLOW_CONNECTIONS true").ok());
  }
  // A page of table t overwritten with junk while the server is stopped (so
  // that no cached copy hides it): the catalogs (what the probe reads) are
  // intact, reading the table fails.
  std::string Corrupt(const commands::Context& ctx, const std::string& addon_id) override {
    REQUIRE(own_.has_value());
    std::string file;
    {
      auto conn = AsOwner(ctx, addon_id);
      auto rows = conn.Query("SELECT pg_relation_filepath('t')");
      REQUIRE(rows.ok());
      file = std::string(rows->Text(0, 0));
    }
    own_->Stop();
    const auto path = std::filesystem::path(own_->Dir()) / "data" / file;
    REQUIRE(std::filesystem::file_size(path) >= 8192);
    {
      std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
      const std::string junk(8192, '\x5a');
      f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    own_->Start();
    return "";
  }
  // Someone takes the logins away on the server.
  std::string BreakLogins(const commands::Context& ctx, const std::string& addon_id) override {
    auto admin = Admin(ctx, "");
    auto cfg = providers::postgres::LoadConfig(ctx.home);
    REQUIRE(cfg.ok());
    REQUIRE(admin.Exec("ALTER ROLE " + providers::postgres::RoleName(cfg->tag, addon_id, 1) + " NOLOGIN").ok());
    return "";
  }
  std::string StopServer() override {
    REQUIRE(own_.has_value());
    own_->Stop();
    return "";
  }
  void StartServer() override { own_->Start(); }
  std::string ChangeAdminPassword() override {
    REQUIRE(own_.has_value());
    own_->SetPassword("changed-" + std::to_string(::getpid()));
    return "";
  }
  // `via provider add` again with the new password, through the real `via`.
  void Reregister(const commands::Context& ctx) override {
    std::filesystem::path file = secrets_.path() / "admin.password";
    std::ofstream(file, std::ios::trunc) << own_->cluster().password << "\n";
    auto r = RunVia(ctx.home.root, "provider add postgres --admin-url " + own_->cluster().url +
                                       " --password-file " + file.string());
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
  }
  // The registered server is stopped when the add-on is created.
  std::string CreateFailing(commands::Context& ctx, testing::CountingIds& ids,
                            const std::string& name) override {
    (void)ids;
    REQUIRE(own_.has_value());
    own_->Stop();
    auto r = RunVia(ctx.home.root, "addon create postgres " + name + " --app api --bind DATABASE");
    INFO(r.out);
    REQUIRE(r.exit_code == 3);
    return "";
  }
  void FixProvisioning() override { own_->Start(); }
  std::string RestoreCrashPoint() const override { return "restore.before_swap"; }
  OwnCluster& own() { return *own_; }

 private:
  std::optional<OwnCluster> own_;
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

// `own_server`: a provider with a server gets one of its own (the test
// stops, restarts or damages it).
std::unique_ptr<Harness> HarnessFor(const std::string& name, bool own_server = false) {
  if (name == "sqlite") return std::make_unique<SqliteHarness>();
#ifdef VIA_TEST_PG_PROVIDER
  if (name == "postgres") return std::make_unique<PostgresHarness>(own_server);
#else
  (void)own_server;
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

// ---------------------------------------------------------------------------
// Every blocker a provider can report, from a real situation, through the
// real `via`: the readiness code, its owner and reason, then the printed
// remediation pasted (or, when it is null, the owner's own fix) until the
// add-on is usable, with the data where it should be. Blockers that no
// provider decides (addon_not_found, binding_missing, binding_conflict,
// unknown_provider) come from the log alone: tests/cli/remediation_walker_test.cc.

namespace {

using nlohmann::json;

json ViaJson(const std::filesystem::path& home, const std::string& args, int* exit_code = nullptr) {
  auto r = RunVia(home, "--json " + args);
  INFO("via " << args << " -> " << r.exit_code << "\n" << r.out);
  if (exit_code) *exit_code = r.exit_code;
  json j = json::parse(r.out.empty() ? "null" : r.out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

void MustVia(const std::filesystem::path& home, const std::string& args, const std::string& env = "") {
  auto r = RunVia(home, args, env);
  INFO("via " << args << "\n" << r.out);
  REQUIRE(r.exit_code == 0);
}

struct Situation {
  std::string name;
  // The blocker `via addon status` must report first, its owner, and a
  // piece of its reason.
  std::string blocker;
  std::string owner;
  std::string reason_has;
  // Brings it about on add-on app-db (id given; it holds "kept" and a
  // verified snapshot of it unless `bare`); returns "" or why the provider
  // can never be in it.
  std::function<std::string(World&, const std::string& id)> make;
  // The codes met on the way to usable, first to last (remediations pasted,
  // refusals followed).
  std::vector<std::string> chain;
  // The owner's own fix where the remediation is null (none: the walk must
  // not meet a null remediation).
  std::function<void(World&, const std::string& id)> fix = nullptr;
  // The data the app sees at the end ("" when storage came back empty).
  std::string data = "kept";
  bool own_server = false;  // a provider with a server gets one of its own
  bool bare = false;        // no data and no snapshot before the situation
};

// `status`, then the remediations pasted through `via` (refusals followed,
// the situation looked at again after each success), until usable. Returns
// the codes met.
std::vector<std::string> Walk(World& w, const Situation& sit, const std::string& target) {
  const auto home = w.dir.path();
  std::vector<std::string> codes;
  bool fixed = false;
  json doc = ViaJson(home, "addon status " + target);
  for (int steps = 0;; ++steps) {
    INFO("document: " << doc.dump());
    REQUIRE(steps <= 5);
    std::string code;
    json remediation;
    std::string owner;
    if (doc.contains("error")) {
      code = doc["error"]["code"];
      remediation = doc["error"].value("remediation", json(nullptr));
      owner = doc["error"].value("owner", json(nullptr)).is_string() ? doc["error"]["owner"].get<std::string>() : "";
    } else if (doc["usable_by_app"] == false) {
      code = doc["blocking"];
      remediation = doc["remediation"];
      owner = doc["owner"].is_string() ? doc["owner"].get<std::string>() : "";
    } else {
      break;
    }
    codes.push_back(code);
    if (remediation.is_null()) {
      // Someone must decide, and the document says who.
      CHECK_FALSE(owner.empty());
      REQUIRE(sit.fix != nullptr);
      REQUIRE_FALSE(fixed);
      sit.fix(w, doc.contains("addon") ? doc["addon"]["id"].get<std::string>() : target);
      fixed = true;
      doc = ViaJson(home, "addon status " + target);
      continue;
    }
    const std::string fix = remediation.get<std::string>();
    INFO("remediation: " << fix);
    REQUIRE(fix.rfind("via ", 0) == 0);
    CHECK(fix.find('<') == std::string::npos);
    json out = ViaJson(home, "--yes " + fix.substr(4));
    doc = out.is_object() && out.contains("error") ? out : ViaJson(home, "addon status " + target);
  }
  return codes;
}

std::vector<Situation> Situations(const std::string& provider) {
  std::vector<Situation> all;
  all.push_back({"storage removed, no snapshot: recreated empty", "storage_missing", "operator",
                 "is missing",
                 [](World& w, const std::string& id) {
                   w.harness->Remove(w.ctx, id);
                   return std::string();
                 },
                 {"storage_missing"}, nullptr, "", false, /*bare=*/true});
  all.push_back({"storage removed, a verified snapshot: restored", "storage_missing", "operator",
                 "is missing",
                 [](World& w, const std::string& id) {
                   w.harness->Remove(w.ctx, id);
                   return std::string();
                 },
                 {"storage_missing"}});
  all.push_back({"storage removed, its snapshot damaged: empty only when accepted", "storage_missing",
                 "operator", "is missing",
                 [](World& w, const std::string& id) {
                   for (const auto& f : std::filesystem::directory_iterator(w.dir.path() / "snapshots" / id)) {
                     std::ofstream(f.path(), std::ios::app | std::ios::binary) << "tampered";
                   }
                   w.harness->Remove(w.ctx, id);
                   return std::string();
                 },
                 {"storage_missing", "repair_needs_allow_empty"}, nullptr, ""});
  all.push_back({"storage removed, its snapshot file gone: empty only when accepted", "storage_missing",
                 "operator", "is missing",
                 [](World& w, const std::string& id) {
                   std::filesystem::remove_all(w.dir.path() / "snapshots" / id);
                   w.harness->Remove(w.ctx, id);
                   return std::string();
                 },
                 {"storage_missing", "repair_needs_allow_empty"}, nullptr, ""});
  all.push_back({"storage that cannot be read", "storage_unreadable", "platform", "cannot be read",
                 [](World& w, const std::string& id) { return w.harness->MakeUnreadable(w.ctx, id); },
                 {"storage_unreadable"},
                 [](World& w, const std::string& id) { w.harness->FixUnreadable(w.ctx, id); }});
  if (provider == "sqlite") {
    // The file's place is freed, so the file is now missing: the repair
    // named in the reason brings back the snapshot.
    all.back().chain = {"storage_unreadable", "storage_missing"};
  }
  all.push_back({"damage found by a full check: put aside, the snapshot restored", "storage_corrupt",
                 "operator", "found damage",
                 [](World& w, const std::string& id) {
                   std::string cannot = w.harness->Corrupt(w.ctx, id);
                   if (!cannot.empty()) return cannot;
                   auto r = RunVia(w.dir.path(), "addon check app-db");
                   INFO(r.out);
                   CHECK(r.exit_code == 3);
                   return std::string();
                 },
                 {"storage_corrupt"}, nullptr, "kept", /*own_server=*/true});
  all.push_back({"logins taken away on the server", "storage_corrupt", "operator", "behind Via's back",
                 [](World& w, const std::string& id) { return w.harness->BreakLogins(w.ctx, id); },
                 {"storage_corrupt"}});
  all.push_back({"the server stopped", "storage_unreachable", "platform", "does not answer",
                 [](World& w, const std::string&) { return w.harness->StopServer(); },
                 {"storage_unreachable"},
                 [](World& w, const std::string&) { w.harness->StartServer(); }, "kept", true});
  all.push_back({"the admin password changed on the server", "storage_unreachable", "platform",
                 "refused the admin password",
                 [](World& w, const std::string&) { return w.harness->ChangeAdminPassword(); },
                 {"storage_unreachable"},
                 [](World& w, const std::string&) { w.harness->Reregister(w.ctx); }, "kept", true});
  all.push_back({"a restore cut off by kill -9", "restore_in_progress", "operator", "in progress",
                 [](World& w, const std::string& id) {
                   (void)id;
                   json list = ViaJson(w.dir.path(), "addon snapshots app-db")["snapshots"];
                   REQUIRE(list.is_array());
                   REQUIRE_FALSE(list.empty());
                   const std::string sn = list[0]["id"];
                   w.harness->Write(w.ctx, id, "changed");
                   auto r = RunVia(w.dir.path(), "--yes addon restore app-db --snapshot " + sn,
                                   "VIA_CRASH_AT=" + w.harness->RestoreCrashPoint());
                   CHECK(r.exit_code == 137);
                   return std::string();
                 },
                 {"restore_in_progress"}});
  all.push_back({"every generation revoked", "no_active_generation", "security", "is revoked",
                 [](World& w, const std::string&) {
                   MustVia(w.dir.path(), "addon revoke-credentials app-db --generation 1 --force");
                   return std::string();
                 },
                 {"no_active_generation"}});
  all.push_back({"the credentials key gone", "credentials_key_missing", "security", "credentials.key",
                 [](World& w, const std::string&) {
                   const auto key = w.ctx.home.credentials_key();
                   std::filesystem::rename(key, key.string() + ".backup");
                   return std::string();
                 },
                 {"credentials_key_missing"},
                 [](World& w, const std::string&) {
                   // Put back from the operator's backup.
                   const auto key = w.ctx.home.credentials_key();
                   std::filesystem::rename(key.string() + ".backup", key);
                 }});
  all.push_back({"destroyed: created again", "addon_destroyed", "operator", "was destroyed",
                 [](World& w, const std::string&) {
                   MustVia(w.dir.path(), "addon unbind app-db --app api --bind DATABASE");
                   MustVia(w.dir.path(), "release create --app api");
                   MustVia(w.dir.path(), "--yes addon destroy app-db");
                   return std::string();
                 },
                 {"addon_destroyed", "release_claim_missing"}, nullptr, ""});
  return all;
}

}  // namespace

TEST_CASE("conformance: every blocker from a real situation, remediated through via",
          "[providers][conformance][blockers]") {
  for (const char* name : kProviders) {
    for (const Situation& sit : Situations(name)) {
      DYNAMIC_SECTION(name << ": " << sit.name) {
        World w(HarnessFor(name, sit.own_server));
        const auto home = w.dir.path();
        MustVia(home, "addon create " + std::string(name) + " app-db --app api --bind DATABASE");
        MustVia(home, "release create --app api");
        const std::string id = ViaJson(home, "addon status app-db")["addon"]["id"];
        if (!sit.bare) {
          w.harness->Write(w.ctx, id, "kept");
          MustVia(home, "addon snapshot app-db");
          MustVia(home, "addon snapshots verify app-db");
        }
        const std::string cannot = sit.make(w, id);
        if (!cannot.empty()) {
          // Said in the test's output: this provider can never be here.
          WARN(name << " cannot be in \"" << sit.name << "\": " << cannot);
          continue;
        }
        const auto start = std::chrono::steady_clock::now();
        int exit_code = 0;
        json doc = ViaJson(home, "addon status app-db", &exit_code);
        // Whatever the situation, status answers quickly (a stopped server
        // costs one bounded connection attempt).
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
        INFO(doc.dump());
        CHECK(exit_code == 3);
        CHECK(doc["blocking"] == sit.blocker);
        CHECK(doc["owner"] == sit.owner);
        CHECK(doc["reason"].get<std::string>().find(sit.reason_has) != std::string::npos);
        std::vector<std::string> codes = Walk(w, sit, "app-db");
        CHECK(codes == sit.chain);
        json end = ViaJson(home, "addon status app-db");
        CHECK(end["usable_by_app"] == true);
        const std::string now = end["addon"]["id"];
        CHECK(w.harness->Read(w.ctx, now) == sit.data);
        CHECK(RunVia(home, "audit verify").exit_code == 0);
      }
    }
  }
}

TEST_CASE("conformance: provisioning that fails for real, then created again",
          "[providers][conformance][blockers]") {
  for (const char* name : kProviders) {
    DYNAMIC_SECTION(name) {
      World w(HarnessFor(name, /*own_server=*/true));
      const auto home = w.dir.path();
      REQUIRE(w.harness->CreateFailing(w.ctx, w.ids, "app-db").empty());
      int exit_code = 0;
      json doc = ViaJson(home, "addon status app-db", &exit_code);
      INFO(doc.dump());
      CHECK(exit_code == 3);
      CHECK(doc["blocking"] == "provisioning_failed");
      CHECK(doc["owner"] == "operator");
      const std::string failed = doc["addon"]["id"];
      // Nothing was made, so the name is free: the remediation creates it again.
      CHECK(doc["remediation"] == "via addon create " + std::string(name) + " app-db --app api --bind DATABASE");
      w.harness->FixProvisioning();
      Situation sit;
      sit.name = "provisioning failed";
      std::vector<std::string> codes = Walk(w, sit, "app-db");
      CHECK(codes == std::vector<std::string>{"provisioning_failed", "release_claim_missing"});
      json end = ViaJson(home, "addon status app-db");
      CHECK(end["usable_by_app"] == true);
      CHECK(end["addon"]["id"] != failed);
      w.harness->Write(w.ctx, end["addon"]["id"], "new");
      CHECK(w.harness->Read(w.ctx, end["addon"]["id"]) == "new");
      CHECK(RunVia(home, "audit verify").exit_code == 0);
    }
  }
}

// ---------------------------------------------------------------------------
// Every crash point of every provider: the real `via` killed there by
// SIGKILL (VIA_CRASH_AT, builds with test hooks), then `via recover`, then
// the end state: the add-on usable, the snapshot taken or failed as
// designed, no completion appended twice, the log verified, and a second
// recover changing nothing.

namespace {

// How many records of `type` the log holds (for `addon`, when given).
int CountEvents(const std::filesystem::path& home, const std::string& type, const std::string& about = "") {
  auto r = RunVia(home, "--json audit log");
  REQUIRE(r.exit_code == 0);
  int n = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || j["type"] != type) continue;
    if (!about.empty() && j.dump().find(about) == std::string::npos) continue;
    ++n;
  }
  return n;
}

// What the killed command was doing.
// kRepairDamaged: the repair of storage that a full check found damaged
// (the probe alone does not see the damage).
enum class Op { kCreate, kSnapshot, kVerify, kDelete, kImport, kRestore, kRepair, kRepairDamaged };

struct CrashCase {
  std::string provider;
  std::string point;
  Op op;
  // What `via recover` reports for it: the intent's kind and action ("" when
  // the crash left no intent: the work is recorded after the fact).
  std::string kind;
  std::string action;
};

std::vector<CrashCase> CrashCases(const std::string& provider) {
  if (provider == "sqlite") {
    return {
        {provider, "provision.before_file", Op::kCreate, "provisioning", "finished"},
        {provider, "provision.after_file", Op::kCreate, "provisioning", "finished"},
        {provider, "snapshot.before_file", Op::kSnapshot, "snapshot", "failed"},
        {provider, "snapshot.during_file", Op::kSnapshot, "snapshot", "failed"},
        {provider, "snapshot.after_file", Op::kSnapshot, "snapshot", "finished"},
        {provider, "verify.before_check", Op::kVerify, "", ""},
        {provider, "verify.after_check", Op::kVerify, "", ""},
        {provider, "delete.before_file", Op::kDelete, "", ""},
        {provider, "delete.after_file", Op::kDelete, "", ""},
        {provider, "import.before_file", Op::kImport, "", ""},
        {provider, "import.after_file", Op::kImport, "", ""},
        {provider, "restore.before_file", Op::kRestore, "restore", "finished"},
        {provider, "restore.during_file", Op::kRestore, "restore", "finished"},
        {provider, "restore.after_file", Op::kRestore, "restore", "finished"},
        {provider, "repair.before_file", Op::kRepair, "repair", "finished"},
        {provider, "repair.after_file", Op::kRepair, "repair", "finished"},
        {provider, "repair.before_file", Op::kRepairDamaged, "repair", "finished"},
        {provider, "repair.after_file", Op::kRepairDamaged, "repair", "finished"},
    };
  }
  return {
      {provider, "pg.provision.before_database", Op::kCreate, "provisioning", "finished"},
      {provider, "pg.provision.after_database", Op::kCreate, "provisioning", "finished"},
      {provider, "snapshot.before_file", Op::kSnapshot, "snapshot", "failed"},
      {provider, "snapshot.after_file", Op::kSnapshot, "snapshot", "finished"},
      {provider, "restore.before_swap", Op::kRestore, "restore", "finished"},
      {provider, "restore.after_swap", Op::kRestore, "restore", "finished"},
      {provider, "repair.before_file", Op::kRepair, "repair", "finished"},
      {provider, "repair.after_file", Op::kRepair, "repair", "finished"},
      {provider, "repair.before_file", Op::kRepairDamaged, "repair", "finished"},
      {provider, "repair.after_file", Op::kRepairDamaged, "repair", "finished"},
  };
}

// The crash points a provider's source names (env_.crash.At / options_.crash.At).
std::set<std::string> PointsInSource(const std::string& provider) {
  std::ifstream in(std::filesystem::path(VIA_SOURCE_DIR) / "providers" / provider / "provider.cc");
  REQUIRE(in.good());
  std::string text((std::istreambuf_iterator<char>(in)), {});
  std::set<std::string> out;
  const std::regex at(R"re(crash\.At\("([a-z_.]+)"\))re");
  for (std::sregex_iterator it(text.begin(), text.end(), at), e; it != e; ++it) out.insert((*it)[1]);
  return out;
}

}  // namespace

TEST_CASE("conformance: kill -9 at every crash point, recovered by via recover",
          "[providers][conformance][crash]") {
  for (const char* name : kProviders) {
    // The table names every point the provider's source has.
    std::set<std::string> tabled;
    for (const CrashCase& c : CrashCases(name)) tabled.insert(c.point);
    CHECK(tabled == PointsInSource(name));
    for (const CrashCase& c : CrashCases(name)) {
      DYNAMIC_SECTION(name << " at " << c.point
                           << (c.op == Op::kRepairDamaged ? " repairing damage" : "")) {
        // Damage is made on a server of its own (it stops the server).
        World w(HarnessFor(name, /*own_server=*/c.op == Op::kRepairDamaged));
        const auto home = w.dir.path();
        const std::string p = name;
        std::string id;
        std::string sn;  // the snapshot the command works on
        auto setup = [&]() {
          MustVia(home, "addon create " + p + " app-db --app api --bind DATABASE");
          MustVia(home, "release create --app api");
          id = ViaJson(home, "addon status app-db")["addon"]["id"];
          w.harness->Write(w.ctx, id, "kept");
          w.harness->Fill(w.ctx, id);
        };
        std::string command;
        switch (c.op) {
          case Op::kCreate:
            command = "addon create " + p + " app-db --app api --bind DATABASE";
            break;
          case Op::kSnapshot:
            setup();
            command = "addon snapshot app-db";
            break;
          case Op::kVerify:
          case Op::kDelete:
          case Op::kImport:
            setup();
            MustVia(home, "addon snapshot app-db --label older");
            sn = ViaJson(home, "addon snapshot app-db")["id"];
            command = c.op == Op::kVerify   ? "addon snapshots verify app-db --snapshot " + sn
                      : c.op == Op::kDelete ? "--yes addon snapshot delete " + sn
                                            : "addon create " + p + " copy --app api --from-snapshot " + sn;
            break;
          case Op::kRestore:
            setup();
            sn = ViaJson(home, "addon snapshot app-db")["id"];
            w.harness->Write(w.ctx, id, "changed");
            command = "--yes addon restore app-db --snapshot " + sn;
            break;
          case Op::kRepair:
            setup();
            MustVia(home, "addon snapshot app-db");
            MustVia(home, "addon snapshots verify app-db");
            w.harness->Remove(w.ctx, id);
            command = "addon ensure " + p + " app-db --app api --repair";
            break;
          case Op::kRepairDamaged: {
            setup();
            MustVia(home, "addon snapshot app-db");
            MustVia(home, "addon snapshots verify app-db");
            REQUIRE(w.harness->Corrupt(w.ctx, id).empty());
            auto checked = RunVia(home, "addon check app-db");
            INFO(checked.out);
            REQUIRE(checked.exit_code == 3);
            command = "addon ensure " + p + " app-db --app api --repair";
            break;
          }
        }
        auto killed = RunVia(home, command + " >/dev/null 2>&1", "VIA_CRASH_AT=" + c.point);
        INFO(command);
        REQUIRE(killed.exit_code == 128 + 9);  // died by SIGKILL at the point

        json recovered = ViaJson(home, "recover");
        INFO(recovered.dump());
        if (c.kind.empty()) {
          CHECK(recovered["intents"].empty());
        } else {
          REQUIRE(recovered["intents"].size() == 1);
          CHECK(recovered["intents"][0]["kind"] == c.kind);
          CHECK(recovered["intents"][0]["action"] == c.action);
        }
        if (c.op == Op::kCreate) {
          MustVia(home, "release create --app api");
          id = ViaJson(home, "addon status app-db")["addon"]["id"];
          w.harness->Write(w.ctx, id, "kept");
        }
        json status = ViaJson(home, "addon status app-db");
        INFO(status.dump());
        CHECK(status["usable_by_app"] == true);
        CHECK(w.harness->Read(w.ctx, id) == "kept");
        providers::Environment env;
        env.home = w.ctx.home;
        auto provider = w.registry.Make(name, env);
        REQUIRE(provider.ok());
        switch (c.op) {
          case Op::kCreate:
            CHECK(CountEvents(home, "StorageProvisioned") == 1);
            CHECK(CountEvents(home, "ProvisioningFailed") == 0);
            break;
          case Op::kSnapshot: {
            json list = ViaJson(home, "addon snapshots app-db")["snapshots"];
            REQUIRE(list.size() == 1);
            sn = list[0]["id"];
            const auto file = (*provider)->SnapshotPath(id, sn);
            if (c.action == "finished") {
              CHECK(list[0]["status"] == "taken");
              CHECK(CountEvents(home, "SnapshotTaken") == 1);
              // The kept file is the one its event hashed.
              MustVia(home, "addon snapshots verify app-db --snapshot " + sn);
              CHECK(ViaJson(home, "addon snapshots app-db")["snapshots"][0]["verification"] == "verified");
            } else {
              CHECK(list[0]["status"] == "failed");
              CHECK(CountEvents(home, "SnapshotTaken") == 0);
              CHECK(CountEvents(home, "SnapshotFailed") == 1);
              // Nothing half-written is left where a later command looks.
              CHECK_FALSE(std::filesystem::exists(file));
              CHECK_FALSE(std::filesystem::exists(file.string() + ".tmp"));
              // And the next snapshot works.
              MustVia(home, "addon snapshot app-db");
            }
            break;
          }
          case Op::kVerify:
            // Verification is recorded after the check: nothing to finish,
            // and running it again records it once.
            CHECK(CountEvents(home, "SnapshotVerified") == 0);
            MustVia(home, "addon snapshots verify app-db --snapshot " + sn);
            CHECK(CountEvents(home, "SnapshotVerified") == 1);
            break;
          case Op::kDelete: {
            CHECK(CountEvents(home, "SnapshotDeleted") == 1);
            // The file a crash left behind its event is removed by recover.
            CHECK_FALSE(std::filesystem::exists((*provider)->SnapshotPath(id, sn)));
            break;
          }
          case Op::kImport: {
            // Killed before AddonCreated: no add-on, and the create works again.
            CHECK(ViaJson(home, "addon status copy")["blocking"] == "addon_not_found");
            MustVia(home, "addon create " + p + " copy --app api --from-snapshot " + sn);
            const std::string copy = ViaJson(home, "addon status copy")["addon"]["id"];
            CHECK(w.harness->Read(w.ctx, copy) == "kept");
            CHECK(CountEvents(home, "AddonCreated") == 2);
            break;
          }
          case Op::kRestore:
            CHECK(CountEvents(home, "SnapshotRestored") == 1);
            CHECK(CountEvents(home, "RestoreFailed") == 0);
            break;
          case Op::kRepair:
            CHECK(CountEvents(home, "StorageRepaired") == 1);
            break;
          case Op::kRepairDamaged: {
            // The damage is gone, not waved through because the probe
            // (which does not see it) passed: a full check finds none.
            auto checked = RunVia(home, "addon check app-db");
            INFO(checked.out);
            CHECK(checked.exit_code == 0);
            CHECK(CountEvents(home, "StorageRepaired") >= 1);
            break;
          }
        }
        CHECK(RunVia(home, "audit verify").exit_code == 0);
        // Twice changes nothing the second time.
        json again = ViaJson(home, "recover");
        CHECK(again["changed"] == false);
        CHECK(again["intents"].empty());
      }
    }
  }
}

#ifdef VIA_TEST_PG_PROVIDER
// Role passwords reach the server only as SCRAM-SHA-256 verifiers: on a
// cluster of its own that logs every statement, each generation's role logs
// in with its derived password, while pg_authid and the server log never
// hold that password.
TEST_CASE("postgres: role passwords reach the server only as SCRAM verifiers",
          "[providers][postgres][scram]") {
  auto harness = std::make_unique<PostgresHarness>(/*own_server=*/true);
  PostgresHarness* pg = harness.get();
  World w(std::move(harness));
  const auto home = w.dir.path();
  // Every statement from now on goes to the server log.
  auto logged = pg->own().Sql("postgres", "ALTER SYSTEM SET log_statement = 'all'");
  INFO(logged.out);
  REQUIRE(logged.exit_code == 0);
  REQUIRE(pg->own().Sql("postgres", "SELECT pg_reload_conf()").exit_code == 0);
  std::string id = w.Create("app-db");
  REQUIRE(commands::RotateCredentials(w.ctx, "app-db").ok());
  // `via recover` applies every role again (a second verifier, new salt).
  MustVia(home, "recover");
  CHECK(*w.harness->CanLogIn(w.ctx, id, 1));
  CHECK(*w.harness->CanLogIn(w.ctx, id, 2));

  auto cfg = providers::postgres::LoadConfig(w.ctx.home);
  REQUIRE(cfg.ok());
  auto key = eventstore::ReadFile(w.ctx.home.credentials_key());
  REQUIRE(key.ok());
  auto report = commands::AddonStatus(w.ctx, "app-db");
  REQUIRE(report.ok());
  std::ifstream in(std::filesystem::path(pg->own().Dir()) / "data" / "server.log");
  const std::string log((std::istreambuf_iterator<char>(in)), {});
  CHECK(log.find("ALTER ROLE") != std::string::npos);  // the log does hold the statements
  for (const GenerationState& g : report->addon->generations) {
    const std::string role = providers::postgres::RoleName(cfg->tag, id, g.number);
    const std::string password =
        providers::postgres::RolePassword(crypto::DeriveCredential(*key, id, g.number, g.salt));
    auto stored = pg->own().Sql("postgres", "SELECT rolpassword FROM pg_authid WHERE rolname = '" + role + "'");
    INFO(role << " " << stored.out);
    REQUIRE(stored.exit_code == 0);
    CHECK(stored.out.rfind("SCRAM-SHA-256$4096:", 0) == 0);
    CHECK(stored.out.find(password) == std::string::npos);
    CHECK(log.find(password) == std::string::npos);
  }
}
#endif
