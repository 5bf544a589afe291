#include "projections/read_model.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "crypto/crypto.h"
#include "eventstore/file_lock.h"
#include "eventstore/record_codec.h"
#include "domain/reasons.h"

namespace via::projections {
namespace {

// 4: one row per entity (columns, no JSON): add-ons without their
//    generations, which have rows of their own; releases and their claims.
// 5: add-ons carry their node (AddonPlaced); meta "nodes" holds the
//    announced nodes (NodeAnnounced).
constexpr std::int64_t kReadModelVersion = 5;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS addons(
  id TEXT PRIMARY KEY, name TEXT NOT NULL, original_name TEXT NOT NULL, provider TEXT NOT NULL,
  app TEXT NOT NULL, requested_binding TEXT NOT NULL, phase INTEGER NOT NULL,
  failure_reason TEXT NOT NULL, data_present INTEGER NOT NULL, restoring_snapshot TEXT NOT NULL,
  restore_safety_snapshot TEXT NOT NULL, pending_snapshot TEXT NOT NULL,
  pending_repair TEXT NOT NULL, created_at_ms INTEGER NOT NULL, created_seq INTEGER NOT NULL,
  updated_seq INTEGER NOT NULL, check_seq INTEGER NOT NULL, check_at_ms INTEGER NOT NULL,
  check_ok INTEGER NOT NULL, check_detail TEXT NOT NULL, content_seq INTEGER NOT NULL,
  keep_last INTEGER NOT NULL, keep_daily INTEGER NOT NULL, keep_weekly INTEGER NOT NULL,
  snapshot_every_s INTEGER NOT NULL, node TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS addons_by_name ON addons(name);
CREATE INDEX IF NOT EXISTS addons_by_original_name ON addons(original_name, created_seq);
CREATE TABLE IF NOT EXISTS generations(addon_id TEXT NOT NULL, idx INTEGER NOT NULL,
  number INTEGER NOT NULL, fingerprint BLOB NOT NULL, salt BLOB NOT NULL,
  revoked INTEGER NOT NULL, PRIMARY KEY(addon_id, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS names(name TEXT PRIMARY KEY, addon_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bindings(app TEXT NOT NULL, binding TEXT NOT NULL,
  addon_id TEXT NOT NULL, PRIMARY KEY(app, binding)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bindings_by_addon ON bindings(addon_id);
CREATE TABLE IF NOT EXISTS snapshots(id TEXT PRIMARY KEY, addon_id TEXT NOT NULL,
  label TEXT NOT NULL, status INTEGER NOT NULL, sha256 BLOB NOT NULL, bytes INTEGER NOT NULL,
  page_count INTEGER NOT NULL, failure_reason TEXT NOT NULL, actor TEXT NOT NULL,
  requested_at_ms INTEGER NOT NULL, requested_seq INTEGER NOT NULL,
  verification INTEGER NOT NULL, verify_detail TEXT NOT NULL, verified_at_ms INTEGER NOT NULL,
  deleted INTEGER NOT NULL, deleted_reason TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS snapshots_by_addon ON snapshots(addon_id, requested_seq);
CREATE TABLE IF NOT EXISTS releases(app TEXT NOT NULL, position INTEGER NOT NULL,
  id TEXT NOT NULL, created_at_ms INTEGER NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY(app, position)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS claims(app TEXT NOT NULL, position INTEGER NOT NULL,
  idx INTEGER NOT NULL, binding TEXT NOT NULL, addon_id TEXT NOT NULL,
  PRIMARY KEY(app, position, idx)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS claims_by_addon ON claims(addon_id);
CREATE TABLE IF NOT EXISTS deliveries(addon_id TEXT NOT NULL, generation INTEGER NOT NULL,
  app TEXT NOT NULL, release_id TEXT NOT NULL,
  PRIMARY KEY(addon_id, generation, app, release_id)) WITHOUT ROWID;
)sql";

constexpr const char* kTables[] = {"addons",   "generations", "names",  "bindings",
                                   "snapshots", "releases",   "claims", "deliveries"};

constexpr const char* kAddonColumns =
    "id, name, original_name, provider, app, requested_binding, phase, failure_reason, "
    "data_present, restoring_snapshot, restore_safety_snapshot, pending_snapshot, "
    "pending_repair, created_at_ms, created_seq, updated_seq, check_seq, check_at_ms, check_ok, "
    "check_detail, content_seq, keep_last, keep_daily, keep_weekly, snapshot_every_s, node";
constexpr int kAddonColumnCount = 26;

constexpr const char* kSnapshotColumns =
    "id, addon_id, label, status, sha256, bytes, page_count, failure_reason, actor, "
    "requested_at_ms, requested_seq, verification, verify_detail, verified_at_ms, deleted, "
    "deleted_reason";
constexpr int kSnapshotColumnCount = 16;

std::string Placeholders(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += i ? ",?" : "?";
  return out;
}

Bytes ToBytes(ByteView view) { return Bytes(view.begin(), view.end()); }

std::int64_t I(std::uint64_t v) { return static_cast<std::int64_t>(v); }

// A damaged row (a value out of its range) is DataLoss: the model is derived
// data and gets rebuilt.
Status Damaged(const std::string& what) {
  return DataLoss("read_model_damaged", "read model row is damaged: " + what);
}

Result<AddonState> ReadAddon(const sql::Stmt& s, int c = 0) {
  AddonState a;
  a.id = s.Text(c + 0);
  a.name = s.Text(c + 1);
  a.original_name = s.Text(c + 2);
  a.provider = s.Text(c + 3);
  a.app = s.Text(c + 4);
  a.requested_binding = s.Text(c + 5);
  const std::int64_t phase = s.Int(c + 6);
  if (phase < 0 || phase > static_cast<std::int64_t>(AddonPhase::kDestroyed)) {
    return Damaged("add-on " + a.id + " phase " + std::to_string(phase));
  }
  a.phase = static_cast<AddonPhase>(phase);
  a.failure_reason = s.Text(c + 7);
  a.data_present = s.Int(c + 8) != 0;
  a.restoring_snapshot = s.Text(c + 9);
  a.restore_safety_snapshot = s.Text(c + 10);
  a.pending_snapshot = s.Text(c + 11);
  a.pending_repair = s.Text(c + 12);
  a.created_at_ms = s.Int(c + 13);
  a.created_seq = static_cast<std::uint64_t>(s.Int(c + 14));
  a.updated_seq = static_cast<std::uint64_t>(s.Int(c + 15));
  a.check_seq = static_cast<std::uint64_t>(s.Int(c + 16));
  a.check_at_ms = s.Int(c + 17);
  a.check_ok = s.Int(c + 18) != 0;
  a.check_detail = s.Text(c + 19);
  a.content_seq = static_cast<std::uint64_t>(s.Int(c + 20));
  a.keep_last = static_cast<std::uint32_t>(s.Int(c + 21));
  a.keep_daily = static_cast<std::uint32_t>(s.Int(c + 22));
  a.keep_weekly = static_cast<std::uint32_t>(s.Int(c + 23));
  a.snapshot_every_s = static_cast<std::uint32_t>(s.Int(c + 24));
  a.node = s.Text(c + 25);
  return a;
}

void BindAddon(sql::Stmt& s, const AddonState& a) {
  s.Bind(1, a.id)
      .Bind(2, a.name)
      .Bind(3, a.original_name)
      .Bind(4, a.provider)
      .Bind(5, a.app)
      .Bind(6, a.requested_binding)
      .Bind(7, static_cast<std::int64_t>(a.phase))
      .Bind(8, a.failure_reason)
      .Bind(9, std::int64_t{a.data_present})
      .Bind(10, a.restoring_snapshot)
      .Bind(11, a.restore_safety_snapshot)
      .Bind(12, a.pending_snapshot)
      .Bind(13, a.pending_repair)
      .Bind(14, a.created_at_ms)
      .Bind(15, I(a.created_seq))
      .Bind(16, I(a.updated_seq))
      .Bind(17, I(a.check_seq))
      .Bind(18, a.check_at_ms)
      .Bind(19, std::int64_t{a.check_ok})
      .Bind(20, a.check_detail)
      .Bind(21, I(a.content_seq))
      .Bind(22, std::int64_t{a.keep_last})
      .Bind(23, std::int64_t{a.keep_daily})
      .Bind(24, std::int64_t{a.keep_weekly})
      .Bind(25, std::int64_t{a.snapshot_every_s})
      .Bind(26, a.node);
}

Result<SnapshotState> ReadSnapshot(const sql::Stmt& s) {
  SnapshotState snap;
  snap.id = s.Text(0);
  snap.addon_id = s.Text(1);
  snap.label = s.Text(2);
  const std::int64_t status = s.Int(3);
  const std::int64_t verification = s.Int(11);
  if (status < 0 || status > static_cast<std::int64_t>(SnapshotStatus::kFailed) ||
      verification < 0 || verification > static_cast<std::int64_t>(SnapshotVerification::kFailed)) {
    return Damaged("snapshot " + snap.id);
  }
  snap.status = static_cast<SnapshotStatus>(status);
  snap.sha256 = ToBytes(s.Blob(4));
  snap.bytes = static_cast<std::uint64_t>(s.Int(5));
  snap.page_count = static_cast<std::uint64_t>(s.Int(6));
  snap.failure_reason = s.Text(7);
  snap.actor = s.Text(8);
  snap.requested_at_ms = s.Int(9);
  snap.requested_seq = static_cast<std::uint64_t>(s.Int(10));
  snap.verification = static_cast<SnapshotVerification>(verification);
  snap.verify_detail = s.Text(12);
  snap.verified_at_ms = s.Int(13);
  snap.deleted = s.Int(14) != 0;
  snap.deleted_reason = s.Text(15);
  return snap;
}

void BindSnapshot(sql::Stmt& s, const SnapshotState& snap) {
  s.Bind(1, snap.id)
      .Bind(2, snap.addon_id)
      .Bind(3, snap.label)
      .Bind(4, static_cast<std::int64_t>(snap.status))
      .Bind(5, ByteView(snap.sha256))
      .Bind(6, I(snap.bytes))
      .Bind(7, I(snap.page_count))
      .Bind(8, snap.failure_reason)
      .Bind(9, snap.actor)
      .Bind(10, snap.requested_at_ms)
      .Bind(11, I(snap.requested_seq))
      .Bind(12, static_cast<std::int64_t>(snap.verification))
      .Bind(13, snap.verify_detail)
      .Bind(14, snap.verified_at_ms)
      .Bind(15, std::int64_t{snap.deleted})
      .Bind(16, snap.deleted_reason);
}

// The announced nodes as meta "nodes": "<length>:<name><length>:<url>" per
// node, in name order (lengths in decimal bytes), so any text round-trips.
std::string EncodeNodes(const std::map<std::string, std::string>& nodes) {
  std::string out;
  for (const auto& [name, url] : nodes) {
    out += std::to_string(name.size()) + ":" + name + std::to_string(url.size()) + ":" + url;
  }
  return out;
}

Result<std::map<std::string, std::string>> DecodeNodes(const std::string& text) {
  std::map<std::string, std::string> nodes;
  std::size_t at = 0;
  auto field = [&](std::string* out) -> bool {
    const std::size_t colon = text.find(':', at);
    if (colon == std::string::npos || colon == at || colon - at > 6) return false;
    const std::string digits = text.substr(at, colon - at);
    if (digits.find_first_not_of("0123456789") != std::string::npos) return false;
    const std::size_t length = std::stoul(digits);
    if (length > text.size() - colon - 1) return false;
    *out = text.substr(colon + 1, length);
    at = colon + 1 + length;
    return true;
  };
  while (at < text.size()) {
    std::string name, url;
    if (!field(&name) || !field(&url)) return Damaged("meta nodes");
    nodes[name] = url;
  }
  return nodes;
}

Result<std::int64_t> PragmaVersion(sql::Db& db) {
  VIA_ASSIGN_OR_RETURN(sql::Stmt version, db.Prepare("PRAGMA user_version"));
  VIA_ASSIGN_OR_RETURN(bool row, version.Step());
  return row ? version.Int(0) : 0;
}

// Steps `stmt` through its rows, calling `row` for each; resets it after.
template <typename F>
Status ForEachRow(sql::Stmt& stmt, F&& row) {
  while (true) {
    Result<bool> has = stmt.Step();
    if (!has.ok()) {
      stmt.Reset();
      return has.status();
    }
    if (!*has) break;
    Status s = row(stmt);
    if (!s.ok()) {
      stmt.Reset();
      return s;
    }
  }
  stmt.Reset();
  return Status::Ok();
}

}  // namespace

// The prepared statements of one connection, and the row-level reads and
// writes built on them.
class ReadModel::Rows {
 public:
  explicit Rows(sql::Db& db) : db_(db) {}

  // Rows stepped by the reads below since this connection opened.
  std::uint64_t rows_read() const { return rows_read_; }

  Result<std::string> Meta(const std::string& key) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s, db_.Cached("SELECT value FROM meta WHERE key = ?"));
    s->Bind(1, key);
    std::string value;
    VIA_RETURN_IF_ERROR(Each(*s, [&](sql::Stmt& row) {
      value = row.Text(0);
      return Status::Ok();
    }));
    return value;
  }

  Status SetMeta(const std::string& key, const std::string& value) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s,
                         db_.Cached("INSERT OR REPLACE INTO meta(key, value) VALUES(?,?)"));
    s->Bind(1, key).Bind(2, value);
    return s->Run();
  }

  // Statements built once per process from the column lists (Cached looks
  // them up by text).
  inline static const std::string kSelectAddon =
      std::string("SELECT ") + kAddonColumns + " FROM addons WHERE id = ?";
  inline static const std::string kPutAddon = std::string("INSERT OR REPLACE INTO addons(") +
                                              kAddonColumns + ") VALUES(" +
                                              Placeholders(kAddonColumnCount) + ")";
  inline static const std::string kSelectSnapshot =
      std::string("SELECT ") + kSnapshotColumns + " FROM snapshots WHERE id = ?";
  inline static const std::string kSelectSnapshotsOf =
      std::string("SELECT ") + kSnapshotColumns +
      " FROM snapshots WHERE addon_id = ? ORDER BY requested_seq";
  inline static const std::string kPutSnapshot = std::string("INSERT OR REPLACE INTO snapshots(") +
                                                 kSnapshotColumns + ") VALUES(" +
                                                 Placeholders(kSnapshotColumnCount) + ")";

  Result<std::optional<AddonState>> Addon(const std::string& id) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s, db_.Cached(kSelectAddon));
    s->Bind(1, id);
    std::optional<AddonState> out;
    VIA_RETURN_IF_ERROR(Each(*s, [&](sql::Stmt& row) -> Status {
      VIA_ASSIGN_OR_RETURN(out, ReadAddon(row));
      return Status::Ok();
    }));
    if (out) VIA_RETURN_IF_ERROR(Generations(*out));
    return out;
  }

  Status Generations(AddonState& a) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s, db_.Cached("SELECT number, fingerprint, salt, revoked FROM "
                                                  "generations WHERE addon_id = ? ORDER BY idx"));
    s->Bind(1, a.id);
    return Each(*s, [&](sql::Stmt& row) {
      a.generations.push_back(GenerationState{static_cast<std::uint32_t>(row.Int(0)),
                                              ToBytes(row.Blob(1)), ToBytes(row.Blob(2)),
                                              row.Int(3) != 0});
      return Status::Ok();
    });
  }

