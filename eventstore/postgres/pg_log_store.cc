#include "eventstore/postgres/pg_log_store.h"

#include <bit>

#include "eventstore/record_codec.h"
#include "domain/reasons.h"

namespace via::eventstore::postgres {
namespace {

// log_meta.application_id of an event log, as in the SQLite file's PRAGMA.
constexpr const char* kApplicationId = "VIAL";
// The format of logs this build creates on PostgreSQL (the SQLite log's 3).
constexpr int kFormatVersion = 3;
// Serializes the creation of the schema by processes starting at once.
constexpr std::int64_t kCreateLock = 0x5649414c;
// Rows per query of a scan, inside one snapshot.
constexpr std::int64_t kScanBatch = 2048;

// The body of via.check_head_move, the head row's guard: the head moves
// only forward, to the newest record, with its hash. Its queries are planned
// the same for any NEW.seq (plpgsql keeps a generic plan after five calls):
// max(seq) reads the primary key's last entry, and the hash one row by
// primary key. The first body, `EXISTS (... WHERE seq > NEW.seq)`, got a
// generic plan that scanned all of via.records on every append of a long
// connection. Open puts this body in place of that one.
constexpr const char* kCheckHeadMoveBody = R"sql(
BEGIN
  IF NEW.seq <= OLD.seq OR NEW.seq IS DISTINCT FROM (SELECT pg_catalog.max(seq) FROM via.records) OR
      NEW.hash IS DISTINCT FROM (SELECT hash FROM via.records WHERE seq = NEW.seq) THEN
    RAISE EXCEPTION 'the event log head only moves forward to its newest record'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END )sql";

// What only the first body holds: Open replaces a body that holds it, and
// leaves any other (this build's, a later build's, one an operator changed)
// as it is, so builds of different ages on one log never take turns.
constexpr const char* kFirstHeadMoveBodyMark = "EXISTS (SELECT 1 FROM via.records WHERE seq > NEW.seq)";

std::string CheckHeadMoveSql() {
  return std::string("CREATE OR REPLACE FUNCTION via.check_head_move() RETURNS trigger "
                     "LANGUAGE plpgsql AS $$") +
         kCheckHeadMoveBody + "$$;";
}

constexpr const char* kSchema = R"sql(
CREATE SCHEMA IF NOT EXISTS via;
CREATE TABLE via.log_meta(
  application_id text NOT NULL,
  format integer NOT NULL
);
CREATE TABLE via.records(
  seq bigint PRIMARY KEY CHECK (seq > 0),
  record bytea NOT NULL,
  hash bytea NOT NULL,
  nodes bytea NOT NULL,
  command_id text,
  checkpoint text
);
CREATE INDEX records_by_command ON via.records(command_id) WHERE command_id IS NOT NULL;
CREATE TABLE via.head(
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  seq bigint NOT NULL,
  hash bytea NOT NULL
);
CREATE FUNCTION via.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the event log is append-only (% on %)', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;
-- via.check_head_move (CheckHeadMoveSql) precedes kTriggers.
)sql";

constexpr const char* kTriggers = R"sql(
CREATE TRIGGER records_no_update BEFORE UPDATE OR DELETE ON via.records
  FOR EACH ROW EXECUTE FUNCTION via.refuse_change();
CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON via.records
  FOR EACH STATEMENT EXECUTE FUNCTION via.refuse_change();
CREATE TRIGGER log_meta_no_update BEFORE UPDATE OR DELETE ON via.log_meta
  FOR EACH ROW EXECUTE FUNCTION via.refuse_change();
CREATE TRIGGER log_meta_no_truncate BEFORE TRUNCATE ON via.log_meta
  FOR EACH STATEMENT EXECUTE FUNCTION via.refuse_change();
CREATE TRIGGER head_no_delete BEFORE DELETE ON via.head
  FOR EACH ROW EXECUTE FUNCTION via.refuse_change();
CREATE TRIGGER head_no_truncate BEFORE TRUNCATE ON via.head
  FOR EACH STATEMENT EXECUTE FUNCTION via.refuse_change();
CREATE TRIGGER head_moves_forward BEFORE UPDATE ON via.head
  FOR EACH ROW EXECUTE FUNCTION via.check_head_move();
