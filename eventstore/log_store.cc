#include "eventstore/log_store.h"

#include <cstring>

#include "eventstore/checkpoint.h"
#include "eventstore/record_codec.h"

namespace via::eventstore {
namespace {

// PRAGMA application_id of an event log: "VIAL".
constexpr std::int64_t kApplicationId = 0x5649414c;
constexpr std::int64_t kFormatVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS records(
  seq INTEGER PRIMARY KEY,
  record BLOB NOT NULL,
  hash BLOB NOT NULL,
  command_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_command ON records(command_id) WHERE command_id <> '';
CREATE TABLE IF NOT EXISTS merkle_nodes(
  level INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  hash BLOB NOT NULL,
  PRIMARY KEY(level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints(
  size INTEGER PRIMARY KEY,
  note TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS merkle_nodes_no_update BEFORE UPDATE ON merkle_nodes
  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS merkle_nodes_no_delete BEFORE DELETE ON merkle_nodes
  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
)sql";

Hash256 ToHash(ByteView b) {
  Hash256 h{};
  if (b.size() == h.size()) std::memcpy(h.data(), b.data(), h.size());
  return h;
}

Result<std::int64_t> PragmaInt(sql::Db& db, const char* pragma) {
  VIA_ASSIGN_OR_RETURN(sql::Stmt stmt, db.Prepare(std::string("PRAGMA ") + pragma));
  VIA_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.Int(0) : 0;
}

}  // namespace

// Serves perfect-subtree hashes from the merkle_nodes table.
class LogStore::Nodes : public merkle::NodeSource {
 public:
  explicit Nodes(sql::Db& db) : db_(db) {}

  Result<Hash256> Node(int level, std::uint64_t index) override {
    if (!prepared_) {
      VIA_ASSIGN_OR_RETURN(stmt_, db_.Prepare("SELECT hash FROM merkle_nodes WHERE level=? AND idx=?"));
      prepared_ = true;
    }
    stmt_.Bind(1, static_cast<std::int64_t>(level)).Bind(2, static_cast<std::int64_t>(index));
    Result<bool> row = stmt_.Step();
    if (!row.ok()) {
      stmt_.Reset();
      return row.status();
    }
    if (!*row) {
      stmt_.Reset();
      return NotFound("node_missing", "no Merkle node at level " + std::to_string(level) +
                                          " index " + std::to_string(index));
    }
    ByteView blob = stmt_.Blob(0);
    if (blob.size() != 32) {
      stmt_.Reset();
      return DataLoss("node_malformed", "Merkle node at level " + std::to_string(level) +
                                            " index " + std::to_string(index) + " is not 32 bytes");
    }
    Hash256 h = ToHash(blob);
    stmt_.Reset();
    return h;
  }

 private:
  sql::Db& db_;
  sql::Stmt stmt_;
  bool prepared_ = false;
};

LogStore::LogStore(std::unique_ptr<sql::Db> db)
    : db_(std::move(db)), nodes_(std::make_unique<Nodes>(*db_)) {}

LogStore::~LogStore() = default;

merkle::NodeSource& LogStore::nodes() { return *nodes_; }

Result<std::unique_ptr<LogStore>> LogStore::Open(const Options& options) {
  sql::OpenOptions open;
  open.read_only = options.read_only;
  open.create = options.create_if_missing;
  auto db_or = sql::Db::Open(options.path, open);
  if (!db_or.ok()) {
    if (db_or.status().code() == StatusCode::kNotFound) {
      return NotFound("log_missing", "no event log at " + options.path)
          .WithRemediation("via init");
    }
    return db_or.status().WithContext("open event log");
  }
  std::unique_ptr<sql::Db> db = std::move(db_or).value();

  auto app_id = PragmaInt(*db, "application_id");
  if (!app_id.ok()) {
    return DataLoss("log_unreadable", options.path + " is not an event log: " +
                                          app_id.status().message());
  }
  if (!options.read_only) {
    VIA_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=WAL"));
    VIA_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=FULL"));
  }
  if (*app_id == 0 && !options.read_only) {
    VIA_ASSIGN_OR_RETURN(auto tx, sql::Transaction::BeginImmediate(*db));
    VIA_RETURN_IF_ERROR(db->Exec(kSchema));
    VIA_RETURN_IF_ERROR(db->Exec("PRAGMA application_id=" + std::to_string(kApplicationId)));
    VIA_RETURN_IF_ERROR(db->Exec("PRAGMA user_version=" + std::to_string(kFormatVersion)));
    VIA_RETURN_IF_ERROR(tx.Commit());
  } else if (*app_id != kApplicationId) {
    return DataLoss("not_a_log", options.path + " is not a Via event log");
  } else {
    VIA_ASSIGN_OR_RETURN(std::int64_t version, PragmaInt(*db, "user_version"));
    if (version != kFormatVersion) {
      return DataLoss("log_version", "event log format version " + std::to_string(version) +
                                         " is not supported (this build reads " +
                                         std::to_string(kFormatVersion) + ")");
    }
  }
  std::unique_ptr<LogStore> store(new LogStore(std::move(db)));
  VIA_RETURN_IF_ERROR(store->PrepareStatements());
  return store;
}

Status LogStore::PrepareStatements() {
  VIA_ASSIGN_OR_RETURN(head_stmt_,
                       db_->Prepare("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"));
  VIA_ASSIGN_OR_RETURN(
      insert_record_stmt_,
      db_->Prepare("INSERT INTO records(seq, record, hash, command_id) VALUES(?,?,?,?)"));
  VIA_ASSIGN_OR_RETURN(insert_node_stmt_,
                       db_->Prepare("INSERT INTO merkle_nodes(level, idx, hash) VALUES(?,?,?)"));
  VIA_ASSIGN_OR_RETURN(insert_checkpoint_stmt_,
                       db_->Prepare("INSERT INTO checkpoints(size, note) VALUES(?,?)"));
  VIA_ASSIGN_OR_RETURN(find_command_stmt_,
                       db_->Prepare("SELECT min(seq), max(seq) FROM records WHERE command_id=?"));
  VIA_ASSIGN_OR_RETURN(read_stmt_, db_->Prepare("SELECT record, hash FROM records WHERE seq=?"));
  return Status::Ok();
}

Result<Head> LogStore::GetHead() {
  Head head;
  Result<bool> row = head_stmt_.Step();
  if (!row.ok()) {
    head_stmt_.Reset();
    return row.status().WithContext("read log head");
  }
  if (*row) {
    head.seq = static_cast<std::uint64_t>(head_stmt_.Int(0));
    ByteView hash = head_stmt_.Blob(1);
    if (hash.size() != 32) {
      head_stmt_.Reset();
      return DataLoss("chain_broken", "seq " + std::to_string(head.seq) + ": stored hash is " +
                                          std::to_string(hash.size()) + " bytes");
    }
    head.hash = ToHash(hash);
  }
  head_stmt_.Reset();
  return head;
}

Result<std::optional<AppendResult>> LogStore::FindCommand(const std::string& command_id) {
  find_command_stmt_.Bind(1, command_id);
  Result<bool> row = find_command_stmt_.Step();
  if (!row.ok()) {
    find_command_stmt_.Reset();
    return row.status();
  }
  std::optional<AppendResult> found;
  if (*row && !find_command_stmt_.IsNull(0)) {
    AppendResult r;
    r.first_seq = static_cast<std::uint64_t>(find_command_stmt_.Int(0));
    r.last_seq = static_cast<std::uint64_t>(find_command_stmt_.Int(1));
    r.replayed = true;
    found = r;
  }
  find_command_stmt_.Reset();
  return found;
}

Result<AppendResult> LogStore::Append(const AppendRequest& request, const Signer& signer) {
  if (request.events.empty()) return InvalidArgument("no_events", "an append needs an event");
  if (signer.key == nullptr) return Internal("append without a signing key");

  VIA_ASSIGN_OR_RETURN(auto tx, sql::Transaction::BeginImmediate(*db_));

  if (!request.command_id.empty()) {
    VIA_ASSIGN_OR_RETURN(auto previous, FindCommand(request.command_id));
    if (previous) {
      VIA_ASSIGN_OR_RETURN(previous->head, GetHead());
      return *previous;  // the transaction rolls back: nothing written
    }
  }

  VIA_ASSIGN_OR_RETURN(Head head, GetHead());
  if (request.expected_head && *request.expected_head != head) {
    return Aborted("stale_head", "the log moved on: expected head seq " +
                                     std::to_string(request.expected_head->seq) + ", found " +
                                     std::to_string(head.seq));
  }

  merkle::Frontier frontier;
  if (cached_frontier_ && cached_frontier_->first == head) {
    frontier = cached_frontier_->second;
  } else {
    VIA_ASSIGN_OR_RETURN(frontier, merkle::Frontier::Load(*nodes_, head.seq));
  }

  Status sink_status;
  auto sink = [&](int level, std::uint64_t index, const Hash256& hash) {
    if (!sink_status.ok()) return;
    insert_node_stmt_.Bind(1, static_cast<std::int64_t>(level))
        .Bind(2, static_cast<std::int64_t>(index))
        .Bind(3, ByteView(hash));
    sink_status = insert_node_stmt_.Run();
  };

  AppendResult result;
  result.first_seq = head.seq + 1;
  crypto::Sha256 hasher;
  Record record;
  record.prev_hash = head.hash;
  record.recorded_at_ms = request.recorded_at_ms;
  record.actor = request.actor;
  record.command_id = request.command_id;
  for (const Event& event : request.events) {
    record.seq = head.seq + 1;
    record.event = event;
    Bytes bytes = EncodeRecord(record);
    if (bytes.size() > kMaxRecordBytes) {
      return InvalidArgument("record_too_large", "record of " + std::to_string(bytes.size()) +
                                                     " bytes exceeds the limit");
    }
    Hash256 hash = hasher.Update(bytes).Final();
    insert_record_stmt_.Bind(1, static_cast<std::int64_t>(record.seq))
        .Bind(2, ByteView(bytes))
        .Bind(3, ByteView(hash))
        .Bind(4, request.command_id);
    VIA_RETURN_IF_ERROR(insert_record_stmt_.Run().WithContext("append seq " +
                                                               std::to_string(record.seq)));
    frontier.Append(merkle::LeafHash(hasher, bytes), sink, hasher);
    VIA_RETURN_IF_ERROR(sink_status);
    head.seq = record.seq;
    head.hash = hash;
    record.prev_hash = hash;
  }

  Checkpoint checkpoint{signer.origin, head.seq, frontier.Root()};
  std::string note = SignCheckpoint(checkpoint, *signer.key);
  insert_checkpoint_stmt_.Bind(1, static_cast<std::int64_t>(head.seq)).Bind(2, note);
  VIA_RETURN_IF_ERROR(insert_checkpoint_stmt_.Run());

  Status committed = tx.Commit();
  if (!committed.ok()) {
    cached_frontier_.reset();
    return committed.WithContext("commit append");
  }
  cached_frontier_.emplace(head, std::move(frontier));
  result.last_seq = head.seq;
  result.head = head;
  return result;
}

Result<StoredRecord> LogStore::ReadRow(std::uint64_t seq) {
  read_stmt_.Bind(1, static_cast<std::int64_t>(seq));
  Result<bool> row = read_stmt_.Step();
  if (!row.ok()) {
    read_stmt_.Reset();
    return row.status();
  }
  if (!*row) {
    read_stmt_.Reset();
    return NotFound("seq_not_found", "no record at seq " + std::to_string(seq));
  }
  StoredRecord out;
  out.seq = seq;
  ByteView bytes = read_stmt_.Blob(0);
  out.bytes.assign(bytes.begin(), bytes.end());
  out.hash = ToHash(read_stmt_.Blob(1));
  read_stmt_.Reset();
  return out;
}

Result<Record> LogStore::Read(std::uint64_t seq) {
  VIA_ASSIGN_OR_RETURN(StoredRecord row, ReadRow(seq));
  Result<Record> record = DecodeRecord(row.bytes);
  if (!record.ok()) return record.status().WithContext("seq " + std::to_string(seq));
  return record;
}

Status LogStore::Scan(std::uint64_t from, std::uint64_t until,
                      const std::function<bool(const StoredRecord&)>& visit) {
  VIA_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_->Prepare("SELECT seq, record, hash FROM records WHERE seq >= ? AND seq <= ? ORDER BY seq"));
  stmt.Bind(1, static_cast<std::int64_t>(from))
      .Bind(2, until == 0 ? INT64_MAX : static_cast<std::int64_t>(until));
  StoredRecord row;
  while (true) {
    VIA_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
    if (!has_row) break;
    row.seq = static_cast<std::uint64_t>(stmt.Int(0));
    ByteView bytes = stmt.Blob(1);
    row.bytes.assign(bytes.begin(), bytes.end());
    ByteView hash = stmt.Blob(2);
    row.hash = ToHash(hash);
    if (hash.size() != 32) row.hash.fill(0);
    if (!visit(row)) break;
  }
  return Status::Ok();
}

Status LogStore::ScanCheckpoints(
    const std::function<bool(std::uint64_t size, const std::string& note)>& visit) {
  VIA_ASSIGN_OR_RETURN(sql::Stmt stmt,
                       db_->Prepare("SELECT size, note FROM checkpoints ORDER BY size"));
  while (true) {
    VIA_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
    if (!has_row) break;
    if (!visit(static_cast<std::uint64_t>(stmt.Int(0)), stmt.Text(1))) break;
  }
  return Status::Ok();
}

Result<std::string> LogStore::LatestCheckpoint() {
  VIA_ASSIGN_OR_RETURN(sql::Stmt stmt,
                       db_->Prepare("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1"));
  VIA_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
  if (!has_row) return NotFound("no_checkpoint", "the log has no checkpoint yet");
  return stmt.Text(0);
}

Status LogStore::ScanNodes(
    const std::function<bool(int level, std::uint64_t index, const Hash256&)>& visit) {
  VIA_ASSIGN_OR_RETURN(sql::Stmt stmt,
                       db_->Prepare("SELECT level, idx, hash FROM merkle_nodes ORDER BY level, idx"));
  while (true) {
    VIA_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
    if (!has_row) break;
    if (!visit(static_cast<int>(stmt.Int(0)), static_cast<std::uint64_t>(stmt.Int(1)),
               ToHash(stmt.Blob(2)))) {
      break;
    }
  }
  return Status::Ok();
}

}  // namespace via::eventstore