  Result<std::optional<std::string>> Name(const std::string& name) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s, db_.Cached("SELECT addon_id FROM names WHERE name = ?"));
    s->Bind(1, name);
    return OptionalText(*s);
  }

  Result<std::optional<std::string>> Binding(const BindingKey& key) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s, db_.Cached("SELECT addon_id FROM bindings WHERE app = ? "
                                                  "AND binding = ?"));
    s->Bind(1, key.first).Bind(2, key.second);
    return OptionalText(*s);
  }

  Result<std::vector<BindingKey>> BindingsOfAddon(const std::string& id) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s,
                         db_.Cached("SELECT app, binding FROM bindings WHERE addon_id = ?"));
    s->Bind(1, id);
    std::vector<BindingKey> out;
    VIA_RETURN_IF_ERROR(Each(*s, [&](sql::Stmt& row) {
      out.emplace_back(row.Text(0), row.Text(1));
      return Status::Ok();
    }));
    return out;
  }

  Result<std::vector<std::pair<BindingKey, std::string>>> BindingsOfApp(const std::string& app) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s,
                         db_.Cached("SELECT binding, addon_id FROM bindings WHERE app = ?"));
    s->Bind(1, app);
    std::vector<std::pair<BindingKey, std::string>> out;
    VIA_RETURN_IF_ERROR(Each(*s, [&](sql::Stmt& row) {
      out.push_back({{app, row.Text(0)}, row.Text(1)});
      return Status::Ok();
    }));
    return out;
  }

  Result<std::optional<SnapshotState>> Snapshot(const std::string& id) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s, db_.Cached(kSelectSnapshot));
    s->Bind(1, id);
    std::optional<SnapshotState> out;
    VIA_RETURN_IF_ERROR(Each(*s, [&](sql::Stmt& row) -> Status {
      VIA_ASSIGN_OR_RETURN(out, ReadSnapshot(row));
      return Status::Ok();
    }));
    return out;
  }

  Result<std::vector<SnapshotState>> SnapshotsOf(const std::string& addon_id) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s,
                         db_.Cached(kSelectSnapshotsOf));
    s->Bind(1, addon_id);
    std::vector<SnapshotState> out;
    VIA_RETURN_IF_ERROR(Each(*s, [&](sql::Stmt& row) -> Status {
      VIA_ASSIGN_OR_RETURN(SnapshotState snap, ReadSnapshot(row));
      out.push_back(std::move(snap));
      return Status::Ok();
    }));
    return out;
  }

  Result<std::vector<ReleaseState>> ReleasesOf(const std::string& app) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* releases,
                         db_.Cached("SELECT position, id, created_at_ms, seq FROM releases WHERE "
                                    "app = ? ORDER BY position"));
    releases->Bind(1, app);
    std::vector<ReleaseState> out;
    VIA_RETURN_IF_ERROR(Each(*releases, [&](sql::Stmt& row) -> Status {
      if (row.Int(0) != static_cast<std::int64_t>(out.size())) {
        return Damaged("releases of " + app + " have a gap");
      }
      out.push_back(
          ReleaseState{app, row.Text(1), {}, row.Int(2), static_cast<std::uint64_t>(row.Int(3))});
      return Status::Ok();
    }));
    VIA_ASSIGN_OR_RETURN(sql::Stmt* claims,
                         db_.Cached("SELECT position, binding, addon_id FROM claims WHERE app = ? "
                                    "ORDER BY position, idx"));
    claims->Bind(1, app);
    VIA_RETURN_IF_ERROR(Each(*claims, [&](sql::Stmt& row) -> Status {
      const std::int64_t position = row.Int(0);
      if (position < 0 || position >= static_cast<std::int64_t>(out.size())) {
        return Damaged("a claim of " + app + " names no release");
      }
      out[static_cast<std::size_t>(position)].claims.push_back(
          BindingClaim{row.Text(1), row.Text(2)});
      return Status::Ok();
    }));
    return out;
  }

  // The app's latest release and its claims, by two primary-key lookups
  // (releases(app, position), claims(app, position, idx)): what readiness
  // reads, whatever the number of releases before it.
  Result<std::optional<std::pair<std::size_t, ReleaseState>>> LatestRelease(const std::string& app) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* latest,
                         db_.Cached("SELECT position, id, created_at_ms, seq FROM releases WHERE "
                                    "app = ? ORDER BY position DESC LIMIT 1"));
    latest->Bind(1, app);
    std::optional<std::pair<std::size_t, ReleaseState>> out;
    VIA_RETURN_IF_ERROR(Each(*latest, [&](sql::Stmt& row) -> Status {
      if (row.Int(0) < 0) return Damaged("a release of " + app + " has a negative position");
      out.emplace(static_cast<std::size_t>(row.Int(0)),
                  ReleaseState{app, row.Text(1), {}, row.Int(2), static_cast<std::uint64_t>(row.Int(3))});
      return Status::Ok();
    }));
    if (!out) return out;
    VIA_ASSIGN_OR_RETURN(sql::Stmt* claims,
                         db_.Cached("SELECT binding, addon_id FROM claims WHERE app = ? AND "
                                    "position = ? ORDER BY idx"));
    claims->Bind(1, app).Bind(2, static_cast<std::int64_t>(out->first));
    VIA_RETURN_IF_ERROR(Each(*claims, [&](sql::Stmt& row) -> Status {
      out->second.claims.push_back(BindingClaim{row.Text(0), row.Text(1)});
      return Status::Ok();
    }));
    return out;
  }

  Result<std::vector<std::string>> AddonIdsNamed(const std::string& original_name) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s,
                         db_.Cached("SELECT id FROM addons WHERE original_name = ?"));
    s->Bind(1, original_name);
    std::vector<std::string> out;
    VIA_RETURN_IF_ERROR(Each(*s, [&](sql::Stmt& row) {
      out.push_back(row.Text(0));
      return Status::Ok();
    }));
    return out;
  }

  Result<std::vector<std::string>> AppsClaiming(const std::string& addon_id) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s,
                         db_.Cached("SELECT DISTINCT app FROM claims WHERE addon_id = ?"));
    s->Bind(1, addon_id);
    std::vector<std::string> out;
    VIA_RETURN_IF_ERROR(Each(*s, [&](sql::Stmt& row) {
      out.push_back(row.Text(0));
      return Status::Ok();
    }));
    return out;
  }

  Status DeliveriesOf(const std::string& addon_id, State& into) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s, db_.Cached("SELECT generation, app, release_id FROM "
                                                  "deliveries WHERE addon_id = ?"));
    s->Bind(1, addon_id);
    return Each(*s, [&](sql::Stmt& row) {
      into.deliveries.insert(
          {addon_id, static_cast<std::uint32_t>(row.Int(0)), row.Text(1), row.Text(2)});
      return Status::Ok();
    });
  }

  // Writes `after`'s add-on row and the generations that differ from `before`.
  Status PutAddon(const AddonState* before, const AddonState& after) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* put,
                         db_.Cached(kPutAddon));
    BindAddon(*put, after);
    VIA_RETURN_IF_ERROR(put->Run());
    VIA_ASSIGN_OR_RETURN(sql::Stmt* generation,
                         db_.Cached("INSERT OR REPLACE INTO generations(addon_id, idx, number, "
                                    "fingerprint, salt, revoked) VALUES(?,?,?,?,?,?)"));
    for (std::size_t i = 0; i < after.generations.size(); ++i) {
      const GenerationState& g = after.generations[i];
      if (before && i < before->generations.size() && before->generations[i] == g) continue;
      generation->Bind(1, after.id)
          .Bind(2, static_cast<std::int64_t>(i))
          .Bind(3, std::int64_t{g.number})
          .Bind(4, ByteView(g.fingerprint))
          .Bind(5, ByteView(g.salt))
          .Bind(6, std::int64_t{g.revoked});
      VIA_RETURN_IF_ERROR(generation->Run());
    }
    return Status::Ok();
  }

  Status PutName(const std::string& name, const std::optional<std::string>& addon_id) {
    if (!addon_id) {
      VIA_ASSIGN_OR_RETURN(sql::Stmt* s, db_.Cached("DELETE FROM names WHERE name = ?"));
      s->Bind(1, name);
      return s->Run();
    }
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s,
                         db_.Cached("INSERT OR REPLACE INTO names(name, addon_id) VALUES(?,?)"));
    s->Bind(1, name).Bind(2, *addon_id);
    return s->Run();
  }

  Status PutBinding(const BindingKey& key, const std::optional<std::string>& addon_id) {
    if (!addon_id) {
      VIA_ASSIGN_OR_RETURN(sql::Stmt* s,
                           db_.Cached("DELETE FROM bindings WHERE app = ? AND binding = ?"));
      s->Bind(1, key.first).Bind(2, key.second);
      return s->Run();
    }
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s, db_.Cached("INSERT OR REPLACE INTO bindings(app, binding, "
                                                  "addon_id) VALUES(?,?,?)"));
    s->Bind(1, key.first).Bind(2, key.second).Bind(3, *addon_id);
    return s->Run();
  }

  Status PutSnapshot(const SnapshotState& snap) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s,
                         db_.Cached(kPutSnapshot));
    BindSnapshot(*s, snap);
    return s->Run();
  }

  // Appends `release` as the app's next release.
  Status AddRelease(const ReleaseState& release) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* count,
                         db_.Cached("SELECT count(*) FROM releases WHERE app = ?"));
    count->Bind(1, release.app);
    std::int64_t position = 0;
    VIA_RETURN_IF_ERROR(Each(*count, [&](sql::Stmt& row) {
      position = row.Int(0);
      return Status::Ok();
    }));
    VIA_ASSIGN_OR_RETURN(sql::Stmt* put, db_.Cached("INSERT OR REPLACE INTO releases(app, "
                                                    "position, id, created_at_ms, seq) "
                                                    "VALUES(?,?,?,?,?)"));
    put->Bind(1, release.app)
        .Bind(2, position)
        .Bind(3, release.id)
        .Bind(4, release.created_at_ms)
        .Bind(5, I(release.seq));
    VIA_RETURN_IF_ERROR(put->Run());
    VIA_ASSIGN_OR_RETURN(sql::Stmt* claim, db_.Cached("INSERT OR REPLACE INTO claims(app, "
                                                      "position, idx, binding, addon_id) "
                                                      "VALUES(?,?,?,?,?)"));
    for (std::size_t i = 0; i < release.claims.size(); ++i) {
      claim->Bind(1, release.app)
          .Bind(2, position)
          .Bind(3, static_cast<std::int64_t>(i))
          .Bind(4, release.claims[i].binding)
          .Bind(5, release.claims[i].addon_id);
      VIA_RETURN_IF_ERROR(claim->Run());
    }
    return Status::Ok();
  }

  Status PutDelivery(const std::tuple<std::string, std::uint32_t, std::string, std::string>& d) {
    VIA_ASSIGN_OR_RETURN(sql::Stmt* s, db_.Cached("INSERT OR IGNORE INTO deliveries(addon_id, "
                                                  "generation, app, release_id) VALUES(?,?,?,?)"));
    s->Bind(1, std::get<0>(d))
        .Bind(2, std::int64_t{std::get<1>(d)})
        .Bind(3, std::get<2>(d))
        .Bind(4, std::get<3>(d));
    return s->Run();
  }

 private:
  // ForEachRow, counted.
  template <typename F>
  Status Each(sql::Stmt& stmt, F&& row) {
    return ForEachRow(stmt, [&](sql::Stmt& s) -> Status {
      ++rows_read_;
      return row(s);
    });
  }

  Result<std::optional<std::string>> OptionalText(sql::Stmt& s) {
    std::optional<std::string> out;
    VIA_RETURN_IF_ERROR(Each(s, [&](sql::Stmt& row) {
      out = row.Text(0);
      return Status::Ok();
    }));
    return out;
  }

  sql::Db& db_;
  std::uint64_t rows_read_ = 0;
};