INSERT INTO via.head(seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'));
)sql";

// The rows of the given command ids: (command_id, seq). Neither ORDER BY nor
// LIMIT, so the only plan worth having reads the command-id index; with
// `ORDER BY seq LIMIT 1` and a table not analyzed yet, PostgreSQL walked the
// primary key filtering every row, an append's cost growing with the log.
constexpr const char* kFindCommandsSql =
    "SELECT command_id, seq FROM via.records WHERE command_id = ANY($1::text[])";

// For each id, the lowest seq of kFindCommandsSql's rows holding it; 0 for
// an id in none. (A log Via wrote holds each id once.)
std::vector<std::uint64_t> FirstSeqs(const PgResult& rows,
                                     const std::vector<const std::string*>& ids) {
  std::vector<std::uint64_t> first(ids.size(), 0);
  for (int row = 0; row < rows.rows(); ++row) {
    const std::string_view id = rows.Text(row, 0);
    const auto seq = static_cast<std::uint64_t>(rows.Int8(row, 1));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (*ids[i] == id && (first[i] == 0 || seq < first[i])) first[i] = seq;
    }
  }
  return first;
}

}  // namespace

Status ValidateLogUrl(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("bad_log_url", "--log " + why)
        .WithRemediation("--log postgresql://USER@HOST:PORT/DB");
  };
  std::string rest;
  for (const char* scheme : {"postgresql://", "postgres://"}) {
    if (url.rfind(scheme, 0) == 0) rest = url.substr(std::string(scheme).size());
  }
  if (rest.empty()) return bad("must be a postgresql:// URL");
  if (url.size() > 2048) return bad("is longer than 2048 bytes");
  for (char c : url) {
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) return bad("contains a space or control character");
  }
  const std::size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  const std::size_t at = authority.rfind('@');
  if (at == std::string::npos || at == 0) return bad("must name a user (USER@HOST)");
  if (authority.substr(0, at).find(':') != std::string::npos) {
    return InvalidArgument("password_in_url",
                           "the --log URL must not hold a password: Via would keep it in the home")
        .WithRemediation("put the password in a 0600 file named by PGPASSFILE (or ~/.pgpass)");
  }
  if (at + 1 >= authority.size()) return bad("must name a host (USER@HOST)");
  if (slash == std::string::npos || slash + 1 >= rest.size() || rest[slash + 1] == '?') {
    return bad("must name a database (/DB)");
  }
  const std::string query = rest.find('?') == std::string::npos ? "" : rest.substr(rest.find('?'));
  if (query.find("password=") != std::string::npos) {
    return InvalidArgument("password_in_url",
                           "the --log URL must not hold a password: Via would keep it in the home")
        .WithRemediation("put the password in a 0600 file named by PGPASSFILE (or ~/.pgpass)");
  }
  return Status::Ok();
}

// Serves perfect-subtree hashes from via.records.nodes, one point read each.
class PgLogStore::Nodes : public merkle::NodeSource {
 public:
  explicit Nodes(PgLogStore& store) : store_(store) {}

  Result<Hash256> Node(int level, std::uint64_t index) override {
    auto where = [&] {
      return "Merkle node at level " + std::to_string(level) + " index " + std::to_string(index);
    };
    if (level < 0 || level > 62 || index >= (std::uint64_t{1} << (62 - level))) {
      return NotFound("node_missing", "no " + where());
    }
    const std::uint64_t seq = (index + 1) << level;
    VIA_ASSIGN_OR_RETURN(PgResult r, store_.Query("SELECT nodes FROM via.records WHERE seq = $1",
                                                  {Param::Int8(static_cast<std::int64_t>(seq))}));
    if (r.rows() == 0) return NotFound("node_missing", "no " + where());
    ByteView blob = r.Bytes(0, 0);
    const std::size_t expected = 32 * (1 + static_cast<std::size_t>(std::countr_one(seq - 1)));
    if (blob.size() != expected) {
      return DataLoss("node_malformed", "the Merkle nodes of seq " + std::to_string(seq) + " are " +
                                            std::to_string(blob.size()) + " bytes, expected " +
                                            std::to_string(expected));
    }
    return ToHash256(blob.subspan(32 * static_cast<std::size_t>(level), 32));
  }

