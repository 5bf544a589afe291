#include "providers/postgres/provider.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto/credentials.h"
#include "crypto/crypto.h"
#include "domain/reasons.h"
#include "domain/snapshots.h"
#include "eventstore/file_lock.h"
#include "eventstore/filenames.h"
#include "projections/read_model.h"
#include "providers/postgres/scram.h"

extern char** environ;

namespace via::providers::postgres {
namespace fs = std::filesystem;
using eventstore::postgres::Conn;
using eventstore::postgres::Param;

namespace {

constexpr int kProbeTimeoutS = 3;
constexpr int kWorkTimeoutS = 10;

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// Our names hold only [a-z0-9_]; quoted all the same.
// A quoted identifier; an embedded quote is doubled. Names Via builds are
// [a-z0-9_], but Retire also acts on names read back from pg_roles.
std::string Ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}
// A string literal; an embedded single quote is doubled
// (standard_conforming_strings is on, PostgreSQL's default since 9.1).
std::string Literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

// A conninfo value in single quotes (libpq: backslash escapes ' and \).
std::string Quoted(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string ConnInfo(const ServerConfig& c, const std::string& password, const std::string& db) {
  return "host=" + Quoted(c.host) + " port=" + std::to_string(c.port) + " user=" + Quoted(c.user) +
         " dbname=" + Quoted(db.empty() ? c.database : db) + " password=" + Quoted(password);
}

// The Status of a failed admin connection: unreachable, or refused.
Status ConnectFailure(const Status& s, const ServerConfig& c) {
  const std::string where = c.user + "@" + c.host + ":" + std::to_string(c.port);
  if (s.message().find("password authentication failed") != std::string::npos ||
      s.message().find("no password supplied") != std::string::npos) {
    return FailedPrecondition("admin_auth_failed",
                              "the PostgreSQL server refused the admin password for " + where)
        .WithRemediation("via provider add postgres --admin-url postgresql://" + c.user + "@" +
                         c.host + ":" + std::to_string(c.port) + "/" + c.database +
                         " --password-file FILE")
        .WithOwner("platform");
  }
  return Unavailable("storage_unreachable",
                     "the PostgreSQL server " + where + " does not answer: " + s.message())
      .WithOwner("platform");
}


struct Digest {
  Bytes sha256;
  std::uint64_t bytes = 0;
};

Result<Digest> DigestOf(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("snapshot_file_missing", "cannot read " + path.string());
  crypto::Sha256 sha;
  Digest d;
  std::vector<char> buffer(1 << 16);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    std::streamsize n = in.gcount();
    if (n <= 0) break;
    sha.Update(ByteView(reinterpret_cast<const std::uint8_t*>(buffer.data()),
                        static_cast<std::size_t>(n)));
    d.bytes += static_cast<std::uint64_t>(n);
  }
  if (in.bad()) return Internal("read " + path.string());
  Hash256 h = sha.Final();
  d.sha256.assign(h.begin(), h.end());
  return d;
}

// The client programs come from postgresql-client; they are looked up on
// $PATH as a shell would (the operator chooses which), "" when none is there.
std::string ClientProgram(const std::string& name) {
  const char* env = std::getenv("PATH");
  const std::string path = env != nullptr && *env != '\0' ? env : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    const std::string candidate = dir + "/" + name;
    struct stat st {};
    // Empty and relative entries (the working directory) are skipped: the
    // program runs with the admin password in its environment.
    if (!dir.empty() && dir.front() == '/' && ::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (end == std::string::npos) return "";
    start = end + 1;
  }
}

// Runs a PostgreSQL client program with the admin password in its own
// environment only (never on a command line). Output goes to `log_file`.
Status RunClient(const std::string& program, std::vector<std::string> args,
                 const std::string& password, const fs::path& log_file) {
  const std::string path = ClientProgram(program);
  if (path.empty()) {
    return FailedPrecondition(reason::kPgClientMissing,
                              program + " is not installed: install the Debian package "
                              "postgresql-client (apt-get install postgresql-client)")
        .WithOwner("platform");
  }
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, "PGPASSWORD=", 11) != 0 && std::strncmp(*e, "PGPASSFILE=", 11) != 0) {
      env_strings.emplace_back(*e);
    }
  }
  env_strings.push_back("PGPASSWORD=" + password);
  env_strings.push_back("PGCONNECT_TIMEOUT=" + std::to_string(kWorkTimeoutS));
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  args.insert(args.begin(), path);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Internal("cannot run " + path + ": " + std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  std::ifstream in(log_file);
  std::stringstream text;
  text << in.rdbuf();
  std::string out = text.str();
  if (out.size() > 2000) out.resize(2000);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return Internal(program + " failed: " + out);
}

Result<std::vector<std::string>> StringColumn(Conn& conn, const char* sql,
                                              std::initializer_list<Param> params) {
  VIA_ASSIGN_OR_RETURN(auto result, conn.Query(sql, params));
  std::vector<std::string> out;
  for (int i = 0; i < result.rows(); ++i) out.emplace_back(result.Text(i, 0));
  return out;
}

Result<bool> DatabaseExists(Conn& conn, const std::string& name) {
  VIA_ASSIGN_OR_RETURN(auto rows, StringColumn(conn, "SELECT datname::text FROM pg_database WHERE datname = $1",
                                               {Param::Text(name)}));
  return !rows.empty();
}

Status TerminateSessions(Conn& conn, const char* column, const std::string& name) {
  std::string sql = std::string("SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity WHERE ") +
                    column + " = $1 AND pid <> pg_backend_pid()";
  return conn.Query(sql.c_str(), {Param::Text(name)}).status();
}

// Every table of the connected database reads back (a full scan: the
// check of `via addon check`, and of a repair after a check found damage).
Status ScanTables(Conn& conn) {
  return conn.Exec(
      "DO $$DECLARE t record; BEGIN FOR t IN SELECT format('%I.%I', schemaname, tablename) AS n "
      "FROM pg_tables WHERE schemaname NOT IN ('pg_catalog','information_schema') LOOP "
      "EXECUTE 'SELECT count(*) FROM ' || t.n; END LOOP; END$$");
}