namespace {

// A partial State loaded from the rows on demand: `base` as stored, `work`
// the same plus whatever records were applied since. Every key is loaded at
// most once (an absent row is remembered as absent), so a record applied to
// `work` always finds the rows KeysOf names, exactly as the whole State
// would hold them; Flush writes back what differs.
class Slice {
 public:
  explicit Slice(ReadModel::Rows& rows) : rows_(rows) {}

  // Loads the meta values every slice carries.
  Status LoadMeta() {
    VIA_ASSIGN_OR_RETURN(base_.log_id, rows_.Meta("log_id"));
    VIA_ASSIGN_OR_RETURN(base_.origin, rows_.Meta("origin"));
    VIA_ASSIGN_OR_RETURN(std::string tokens, rows_.Meta("tokens_issued"));
    VIA_ASSIGN_OR_RETURN(base_.tokens_issued, ParseCount(tokens, "tokens_issued"));
    VIA_ASSIGN_OR_RETURN(std::string nodes, rows_.Meta("nodes"));
    VIA_ASSIGN_OR_RETURN(base_.nodes, DecodeNodes(nodes));
    work_.log_id = base_.log_id;
    work_.origin = base_.origin;
    work_.tokens_issued = base_.tokens_issued;
    work_.nodes = base_.nodes;
    return Status::Ok();
  }

