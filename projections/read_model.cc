#include "projections/read_model.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "crypto/crypto.h"
#include "eventstore/record_codec.h"

namespace via::projections {
namespace {

using nlohmann::json;

// 3: add-on checks and snapshot policies, snapshot verification and deletion.
constexpr std::int64_t kReadModelVersion = 3;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS addons(id TEXT PRIMARY KEY, name TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS addons_by_name ON addons(name);
CREATE TABLE IF NOT EXISTS names(name TEXT PRIMARY KEY, addon_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bindings(app TEXT NOT NULL, binding TEXT NOT NULL,
  addon_id TEXT NOT NULL, PRIMARY KEY(app, binding));
CREATE INDEX IF NOT EXISTS bindings_by_addon ON bindings(addon_id);
CREATE TABLE IF NOT EXISTS snapshots(id TEXT PRIMARY KEY, addon_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS snapshots_by_addon ON snapshots(addon_id);
CREATE TABLE IF NOT EXISTS releases(app TEXT NOT NULL, position INTEGER NOT NULL,
  body TEXT NOT NULL, PRIMARY KEY(app, position));
CREATE TABLE IF NOT EXISTS deliveries(addon_id TEXT NOT NULL, generation INTEGER NOT NULL,
  app TEXT NOT NULL, release_id TEXT NOT NULL, PRIMARY KEY(addon_id, generation, app, release_id));
)sql";

std::string Hex(const Bytes& b) { return HexEncode(b); }
Bytes Unhex(const std::string& s) {
  Bytes out;
  for (std::size_t i = 0; i + 1 < s.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
  }
  return out;
}

json AddonJson(const AddonState& a) {
  json gens = json::array();
  for (const auto& g : a.generations) {
    gens.push_back({g.number, Hex(g.fingerprint), Hex(g.salt), g.revoked});
  }
  return {{"id", a.id},
          {"name", a.name},
          {"original_name", a.original_name},
          {"provider", a.provider},
          {"app", a.app},
          {"requested_binding", a.requested_binding},
          {"phase", static_cast<int>(a.phase)},
          {"failure_reason", a.failure_reason},
          {"data_present", a.data_present},
          {"generations", gens},
          {"restoring_snapshot", a.restoring_snapshot},
          {"restore_safety_snapshot", a.restore_safety_snapshot},
          {"pending_snapshot", a.pending_snapshot},
          {"pending_repair", a.pending_repair},
          {"created_at_ms", a.created_at_ms},
          {"created_seq", a.created_seq},
          {"updated_seq", a.updated_seq},
          {"check", {a.check_seq, a.check_at_ms, a.check_ok, a.check_detail}},
          {"content_seq", a.content_seq},
          {"policy", {a.keep_last, a.keep_daily, a.keep_weekly, a.snapshot_every_s}}};
}

AddonState AddonFromJson(const json& j) {
  AddonState a;
  a.id = j.at("id");
  a.name = j.at("name");
  a.original_name = j.at("original_name");
  a.provider = j.at("provider");
  a.app = j.at("app");
  a.requested_binding = j.at("requested_binding");
  a.phase = static_cast<AddonPhase>(j.at("phase").get<int>());
  a.failure_reason = j.at("failure_reason");
  a.data_present = j.at("data_present");
  for (const auto& g : j.at("generations")) {
    a.generations.push_back(GenerationState{g.at(0).get<std::uint32_t>(), Unhex(g.at(1)),
                                            Unhex(g.at(2)), g.at(3).get<bool>()});
  }
  a.restoring_snapshot = j.at("restoring_snapshot");
  a.restore_safety_snapshot = j.value("restore_safety_snapshot", std::string());
  a.pending_snapshot = j.at("pending_snapshot");
  a.pending_repair = j.at("pending_repair");
  a.created_at_ms = j.at("created_at_ms");
  a.created_seq = j.at("created_seq");
  a.updated_seq = j.at("updated_seq");
  const json& check = j.at("check");
  a.check_seq = check.at(0);
  a.check_at_ms = check.at(1);
  a.check_ok = check.at(2);
  a.check_detail = check.at(3);
  a.content_seq = j.at("content_seq");
  const json& policy = j.at("policy");
  a.keep_last = policy.at(0);
  a.keep_daily = policy.at(1);
  a.keep_weekly = policy.at(2);
  a.snapshot_every_s = policy.at(3);
  return a;
}

json SnapshotJson(const SnapshotState& s) {
  return {{"id", s.id},         {"addon_id", s.addon_id},
          {"label", s.label},   {"status", static_cast<int>(s.status)},
          {"sha256", Hex(s.sha256)}, {"bytes", s.bytes},
          {"page_count", s.page_count}, {"failure_reason", s.failure_reason},
          {"actor", s.actor},   {"requested_at_ms", s.requested_at_ms},
          {"requested_seq", s.requested_seq},
          {"verification", {static_cast<int>(s.verification), s.verify_detail, s.verified_at_ms}},
          {"deleted", {s.deleted, s.deleted_reason}}};
}

SnapshotState SnapshotFromJson(const json& j) {
  SnapshotState s;
  s.id = j.at("id");
  s.addon_id = j.at("addon_id");
  s.label = j.at("label");
  s.status = static_cast<SnapshotStatus>(j.at("status").get<int>());
  s.sha256 = Unhex(j.at("sha256"));
  s.bytes = j.at("bytes");
  s.page_count = j.at("page_count");
  s.failure_reason = j.at("failure_reason");
  s.actor = j.at("actor");
  s.requested_at_ms = j.at("requested_at_ms");
  s.requested_seq = j.at("requested_seq");
  const json& verification = j.at("verification");
  s.verification = static_cast<SnapshotVerification>(verification.at(0).get<int>());
  s.verify_detail = verification.at(1);
  s.verified_at_ms = verification.at(2);
  s.deleted = j.at("deleted").at(0);
  s.deleted_reason = j.at("deleted").at(1);
  return s;
}

json ReleaseJson(const ReleaseState& r) {
  json claims = json::array();
  for (const auto& c : r.claims) claims.push_back({c.binding, c.addon_id});
  return {{"app", r.app}, {"id", r.id}, {"claims", claims}, {"created_at_ms", r.created_at_ms},
          {"seq", r.seq}};
}

ReleaseState ReleaseFromJson(const json& j) {
  ReleaseState r;
  r.app = j.at("app");
  r.id = j.at("id");
  for (const auto& c : j.at("claims")) r.claims.push_back(BindingClaim{c.at(0), c.at(1)});
  r.created_at_ms = j.at("created_at_ms");
  r.seq = j.at("seq");
  return r;
}

Result<std::int64_t> PragmaVersion(sql::Db& db) {
  VIA_ASSIGN_OR_RETURN(sql::Stmt version, db.Prepare("PRAGMA user_version"));
  VIA_ASSIGN_OR_RETURN(bool row, version.Step());
  return row ? version.Int(0) : 0;
}

Result<std::string> MetaGet(sql::Db& db, const std::string& key) {
  VIA_ASSIGN_OR_RETURN(sql::Stmt stmt, db.Prepare("SELECT value FROM meta WHERE key=?"));
  stmt.Bind(1, key);
  VIA_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.Text(0) : std::string();
}

Status MetaSet(sql::Db& db, const std::string& key, const std::string& value) {
  VIA_ASSIGN_OR_RETURN(sql::Stmt stmt,
                       db.Prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?,?)"));
  stmt.Bind(1, key).Bind(2, value);
  return stmt.Run();
}

// Runs `body` converting JSON exceptions from damaged rows into DataLoss.
template <typename F>
auto Guard(F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const std::exception& e) {
    return DataLoss("read_model_damaged", std::string("read model row is damaged: ") + e.what());
  }
}

}  // namespace

Hash256 StateDigest(const State& state) { return crypto::Sha256::Digest(CanonicalForm(state)); }

Result<State> Replay(eventstore::LogStore& log, std::uint64_t until) {
  State state;
  Status error;
  VIA_RETURN_IF_ERROR(log.Scan(1, until, [&](const eventstore::StoredRecord& row) {
    auto record = eventstore::DecodeRecord(row.bytes);
    if (!record.ok()) {
      error = record.status().WithContext("seq " + std::to_string(row.seq));
      return false;
    }
    Apply(state, *record);
    return true;
  }));
  VIA_RETURN_IF_ERROR(error);
  return state;
}

Result<ModelComparison> CompareWithLog(const std::string& path, eventstore::LogStore& log,
                                       bool catch_up) {
  VIA_ASSIGN_OR_RETURN(auto model, ReadModel::Open(path));
  if (catch_up) VIA_RETURN_IF_ERROR(model->CatchUp(log).status());
  ModelComparison out;
  {
    VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, model->BeginRead());
    auto cursor = model->CursorHead();
    auto state = model->Load();
    if (cursor.ok() && state.ok()) {
      out.size = cursor->seq;
      out.model_digest = StateDigest(*state);
    }
  }
  if (!out.model_digest) {
    // Unreadable: compare against the whole log (the model must be rebuilt).
    VIA_ASSIGN_OR_RETURN(eventstore::Head head, log.GetHead());
    out.size = head.seq;
  }
  if (out.size > 0) {
    VIA_ASSIGN_OR_RETURN(out.replayed, Replay(log, out.size));
  }
  out.replay_digest = StateDigest(out.replayed);
  return out;
}

Result<std::unique_ptr<ReadModel>> ReadModel::Open(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto db = sql::Db::Open(path, sql::OpenOptions{});
    if (!db.ok() && ::access(std::filesystem::path(path).parent_path().c_str(), W_OK) != 0 &&
        (errno == EROFS || errno == EACCES)) {
      db = Status(StatusCode::kInternal, "home_not_writable",
                  "cannot create the read model at " + path + ": " + std::strerror(errno));
    }
    if (!db.ok() && db.status().reason() == "home_not_writable") {
      // A home that cannot be written (a read-only mount): the model is read
      // as it is; CatchUp says home_not_writable when it is behind.
      sql::OpenOptions read_only;
      read_only.read_only = true;
      read_only.create = false;
      read_only.immutable_fallback = true;
      auto reader = sql::Db::Open(path, read_only);
      if (!reader.ok()) return db.status();
      std::unique_ptr<ReadModel> model(new ReadModel(std::move(reader).value(), path));
      model->read_only_ = true;
      auto version = PragmaVersion(*model->db_);
      if (!version.ok() || *version != kReadModelVersion) return db.status();
      return model;
    }
    if (!db.ok() && db.status().code() != StatusCode::kDataLoss) return db.status();
    if (db.ok()) {
      std::unique_ptr<ReadModel> model(new ReadModel(std::move(db).value(), path));
      Status schema = model->EnsureSchema();
      if (schema.ok()) return model;
      if (schema.code() != StatusCode::kDataLoss && schema.reason() != "read_model_version") {
        return schema;
      }
    }
    // Damaged or from another version: it is derived data, so start afresh.
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(path + suffix, ec);
    }
  }
  return Internal("cannot create the read model at " + path);
}

