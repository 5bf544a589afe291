#include "eventstore/sqlite_log_store.h"

#include <bit>
#include <cstring>

#include "eventstore/checkpoint.h"
#include "eventstore/record_codec.h"

namespace via::eventstore {
namespace {

// PRAGMA application_id of an event log: "VIAL".
constexpr std::int64_t kApplicationId = 0x5649414c;
// 1: records, merkle_nodes and checkpoints tables. 2: one records table.
// 3: the same table; every note links to the note before it.
constexpr std::int64_t kFormatVersion = 3;
// Formats this build reads and appends to (a log keeps the format it was
// created with: docs/event-log-format.md section 2.1).
constexpr std::int64_t kOldestReadableVersion = 2;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS records(
  seq INTEGER PRIMARY KEY,
  record BLOB NOT NULL,
  hash BLOB NOT NULL,
  nodes BLOB NOT NULL,
  command_id TEXT,
  checkpoint TEXT
);
CREATE INDEX IF NOT EXISTS records_by_command ON records(command_id) WHERE command_id IS NOT NULL;
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
)sql";

Result<std::int64_t> PragmaInt(sql::Db& db, const char* pragma) {
  VIA_ASSIGN_OR_RETURN(sql::Stmt stmt, db.Prepare(std::string("PRAGMA ") + pragma));
  VIA_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.Int(0) : 0;
}

}  // namespace

// Serves perfect-subtree hashes from the records' `nodes` column.
class SqliteLogStore::Nodes : public merkle::NodeSource {
 public:
  explicit Nodes(sql::Db& db) : db_(db) {}

  Result<Hash256> Node(int level, std::uint64_t index) override {
    auto where = [&] {
      return "Merkle node at level " + std::to_string(level) + " index " + std::to_string(index);
    };
    // Node (level, index) is completed by leaf ((index + 1) << level) - 1.
    if (level < 0 || level > 62 || index >= (std::uint64_t{1} << (62 - level))) {
      return NotFound("node_missing", "no " + where());
    }
    const std::uint64_t seq = (index + 1) << level;
    if (!prepared_) {
      VIA_ASSIGN_OR_RETURN(stmt_, db_.Prepare("SELECT nodes FROM records WHERE seq=?"));
      prepared_ = true;
    }
    stmt_.Bind(1, static_cast<std::int64_t>(seq));
    Result<bool> row = stmt_.Step();
    if (!row.ok()) {
      stmt_.Reset();
      return row.status();
    }
    if (!*row) {
      stmt_.Reset();
      return NotFound("node_missing", "no " + where());
    }
    ByteView blob = stmt_.Blob(0);
    const std::size_t expected = 32 * (1 + static_cast<std::size_t>(std::countr_one(seq - 1)));
    if (blob.size() != expected) {
      stmt_.Reset();
      return DataLoss("node_malformed", "the Merkle nodes of seq " + std::to_string(seq) + " are " +
                                            std::to_string(blob.size()) + " bytes, expected " +
                                            std::to_string(expected));
    }
    Hash256 h = ToHash256(blob.subspan(32 * static_cast<std::size_t>(level), 32));
    stmt_.Reset();
    return h;
  }

 private:
  sql::Db& db_;
  sql::Stmt stmt_;
  bool prepared_ = false;
};

SqliteLogStore::SqliteLogStore(std::unique_ptr<sql::Db> db, std::string path)
    : db_(std::move(db)), path_(std::move(path)), nodes_(std::make_unique<Nodes>(*db_)) {}

SqliteLogStore::~SqliteLogStore() = default;

merkle::NodeSource& SqliteLogStore::nodes() { return *nodes_; }