 private:
  PgLogStore& store_;
};

PgLogStore::PgLogStore(Conn conn, Options options)
    : conn_(std::move(conn)), options_(std::move(options)), nodes_(std::make_unique<Nodes>(*this)) {}

PgLogStore::~PgLogStore() = default;

merkle::NodeSource& PgLogStore::nodes() { return *nodes_; }

Result<std::unique_ptr<PgLogStore>> PgLogStore::Open(const Options& options) {
  VIA_ASSIGN_OR_RETURN(Conn conn, Conn::Connect(options.postgres_url));
  std::unique_ptr<PgLogStore> store(new PgLogStore(std::move(conn), options));
  auto exists = store->Query("SELECT to_regclass('via.log_meta') IS NOT NULL");
  if (!exists.ok()) return exists.status().WithContext("open event log");
  if (exists->Bytes(0, 0).empty() || exists->Bytes(0, 0)[0] == 0) {
    if (options.read_only || !options.create_if_missing) {
      return NotFound("log_missing", "no event log in the PostgreSQL database")
          .WithRemediation("via init --log URL");
    }
    // Processes starting at once: one creates, the others find it created.
    VIA_RETURN_IF_ERROR(store->conn_.Exec("BEGIN"));
    Status created = [&]() -> Status {
      VIA_RETURN_IF_ERROR(store->Query("SELECT pg_advisory_xact_lock($1)",
                                       {Param::Int8(kCreateLock)})
                              .status());
      VIA_ASSIGN_OR_RETURN(PgResult again,
                           store->Query("SELECT to_regclass('via.log_meta') IS NOT NULL"));
      if (again.Bytes(0, 0)[0] == 0) {
        VIA_RETURN_IF_ERROR(
            store->conn_.Exec(std::string(kSchema) + CheckHeadMoveSql() + kTriggers));
        VIA_RETURN_IF_ERROR(
            store->Query("INSERT INTO via.log_meta(application_id, format) VALUES ($1, $2)",
                         {Param::Text(kApplicationId), Param::Int8(kFormatVersion)})
                .status());
      }
      return store->conn_.Exec("COMMIT");
    }();
    if (!created.ok()) {
      (void)store->conn_.Exec("ROLLBACK");
      return created.WithContext("create the event log schema");
    }
  }
  // With it, whether the head guard's body is the first one and
  // this role may replace it (owns it or is a superuser, and may create in
  // schema via). A server that hides pg_proc from this role gets the plain
  // question.
  auto asked = store->Query(
      "SELECT application_id, format::bigint, (SELECT strpos(prosrc, $1) > 0 AND "
      "pg_has_role(proowner, 'USAGE') AND has_schema_privilege('via', 'CREATE') FROM pg_proc "
      "WHERE oid = to_regprocedure('via.check_head_move()')) FROM via.log_meta",
      {Param::Text(kFirstHeadMoveBodyMark)});
  if (!asked.ok() && store->conn_.ok()) {
    asked = store->Query("SELECT application_id, format::bigint, NULL::boolean FROM via.log_meta");
  }
  if (!asked.ok()) return asked.status().WithContext("open event log");
  const PgResult& meta = *asked;
  if (meta.rows() != 1 || meta.Text(0, 0) != kApplicationId) {
    return DataLoss("not_a_log", "schema via of the PostgreSQL database is not a Via event log");
  }
  const std::int64_t version = meta.Int8(0, 1);
  if (version != kFormatVersion) {
    return DataLoss("log_version", "event log format version " + std::to_string(version) +
                                       " is not supported on PostgreSQL (this build reads " +
                                       std::to_string(kFormatVersion) + ")");
  }
  store->format_version_ = static_cast<int>(version);
  const bool guard_to_upgrade =
      !meta.IsNull(0, 2) && !meta.Bytes(0, 2).empty() && meta.Bytes(0, 2)[0] != 0;
  if (guard_to_upgrade && !options.read_only) store->UpgradeHeadGuard();
  return store;
}