// The comment a revoked generation's role carries: the probe tells a role
// Via revoked (every generation revoked is the runtime layer's blocker,
// no_active_generation) from one whose login was taken behind Via's back.
constexpr const char* kRevokedComment = "via: revoked";

// NOLOGIN, marked as revoked, then its open sessions end.
Status RevokeRole(Conn& admin, const std::string& role) {
  // The name goes inside a $$-quoted block, where quoting cannot protect it:
  // only names of the form Via builds are acted on.
  for (char c : role) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return InvalidArgument("bad_role_name", "role name " + Literal(role) +
                                                  " is not one Via creates; left alone");
    }
  }
  VIA_RETURN_IF_ERROR(admin.Exec("DO $$BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = " +
                                 Literal(role) + ") THEN ALTER ROLE " + Ident(role) +
                                 " NOLOGIN; COMMENT ON ROLE " + Ident(role) + " IS '" +
                                 kRevokedComment + "'; END IF; END$$"));
  return TerminateSessions(admin, "usename", role);
}

std::string RestoreName(const std::string& tag, const std::string& addon_id) {
  return DatabaseName(tag, addon_id) + "_restore";
}
std::string OldName(const std::string& tag, const std::string& addon_id) {
  return DatabaseName(tag, addon_id) + "_old";
}

}  // namespace

Result<ServerConfig> ParseAdminUrl(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("bad_admin_url", "--admin-url " + why +
                                                " (expected postgresql://USER@HOST:PORT/DB)");
  };
  std::string rest;
  for (const char* scheme : {"postgresql://", "postgres://"}) {
    if (url.rfind(scheme, 0) == 0) rest = url.substr(std::strlen(scheme));
  }
  if (rest.empty()) return bad("must start with postgresql://");
  if (rest.size() > 512) return bad("is too long");
  auto at = rest.find('@');
  if (at == std::string::npos) return bad("needs a user");
  ServerConfig c;
  c.user = rest.substr(0, at);
  if (c.user.find(':') != std::string::npos) {
    return bad("must not carry a password: give it with --password-file");
  }
  rest = rest.substr(at + 1);
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  c.database = slash == std::string::npos ? "postgres" : rest.substr(slash + 1);
  if (c.database.find_first_of("?#") != std::string::npos) return bad("takes no parameters");
  if (c.database.empty()) c.database = "postgres";
  auto colon = hostport.rfind(':');
  c.host = hostport.substr(0, colon);
  if (colon != std::string::npos) {
    std::string port = hostport.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) {
      return bad("has a bad port");
    }
    c.port = static_cast<std::uint32_t>(std::stoul(port));
    if (c.port == 0 || c.port > 65535) return bad("has a bad port");
  }
  auto safe = [](const std::string& s) {
    if (s.empty()) return false;
    for (char ch : s) {
      if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == '_')) {
        return false;
      }
    }
    return true;
  };
  if (!safe(c.host)) return bad("has a bad host");
  if (!safe(c.user)) return bad("has a bad user");
  if (!safe(c.database)) return bad("has a bad database name");
  return c;
}

fs::path ConfigPath(const eventstore::Home& home) {
  return eventstore::ProviderKeyFile(home, kName, "conf");
}
fs::path PasswordPath(const eventstore::Home& home) {
  return eventstore::ProviderKeyFile(home, kName, "password");
}

Result<ServerConfig> LoadConfig(const eventstore::Home& home) {
  auto bytes = eventstore::ReadFile(ConfigPath(home), 4096);
  if (!bytes.ok()) {
    return FailedPrecondition("provider_not_configured",
                              "no PostgreSQL server is registered on this home")
        .WithRemediation("via provider add postgres --admin-url postgresql://USER@HOST:PORT/DB "
                         "--password-file FILE")
        .WithOwner("platform");
  }
  std::string text(bytes->begin(), bytes->end());
  const auto end = text.find('\n');
  auto url = ParseAdminUrl(text.substr(0, end));
  if (!url.ok()) return Internal(ConfigPath(home).string() + " is damaged: " + url.status().message());
  std::string tag = end == std::string::npos ? "" : text.substr(end + 1);
  while (!tag.empty() && tag.back() == '\n') tag.pop_back();
  if (tag.size() != 8 || tag.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return Internal(ConfigPath(home).string() + " is damaged: no name tag");
  }
  url->tag = tag;
  return *url;
}

Result<std::string> LoadPassword(const eventstore::Home& home) {
  auto bytes = eventstore::ReadFile(PasswordPath(home), 4096);
  if (!bytes.ok()) {
    return FailedPrecondition("provider_not_configured",
                              "the PostgreSQL admin password file is missing")
        .WithRemediation("via provider add postgres --admin-url postgresql://USER@HOST:PORT/DB "
                         "--password-file FILE")
        .WithOwner("platform");
  }
  return std::string(bytes->begin(), bytes->end());
}

Result<Conn> ConnectAdmin(const ServerConfig& config, const std::string& password,
                          const std::string& database, int timeout_s) {
  auto conn = Conn::Connect(ConnInfo(config, password, database), timeout_s);
  if (!conn.ok()) return ConnectFailure(conn.status(), config);
  // Idempotent steps (a GRANT that holds already, DROP … IF EXISTS) say so
  // in NOTICEs, which libpq would print on the operator's terminal.
  VIA_RETURN_IF_ERROR(conn->Exec("SET client_min_messages = warning"));
  return conn;
}