Status ReadModel::EnsureSchema() {
  // Fast path for every open after the first: the schema is there and current.
  {
    VIA_ASSIGN_OR_RETURN(sql::Stmt version, db_->Prepare("PRAGMA user_version"));
    VIA_ASSIGN_OR_RETURN(bool row, version.Step());
    if (row && version.Int(0) == kReadModelVersion) return Status::Ok();
  }
  // Commands started together may all find a fresh home without a read model
  // and create it at once. Switching a new file to WAL needs an exclusive lock
  // that SQLite takes without calling the busy handler, so that one is retried
  // here; the schema is then written in one BEGIN IMMEDIATE transaction (which
  // waits for the lock) that checks the version again, so one process creates
  // it and the others find it done.
  VIA_RETURN_IF_ERROR(db_->ExecRetryingLocks("PRAGMA journal_mode=WAL"));
  VIA_RETURN_IF_ERROR(db_->Exec("PRAGMA synchronous=NORMAL"));
  VIA_ASSIGN_OR_RETURN(sql::Transaction tx, sql::Transaction::BeginImmediate(*db_));
  {
    VIA_ASSIGN_OR_RETURN(sql::Stmt version, db_->Prepare("PRAGMA user_version"));
    VIA_ASSIGN_OR_RETURN(bool row, version.Step());
    if (row && version.Int(0) == kReadModelVersion) return tx.Commit();
  }
  VIA_RETURN_IF_ERROR(db_->Exec(kSchema));
  VIA_ASSIGN_OR_RETURN(std::string version, MetaGet(*db_, "version"));
  if (!version.empty() && version != std::to_string(kReadModelVersion)) {
    return FailedPrecondition("read_model_version", "read model version " + version);
  }
  if (version.empty()) VIA_RETURN_IF_ERROR(MetaSet(*db_, "version", std::to_string(kReadModelVersion)));
  VIA_RETURN_IF_ERROR(db_->Exec("PRAGMA user_version=" + std::to_string(kReadModelVersion)));
  return tx.Commit();
}