void PgLogStore::UpgradeHeadGuard() {
  // Only its owner may replace it (Open asks only such a role): a service
  // role without ownership (docs/operations.md, Privileges) appends through
  // the older body, correct but slower, until the owner opens the log once.
  // Failing here changes nothing: the older body stays.
  Status upgraded = [&]() -> Status {
    VIA_RETURN_IF_ERROR(conn_.Exec("BEGIN"));
    VIA_RETURN_IF_ERROR(
        Query("SELECT pg_advisory_xact_lock($1)", {Param::Int8(kCreateLock)}).status());
    VIA_RETURN_IF_ERROR(conn_.Exec(CheckHeadMoveSql()));
    return conn_.Exec("COMMIT");
  }();
  if (!upgraded.ok() && conn_.ok()) (void)conn_.Exec("ROLLBACK");
}

Result<std::unique_ptr<LogStore>> PgLogStore::OpenReader() const {
  Options options = options_;
  options.read_only = true;
  options.create_if_missing = false;
  VIA_ASSIGN_OR_RETURN(auto reader, Open(options));
  return std::unique_ptr<LogStore>(std::move(reader));
}

Status PgLogStore::EnsureConnected() {
  if (conn_.ok()) return Status::Ok();
  if (in_transaction_) return Unreachable("the connection broke inside a transaction");
  return conn_.Reset();
}

Result<PgResult> PgLogStore::Query(const char* sql, std::initializer_list<Param> params) {
  VIA_RETURN_IF_ERROR(EnsureConnected());
  return conn_.Query(sql, params);
}