Result<Registration> RegisterServer(const eventstore::Home& home, const std::string& admin_url,
                                    const std::string& password_text) {
  VIA_ASSIGN_OR_RETURN(ServerConfig config, ParseAdminUrl(admin_url));
  std::string password = password_text;
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
    password.pop_back();
  }
  if (password.empty()) return InvalidArgument("empty_password", "the password file is empty");
  if (password.find('\0') != std::string::npos) {
    return InvalidArgument("bad_password", "the password file holds a NUL byte");
  }
  auto key = eventstore::ReadFile(home.credentials_key());
  if (!key.ok() || key->size() != 32) {
    return FailedPrecondition("credentials_key_missing",
                              home.credentials_key().string() + " is missing or damaged")
        .WithOwner("security");
  }
  // The server must answer and accept the password before anything is kept.
  VIA_ASSIGN_OR_RETURN(Conn conn, ConnectAdmin(config, password, "", kWorkTimeoutS));
  VIA_ASSIGN_OR_RETURN(auto can, StringColumn(conn,
                                              "SELECT (rolsuper OR (rolcreatedb AND rolcreaterole))::text "
                                              "FROM pg_roles WHERE rolname = current_user",
                                              {}));
  if (can.empty() || can[0] != "true") {
    return FailedPrecondition("admin_lacks_privileges",
                              "user " + config.user + " needs CREATEDB and CREATEROLE (or superuser)")
        .WithOwner("platform");
  }
  // A new password for the same server keeps the tag: the add-ons' names
  // on it stay theirs.
  auto previous = LoadConfig(home);
  if (previous.ok() && previous->host == config.host && previous->port == config.port &&
      !previous->tag.empty()) {
    config.tag = previous->tag;
  } else {
    config.tag = HexEncode(crypto::RandomBytes(4));
  }
  std::error_code ec;
  fs::create_directories(ConfigPath(home).parent_path(), ec);
  ::chmod(ConfigPath(home).parent_path().c_str(), 0700);
  VIA_RETURN_IF_ERROR(eventstore::WriteFileAtomically(PasswordPath(home), crypto::ViewOf(password), 0600));
  const std::string line = "postgresql://" + config.user + "@" + config.host + ":" +
                           std::to_string(config.port) + "/" + config.database + "\n" +
                           config.tag + "\n";
  VIA_RETURN_IF_ERROR(eventstore::WriteFileAtomically(ConfigPath(home), crypto::ViewOf(line), 0600));
  std::string tagged = "via-provider-secret-v1";
  tagged.push_back('\0');
  tagged += password;
  Hash256 fp = crypto::HmacSha256(*key, crypto::ViewOf(tagged));
  return Registration{config, Bytes(fp.begin(), fp.end())};
}

std::string DatabaseName(const std::string& tag, const std::string& addon_id) {
  return "via_" + tag + "_" + Lower(addon_id);
}
std::string OwnerRole(const std::string& tag, const std::string& addon_id) {
  return DatabaseName(tag, addon_id) + "_owner";
}
std::string RoleName(const std::string& tag, const std::string& addon_id, std::uint32_t generation) {
  return DatabaseName(tag, addon_id) + "_g" + std::to_string(generation);
}
std::string RolePassword(const Hash256& credential) {
  return crypto::Base64UrlEncode(ByteView(credential.data(), credential.size()));
}

void Register(Registry& registry) {
  registry.Add(kName, [](const Environment& env) -> std::unique_ptr<Provider> {
    return std::make_unique<PostgresProvider>(env);
  });
}

// ---------------------------------------------------------------------------

std::string PostgresProvider::Tag() const {
  auto config = LoadConfig(env_.home);
  return config.ok() ? config->tag : std::string();
}

Result<ProviderConfigured> PostgresProvider::Configure(const std::string& admin_url,
                                                       const std::string& secret) {
  VIA_ASSIGN_OR_RETURN(Registration r, RegisterServer(env_.home, admin_url, secret));
  return ProviderConfigured{kName, r.config.host, r.config.port, r.config.user, r.config.database,
                            r.fingerprint};
}

Result<Conn> PostgresProvider::Admin(const std::string& database) const {
  VIA_ASSIGN_OR_RETURN(ServerConfig config, LoadConfig(env_.home));
  VIA_ASSIGN_OR_RETURN(std::string password, LoadPassword(env_.home));
  return ConnectAdmin(config, password, database, kWorkTimeoutS);
}

Result<State> PostgresProvider::Current(const std::string& addon_id) {
  if (env_.log == nullptr) return Internal("postgres provider: no log to read");
  VIA_ASSIGN_OR_RETURN(auto model, projections::ReadModel::Open(env_.home.state_db().string()));
  VIA_RETURN_IF_ERROR(model->CatchUp(env_.log->store()).status());
  StateKeys keys;
  keys.addons.insert(addon_id);
  keys.snapshots_of.insert(addon_id);
  return model->LoadSlice(keys);
}

Status PostgresProvider::Append(const std::string& command_id, std::vector<Event> events) {
  if (env_.log == nullptr) return Internal("postgres provider: no log to append to");
  eventstore::AppendRequest request;
  request.actor = env_.actor;
  request.command_id = command_id;
  request.recorded_at_ms = env_.clock ? env_.clock->NowMs() : 0;
  request.events = std::move(events);
  return env_.log->Append(request).status();
}

Result<Hash256> PostgresProvider::Credential(const AddonState& addon,
                                             const GenerationState& generation) const {
  auto key = eventstore::ReadFile(env_.home.credentials_key());
  if (!key.ok() || key->size() != 32) {
    return FailedPrecondition("credentials_key_missing",
                              env_.home.credentials_key().string() + " is missing or damaged")
        .WithOwner("security");
  }
  return crypto::DeriveCredential(*key, addon.id, generation.number, generation.salt);
}