Result<std::unique_ptr<SqliteLogStore>> SqliteLogStore::Open(const Options& options) {
  sql::OpenOptions open;
  open.read_only = options.read_only;
  open.create = options.create_if_missing;
  open.immutable_fallback = options.read_only;
  auto db_or = sql::Db::Open(options.path, open);
  if (!db_or.ok()) {
    if (db_or.status().code() == StatusCode::kNotFound) {
      return NotFound("log_missing", "no event log at " + options.path).WithRemediation("via init");
    }
    return db_or.status().WithContext("open event log");
  }
  std::unique_ptr<sql::Db> db = std::move(db_or).value();

  auto app_id = PragmaInt(*db, "application_id");
  if (!app_id.ok()) {
    // Only damage is an integrity failure; a full disk, a read-only home or
    // a lock keep their own codes.
    if (app_id.status().code() == StatusCode::kDataLoss) {
      return DataLoss("log_unreadable",
                      options.path + " is not an event log: " + app_id.status().message());
    }
    return app_id.status().WithContext("open event log " + options.path);
  }
  if (!options.read_only) {
    // Two first commands on a fresh home both switch the new file to WAL; the
    // loser's lock is not waited for by SQLite's busy handler.
    VIA_RETURN_IF_ERROR(db->ExecRetryingLocks("PRAGMA journal_mode=WAL"));
    VIA_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=FULL"));
  }
  if (*app_id == 0 && options.read_only) {
    // Another process is creating the log right now (or left an empty
    // file): for a reader there is no log yet.
    return NotFound("log_empty", "the event log at " + options.path + " is not initialized yet");
  }
  if (*app_id == 0 && !options.read_only) {
    VIA_ASSIGN_OR_RETURN(auto tx, sql::Transaction::BeginImmediate(*db));
    VIA_RETURN_IF_ERROR(db->Exec(kSchema));
    VIA_RETURN_IF_ERROR(db->Exec("PRAGMA application_id=" + std::to_string(kApplicationId)));
    VIA_RETURN_IF_ERROR(db->Exec("PRAGMA user_version=" + std::to_string(kFormatVersion)));
    VIA_RETURN_IF_ERROR(tx.Commit());
  } else if (*app_id != kApplicationId) {
    return DataLoss("not_a_log", options.path + " is not a Via event log");
  }
  // A log created just now (or by a racing process) reads its version back too.
  VIA_ASSIGN_OR_RETURN(std::int64_t version, PragmaInt(*db, "user_version"));
  if (version < kOldestReadableVersion || version > kFormatVersion) {
    return DataLoss("log_version", "event log format version " + std::to_string(version) +
                                       " is not supported (this build reads " +
                                       std::to_string(kOldestReadableVersion) + " to " +
                                       std::to_string(kFormatVersion) + ")");
  }
  std::unique_ptr<SqliteLogStore> store(new SqliteLogStore(std::move(db), options.path));
  store->format_version_ = static_cast<int>(version);
  VIA_RETURN_IF_ERROR(store->PrepareStatements());
  return store;
}

Result<std::unique_ptr<LogStore>> SqliteLogStore::OpenReader() const {
  if (path_.empty() || path_ == ":memory:" || path_.rfind("file::memory:", 0) == 0) {
    return Unavailable("no_file", "an in-memory event log has no second connection");
  }
  Options options;
  options.path = path_;
  options.read_only = true;
  options.create_if_missing = false;
  VIA_ASSIGN_OR_RETURN(auto reader, Open(options));
  return std::unique_ptr<LogStore>(std::move(reader));
}