  Status Ensure(const StateKeys& keys) {
    for (const auto& id : keys.addons) VIA_RETURN_IF_ERROR(EnsureAddon(id));
    for (const auto& name : keys.names) VIA_RETURN_IF_ERROR(EnsureName(name));
    for (const auto& key : keys.bindings) VIA_RETURN_IF_ERROR(EnsureBinding(key));
    for (const auto& id : keys.bindings_of) VIA_RETURN_IF_ERROR(EnsureBindingsOf(id));
    for (const auto& id : keys.snapshots) VIA_RETURN_IF_ERROR(EnsureSnapshot(id));
    for (const auto& app : keys.releases_of) VIA_RETURN_IF_ERROR(EnsureReleases(app));
    for (const auto& app : keys.latest_release_of) VIA_RETURN_IF_ERROR(EnsureLatestRelease(app));
    for (const auto& app : keys.bindings_for_app) {
      if (!apps_bound_.insert(app).second) continue;
      VIA_ASSIGN_OR_RETURN(auto bound, rows_.BindingsOfApp(app));
      for (const auto& [key, id] : bound) VIA_RETURN_IF_ERROR(EnsureBinding(key));
    }
    for (const auto& id : keys.claims_on) {
      VIA_ASSIGN_OR_RETURN(auto apps, rows_.AppsClaiming(id));
      for (const auto& app : apps) VIA_RETURN_IF_ERROR(EnsureReleases(app));
    }
    for (const auto& id : keys.snapshots_of) {
      if (!snapshots_of_.insert(id).second) continue;
      VIA_ASSIGN_OR_RETURN(auto snaps, rows_.SnapshotsOf(id));
      for (auto& snap : snaps) {
        if (!snapshots_.insert(snap.id).second) continue;
        base_.snapshots[snap.id] = snap;
        work_.snapshots[snap.id] = std::move(snap);
      }
    }
    for (const auto& name : keys.incarnations_of) {
      VIA_ASSIGN_OR_RETURN(auto ids, rows_.AddonIdsNamed(name));
      for (const auto& id : ids) VIA_RETURN_IF_ERROR(EnsureAddon(id));
    }
    for (const auto& id : keys.deliveries_of) {
      if (!deliveries_of_.insert(id).second) continue;
      // Deliveries are only ever added: the stored ones go to both sides.
      VIA_RETURN_IF_ERROR(rows_.DeliveriesOf(id, base_));
      VIA_RETURN_IF_ERROR(rows_.DeliveriesOf(id, work_));
    }
    return Status::Ok();
  }