Status PostgresProvider::EnsureRole(Conn& admin, const AddonState& addon,
                                    const GenerationState& generation) {
  const std::string tag = Tag();
  const std::string role = RoleName(tag, addon.id, generation.number);
  if (generation.revoked) return RevokeRole(admin, role);  // whatever an earlier run left
  VIA_ASSIGN_OR_RETURN(Hash256 credential, Credential(addon, generation));
  const std::string password = RolePassword(credential);  // [A-Za-z0-9_-] only
  VIA_RETURN_IF_ERROR(admin.Exec("DO $$BEGIN CREATE ROLE " + Ident(role) +
                                 " NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$"));
  VIA_RETURN_IF_ERROR(admin.Exec("GRANT " + Ident(OwnerRole(tag, addon.id)) + " TO " + Ident(role)));
  VIA_RETURN_IF_ERROR(admin.Exec("ALTER ROLE " + Ident(role) + " SET role = " +
                                 Ident(OwnerRole(tag, addon.id))));
  VIA_RETURN_IF_ERROR(admin.Exec("GRANT CONNECT, TEMPORARY ON DATABASE " +
                                 Ident(DatabaseName(tag, addon.id)) + " TO " + Ident(role)));
  VIA_RETURN_IF_ERROR(admin.Exec("COMMENT ON ROLE " + Ident(role) + " IS NULL"));
  // The server gets the SCRAM-SHA-256 verifier, never the password: a
  // statement log or pg_authid holds nothing an app could log in with.
  return admin.Exec("ALTER ROLE " + Ident(role) + " LOGIN PASSWORD '" + ScramVerifier(password) + "'");
}

Status PostgresProvider::EnsureDatabase(Conn& admin, const AddonState& addon) {
  const std::string tag = Tag();
  const std::string db = DatabaseName(tag, addon.id);
  VIA_RETURN_IF_ERROR(admin.Exec("DO $$BEGIN CREATE ROLE " + Ident(OwnerRole(tag, addon.id)) +
                                 " NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$"));
  // The admin creates the database for the owner role, so must be a member.
  VIA_RETURN_IF_ERROR(admin.Exec("GRANT " + Ident(OwnerRole(tag, addon.id)) + " TO CURRENT_USER"));
  VIA_ASSIGN_OR_RETURN(bool exists, DatabaseExists(admin, db));
  if (!exists) {
    env_.crash.At("pg.provision.before_database");
    Status created = admin.Exec("CREATE DATABASE " + Ident(db) + " OWNER " +
                                Ident(OwnerRole(tag, addon.id)));
    if (!created.ok()) {
      VIA_ASSIGN_OR_RETURN(bool now, DatabaseExists(admin, db));  // another process won
      if (!now) return created;
    }
  }
  VIA_RETURN_IF_ERROR(admin.Exec("REVOKE ALL ON DATABASE " + Ident(db) + " FROM PUBLIC"));
  for (const GenerationState& g : addon.generations) {
    VIA_RETURN_IF_ERROR(EnsureRole(admin, addon, g));
  }
  return Status::Ok();
}

Status PostgresProvider::Provision(const std::string& addon_id) {
  const std::string tag = Tag();
  VIA_ASSIGN_OR_RETURN(State state, Current(addon_id));
  const AddonState* addon = state.FindById(addon_id);
  if (addon == nullptr) return NotFound("addon_not_found", "no add-on " + addon_id);
  if (addon->phase != AddonPhase::kProvisioning) return Status::Ok();
  const std::string command_id = eventstore::ProvisionCommandId(addon_id);
  auto admin = Admin();
  Status done = admin.ok() ? EnsureDatabase(*admin, *addon) : admin.status();
  env_.crash.At("pg.provision.after_database");
  if (!done.ok()) {
    // A configuration or server problem: the operator fixes it and creates
    // again (the failed record holds no data: its name is freed).
    bool data = false;
    if (admin.ok()) {
      auto exists = DatabaseExists(*admin, DatabaseName(tag, addon_id));
      data = exists.ok() && *exists;
    }
    return Append(command_id, {ProvisioningFailed{addon_id, done.ToString(), data}});
  }
  return Append(command_id, {StorageProvisioned{addon_id}});
}

Status PostgresProvider::EnsureGeneration(const std::string& addon_id, std::uint32_t generation) {
  VIA_ASSIGN_OR_RETURN(State state, Current(addon_id));
  const AddonState* addon = state.FindById(addon_id);
  if (addon == nullptr) return NotFound("addon_not_found", "no add-on " + addon_id);
  if (addon->phase != AddonPhase::kActive) return Status::Ok();  // provisioning makes them all
  for (const GenerationState& g : addon->generations) {
    if (g.number != generation) continue;
    VIA_ASSIGN_OR_RETURN(Conn admin, Admin());
    return EnsureRole(admin, *addon, g);
  }
  return NotFound("generation_not_found", "no generation " + std::to_string(generation));
}

Status PostgresProvider::RevokeGeneration(const std::string& addon_id, std::uint32_t generation) {
  const std::string tag = Tag();
  const std::string role = RoleName(tag, addon_id, generation);
  VIA_ASSIGN_OR_RETURN(Conn admin, Admin());
  // NOLOGIN first, so that no new session starts, then the open ones end.
  return RevokeRole(admin, role);
}

Status PostgresProvider::Retire(const std::string& addon_id) {
  const std::string tag = Tag();
  // Destroy keeps the database (its data stays for the operator, as SQLite
  // keeps the file) but no generation logs in any more.
  VIA_ASSIGN_OR_RETURN(Conn admin, Admin());
  VIA_ASSIGN_OR_RETURN(auto roles, StringColumn(admin,
                                                "SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1",
                                                {Param::Text(DatabaseName(tag, addon_id) + "\\_g%")}));
  for (const std::string& role : roles) {
    Status revoked = RevokeRole(admin, role);
    // A role someone else named like Via's is not Via's to change.
    if (!revoked.ok() && revoked.reason() != "bad_role_name") return revoked;
  }
  return Status::Ok();
}