Result<std::uint64_t> ReadModel::Cursor() {
  VIA_ASSIGN_OR_RETURN(std::string seq, MetaGet(*db_, "cursor_seq"));
  return seq.empty() ? 0 : std::stoull(seq);
}

Result<State> ReadModel::Load() {
  State state;
  VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, sql::ReadTransaction::Begin(*db_));
  Status status = Guard([&]() -> Status {
    VIA_ASSIGN_OR_RETURN(std::string seq, MetaGet(*db_, "cursor_seq"));
    state.seq = seq.empty() ? 0 : std::stoull(seq);
    VIA_ASSIGN_OR_RETURN(state.log_id, MetaGet(*db_, "log_id"));
    VIA_ASSIGN_OR_RETURN(state.origin, MetaGet(*db_, "origin"));
    VIA_ASSIGN_OR_RETURN(std::string tokens, MetaGet(*db_, "tokens_issued"));
    state.tokens_issued = tokens.empty() ? 0 : std::stoull(tokens);
    VIA_ASSIGN_OR_RETURN(sql::Stmt addons, db_->Prepare("SELECT body FROM addons"));
    while (true) {
      VIA_ASSIGN_OR_RETURN(bool row, addons.Step());
      if (!row) break;
      AddonState a = AddonFromJson(json::parse(addons.Text(0)));
      state.addons[a.id] = a;
    }
    VIA_ASSIGN_OR_RETURN(sql::Stmt names, db_->Prepare("SELECT name, addon_id FROM names"));
    while (true) {
      VIA_ASSIGN_OR_RETURN(bool row, names.Step());
      if (!row) break;
      state.names[names.Text(0)] = names.Text(1);
    }
    VIA_ASSIGN_OR_RETURN(sql::Stmt bindings,
                         db_->Prepare("SELECT app, binding, addon_id FROM bindings"));
    while (true) {
      VIA_ASSIGN_OR_RETURN(bool row, bindings.Step());
      if (!row) break;
      state.bindings[{bindings.Text(0), bindings.Text(1)}] = bindings.Text(2);
    }
    VIA_ASSIGN_OR_RETURN(sql::Stmt snapshots, db_->Prepare("SELECT body FROM snapshots"));
    while (true) {
      VIA_ASSIGN_OR_RETURN(bool row, snapshots.Step());
      if (!row) break;
      SnapshotState s = SnapshotFromJson(json::parse(snapshots.Text(0)));
      state.snapshots[s.id] = s;
    }
    VIA_ASSIGN_OR_RETURN(sql::Stmt releases,
                         db_->Prepare("SELECT body FROM releases ORDER BY app, position"));
    while (true) {
      VIA_ASSIGN_OR_RETURN(bool row, releases.Step());
      if (!row) break;
      ReleaseState r = ReleaseFromJson(json::parse(releases.Text(0)));
      state.releases[r.app].push_back(r);
    }
    VIA_ASSIGN_OR_RETURN(sql::Stmt deliveries,
                         db_->Prepare("SELECT addon_id, generation, app, release_id FROM deliveries"));
    while (true) {
      VIA_ASSIGN_OR_RETURN(bool row, deliveries.Step());
      if (!row) break;
      state.deliveries.insert({deliveries.Text(0), static_cast<std::uint32_t>(deliveries.Int(1)),
                               deliveries.Text(2), deliveries.Text(3)});
    }
    return Status::Ok();
  });
  VIA_RETURN_IF_ERROR(status);
  return state;
}