  State& work() { return work_; }

  // Writes every loaded row whose value differs between base and work.
  Status Flush() {
    for (const auto& id : addons_) {
      auto b = base_.addons.find(id);
      auto w = work_.addons.find(id);
      if (w == work_.addons.end()) continue;  // add-ons are never removed
      if (b != base_.addons.end() && b->second == w->second) continue;
      VIA_RETURN_IF_ERROR(
          rows_.PutAddon(b == base_.addons.end() ? nullptr : &b->second, w->second));
    }
    for (const auto& name : names_) {
      VIA_RETURN_IF_ERROR(FlushEntry(base_.names, work_.names, name,
                                     [&](const std::optional<std::string>& v) {
                                       return rows_.PutName(name, v);
                                     }));
    }
    for (const auto& key : bindings_) {
      VIA_RETURN_IF_ERROR(FlushEntry(base_.bindings, work_.bindings, key,
                                     [&](const std::optional<std::string>& v) {
                                       return rows_.PutBinding(key, v);
                                     }));
    }
    for (const auto& [id, snap] : work_.snapshots) {
      auto b = base_.snapshots.find(id);
      if (b != base_.snapshots.end() && b->second == snap) continue;
      VIA_RETURN_IF_ERROR(rows_.PutSnapshot(snap));
    }
    for (const auto& [app, list] : work_.releases) {
      auto b = base_.releases.find(app);
      const std::size_t stored = b == base_.releases.end() ? 0 : b->second.size();
      for (std::size_t i = stored; i < list.size(); ++i) {
        VIA_RETURN_IF_ERROR(rows_.AddRelease(list[i]));
      }
    }
    for (const auto& d : work_.deliveries) {
      if (base_.deliveries.count(d)) continue;
      VIA_RETURN_IF_ERROR(rows_.PutDelivery(d));
    }
    if (work_.log_id != base_.log_id) VIA_RETURN_IF_ERROR(rows_.SetMeta("log_id", work_.log_id));
    if (work_.origin != base_.origin) VIA_RETURN_IF_ERROR(rows_.SetMeta("origin", work_.origin));
    if (work_.tokens_issued != base_.tokens_issued) {
      VIA_RETURN_IF_ERROR(rows_.SetMeta("tokens_issued", std::to_string(work_.tokens_issued)));
    }
    if (work_.nodes != base_.nodes) VIA_RETURN_IF_ERROR(rows_.SetMeta("nodes", EncodeNodes(work_.nodes)));
    return Status::Ok();
  }

  // Rows loaded or created so far: what the slice holds in memory.
  std::size_t Size() const {
    return addons_.size() + names_.size() + bindings_.size() + snapshots_.size() +
           work_.snapshots.size() + work_.deliveries.size() + releases_.size() +
           work_.releases.size();
  }

  // Writes what changed (Flush) and then forgets every row, keeping only the
  // meta values: the rows now in the open write transaction are what the
  // next Ensure reads. A long catch-up or a rebuild holds one window of rows
  // in memory, never the whole state.
  Status FlushAndForget() {
    VIA_RETURN_IF_ERROR(Flush());
    State meta;
    meta.log_id = work_.log_id;
    meta.origin = work_.origin;
    meta.tokens_issued = work_.tokens_issued;
    meta.nodes = work_.nodes;
    base_ = meta;
    work_ = std::move(meta);
    for (auto* set : {&addons_, &names_, &snapshots_, &releases_, &bindings_of_, &apps_bound_,
                      &snapshots_of_, &deliveries_of_}) {
      set->clear();
    }
    bindings_.clear();
    return Status::Ok();
  }

  static Result<std::uint64_t> ParseCount(const std::string& text, const std::string& what) {
    if (text.empty()) return std::uint64_t{0};
    if (text.size() > 20 || text.find_first_not_of("0123456789") != std::string::npos) {
      return Damaged(what + " is '" + text + "'");
    }
    return static_cast<std::uint64_t>(std::stoull(text));
  }

 private:
  template <typename Map, typename Key, typename Put>
  static Status FlushEntry(const Map& base, const Map& work, const Key& key, Put&& put) {
    auto b = base.find(key);
    auto w = work.find(key);
    const std::optional<std::string> before =
        b == base.end() ? std::nullopt : std::optional<std::string>(b->second);
    const std::optional<std::string> after =
        w == work.end() ? std::nullopt : std::optional<std::string>(w->second);
    if (before == after) return Status::Ok();
    return put(after);
  }