StorageFact PostgresProvider::Probe(const std::string& addon_id, std::string* detail) const {
  const std::string tag = Tag();
  auto set = [&](StorageFact fact, const std::string& text) {
    if (detail) *detail = text;
    return fact;
  };
  auto config = LoadConfig(env_.home);
  if (!config.ok()) return set(StorageFact::kUnreachable, config.status().message());
  auto password = LoadPassword(env_.home);
  if (!password.ok()) return set(StorageFact::kUnreachable, password.status().message());
  auto admin = ConnectAdmin(*config, *password, "", kProbeTimeoutS);
  if (!admin.ok()) return set(StorageFact::kUnreachable, admin.status().message());
  auto exists = DatabaseExists(*admin, DatabaseName(tag, addon_id));
  if (!exists.ok()) return set(StorageFact::kUnreachable, exists.status().message());
  if (!*exists) {
    return set(StorageFact::kMissing, "database " + DatabaseName(tag, addon_id) + " does not exist on " +
                                          config->host + ":" + std::to_string(config->port));
  }
  const std::string db = DatabaseName(tag, addon_id);
  // A database that takes no connections at all (ALTER DATABASE … WITH
  // ALLOW_CONNECTIONS false): the server's operator turned it off, and only
  // they can turn it on again.
  auto allows = StringColumn(*admin, "SELECT datallowconn::text FROM pg_database WHERE datname = $1",
                             {Param::Text(db)});
  if (!allows.ok()) return set(StorageFact::kUnreachable, allows.status().message());
  if (!allows->empty() && (*allows)[0] != "true") {
    return set(StorageFact::kUnreadable,
               "database " + db + " does not accept connections (ALLOW_CONNECTIONS is false on " +
                   config->host + ":" + std::to_string(config->port) +
                   "): the server's administrator must allow them again");
  }
  // The generations' roles: at least one may log in and reach the database,
  // or every one is a role Via revoked (the runtime layer's blocker).
  auto roles = StringColumn(*admin,
                            "SELECT (count(*) FILTER (WHERE r.rolcanlogin AND "
                            "has_database_privilege(r.oid, $2, 'CONNECT')))::text || ' ' || "
                            "(count(*) FILTER (WHERE NOT r.rolcanlogin AND "
                            "shobj_description(r.oid, 'pg_authid') = $3))::text || ' ' || "
                            "count(*)::text FROM pg_roles r WHERE r.rolname LIKE $1",
                            {Param::Text(db + "\\_g%"), Param::Text(db), Param::Text(kRevokedComment)});
  if (!roles.ok() || roles->empty()) {
    return set(StorageFact::kUnreachable, roles.ok() ? "no answer" : roles.status().message());
  }
  long usable = 0, revoked = 0, all = 0;
  std::istringstream(roles->front()) >> usable >> revoked >> all;
  if (usable == 0 && (all == 0 || revoked != all)) {
    // Logins taken or roles dropped behind Via's back: a repair puts them back.
    return set(StorageFact::kCorrupt,
               "no login role of " + addon_id + " may connect to " + db +
                   " (its roles were changed or dropped on the server behind Via's back)");
  }
  return set(StorageFact::kOk, "ok");
}

std::string PostgresProvider::StorageLocation(const std::string& addon_id) const {
  const std::string tag = Tag();
  auto config = LoadConfig(env_.home);
  std::string server = config.ok() ? config->host + ":" + std::to_string(config->port) : "?";
  return "postgresql://" + server + "/" + DatabaseName(tag, addon_id);
}

fs::path PostgresProvider::SnapshotPath(const std::string& addon_id,
                                        const std::string& snapshot_id) const {
  return eventstore::SnapshotFile(env_.home, addon_id, snapshot_id, "dump");
}

Result<DescriptorFields> PostgresProvider::Describe(const DescriptorInput& in) const {
  const std::string tag = Tag();
  VIA_ASSIGN_OR_RETURN(ServerConfig config, LoadConfig(env_.home));
  DescriptorFields f;
  f.url = "postgresql://" + RoleName(config.tag, in.addon_id, in.generation) + ":" +
          RolePassword(in.credential) + "@" + config.host + ":" + std::to_string(config.port) + "/" +
          DatabaseName(config.tag, in.addon_id);
  return f;
}

// --- snapshots --------------------------------------------------------------

Result<SnapshotTaken> PostgresProvider::Snapshot(const std::string& addon_id,
                                                 const std::string& snapshot_id,
                                                 const PhaseProgress& progress) {
  const std::string tag = Tag();
  VIA_ASSIGN_OR_RETURN(eventstore::FileLock lock,
                       [&]() -> Result<eventstore::FileLock> {
                         std::error_code ec;
                         fs::create_directories(env_.home.addon_dir(addon_id), ec);
                         return eventstore::FileLock::Exclusive(eventstore::AddonLockFile(env_.home, addon_id));
                       }());
  const std::string command_id = eventstore::SnapshotCommandId(snapshot_id);
  std::error_code ec;
  fs::create_directories(env_.home.snapshot_dir(addon_id), ec);
  const fs::path dest = SnapshotPath(addon_id, snapshot_id);
  const fs::path temp = fileio::TempPathFor(dest);
  auto fail = [&](const Status& why) -> Result<SnapshotTaken> {
    fs::remove(temp, ec);
    VIA_RETURN_IF_ERROR(Append(command_id, {SnapshotFailed{addon_id, snapshot_id, why.message()}}));
    return why;
  };
  auto config = LoadConfig(env_.home);
  if (!config.ok()) return fail(config.status());
  auto password = LoadPassword(env_.home);
  if (!password.ok()) return fail(password.status());
  if (progress) progress("pg_dump", 0, 1);
  env_.crash.At("snapshot.before_file");
  Status dumped = RunClient("pg_dump",
                            {"-Fc", "--no-owner", "--no-privileges", "-h", config->host, "-p",
                             std::to_string(config->port), "-U", config->user, "-d",
                             DatabaseName(tag, addon_id), "-f", temp.string()},
                            *password, eventstore::SideFile(dest, ".log").string());
  fs::remove(eventstore::SideFile(dest, ".log"), ec);
  if (!dumped.ok()) return fail(dumped);
  Status synced = fileio::SyncFile(temp);
  if (!synced.ok()) return fail(synced);
  auto digest = DigestOf(temp);
  if (!digest.ok()) return fail(digest.status());
  Status renamed = fileio::Rename(temp, dest);
  if (!renamed.ok()) return fail(renamed);
  VIA_RETURN_IF_ERROR(fileio::SyncDirectory(dest.parent_path()));
  env_.crash.At("snapshot.after_file");
  if (progress) progress("pg_dump", 1, 1);
  SnapshotTaken taken{addon_id, snapshot_id, digest->sha256, digest->bytes, 0};
  VIA_RETURN_IF_ERROR(Append(command_id, {taken}));
  return taken;
}