Result<Hash256> ReadModel::Digest() {
  VIA_ASSIGN_OR_RETURN(State state, Load());
  return StateDigest(state);
}

Result<std::optional<AddonState>> ReadModel::FindAddon(const std::string& name_or_id) {
  VIA_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_->Prepare("SELECT body FROM addons WHERE id = coalesce("
                   "(SELECT addon_id FROM names WHERE name = ?1), ?1)"));
  stmt.Bind(1, name_or_id);
  VIA_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<AddonState>();
  std::optional<AddonState> out;
  VIA_RETURN_IF_ERROR(Guard([&]() -> Status {
    out = AddonFromJson(json::parse(stmt.Text(0)));
    return Status::Ok();
  }));
  return out;
}

Result<std::optional<std::string>> ReadModel::BindingTarget(const std::string& app,
                                                            const std::string& binding) {
  VIA_ASSIGN_OR_RETURN(sql::Stmt stmt,
                       db_->Prepare("SELECT addon_id FROM bindings WHERE app=? AND binding=?"));
  stmt.Bind(1, app).Bind(2, binding);
  VIA_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(stmt.Text(0));
}

Result<std::vector<BindingKey>> ReadModel::BindingsOf(const std::string& addon_id) {
  VIA_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_->Prepare("SELECT app, binding FROM bindings WHERE addon_id=? ORDER BY app, binding"));
  stmt.Bind(1, addon_id);
  std::vector<BindingKey> out;
  while (true) {
    VIA_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.emplace_back(stmt.Text(0), stmt.Text(1));
  }
  return out;
}