  Status EnsureAddon(const std::string& id) {
    if (!addons_.insert(id).second) return Status::Ok();
    VIA_ASSIGN_OR_RETURN(auto addon, rows_.Addon(id));
    if (!addon) return Status::Ok();
    base_.addons[id] = *addon;
    work_.addons[id] = *addon;
    // Its names: AddonRenamed and AddonDestroyed drop its live name.
    VIA_RETURN_IF_ERROR(EnsureName(addon->name));
    return EnsureName(addon->original_name);
  }

  Status EnsureName(const std::string& name) {
    if (!names_.insert(name).second) return Status::Ok();
    VIA_ASSIGN_OR_RETURN(auto id, rows_.Name(name));
    if (!id) return Status::Ok();
    base_.names[name] = *id;
    work_.names[name] = *id;
    // The add-on it names, so that lookups by name find it.
    return EnsureAddon(*id);
  }

  Status EnsureBinding(const BindingKey& key) {
    if (!bindings_.insert(key).second) return Status::Ok();
    VIA_ASSIGN_OR_RETURN(auto id, rows_.Binding(key));
    if (!id) return Status::Ok();
    base_.bindings[key] = *id;
    work_.bindings[key] = *id;
    return Status::Ok();
  }

  Status EnsureBindingsOf(const std::string& id) {
    if (!bindings_of_.insert(id).second) return Status::Ok();
    VIA_ASSIGN_OR_RETURN(auto keys, rows_.BindingsOfAddon(id));
    for (const auto& key : keys) VIA_RETURN_IF_ERROR(EnsureBinding(key));
    return Status::Ok();
  }

  Status EnsureSnapshot(const std::string& id) {
    if (!snapshots_.insert(id).second) return Status::Ok();
    VIA_ASSIGN_OR_RETURN(auto snap, rows_.Snapshot(id));
    if (!snap) return Status::Ok();
    base_.snapshots[id] = *snap;
    work_.snapshots[id] = std::move(*snap);
    return Status::Ok();
  }

  // Only the latest release (StateKeys::latest_release_of), unless the whole
  // list is loaded; never written back (Flush writes only releases past the
  // ones loaded, at the positions the table gives them).
  Status EnsureLatestRelease(const std::string& app) {
    if (releases_.count(app) || !latest_releases_.insert(app).second) return Status::Ok();
    VIA_ASSIGN_OR_RETURN(auto latest, rows_.LatestRelease(app));
    if (!latest) return Status::Ok();
    base_.releases[app] = {latest->second};
    work_.releases[app] = {std::move(latest->second)};
    return Status::Ok();
  }

  Status EnsureReleases(const std::string& app) {
    if (!releases_.insert(app).second) return Status::Ok();
    VIA_ASSIGN_OR_RETURN(auto list, rows_.ReleasesOf(app));
    if (list.empty()) return Status::Ok();
    base_.releases[app] = list;
    work_.releases[app] = std::move(list);
    return Status::Ok();
  }

  ReadModel::Rows& rows_;
  State base_;
  State work_;
  std::set<std::string> addons_, names_, snapshots_, releases_, bindings_of_, apps_bound_,
      snapshots_of_, deliveries_of_, latest_releases_;
  std::set<BindingKey> bindings_;
};

}  // namespace

Hash256 StateDigest(const State& state) { return crypto::Sha256::Digest(CanonicalForm(state)); }

Result<State> Replay(eventstore::LogStore& log, std::uint64_t until,
                     const std::function<void(const Record&)>& visit) {
  State state;
  Status error;
  VIA_RETURN_IF_ERROR(log.Scan(1, until, [&](const eventstore::StoredRecord& row) {
    auto record = eventstore::DecodeRecord(row.bytes);
    if (!record.ok()) {
      error = record.status().WithContext("seq " + std::to_string(row.seq));
      return false;
    }
    Apply(state, *record);
    if (visit) visit(*record);
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

ReadModel::ReadModel(std::unique_ptr<sql::Db> db, std::string path)
    : db_(std::move(db)), path_(std::move(path)) {}

ReadModel::~ReadModel() = default;

Result<std::unique_ptr<ReadModel>> ReadModel::Open(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto db = sql::Db::Open(path, sql::OpenOptions{});
    if (!db.ok() && ::access(std::filesystem::path(path).parent_path().c_str(), W_OK) != 0 &&
        (errno == EROFS || errno == EACCES)) {
      db = Status(StatusCode::kInternal, reason::kHomeNotWritable,
                  "cannot create the read model at " + path + ": " + std::strerror(errno));
    }
    if (!db.ok() && db.status().reason() == reason::kHomeNotWritable) {
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
      model->rows_ = std::make_unique<Rows>(*model->db_);
      return model;
    }
    if (!db.ok() && db.status().code() != StatusCode::kDataLoss) return db.status();
    if (db.ok()) {
      std::unique_ptr<ReadModel> model(new ReadModel(std::move(db).value(), path));
      Status schema = model->EnsureSchema();
      if (schema.ok()) {
        model->rows_ = std::make_unique<Rows>(*model->db_);
        return model;
      }
      if (schema.code() != StatusCode::kDataLoss && schema.reason() != "read_model_version") {
        return schema;
      }
    }
    // Damaged or from another version: it is derived data, so start afresh.
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(path + suffix, ec);
    }
  }
  return Internal("cannot create the read model at " + path);
}

Status ReadModel::EnsureSchema() {
  // Fast path for every open after the first: the schema is there and current.
  {
    VIA_ASSIGN_OR_RETURN(std::int64_t version, PragmaVersion(*db_));
    if (version == kReadModelVersion) return Status::Ok();
    if (version != 0) {
      return FailedPrecondition("read_model_version",
                                "read model version " + std::to_string(version));
    }
  }
  // Commands started together may all find a fresh home without a read model
  // and create it at once. Switching a new file to WAL needs an exclusive lock
  // that SQLite takes without calling the busy handler, so that one is retried;
  // the schema is then written in one BEGIN IMMEDIATE transaction (which
  // waits for the lock) that checks the version again, so one process creates
  // it and the others find it done.
  VIA_RETURN_IF_ERROR(db_->ExecRetryingLocks("PRAGMA journal_mode=WAL"));
  VIA_RETURN_IF_ERROR(db_->Exec("PRAGMA synchronous=NORMAL"));
  VIA_ASSIGN_OR_RETURN(sql::Transaction tx, sql::Transaction::BeginImmediate(*db_));
  VIA_ASSIGN_OR_RETURN(std::int64_t version, PragmaVersion(*db_));
  if (version == kReadModelVersion) return tx.Commit();
  if (version != 0) {
    return FailedPrecondition("read_model_version", "read model version " + std::to_string(version));
  }
  VIA_RETURN_IF_ERROR(db_->Exec(kSchema));
  VIA_RETURN_IF_ERROR(db_->Exec("PRAGMA user_version=" + std::to_string(kReadModelVersion)));
  return tx.Commit();
}

Result<std::uint64_t> ReadModel::Cursor() {
  VIA_ASSIGN_OR_RETURN(std::string seq, rows_->Meta("cursor_seq"));
  return Slice::ParseCount(seq, "cursor_seq");
}

Result<eventstore::Head> ReadModel::CursorHead() {
  VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, sql::ReadTransaction::Begin(*db_));
  VIA_ASSIGN_OR_RETURN(std::uint64_t seq, Cursor());
  VIA_ASSIGN_OR_RETURN(std::string hash, rows_->Meta("cursor_hash"));
  eventstore::Head head;
  head.seq = seq;
  if (seq > 0) {
    auto bytes = HexDecode(hash);
    if (!bytes || bytes->size() != head.hash.size()) return Damaged("the cursor hash");
    std::copy(bytes->begin(), bytes->end(), head.hash.begin());
  }
  return head;
}

Result<State> ReadModel::LoadSlice(const StateKeys& keys) {
  VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, sql::ReadTransaction::Begin(*db_));
  Slice slice(*rows_);
  VIA_RETURN_IF_ERROR(slice.LoadMeta());
  VIA_RETURN_IF_ERROR(slice.Ensure(keys));
  VIA_ASSIGN_OR_RETURN(slice.work().seq, Cursor());
  return std::move(slice.work());
}