Result<SnapshotVerified> PostgresProvider::Verify(const std::string& addon_id,
                                                  const std::string& snapshot_id,
                                                  const PhaseProgress& progress) {
  VIA_ASSIGN_OR_RETURN(SnapshotVerified verified, CheckSnapshot(addon_id, snapshot_id, progress));
  VIA_RETURN_IF_ERROR(Append("", {verified}));
  return verified;
}

Result<SnapshotVerified> PostgresProvider::CheckSnapshot(const std::string& addon_id,
                                                         const std::string& snapshot_id,
                                                         const PhaseProgress& progress) {
  VIA_ASSIGN_OR_RETURN(State state, Current(addon_id));
  VIA_ASSIGN_OR_RETURN(const SnapshotState* found, TakenSnapshot(state, addon_id, snapshot_id));
  const SnapshotState& snap = *found;
  if (progress) progress("sha256+pg_restore_list", 0, 1);
  const fs::path file = SnapshotPath(addon_id, snapshot_id);
  SnapshotVerified verified{addon_id, snapshot_id, false, "sha256+pg_restore_list", ""};
  auto digest = DigestOf(file);
  if (!digest.ok()) {
    verified.detail = digest.status().message();
  } else if (digest->sha256 != snap.sha256 || digest->bytes != snap.bytes) {
    verified.detail = "the file does not match the SHA-256 recorded in SnapshotTaken";
  } else {
    // The archive's table of contents must read back whole.
    Status listed = RunClient("pg_restore", {"-l", file.string()}, "",
                              eventstore::SideFile(file, ".list").string());
    std::error_code ec;
    fs::remove(eventstore::SideFile(file, ".list"), ec);
    if (!listed.ok() && listed.reason() == reason::kPgClientMissing) return listed;
    verified.ok = listed.ok();
    verified.detail = listed.ok() ? "ok" : listed.message();
  }
  if (progress) progress("sha256+pg_restore_list", 1, 1);
  return verified;
}

Status PostgresProvider::RemoveSnapshotFile(const std::string& addon_id,
                                            const std::string& snapshot_id) {
  const fs::path file = SnapshotPath(addon_id, snapshot_id);
  VIA_RETURN_IF_ERROR(fileio::Remove(file));
  return fileio::SyncDirectory(file.parent_path());
}

Result<bool> PostgresProvider::FinishSnapshot(const std::string& addon_id,
                                              const std::string& snapshot_id) {
  const std::string command_id = eventstore::SnapshotCommandId(snapshot_id);
  const fs::path dest = SnapshotPath(addon_id, snapshot_id);
  std::error_code ec;
  if (fs::exists(dest, ec)) {
    VIA_ASSIGN_OR_RETURN(Digest d, DigestOf(dest));
    VIA_RETURN_IF_ERROR(Append(command_id, {SnapshotTaken{addon_id, snapshot_id, d.sha256, d.bytes, 0}}));
    return true;
  }
  fs::remove(fileio::TempPathFor(dest), ec);
  VIA_RETURN_IF_ERROR(Append(command_id, {SnapshotFailed{addon_id, snapshot_id,
                                                         "interrupted by a crash before the dump was durable"}}));
  return false;
}

// Loads `file` into a fresh database `fresh` (owned by the owner role).
static Status LoadInto(Conn& admin, const AddonState& addon, const ServerConfig& config,
                       const std::string& password, const fs::path& file,
                       const std::string& fresh) {
  const std::string& tag = config.tag;
  VIA_RETURN_IF_ERROR(TerminateSessions(admin, "datname", fresh));
  VIA_RETURN_IF_ERROR(admin.Exec("DROP DATABASE IF EXISTS " + Ident(fresh)));
  VIA_RETURN_IF_ERROR(admin.Exec("CREATE DATABASE " + Ident(fresh) + " OWNER " +
                                 Ident(OwnerRole(tag, addon.id))));
  const std::string log = file.string() + ".restore.log";
  Status restored =
      RunClient("pg_restore",
                {"--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                 "--role=" + OwnerRole(tag, addon.id), "-h", config.host, "-p",
                 std::to_string(config.port), "-U", config.user, "-d", fresh, file.string()},
                password, log);
  std::error_code ec;
  fs::remove(log, ec);
  return restored;
}