Status SqliteLogStore::PrepareStatements() {
  VIA_ASSIGN_OR_RETURN(begin_stmt_, db_->Prepare("BEGIN IMMEDIATE"));
  VIA_ASSIGN_OR_RETURN(commit_stmt_, db_->Prepare("COMMIT"));
  VIA_ASSIGN_OR_RETURN(rollback_stmt_, db_->Prepare("ROLLBACK"));
  VIA_ASSIGN_OR_RETURN(head_stmt_,
                       db_->Prepare("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"));
  VIA_ASSIGN_OR_RETURN(insert_stmt_,
                       db_->Prepare("INSERT INTO records(seq, record, hash, nodes, command_id, "
                                    "checkpoint) VALUES(?,?,?,?,?,?)"));
  // `command_id = ?` implies the partial index's `command_id IS NOT NULL`, so
  // this is an index lookup (tests/eventstore/log_store_test.cc checks the plan).
  VIA_ASSIGN_OR_RETURN(
      find_command_stmt_,
      db_->Prepare("SELECT seq FROM records WHERE command_id = ? ORDER BY seq LIMIT 1"));
  // The records of an append are those after the previous append's last record.
  VIA_ASSIGN_OR_RETURN(append_start_stmt_,
                       db_->Prepare("SELECT seq FROM records WHERE seq < ? AND checkpoint IS NOT "
                                    "NULL ORDER BY seq DESC LIMIT 1"));
  VIA_ASSIGN_OR_RETURN(read_stmt_, db_->Prepare("SELECT record, hash FROM records WHERE seq=?"));
  return Status::Ok();
}

Result<Head> SqliteLogStore::BeginAppend() {
  if (Status begun = begin_stmt_.Run(); !begun.ok()) return begun.WithContext("begin append");
  return GetHead();
}

Status SqliteLogStore::InsertRow(std::uint64_t seq, ByteView record, const Hash256& hash,
                                 ByteView nodes, const std::string* command_id,
                                 const std::string* note) {
  insert_stmt_.Bind(1, static_cast<std::int64_t>(seq))
      .Bind(2, record)
      .Bind(3, ByteView(hash))
      .Bind(4, nodes);
  if (command_id != nullptr) {
    insert_stmt_.Bind(5, *command_id);
  } else {
    insert_stmt_.BindNull(5);
  }
  if (note != nullptr) {
    insert_stmt_.Bind(6, *note);
  } else {
    insert_stmt_.BindNull(6);
  }
  return insert_stmt_.Run();
}

Status SqliteLogStore::CommitAppend(const Head&) {
  Status committed = commit_stmt_.Run();
  return committed.ok() ? committed : committed.WithContext("commit append");
}

void SqliteLogStore::RollbackAppend() { (void)rollback_stmt_.Run(); }

Result<Head> SqliteLogStore::GetHead() {
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
    head.hash = ToHash256(hash);
  }
  head_stmt_.Reset();
  return head;
}

Result<std::optional<AppendResult>> SqliteLogStore::FindCommand(const std::string& command_id) {
  if (command_id.empty()) return std::optional<AppendResult>();
  find_command_stmt_.Bind(1, command_id);
  Result<bool> row = find_command_stmt_.Step();
  if (!row.ok()) {
    find_command_stmt_.Reset();
    return row.status();
  }
  if (!*row) {
    find_command_stmt_.Reset();
    return std::optional<AppendResult>();
  }
  AppendResult found;
  found.last_seq = static_cast<std::uint64_t>(find_command_stmt_.Int(0));
  found.replayed = true;
  find_command_stmt_.Reset();

  append_start_stmt_.Bind(1, static_cast<std::int64_t>(found.last_seq));
  row = append_start_stmt_.Step();
  if (!row.ok()) {
    append_start_stmt_.Reset();
    return row.status();
  }
  found.first_seq = *row ? static_cast<std::uint64_t>(append_start_stmt_.Int(0)) + 1 : 1;
  append_start_stmt_.Reset();
  return std::optional<AppendResult>(found);
}

Result<StoredRecord> SqliteLogStore::ReadRow(std::uint64_t seq) {
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
  out.hash = ToHash256(read_stmt_.Blob(1));
  read_stmt_.Reset();
  return out;
}

Status SqliteLogStore::Scan(std::uint64_t from, std::uint64_t until,
                      const std::function<bool(const StoredRecord&)>& visit) {
  VIA_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_->Prepare(
          "SELECT seq, record, hash FROM records WHERE seq >= ? AND seq <= ? ORDER BY seq"));
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
    row.hash = ToHash256(hash);
    if (hash.size() != 32) row.hash.fill(0);
    if (!visit(row)) break;
  }
  return Status::Ok();
}