Result<std::optional<AddonState>> ReadModel::FindAddon(const std::string& name_or_id) {
  VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, sql::ReadTransaction::Begin(*db_));
  VIA_ASSIGN_OR_RETURN(auto id, rows_->Name(name_or_id));
  return rows_->Addon(id.value_or(name_or_id));
}

Result<std::vector<AddonState>> ReadModel::AddonsNamed(const std::string& name) {
  VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, sql::ReadTransaction::Begin(*db_));
  VIA_ASSIGN_OR_RETURN(sql::Stmt stmt,
                       db_->Prepare(std::string("SELECT ") + kAddonColumns +
                                    " FROM addons WHERE original_name = ? ORDER BY created_seq"));
  stmt.Bind(1, name);
  std::vector<AddonState> out;
  VIA_RETURN_IF_ERROR(ForEachRow(stmt, [&](sql::Stmt& s) -> Status {
    VIA_ASSIGN_OR_RETURN(AddonState a, ReadAddon(s));
    out.push_back(std::move(a));
    return Status::Ok();
  }));
  for (AddonState& a : out) VIA_RETURN_IF_ERROR(rows_->Generations(a));
  return out;
}

Status ReadModel::ScanAddons(
    bool all,
    const std::function<bool(const AddonState&, const std::vector<BindingKey>&)>& visit) {
  VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, sql::ReadTransaction::Begin(*db_));
  // Add-ons in stored-name order straight from an index (live ones: the
  // names table, whose key is the live name; all: addons_by_name, whose
  // entries end with the id), each with its generations and bindings by two
  // indexed lookups: no sort, and memory for one add-on at a time.
  std::string columns;
  for (std::string_view c : {"id", "name", "original_name", "provider", "app",
                             "requested_binding", "phase", "failure_reason", "data_present",
                             "restoring_snapshot", "restore_safety_snapshot", "pending_snapshot",
                             "pending_repair", "created_at_ms", "created_seq", "updated_seq",
                             "check_seq", "check_at_ms", "check_ok", "check_detail",
                             "content_seq", "keep_last", "keep_daily", "keep_weekly",
                             "snapshot_every_s", "node"}) {
    columns += (columns.empty() ? "a." : ", a.") + std::string(c);
  }
  VIA_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_->Prepare(all ? "SELECT " + columns + " FROM addons a INDEXED BY addons_by_name ORDER BY a.name, a.id"
                       : "SELECT " + columns +
                             " FROM names n JOIN addons a ON a.id = n.addon_id ORDER BY n.name"));
  VIA_ASSIGN_OR_RETURN(sql::Stmt generations,
                       db_->Prepare("SELECT number, fingerprint, salt, revoked FROM generations "
                                    "WHERE addon_id = ? ORDER BY idx"));
  VIA_ASSIGN_OR_RETURN(sql::Stmt bound, db_->Prepare("SELECT app, binding FROM bindings "
                                                     "WHERE addon_id = ? ORDER BY app, binding"));
  std::vector<BindingKey> bindings;
  bool go_on = true;
  Status s = ForEachRow(stmt, [&](sql::Stmt& row) -> Status {
    if (!go_on) return Status::Ok();
    VIA_ASSIGN_OR_RETURN(AddonState addon, ReadAddon(row));
    generations.Bind(1, addon.id);
    VIA_RETURN_IF_ERROR(ForEachRow(generations, [&](sql::Stmt& g) {
      addon.generations.push_back(GenerationState{static_cast<std::uint32_t>(g.Int(0)),
                                                  ToBytes(g.Blob(1)), ToBytes(g.Blob(2)),
                                                  g.Int(3) != 0});
      return Status::Ok();
    }));
    bindings.clear();
    bound.Bind(1, addon.id);
    VIA_RETURN_IF_ERROR(ForEachRow(bound, [&](sql::Stmt& b) {
      bindings.emplace_back(b.Text(0), b.Text(1));
      return Status::Ok();
    }));
    go_on = visit(addon, bindings);
    return Status::Ok();
  });
  return s;
}

Result<State> ReadModel::Load() {
  VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, sql::ReadTransaction::Begin(*db_));
  State state;
  VIA_ASSIGN_OR_RETURN(state.seq, Cursor());
  VIA_ASSIGN_OR_RETURN(state.log_id, rows_->Meta("log_id"));
  VIA_ASSIGN_OR_RETURN(state.origin, rows_->Meta("origin"));
  VIA_ASSIGN_OR_RETURN(std::string tokens, rows_->Meta("tokens_issued"));
  VIA_ASSIGN_OR_RETURN(state.tokens_issued, Slice::ParseCount(tokens, "tokens_issued"));
  VIA_ASSIGN_OR_RETURN(std::string nodes, rows_->Meta("nodes"));
  VIA_ASSIGN_OR_RETURN(state.nodes, DecodeNodes(nodes));
  VIA_RETURN_IF_ERROR(ScanAddons(true, [&](const AddonState& a, const std::vector<BindingKey>&) {
    state.addons[a.id] = a;
    return true;
  }));
  VIA_ASSIGN_OR_RETURN(sql::Stmt names, db_->Prepare("SELECT name, addon_id FROM names"));
  VIA_RETURN_IF_ERROR(ForEachRow(names, [&](sql::Stmt& s) {
    state.names[s.Text(0)] = s.Text(1);
    return Status::Ok();
  }));
  VIA_ASSIGN_OR_RETURN(sql::Stmt bindings,
                       db_->Prepare("SELECT app, binding, addon_id FROM bindings"));
  VIA_RETURN_IF_ERROR(ForEachRow(bindings, [&](sql::Stmt& s) {
    state.bindings[{s.Text(0), s.Text(1)}] = s.Text(2);
    return Status::Ok();
  }));
  VIA_ASSIGN_OR_RETURN(sql::Stmt snapshots,
                       db_->Prepare(std::string("SELECT ") + kSnapshotColumns + " FROM snapshots"));
  VIA_RETURN_IF_ERROR(ForEachRow(snapshots, [&](sql::Stmt& s) -> Status {
    VIA_ASSIGN_OR_RETURN(SnapshotState snap, ReadSnapshot(s));
    state.snapshots[snap.id] = std::move(snap);
    return Status::Ok();
  }));
  VIA_ASSIGN_OR_RETURN(sql::Stmt apps, db_->Prepare("SELECT DISTINCT app FROM releases"));
  std::vector<std::string> app_list;
  VIA_RETURN_IF_ERROR(ForEachRow(apps, [&](sql::Stmt& s) {
    app_list.push_back(s.Text(0));
    return Status::Ok();
  }));
  for (const auto& app : app_list) {
    VIA_ASSIGN_OR_RETURN(state.releases[app], rows_->ReleasesOf(app));
  }
  VIA_ASSIGN_OR_RETURN(sql::Stmt deliveries,
                       db_->Prepare("SELECT addon_id, generation, app, release_id FROM deliveries"));
  VIA_RETURN_IF_ERROR(ForEachRow(deliveries, [&](sql::Stmt& s) {
    state.deliveries.insert(
        {s.Text(0), static_cast<std::uint32_t>(s.Int(1)), s.Text(2), s.Text(3)});
    return Status::Ok();
  }));
  return state;
}