Status ReadModel::Store(const State& before, const State& after, std::uint64_t seq,
                        const Hash256& hash) {
  // Writes the rows that differ between `before` and `after` (upserts and deletes).
  auto sync = [&](const auto& old_map, const auto& new_map, const char* upsert_sql,
                  const char* delete_sql, auto&& bind_upsert, auto&& bind_delete) -> Status {
    VIA_ASSIGN_OR_RETURN(sql::Stmt upsert, db_->Prepare(upsert_sql));
    VIA_ASSIGN_OR_RETURN(sql::Stmt remove, db_->Prepare(delete_sql));
    for (const auto& [key, value] : new_map) {
      auto it = old_map.find(key);
      if (it != old_map.end() && it->second == value) continue;
      bind_upsert(upsert, key, value);
      VIA_RETURN_IF_ERROR(upsert.Run());
    }
    for (const auto& [key, value] : old_map) {
      if (new_map.count(key)) continue;
      bind_delete(remove, key);
      VIA_RETURN_IF_ERROR(remove.Run());
    }
    return Status::Ok();
  };
  VIA_RETURN_IF_ERROR(sync(
      before.addons, after.addons, "INSERT OR REPLACE INTO addons(id, name, body) VALUES(?,?,?)",
      "DELETE FROM addons WHERE id=?",
      [](sql::Stmt& s, const std::string& id, const AddonState& a) {
        s.Bind(1, id).Bind(2, a.name).Bind(3, AddonJson(a).dump());
      },
      [](sql::Stmt& s, const std::string& id) { s.Bind(1, id); }));
  VIA_RETURN_IF_ERROR(sync(
      before.names, after.names, "INSERT OR REPLACE INTO names(name, addon_id) VALUES(?,?)",
      "DELETE FROM names WHERE name=?",
      [](sql::Stmt& s, const std::string& name, const std::string& id) {
        s.Bind(1, name).Bind(2, id);
      },
      [](sql::Stmt& s, const std::string& name) { s.Bind(1, name); }));
  VIA_RETURN_IF_ERROR(sync(
      before.bindings, after.bindings,
      "INSERT OR REPLACE INTO bindings(app, binding, addon_id) VALUES(?,?,?)",
      "DELETE FROM bindings WHERE app=? AND binding=?",
      [](sql::Stmt& s, const BindingKey& key, const std::string& id) {
        s.Bind(1, key.first).Bind(2, key.second).Bind(3, id);
      },
      [](sql::Stmt& s, const BindingKey& key) { s.Bind(1, key.first).Bind(2, key.second); }));
  VIA_RETURN_IF_ERROR(sync(
      before.snapshots, after.snapshots,
      "INSERT OR REPLACE INTO snapshots(id, addon_id, body) VALUES(?,?,?)",
      "DELETE FROM snapshots WHERE id=?",
      [](sql::Stmt& s, const std::string& id, const SnapshotState& snap) {
        s.Bind(1, id).Bind(2, snap.addon_id).Bind(3, SnapshotJson(snap).dump());
      },
      [](sql::Stmt& s, const std::string& id) { s.Bind(1, id); }));
  // Releases are only ever appended per app; rewrite an app's list when it changed.
  for (const auto& [app, list] : after.releases) {
    auto it = before.releases.find(app);
    std::size_t start = (it == before.releases.end()) ? 0 : it->second.size();
    VIA_ASSIGN_OR_RETURN(
        sql::Stmt insert,
        db_->Prepare("INSERT OR REPLACE INTO releases(app, position, body) VALUES(?,?,?)"));
    for (std::size_t i = start; i < list.size(); ++i) {
      insert.Bind(1, app).Bind(2, static_cast<std::int64_t>(i)).Bind(3, ReleaseJson(list[i]).dump());
      VIA_RETURN_IF_ERROR(insert.Run());
    }
  }
  VIA_ASSIGN_OR_RETURN(
      sql::Stmt delivery,
      db_->Prepare("INSERT OR IGNORE INTO deliveries(addon_id, generation, app, release_id) "
                   "VALUES(?,?,?,?)"));
  for (const auto& d : after.deliveries) {
    if (before.deliveries.count(d)) continue;
    delivery.Bind(1, std::get<0>(d))
        .Bind(2, static_cast<std::int64_t>(std::get<1>(d)))
        .Bind(3, std::get<2>(d))
        .Bind(4, std::get<3>(d));
    VIA_RETURN_IF_ERROR(delivery.Run());
  }
  VIA_RETURN_IF_ERROR(MetaSet(*db_, "log_id", after.log_id));
  VIA_RETURN_IF_ERROR(MetaSet(*db_, "origin", after.origin));
  VIA_RETURN_IF_ERROR(MetaSet(*db_, "tokens_issued", std::to_string(after.tokens_issued)));
  VIA_RETURN_IF_ERROR(MetaSet(*db_, "cursor_seq", std::to_string(seq)));
  return MetaSet(*db_, "cursor_hash", HexEncode(hash));
}