Result<sql::ReadTransaction> PgLogStore::BeginRead() {
  if (in_transaction_) return sql::ReadTransaction::Ending(nullptr);
  VIA_RETURN_IF_ERROR(EnsureConnected());
  VIA_RETURN_IF_ERROR(conn_.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  in_transaction_ = true;
  return sql::ReadTransaction::Ending([this] {
    // Nothing was written: COMMIT only ends the snapshot; on a broken
    // connection there is nothing left to end.
    if (conn_.ok()) (void)conn_.Exec("COMMIT");
    in_transaction_ = false;
  });
}

Result<Head> PgLogStore::GetHead() {
  auto r = Query("SELECT seq, hash FROM via.head");
  if (!r.ok()) return r.status().WithContext("read log head");
  if (r->rows() != 1) return DataLoss("chain_broken", "the log's head row is missing");
  Head head;
  head.seq = static_cast<std::uint64_t>(r->Int8(0, 0));
  ByteView hash = r->Bytes(0, 1);
  if (hash.size() != 32) {
    return DataLoss("chain_broken", "seq " + std::to_string(head.seq) + ": stored hash is " +
                                        std::to_string(hash.size()) + " bytes");
  }
  head.hash = ToHash256(hash);
  return head;
}

Result<std::vector<PgResult>> PgLogStore::RoundTrip(const std::vector<Statement>& statements,
                                                     const std::function<void()>& before_last) {
  VIA_RETURN_IF_ERROR(EnsureConnected());
  VIA_RETURN_IF_ERROR(conn_.EnterPipeline());
  Status sent = Status::Ok();
  for (std::size_t i = 0; i < statements.size() && sent.ok(); ++i) {
    if (before_last && i + 1 == statements.size()) before_last();
    sent = conn_.Send(statements[i].sql, statements[i].params);
  }
  if (sent.ok()) sent = conn_.SendSync();
  if (!sent.ok()) {
    (void)conn_.ExitPipeline();
    return sent;
  }
  std::vector<PgResult> results;
  Status first_error = Status::Ok();
  for (const Statement& statement : statements) {
    std::string_view what(statement.sql);
    auto r = conn_.Receive(what.substr(0, what.find(' ')));
    if (!r.ok()) {
      if (first_error.ok()) first_error = r.status();
      if (!conn_.ok()) break;  // nothing more will come
      continue;
    }
    results.push_back(std::move(r).value());
  }
  if (conn_.ok()) {
    Status synced = conn_.ReceiveSync();
    if (first_error.ok()) first_error = synced;
  }
  Status left = conn_.ExitPipeline();
  if (first_error.ok()) first_error = left;
  if (!first_error.ok()) return first_error;
  return results;
}

Result<Head> PgLogStore::BeginAppend() {
  std::vector<std::optional<AppendResult>> found;
  return BeginAppendFinding({}, &found);
}

Result<Head> PgLogStore::BeginAppendFinding(const std::vector<const std::string*>& command_ids,
                                            std::vector<std::optional<AppendResult>>* found) {
  if (in_transaction_) return Internal("append inside a read snapshot");
  pending_rows_.clear();
  found->clear();
  // One round trip: BEGIN, the lock (appenders queue on the head row, the
  // log's writer lock) and one lookup of every command id of the batch.
  std::vector<Statement> statements;
  statements.push_back({"BEGIN", {}});
  statements.push_back({"SELECT seq, hash FROM via.head FOR UPDATE", {}});
  ArrayParam ids(kTextOid);
  for (const std::string* id : command_ids) ids.Add(std::string_view(*id));
  if (!command_ids.empty()) statements.push_back({kFindCommandsSql, {ids.param()}});
  VIA_RETURN_IF_ERROR(EnsureConnected());
  in_transaction_ = true;
  auto r = RoundTrip(statements);
  if (!r.ok()) {
    // A failure here ends the transaction: the caller rolls back only what
    // BeginAppend started successfully.
    RollbackAppend();
    return r.status().WithContext("lock log head");
  }
  const PgResult& locked = (*r)[1];
  if (locked.rows() != 1 || locked.Bytes(0, 1).size() != 32) {
    RollbackAppend();
    return DataLoss("chain_broken", "the log's head row is missing or malformed");
  }
  const Head head{static_cast<std::uint64_t>(locked.Int8(0, 0)), ToHash256(locked.Bytes(0, 1))};
  std::vector<std::uint64_t> first(command_ids.size(), 0);
  if (!command_ids.empty()) first = FirstSeqs((*r)[2], command_ids);
  for (std::uint64_t last_seq : first) {
    if (last_seq == 0) {
      found->emplace_back();
      continue;
    }
    // Seen only on a retry: where that append began, from the note before it.
    AppendResult previous;
    previous.last_seq = last_seq;
    previous.replayed = true;
    auto before = NoteBefore(previous.last_seq);
    if (!before.ok()) {
      RollbackAppend();
      return before.status();
    }
    previous.first_seq = *before ? (*before)->seq + 1 : 1;
    found->push_back(previous);
  }
  return head;
}

Status PgLogStore::InsertRow(std::uint64_t seq, ByteView record, const Hash256& hash,
                             ByteView nodes, const std::string* command_id,
                             const std::string* note) {
  // Sent with the COMMIT, in the same round trip (CommitAppend).
  PendingRow row;
  row.seq = static_cast<std::int64_t>(seq);
  row.record.assign(record.begin(), record.end());
  row.hash = hash;
  row.nodes.assign(nodes.begin(), nodes.end());
  if (command_id != nullptr) row.command_id = *command_id;
  if (note != nullptr) row.note = *note;
  pending_rows_.push_back(std::move(row));
  return Status::Ok();
}

Status PgLogStore::CommitAppend(const Head& head) {
  // A session the server ended while this one computed the rows (nothing of
  // it sent yet) cannot have committed: known not to have landed.
  if (conn_.PeerClosed()) {
    pending_rows_.clear();
    in_transaction_ = false;
    return Unreachable("the connection broke before COMMIT was sent");
  }
  // Every row of the batch in one INSERT: one statement to parse and plan
  // however many appends the batch holds.
  ArrayParam seqs(kInt8Oid), records(kByteaOid), hashes(kByteaOid), nodes(kByteaOid),
      command_ids(kTextOid), notes(kTextOid);
  for (const PendingRow& row : pending_rows_) {
    seqs.AddInt8(row.seq);
    records.Add(ByteView(row.record));
    hashes.Add(ByteView(row.hash));
    nodes.Add(ByteView(row.nodes));
    if (row.command_id) {
      command_ids.Add(std::string_view(*row.command_id));
    } else {
      command_ids.AddNull();
    }
    if (row.note) {
      notes.Add(std::string_view(*row.note));
    } else {
      notes.AddNull();
    }
  }
  std::vector<Statement> statements;
  statements.push_back(
      {"INSERT INTO via.records(seq, record, hash, nodes, command_id, checkpoint) "
       "SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bytea[], $5::text[], "
       "$6::text[])",
       {seqs.param(), records.param(), hashes.param(), nodes.param(), command_ids.param(),
        notes.param()}});
  const auto seq = Param::Int8(static_cast<std::int64_t>(head.seq));
  statements.push_back({"UPDATE via.head SET seq = $1, hash = $2", {seq, Param::Bytea(ByteView(head.hash))}});
  statements.push_back({"SELECT pg_notify('via_log', $1::text)", {seq}});
  statements.push_back({"COMMIT", {}});
  auto committed = RoundTrip(statements, [&] { crash_points().At("append.commit"); });
  pending_rows_.clear();
  if (!committed.ok()) {
    if (committed.status().reason() == reason::kLogUnreachable) {
      in_transaction_ = false;
      commit_outcome_unknown_ = true;
      // LogStore::Append finds out, once reconnected, whether it landed.
      return Unreachable("the connection broke during COMMIT (" + committed.status().message() +
                         "): the append may or may not be in the log");
    }
    // The transaction failed before COMMIT ran: the caller rolls it back.
    return committed.status().WithContext("commit append");
  }
  in_transaction_ = false;
  return Status::Ok();
}

Status PgLogStore::ConfirmLanded() {
  // The head row locked FOR UPDATE gave this transaction an id and a WAL
  // record, so its COMMIT writes a commit record after the landed append's
  // and, under synchronous replication, waits until a standby has it.
  Status committed = conn_.Exec("COMMIT");
  in_transaction_ = false;
  return committed.WithContext("confirm an append whose COMMIT was cut off");
}

void PgLogStore::RollbackAppend() {
  pending_rows_.clear();
  if (conn_.ok()) (void)conn_.Exec("ROLLBACK");
  in_transaction_ = false;
}

Result<std::optional<AppendResult>> PgLogStore::FindCommand(const std::string& command_id) {
  if (command_id.empty()) return std::optional<AppendResult>();
  ArrayParam ids(kTextOid);
  ids.Add(std::string_view(command_id));
  VIA_ASSIGN_OR_RETURN(PgResult r, Query(kFindCommandsSql, {ids.param()}));
  const std::uint64_t last_seq = FirstSeqs(r, {&command_id}).front();
  if (last_seq == 0) return std::optional<AppendResult>();
  AppendResult found;
  found.last_seq = last_seq;
  found.replayed = true;
  VIA_ASSIGN_OR_RETURN(PgResult start,
                       Query("SELECT seq FROM via.records WHERE seq < $1 AND checkpoint IS NOT "
                             "NULL ORDER BY seq DESC LIMIT 1",
                             {Param::Int8(static_cast<std::int64_t>(found.last_seq))}));
  found.first_seq = start.rows() ? static_cast<std::uint64_t>(start.Int8(0, 0)) + 1 : 1;
  return std::optional<AppendResult>(found);
}

Result<StoredRecord> PgLogStore::ReadRow(std::uint64_t seq) {
  VIA_ASSIGN_OR_RETURN(PgResult r, Query("SELECT record, hash FROM via.records WHERE seq = $1",
                                         {Param::Int8(static_cast<std::int64_t>(seq))}));
  if (r.rows() == 0) return NotFound("seq_not_found", "no record at seq " + std::to_string(seq));
  StoredRecord out;
  out.seq = seq;
  ByteView bytes = r.Bytes(0, 0);
  out.bytes.assign(bytes.begin(), bytes.end());
  out.hash = ToHash256(r.Bytes(0, 1));
  return out;
}

Status PgLogStore::ScanRaw(std::uint64_t from, std::uint64_t until,
                           const std::function<bool(const RawRow&)>& visit) {
  // Batches read one snapshot: this scan's own when the caller holds none.
  VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, BeginRead());
  const std::int64_t last = until == 0 ? INT64_MAX : static_cast<std::int64_t>(until);
  std::int64_t next = static_cast<std::int64_t>(from);
  RawRow row;
  while (next <= last) {
    VIA_ASSIGN_OR_RETURN(
        PgResult r, Query("SELECT seq, record, hash, nodes, command_id, checkpoint FROM "
                          "via.records WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3",
                          {Param::Int8(next), Param::Int8(last), Param::Int8(kScanBatch)}));
    for (int i = 0; i < r.rows(); ++i) {
      row.seq = static_cast<std::uint64_t>(r.Int8(i, 0));
      row.record = r.Bytes(i, 1);
      row.hash = r.Bytes(i, 2);
      row.nodes = r.Bytes(i, 3);
      row.command_id.reset();
      row.checkpoint.reset();
      if (!r.IsNull(i, 4)) row.command_id = r.Text(i, 4);
      if (!r.IsNull(i, 5)) row.checkpoint = r.Text(i, 5);
      if (!visit(row)) return Status::Ok();
    }
    if (r.rows() < kScanBatch) break;
    next = r.Int8(r.rows() - 1, 0) + 1;
  }
  return Status::Ok();
}