std::uint64_t ReadModel::rows_read() const { return rows_->rows_read(); }

Result<Hash256> ReadModel::Digest() {
  VIA_ASSIGN_OR_RETURN(State state, Load());
  return StateDigest(state);
}

Status ReadModel::Rebuild(eventstore::LogStore& log) {
  return Advance(log, /*rebuild=*/true).status();
}

Result<std::uint64_t> ReadModel::CatchUp(eventstore::LogStore& log) {
  // Without the write lock: the cursor first, then the log's head. The cursor
  // only ever names a committed record, so a head read after it is at or past
  // it for this log; equal seq and hash mean nothing to do.
  VIA_ASSIGN_OR_RETURN(eventstore::Head cursor, CursorHead());
  crash_.At("catchup.between_reads");
  VIA_ASSIGN_OR_RETURN(eventstore::Head head, log.GetHead());
  if (cursor == head) return 0;
  return Advance(log, /*rebuild=*/false);
}

Result<std::uint64_t> ReadModel::Advance(eventstore::LogStore& log, bool rebuild) {
  if (read_only_) {
    return Status(StatusCode::kInternal, reason::kHomeNotWritable,
                  "the read model at " + path_ + " is behind the log and cannot be written");
  }
  // Processes that find the model behind queue on a lock file beside it (the
  // kernel wakes the next one at once, where SQLite's busy handler would
  // poll); the first catches up, the others then find nothing left to do.
  VIA_ASSIGN_OR_RETURN(eventstore::FileLock queue, eventstore::FileLock::Exclusive(path_ + ".lock"));
  // synchronous is per connection, and every open after the first takes the
  // fast path of EnsureSchema, which sets nothing. The model can be rebuilt
  // from the log, so a commit need not fsync the WAL (NORMAL).
  VIA_RETURN_IF_ERROR(db_->Exec("PRAGMA synchronous=NORMAL"));
  // One write transaction from the cursor check to the commit: readers see
  // the model before or after, never half of it (a rebuild's deletes
  // included).
  VIA_ASSIGN_OR_RETURN(auto tx, sql::Transaction::BeginImmediate(*db_));
  eventstore::Head cursor;
  if (!rebuild) {
    auto read = CursorHead();
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
      // Fewer records than this home has already applied. Of another log
      // (another log_id): rebuild. Of this same log: records it held are gone
      // (a log restored from an older backup, a replica that lagged behind
      // the primary it replaced): an integrity failure, never a silent
      // rebuild that would forget what this home saw.
      VIA_ASSIGN_OR_RETURN(std::string seen_log, rows_->Meta("log_id"));
      std::string log_id;
      if (head.seq > 0) {
        VIA_ASSIGN_OR_RETURN(eventstore::StoredRecord first, log.ReadRow(1));
        auto record = eventstore::DecodeRecord(first.bytes);
        if (!record.ok()) return record.status().WithContext("seq 1");
        if (const auto* init = std::get_if<LogInitialized>(&record->event)) log_id = init->log_id;
      }
      if (!seen_log.empty() && seen_log == log_id) {
        return Status(StatusCode::kDataLoss, reason::kLogShorterThanSeen,
                      "the log " + log_id + " holds " + std::to_string(head.seq) +
                          " records, but this home has already applied " +
                          std::to_string(cursor.seq) +
                          " of it: records were lost (a log restored from an older backup, or "
                          "a replica that lagged behind the primary it replaced). The operator "
                          "decides: bring the missing records back, or accept the shorter log "
                          "by deleting " + path_ + " (rebuilt from the log)")
            .WithOwner("operator");
      }
      rebuild = true;
    } else {
      auto row = log.ReadRow(cursor.seq);
      if (!row.ok() && row.status().code() != StatusCode::kNotFound) return row.status();
      rebuild = !row.ok() || row->hash != cursor.hash;
    }
  }
  Slice slice(*rows_);
  Hash256 last_hash = cursor.hash;
  std::uint64_t last_seq = cursor.seq;
  Status error;
  if (rebuild) {
    crash_.At("projection.rebuild");
    for (const char* table : kTables) {
      VIA_RETURN_IF_ERROR(db_->Exec(std::string("DELETE FROM ") + table));
    }
    VIA_RETURN_IF_ERROR(db_->Exec("DELETE FROM meta"));
    last_seq = 0;
    last_hash = Hash256{};
  }
  // Each record: the rows it touches, then the record itself, in windows of
  // at most slice_rows_ rows (a rebuild is a catch-up from nothing).
  VIA_RETURN_IF_ERROR(slice.LoadMeta());
  const std::uint64_t from = last_seq;
  VIA_RETURN_IF_ERROR(log.Scan(from + 1, head.seq, [&](const eventstore::StoredRecord& row) {
    auto record = eventstore::DecodeRecord(row.bytes);
    if (!record.ok()) {
      error = record.status().WithContext("seq " + std::to_string(row.seq));
      return false;
    }
    error = slice.Ensure(KeysOf(*record));
    if (!error.ok()) return false;
    Apply(slice.work(), *record);
    last_hash = row.hash;
    last_seq = row.seq;
    if (slice.Size() >= slice_rows_) error = slice.FlushAndForget();
    return error.ok();
  }));
  VIA_RETURN_IF_ERROR(error);
  if (!rebuild && last_seq == cursor.seq) return 0;
  VIA_RETURN_IF_ERROR(slice.Flush());
  VIA_RETURN_IF_ERROR(rows_->SetMeta("cursor_seq", std::to_string(last_seq)));
  VIA_RETURN_IF_ERROR(rows_->SetMeta("cursor_hash", HexEncode(last_hash)));
  crash_.At("projection.before_commit");
  VIA_RETURN_IF_ERROR(tx.Commit());
  return rebuild ? last_seq : last_seq - cursor.seq;
}

}  // namespace via::projections