Status ReadModel::Rebuild(eventstore::LogStore& log) {
  return Advance(log, /*rebuild=*/true).status();
}

Result<eventstore::Head> ReadModel::CursorHead() {
  VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, sql::ReadTransaction::Begin(*db_));
  VIA_ASSIGN_OR_RETURN(std::uint64_t seq, Cursor());
  VIA_ASSIGN_OR_RETURN(std::string hash, MetaGet(*db_, "cursor_hash"));
  eventstore::Head head;
  head.seq = seq;
  if (seq > 0) {
    Bytes bytes = Unhex(hash);
    if (bytes.size() != head.hash.size()) {
      return DataLoss("read_model_damaged", "the read model's cursor hash is damaged");
    }
    std::copy(bytes.begin(), bytes.end(), head.hash.begin());
  }
  return head;
}

Result<std::uint64_t> ReadModel::CatchUp(eventstore::LogStore& log) {
  // Without the write lock: the cursor first, then the log's head. The cursor
  // only ever names a committed record, so a head read after it is at or past
  // it for this log; equal seq and hash mean nothing to do.
  auto cursor = Guard([&]() -> Result<eventstore::Head> { return CursorHead(); });
  if (!cursor.ok()) return cursor.status();
  crash_.At("catchup.between_reads");
  VIA_ASSIGN_OR_RETURN(eventstore::Head head, log.GetHead());
  if (*cursor == head) return 0;
  return Advance(log, /*rebuild=*/false);
}

