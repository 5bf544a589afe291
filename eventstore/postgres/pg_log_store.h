#pragma once

// The event log on PostgreSQL (docs/event-log-format.md section 2.5,
// docs/operations.md "The event log on PostgreSQL"). Schema `via`:
//
//   via.records   the rows of the SQLite log's `records` table, same columns
//                 (bigint, bytea, text), same bytes
//   via.head      one row: the seq and chain hash of the newest record
//   via.log_meta  one row: application id "VIAL" and the format version (3)
//
// An append is one READ COMMITTED transaction that first locks the head row
// (SELECT ... FOR UPDATE), so appenders from any number of processes and
// machines queue there; it checks the command id and the expected head,
// inserts the records (the last one with the signed note), moves the head,
// notifies channel `via_log` with the new head seq, and commits (durable once
// the server's synchronous_commit is on, its default). It takes two round
// trips when this connection made the last append (libpq pipeline mode):
// BEGIN, the lock and one lookup of every command id in one; one INSERT of
// every row (unnest over array parameters), the head update, the notify and
// COMMIT in the other. However many appends a batch holds, it is these same
// statements, each planned to read a few rows whatever the log's length. A connection lost on
// the way is retried by LogStore::Append, which finds out whether a COMMIT
// cut off in flight landed before it appends again. Triggers refuse
// UPDATE, DELETE and TRUNCATE of records and log_meta, and any change of the
// head but moving it forward to a stored record. A read snapshot
// (BeginRead) is a REPEATABLE READ READ ONLY transaction.

#include <memory>
#include <string>

#include "eventstore/log_store.h"
#include "eventstore/postgres/pq.h"

namespace via::eventstore::postgres {

// The NOTIFY channel of appends; the payload is the new head seq.
inline constexpr const char* kNotifyChannel = "via_log";

// Checks a log URL for `via init --log`: a postgresql:// (or postgres://)
// URI naming a user, host and database, and no password (the password comes
// from a 0600 file or PGPASSFILE, never from the home or the log). Errors:
// InvalidArgument "bad_log_url" / "password_in_url".
Status ValidateLogUrl(const std::string& url);

class PgLogStore final : public LogStore {
 public:
  // See LogStore::Open (options.postgres_url). Creates the schema when
  // missing (unless read_only or !create_if_missing: NotFound "log_missing").
  static Result<std::unique_ptr<PgLogStore>> Open(const Options& options);
  ~PgLogStore() override;

  const char* backend() const override { return "postgresql"; }
  Result<Head> GetHead() override;
  Result<sql::ReadTransaction> BeginRead() override;
  Result<std::optional<AppendResult>> FindCommand(const std::string& command_id) override;
  Result<StoredRecord> ReadRow(std::uint64_t seq) override;
  Status Scan(std::uint64_t from, std::uint64_t until,
              const std::function<bool(const StoredRecord&)>& visit) override;
  Status ScanRaw(std::uint64_t from, std::uint64_t until,
                 const std::function<bool(const RawRow&)>& visit) override;
  Status ScanCheckpoints(
      const std::function<bool(std::uint64_t size, const std::string& note)>& visit) override;
  Result<std::string> LatestCheckpoint() override;
  Result<std::string> CheckpointAt(std::uint64_t seq) override;
  Result<std::optional<StoredNote>> NoteBefore(std::uint64_t seq) override;
  Result<std::uint64_t> CountNotesBefore(std::uint64_t seq) override;
  Result<std::unique_ptr<LogStore>> OpenReader() const override;
  merkle::NodeSource& nodes() override;

  // The connection (tests).
  Conn& conn() { return conn_; }

 protected:
  Result<Head> BeginAppend() override;
  Result<Head> BeginAppendFinding(const std::vector<const std::string*>& command_ids,
                                  std::vector<std::optional<AppendResult>>* found) override;
  Status InsertRow(std::uint64_t seq, ByteView record, const Hash256& hash, ByteView nodes,
                   const std::string* command_id, const std::string* note) override;
  Status CommitAppend(const Head& head) override;
  void RollbackAppend() override;
  Status ConfirmLanded() override;

 private:
  class Nodes;
  PgLogStore(Conn conn, Options options);
  // Replaces the first body of the head guard via.check_head_move with this
  // build's (pg_log_store.cc kCheckHeadMoveBody); Open asks for it only then.
  void UpgradeHeadGuard();
  // Reconnects a connection that broke outside any transaction; inside one
  // the transaction is lost, so it fails with log_unreachable.
  Status EnsureConnected();
  Result<PgResult> Query(const char* sql, std::initializer_list<Param> params = {});
  // One statement of a round trip.
  struct Statement {
    const char* sql;
    std::vector<Param> params;
  };
  // Sends `statements` in one round trip (pipeline mode) and returns their
  // results, or the first error (the statements after a failed one are not
  // run). `before_last` runs just before the last statement is queued.
  Result<std::vector<PgResult>> RoundTrip(const std::vector<Statement>& statements,
                                          const std::function<void()>& before_last = {});

  Conn conn_;
  Options options_;
  std::unique_ptr<Nodes> nodes_;
  bool in_transaction_ = false;
  // The rows of the append in progress, sent with its COMMIT.
  struct PendingRow {
    std::int64_t seq = 0;
    Bytes record;
    Hash256 hash{};
    Bytes nodes;
    std::optional<std::string> command_id;
    std::optional<std::string> note;
  };
  std::vector<PendingRow> pending_rows_;
};

}  // namespace via::eventstore::postgres
