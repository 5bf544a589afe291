#pragma once

// The embedded backend of the event log: one SQLite file (log/events.db) with
// one table, `records` (docs/event-log-format.md section 2). An append holds
// SQLite's write lock (BEGIN IMMEDIATE) from reading the head to COMMIT.

#include <memory>
#include <string>

#include "eventstore/log_store.h"
#include "storage/sqlite_db.h"

namespace via::eventstore {

class SqliteLogStore final : public LogStore {
 public:
  // See LogStore::Open (options.path).
  static Result<std::unique_ptr<SqliteLogStore>> Open(const Options& options);
  ~SqliteLogStore() override;

  const char* backend() const override { return "sqlite"; }
  Result<Head> GetHead() override;
  Result<sql::ReadTransaction> BeginRead() override {
    return sql::ReadTransaction::Begin(*db_);
  }
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

  // The connection (tests and tools/bench: PRAGMAs, tampering).
  sql::Db& db() { return *db_; }

 protected:
  Result<Head> BeginAppend() override;
  Status InsertRow(std::uint64_t seq, ByteView record, const Hash256& hash, ByteView nodes,
                   const std::string* command_id, const std::string* note) override;
  Status CommitAppend(const Head& head) override;
  void RollbackAppend() override;

 private:
  class Nodes;
  SqliteLogStore(std::unique_ptr<sql::Db> db, std::string path);
  Status PrepareStatements();

  std::unique_ptr<sql::Db> db_;
  std::string path_;
  std::unique_ptr<Nodes> nodes_;
  // Prepared once: an append per command should not parse SQL.
  sql::Stmt begin_stmt_;
  sql::Stmt commit_stmt_;
  sql::Stmt rollback_stmt_;
  sql::Stmt head_stmt_;
  sql::Stmt insert_stmt_;
  sql::Stmt find_command_stmt_;
  sql::Stmt append_start_stmt_;
  sql::Stmt read_stmt_;
};

}  // namespace via::eventstore