Result<std::uint64_t> ReadModel::Advance(eventstore::LogStore& log, bool rebuild) {
  if (read_only_) {
    return Status(StatusCode::kInternal, "home_not_writable",
                  "the read model at " + path_ + " is behind the log and cannot be written");
  }
  // One write transaction from the cursor check to the commit: readers see
  // the model before or after, never half of it (a rebuild's deletes
  // included), and a process that catches up meanwhile waits for the lock.
  VIA_ASSIGN_OR_RETURN(auto tx, sql::Transaction::BeginImmediate(*db_));
  eventstore::Head cursor;
  if (!rebuild) {
    auto read = Guard([&]() -> Result<eventstore::Head> { return CursorHead(); });
    if (!read.ok() && read.status().code() != StatusCode::kDataLoss) return read.status();
    if (read.ok()) {
      cursor = *read;
    } else {
      rebuild = true;  // a damaged cursor: start afresh
    }
  }
  // The log as of one snapshot, read after the cursor (see CatchUp).
  VIA_ASSIGN_OR_RETURN(sql::ReadTransaction log_snapshot, log.BeginRead());
  VIA_ASSIGN_OR_RETURN(eventstore::Head head, log.GetHead());
  if (!rebuild && cursor == head) return 0;
  if (!rebuild && cursor.seq > 0) {
    // The cursor must name a record of this log with the same hash; else the
    // read model belongs to another (or rewritten) log: rebuild it.
    if (cursor.seq > head.seq) {
      rebuild = true;
    } else {
      auto row = log.ReadRow(cursor.seq);
      if (!row.ok() && row.status().code() != StatusCode::kNotFound) return row.status();
      rebuild = !row.ok() || row->hash != cursor.hash;
    }
  }
  State before;
  if (rebuild) {
    crash_.At("projection.rebuild");
    for (const char* table :
         {"addons", "names", "bindings", "snapshots", "releases", "deliveries"}) {
      VIA_RETURN_IF_ERROR(db_->Exec(std::string("DELETE FROM ") + table));
    }
    VIA_RETURN_IF_ERROR(db_->Exec("DELETE FROM meta WHERE key <> 'version'"));
    cursor = eventstore::Head{};
  } else {
    VIA_ASSIGN_OR_RETURN(before, Load());
  }
  State after = before;
  Status error;
  Hash256 last_hash = cursor.hash;
  std::uint64_t last_seq = cursor.seq;
  VIA_RETURN_IF_ERROR(log.Scan(cursor.seq + 1, head.seq, [&](const eventstore::StoredRecord& row) {
    auto record = eventstore::DecodeRecord(row.bytes);
    if (!record.ok()) {
      error = record.status().WithContext("seq " + std::to_string(row.seq));
      return false;
    }
    Apply(after, *record);
    last_hash = row.hash;
    last_seq = row.seq;
    return true;
  }));
  VIA_RETURN_IF_ERROR(error);
  if (last_seq == cursor.seq && !rebuild) return 0;
  VIA_RETURN_IF_ERROR(Store(before, after, last_seq, last_hash));
  crash_.At("projection.before_commit");
  VIA_RETURN_IF_ERROR(tx.Commit());
  return last_seq - cursor.seq;
}

}  // namespace via::projections
