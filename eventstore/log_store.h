#pragma once

// The event log: an append-only SQLite file (log/events.db) holding canonical
// records, their chain hashes, the RFC 6962 tree's perfect-subtree hashes and
// one signed checkpoint per committed append. See docs/event-log-format.md.
//
// Invariants kept by Append (all inside one BEGIN IMMEDIATE transaction, so two
// processes appending at once never fork the chain):
//   - seq starts at 1 and has no gaps; record n carries hash(n-1);
//   - merkle_nodes holds exactly the perfect subtrees of the tree of all records;
//   - checkpoints holds a note signed over (origin, size, root) for the size
//     after every committed append;
//   - a command id appears in one append only (a retry returns the first result).
// Triggers refuse UPDATE and DELETE on every table.
//
// A LogStore is one connection: not thread-safe; open one per thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "domain/events.h"
#include "domain/status.h"
#include "eventstore/merkle.h"
#include "eventstore/sqlite_db.h"

namespace via::eventstore {

// The last record of the log: its seq and chain hash (zero hash when empty).
struct Head {
  std::uint64_t seq = 0;
  Hash256 hash{};
  bool operator==(const Head&) const = default;
};

struct AppendRequest {
  std::string actor;
  std::string command_id;  // empty: no idempotency
  std::int64_t recorded_at_ms = 0;
  std::vector<Event> events;
  // When set, the append is refused with Aborted("stale_head") unless the log's
  // head is exactly this; nothing is written.
  std::optional<Head> expected_head;
};

struct AppendResult {
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  bool replayed = false;  // the command id was already in the log; nothing written
  Head head;              // the log's head after the append
};

// One stored row: canonical record bytes and the stored chain hash.
struct StoredRecord {
  std::uint64_t seq = 0;
  Bytes bytes;
  Hash256 hash{};
};

// The key that signs checkpoints and the origin it signs for.
struct Signer {
  const crypto::Ed25519PrivateKey* key = nullptr;
  std::string origin;
};

class LogStore {
 public:
  struct Options {
    std::string path;
    bool read_only = false;
    bool create_if_missing = true;
  };

  // Opens (and creates, with schema and triggers) the log. Errors: NotFound when
  // missing and !create_if_missing; DataLoss when the file is not a log.
  static Result<std::unique_ptr<LogStore>> Open(const Options& options);

  ~LogStore();
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  Result<Head> GetHead();

  // Appends `request.events` as consecutive records in one durable transaction
  // and signs the new checkpoint with `signer`. Errors: Aborted("stale_head"),
  // InvalidArgument (no events, record too large), Unavailable (lock timeout),
  // Internal (I/O).
  Result<AppendResult> Append(const AppendRequest& request, const Signer& signer);

  // The first result of an earlier append with this command id, if any.
  Result<std::optional<AppendResult>> FindCommand(const std::string& command_id);

  // Reads one record's stored row. NotFound past the head.
  Result<StoredRecord> ReadRow(std::uint64_t seq);
  // Reads and decodes one record.
  Result<Record> Read(std::uint64_t seq);

  // Calls `visit` for each stored row with from <= seq <= until (until 0: to the
  // end), in seq order, until it returns false. Rows are passed as stored,
  // undecoded and unverified.
  Status Scan(std::uint64_t from, std::uint64_t until,
              const std::function<bool(const StoredRecord&)>& visit);

  // Checkpoints as stored: (size, note) in size order.
  Status ScanCheckpoints(const std::function<bool(std::uint64_t size, const std::string& note)>& visit);
  // The newest stored checkpoint note; NotFound for an empty log.
  Result<std::string> LatestCheckpoint();

  // The connection, for verification inside this layer (eventstore/verify.cc).
  sql::Db& db() { return *db_; }

  // Perfect-subtree hashes as stored, for proofs.
  merkle::NodeSource& nodes();

  // Index of stored perfect-subtree hashes, for verification: calls `visit`
  // for each (level, index, hash) row.
  Status ScanNodes(const std::function<bool(int level, std::uint64_t index, const Hash256&)>& visit);

 private:
  class Nodes;
  explicit LogStore(std::unique_ptr<sql::Db> db);
  Status PrepareStatements();

  std::unique_ptr<sql::Db> db_;
  std::unique_ptr<Nodes> nodes_;
  sql::Stmt head_stmt_;
  sql::Stmt insert_record_stmt_;
  sql::Stmt insert_node_stmt_;
  sql::Stmt insert_checkpoint_stmt_;
  sql::Stmt find_command_stmt_;
  sql::Stmt read_stmt_;
  // Frontier of the tree at cached_head_, so an append needs no node reads
  // while no other process has appended since.
  std::optional<std::pair<Head, merkle::Frontier>> cached_frontier_;
};

}  // namespace via::eventstore