// Puts `fresh` in place of the add-on's database: new sessions are held off
// (CONNECTION LIMIT 0, which binds every non-superuser role), open ones end,
// then both renames commit in one transaction; the old database is dropped.
static Status Swap(Conn& admin, const std::string& tag, const AddonState& addon,
                   const std::string& fresh) {
  const std::string db = DatabaseName(tag, addon.id);
  const std::string old = OldName(tag, addon.id);
  VIA_RETURN_IF_ERROR(admin.Exec("DROP DATABASE IF EXISTS " + Ident(old)));
  VIA_ASSIGN_OR_RETURN(bool live, DatabaseExists(admin, db));
  if (live) {
    VIA_RETURN_IF_ERROR(admin.Exec("ALTER DATABASE " + Ident(db) + " CONNECTION LIMIT 0"));
    VIA_RETURN_IF_ERROR(TerminateSessions(admin, "datname", db));
  }
  VIA_RETURN_IF_ERROR(TerminateSessions(admin, "datname", fresh));
  VIA_RETURN_IF_ERROR(admin.Exec(
      "BEGIN; " + (live ? "ALTER DATABASE " + Ident(db) + " RENAME TO " + Ident(old) + "; " : "") +
      "ALTER DATABASE " + Ident(fresh) + " RENAME TO " + Ident(db) + "; COMMIT"));
  VIA_RETURN_IF_ERROR(admin.Exec("ALTER DATABASE " + Ident(db) + " CONNECTION LIMIT -1"));
  VIA_RETURN_IF_ERROR(admin.Exec("REVOKE ALL ON DATABASE " + Ident(db) + " FROM PUBLIC"));
  if (live) {
    VIA_RETURN_IF_ERROR(TerminateSessions(admin, "datname", old));
    VIA_RETURN_IF_ERROR(admin.Exec("DROP DATABASE IF EXISTS " + Ident(old)));
  }
  return Status::Ok();
}

Status PostgresProvider::Restore(const std::string& addon_id, const std::string& snapshot_id,
                                 const std::string& safety_snapshot_id, bool verified,
                                 const PhaseProgress& progress) {
  const std::string tag = Tag();
  (void)verified;  // the dump is loaded into a fresh database: a bad one fails there
  const std::string command_id =
      eventstore::RestoreCommandId(addon_id, snapshot_id, safety_snapshot_id);
  VIA_ASSIGN_OR_RETURN(State state, Current(addon_id));
  const AddonState* addon = state.FindById(addon_id);
  if (addon == nullptr) return NotFound("addon_not_found", "no add-on " + addon_id);
  VIA_ASSIGN_OR_RETURN(ServerConfig config, LoadConfig(env_.home));
  VIA_ASSIGN_OR_RETURN(std::string password, LoadPassword(env_.home));
  VIA_ASSIGN_OR_RETURN(Conn admin, ConnectAdmin(config, password, "", kWorkTimeoutS));
  if (progress) progress("pg_restore", 0, 1);
  const std::string fresh = RestoreName(tag, addon_id);
  env_.crash.At("restore.before_swap");
  Status loaded = LoadInto(admin, *addon, config, password, SnapshotPath(addon_id, snapshot_id), fresh);
  if (!loaded.ok()) {
    (void)admin.Exec("DROP DATABASE IF EXISTS " + Ident(fresh));
    VIA_RETURN_IF_ERROR(Append(command_id, {RestoreFailed{addon_id, snapshot_id, loaded.message()}}));
    return loaded;
  }
  VIA_RETURN_IF_ERROR(Swap(admin, tag, *addon, fresh));
  for (const GenerationState& g : addon->generations) {
    VIA_RETURN_IF_ERROR(EnsureRole(admin, *addon, g));
  }
  env_.crash.At("restore.after_swap");
  if (progress) progress("pg_restore", 1, 1);
  return Append(command_id, {SnapshotRestored{addon_id, snapshot_id, safety_snapshot_id}});
}

// --- repair and check --------------------------------------------------------