Status PgLogStore::Scan(std::uint64_t from, std::uint64_t until,
                        const std::function<bool(const StoredRecord&)>& visit) {
  StoredRecord stored;
  return ScanRaw(from, until, [&](const RawRow& row) {
    stored.seq = row.seq;
    stored.bytes.assign(row.record.begin(), row.record.end());
    stored.hash = ToHash256(row.hash);
    return visit(stored);
  });
}

Status PgLogStore::ScanCheckpoints(
    const std::function<bool(std::uint64_t size, const std::string& note)>& visit) {
  VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, BeginRead());
  std::int64_t next = 1;
  while (true) {
    VIA_ASSIGN_OR_RETURN(PgResult r,
                         Query("SELECT seq, checkpoint FROM via.records WHERE seq >= $1 AND "
                               "checkpoint IS NOT NULL ORDER BY seq LIMIT $2",
                               {Param::Int8(next), Param::Int8(kScanBatch)}));
    for (int i = 0; i < r.rows(); ++i) {
      if (!visit(static_cast<std::uint64_t>(r.Int8(i, 0)), std::string(r.Text(i, 1)))) {
        return Status::Ok();
      }
    }
    if (r.rows() < kScanBatch) return Status::Ok();
    next = r.Int8(r.rows() - 1, 0) + 1;
  }
}