Status SqliteLogStore::ScanCheckpoints(
    const std::function<bool(std::uint64_t size, const std::string& note)>& visit) {
  VIA_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_->Prepare(
          "SELECT seq, checkpoint FROM records WHERE checkpoint IS NOT NULL ORDER BY seq"));
  while (true) {
    VIA_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
    if (!has_row) break;
    if (!visit(static_cast<std::uint64_t>(stmt.Int(0)), stmt.Text(1))) break;
  }
  return Status::Ok();
}

Result<std::string> SqliteLogStore::LatestCheckpoint() {
  // The newest row holds it in a whole log; the scan back stops at the first one.
  VIA_ASSIGN_OR_RETURN(sql::Stmt stmt,
                       db_->Prepare("SELECT checkpoint FROM records WHERE checkpoint IS NOT NULL "
                                    "ORDER BY seq DESC LIMIT 1"));
  VIA_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
  if (!has_row) return NotFound("no_checkpoint", "the log has no checkpoint yet");
  return stmt.Text(0);
}

Result<std::string> SqliteLogStore::CheckpointAt(std::uint64_t seq) {
  VIA_ASSIGN_OR_RETURN(sql::Stmt stmt,
                       db_->Prepare("SELECT checkpoint FROM records WHERE seq = ? AND "
                                    "checkpoint IS NOT NULL"));
  stmt.Bind(1, static_cast<std::int64_t>(seq));
  VIA_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
  if (!has_row) {
    return NotFound("no_checkpoint", "the log holds no checkpoint for size " + std::to_string(seq));
  }
  return stmt.Text(0);
}

Status SqliteLogStore::ScanRaw(std::uint64_t from, std::uint64_t until,
                               const std::function<bool(const RawRow&)>& visit) {
  VIA_ASSIGN_OR_RETURN(sql::Stmt stmt,
                       db_->Prepare("SELECT seq, record, hash, nodes, command_id, checkpoint "
                                    "FROM records WHERE seq >= ? AND seq <= ? ORDER BY seq"));
  stmt.Bind(1, static_cast<std::int64_t>(from))
      .Bind(2, until == 0 ? INT64_MAX : static_cast<std::int64_t>(until));
  RawRow row;
  while (true) {
    VIA_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
    if (!has_row) break;
    row.seq = static_cast<std::uint64_t>(stmt.Int(0));
    row.record = stmt.Blob(1);
    row.hash = stmt.Blob(2);
    row.nodes = stmt.Blob(3);
    row.command_id.reset();
    row.checkpoint.reset();
    if (!stmt.IsNull(4)) row.command_id = AsChars(stmt.Blob(4));
    if (!stmt.IsNull(5)) row.checkpoint = AsChars(stmt.Blob(5));
    if (!visit(row)) break;
  }
  return Status::Ok();
}

Result<std::optional<StoredNote>> SqliteLogStore::NoteBefore(std::uint64_t seq) {
  VIA_ASSIGN_OR_RETURN(sql::Stmt stmt,
                       db_->Prepare("SELECT seq, checkpoint FROM records WHERE seq < ? AND "
                                    "checkpoint IS NOT NULL ORDER BY seq DESC LIMIT 1"));
  stmt.Bind(1, static_cast<std::int64_t>(seq));
  VIA_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
  if (!has_row) return std::optional<StoredNote>();
  return std::optional<StoredNote>(
      StoredNote{static_cast<std::uint64_t>(stmt.Int(0)), stmt.Text(1)});
}

Result<std::uint64_t> SqliteLogStore::CountNotesBefore(std::uint64_t seq) {
  VIA_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_->Prepare("SELECT count(*) FROM records WHERE seq < ? AND checkpoint IS NOT NULL"));
  stmt.Bind(1, static_cast<std::int64_t>(seq));
  VIA_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
  return has_row ? static_cast<std::uint64_t>(stmt.Int(0)) : 0;
}

}  // namespace via::eventstore