Result<RepairOutcome> PostgresProvider::Repair(const std::string& addon_id, bool allow_empty) {
  const std::string tag = Tag();
  VIA_ASSIGN_OR_RETURN(State state, Current(addon_id));
  const AddonState* addon = state.FindById(addon_id);
  if (addon == nullptr) return NotFound("addon_not_found", "no add-on " + addon_id);
  if (addon->phase == AddonPhase::kDestroyed) {
    return FailedPrecondition("addon_destroyed", "add-on " + addon_id + " is destroyed");
  }
  RepairOutcome outcome;
  std::string detail;
  StorageFact fact = Probe(addon_id, &detail);
  if (fact == StorageFact::kUnreachable) {
    return FailedPrecondition("storage_unreachable", detail).WithOwner("platform");
  }
  if (fact == StorageFact::kOk && addon->phase != AddonPhase::kFailed && !addon->checked_corrupt()) {
    return outcome;
  }
  VIA_ASSIGN_OR_RETURN(ServerConfig config, LoadConfig(env_.home));
  VIA_ASSIGN_OR_RETURN(std::string password, LoadPassword(env_.home));
  VIA_ASSIGN_OR_RETURN(Conn admin, ConnectAdmin(config, password, "", kWorkTimeoutS));
  const std::string db = DatabaseName(tag, addon_id);
  VIA_ASSIGN_OR_RETURN(bool exists, DatabaseExists(admin, db));
  // The probe reads catalogs only: a database that a full check found
  // damaged is scanned again; still damaged, it is renamed aside (kept for
  // the operator, never dropped) and replaced like a missing one.
  std::string damage;
  if (exists && addon->checked_corrupt()) {
    auto in_db = ConnectAdmin(config, password, db, kWorkTimeoutS);
    Status scanned = in_db.ok() ? ScanTables(*in_db) : in_db.status();
    if (!scanned.ok()) damage = scanned.message();
  }
  const bool replace = !exists || !damage.empty();

  const SnapshotState* source = nullptr;
  std::vector<const SnapshotState*> snapshots = RepairCandidates(state, addon_id);
  if (replace) {
    for (const SnapshotState* snap : snapshots) {
      auto d = DigestOf(SnapshotPath(addon_id, snap->id));
      if (d.ok() && d->sha256 == snap->sha256) {
        source = snap;
        break;
      }
    }
    const bool had_data = !damage.empty() || !snapshots.empty();
    if (source == nullptr && had_data && !allow_empty) {
      const std::string what = damage.empty() ? " is missing and " : " is damaged (" + damage + ") and ";
      const std::string snaps = snapshots.empty() ? "there is no snapshot"
                                                  : "none of its " + std::to_string(snapshots.size()) +
                                                        " usable snapshots matches its hash";
      return FailedPrecondition("repair_needs_allow_empty",
                                "database " + db + what + snaps +
                                    ": repairing installs an EMPTY database (a damaged one is "
                                    "renamed aside, never dropped); pass --allow-empty to accept")
          .WithRemediation("via addon ensure postgres " + addon->name + " --app " + addon->app +
                           " --repair --allow-empty")
          .WithOwner("operator");
    }
  }
  const std::string command_id = eventstore::RepairCommandId(addon_id, state.seq);
  const std::string action = !damage.empty() ? "quarantined_corrupt"
                             : exists          ? "roles"
                             : source          ? "restore"
                                               : "recreate";
  VIA_RETURN_IF_ERROR(Append(command_id, {RepairRequested{addon_id, action}}));
  env_.crash.At("repair.before_file");
  std::vector<Event> done;
  if (!damage.empty()) {
    // Aside under a name of its own: no app reaches it (the connection
    // limit binds every role but superusers), and its bytes stay.
    const std::string aside = db + "_damaged_" + std::to_string(state.seq);
    VIA_RETURN_IF_ERROR(admin.Exec("ALTER DATABASE " + Ident(db) + " CONNECTION LIMIT 0"));
    VIA_RETURN_IF_ERROR(TerminateSessions(admin, "datname", db));
    VIA_RETURN_IF_ERROR(admin.Exec("ALTER DATABASE " + Ident(db) + " RENAME TO " + Ident(aside)));
    done.push_back(StorageRepaired{addon_id, "quarantined_corrupt", "",
                                   "renamed to " + aside + " on the server: " + damage});
    outcome.actions.push_back("quarantined_corrupt");
  }
  if (!replace) {
    VIA_RETURN_IF_ERROR(EnsureDatabase(admin, *addon));
    done.push_back(StorageRepaired{addon_id, "adopted_existing", "",
                                   "database present; roles of the active generations made usable"});
    outcome.actions.push_back("adopted_existing");
  } else if (source != nullptr) {
    VIA_RETURN_IF_ERROR(admin.Exec("DO $$BEGIN CREATE ROLE " + Ident(OwnerRole(tag, addon_id)) +
                                   " NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$"));
    VIA_RETURN_IF_ERROR(admin.Exec("GRANT " + Ident(OwnerRole(tag, addon_id)) + " TO CURRENT_USER"));
    VIA_RETURN_IF_ERROR(LoadInto(admin, *addon, config, password, SnapshotPath(addon_id, source->id),
                                 RestoreName(tag, addon_id)));
    VIA_RETURN_IF_ERROR(Swap(admin, tag, *addon, RestoreName(tag, addon_id)));
    VIA_RETURN_IF_ERROR(EnsureDatabase(admin, *addon));
    done.push_back(StorageRepaired{addon_id, "restored_from_snapshot", source->id, ""});
    outcome.actions.push_back("restored_from_snapshot");
    outcome.restored_from = source->id;
  } else {
    VIA_RETURN_IF_ERROR(EnsureDatabase(admin, *addon));
    done.push_back(StorageRepaired{addon_id, "recreated_empty", "", ""});
    outcome.actions.push_back("recreated_empty");
    outcome.warning = "recreated an empty database: no snapshot of " + addon_id;
  }
  env_.crash.At("repair.after_file");
  VIA_RETURN_IF_ERROR(Append(command_id + "/done", std::move(done)));
  return outcome;
}

Result<RepairOutcome> PostgresProvider::FinishRepair(const State& state,
                                                     const std::string& addon_id) {
  std::string detail;
  bool intact = Probe(addon_id, &detail) == StorageFact::kOk;
  // The probe reads catalogs only: a database that a full check found
  // damaged is scanned in full again before it is called repaired (the crash
  // may have come before it was renamed aside); Repair renames it then.
  const AddonState* addon = state.FindById(addon_id);
  if (intact && addon != nullptr && addon->checked_corrupt()) {
    auto in_db = Admin(DatabaseName(Tag(), addon_id));
    intact = in_db.ok() && ScanTables(*in_db).ok();
  }
  if (intact) {
    VIA_ASSIGN_OR_RETURN(State now, Current(addon_id));
    const std::string command_id = eventstore::RepairDoneCommandId(addon_id, now.seq);
    VIA_RETURN_IF_ERROR(Append(command_id, {StorageRepaired{addon_id, "verified_after_crash", "", ""}}));
    return RepairOutcome{{"verified_after_crash"}, "", ""};
  }
  return Repair(addon_id, /*allow_empty=*/true);
}

Result<CheckOutcome> PostgresProvider::Check(const std::string& addon_id,
                                             const std::string& command_id) {
  const std::string tag = Tag();
  std::string detail;
  StorageFact fact = Probe(addon_id, &detail);
  if (fact == StorageFact::kUnreachable) {
    return Unavailable("storage_unreachable", detail).WithOwner("platform");
  }
  StorageChecked event{addon_id, fact == StorageFact::kOk, "connect+catalog", detail};
  if (fact == StorageFact::kOk) {
    // Every table of the database reads back (a full scan, as amcheck-lite).
    auto admin = Admin(DatabaseName(tag, addon_id));
    if (!admin.ok()) {
      event.ok = false;
      event.detail = admin.status().message();
    } else {
      Status scanned = ScanTables(*admin);
      event.ok = scanned.ok();
      event.detail = scanned.ok() ? "ok" : scanned.message();
    }
  }
  if (env_.log == nullptr) return Internal("postgres provider: no log to append to");
  eventstore::AppendRequest request;
  request.actor = env_.actor;
  request.recorded_at_ms = env_.clock ? env_.clock->NowMs() : 0;
  request.events = {event};
  request.command_id = command_id;
  VIA_ASSIGN_OR_RETURN(auto appended, env_.log->Append(request));
  return CheckOutcome{event, appended.last_seq, appended.replayed};
}

}  // namespace via::providers::postgres