Result<std::string> PgLogStore::LatestCheckpoint() {
  VIA_ASSIGN_OR_RETURN(PgResult r,
                       Query("SELECT checkpoint FROM via.records WHERE checkpoint IS NOT NULL "
                             "ORDER BY seq DESC LIMIT 1"));
  if (r.rows() == 0) return NotFound("no_checkpoint", "the log has no checkpoint yet");
  return std::string(r.Text(0, 0));
}

Result<std::string> PgLogStore::CheckpointAt(std::uint64_t seq) {
  VIA_ASSIGN_OR_RETURN(PgResult r, Query("SELECT checkpoint FROM via.records WHERE seq = $1 AND "
                                         "checkpoint IS NOT NULL",
                                         {Param::Int8(static_cast<std::int64_t>(seq))}));
  if (r.rows() == 0) {
    return NotFound("no_checkpoint", "the log holds no checkpoint for size " + std::to_string(seq));
  }
  return std::string(r.Text(0, 0));
}

Result<std::optional<StoredNote>> PgLogStore::NoteBefore(std::uint64_t seq) {
  VIA_ASSIGN_OR_RETURN(PgResult r, Query("SELECT seq, checkpoint FROM via.records WHERE seq < $1 "
                                         "AND checkpoint IS NOT NULL ORDER BY seq DESC LIMIT 1",
                                         {Param::Int8(static_cast<std::int64_t>(seq))}));
  if (r.rows() == 0) return std::optional<StoredNote>();
  return std::optional<StoredNote>(
      StoredNote{static_cast<std::uint64_t>(r.Int8(0, 0)), std::string(r.Text(0, 1))});
}

Result<std::uint64_t> PgLogStore::CountNotesBefore(std::uint64_t seq) {
  VIA_ASSIGN_OR_RETURN(PgResult r, Query("SELECT count(*) FROM via.records WHERE seq < $1 AND "
                                         "checkpoint IS NOT NULL",
                                         {Param::Int8(static_cast<std::int64_t>(seq))}));
  return static_cast<std::uint64_t>(r.Int8(0, 0));
}

}  // namespace via::eventstore::postgres
