#pragma once

// The event log: an append-only table of records holding per record its
// canonical bytes, its chain hash, the hashes of the RFC 6962 perfect subtrees
// its leaf completes and, on the last record of every append, the note signed
// over the log after that append and the append's command id. See
// docs/event-log-format.md.
//
// LogStore is the backend interface; two backends keep the same rows, byte
// for byte: the embedded SQLite file log/events.db (SqliteLogStore, the
// default) and PostgreSQL (postgres::PgLogStore, docs/operations.md). The
// append itself is written once, here, over the backend's primitives, so both
// store the same records, hashes, Merkle nodes and signed notes.
//
// Invariants kept by Append (all inside one transaction that holds the
// backend's writer lock, so two processes appending at once never fork the
// chain):
//   - seq starts at 1 and has no gaps; record n carries hash(n-1);
//   - row n's `nodes` holds the leaf hash of record n and every perfect
//     subtree that leaf completes, so the rows hold exactly the perfect
//     subtrees of the tree of all records;
//   - the last row of every committed append holds a checkpoint signed over
//     (origin, size, root) for the size after that append; in format 3 the
//     note also carries the SHA-256 of the note before it, and Append links
//     only to a note it wrote itself or whose signature it has checked;
//   - a command id appears in one append only (a retry returns the first result).
// Triggers refuse UPDATE and DELETE.
//
// A LogStore is one connection: not thread-safe; open one per thread
// (OpenReader opens another connection to the same log).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/crypto.h"
#include "domain/crash.h"
#include "domain/events.h"
#include "domain/status.h"
#include "eventstore/checkpoint.h"
#include "eventstore/merkle.h"
#include "storage/sqlite_db.h"

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

// One stored row with every column, for verification. The views are valid
// only during the visit that receives them.
struct RawRow {
  std::uint64_t seq = 0;
  ByteView record;
  ByteView hash;
  ByteView nodes;
  std::optional<std::string_view> command_id;
  std::optional<std::string_view> checkpoint;
};

// A stored note and the seq of the row that holds it.
struct StoredNote {
  std::uint64_t seq = 0;
  std::string note;
};

class LogStore {
 public:
  struct Options {
    // The SQLite file of the log (log/events.db of a home).
    std::string path;
    // When set, the log lives on PostgreSQL instead: a libpq connection URI
    // (postgresql://USER@HOST:PORT/DB), without a password (libpq reads it
    // from PGPASSFILE or ~/.pgpass). `path` is then unused.
    std::string postgres_url;
    bool read_only = false;
    bool create_if_missing = true;
  };

  // Opens (and creates, with schema and triggers) the log. Errors: NotFound when
  // missing and !create_if_missing; DataLoss when the file is not a log;
  // Unavailable("log_unreachable") when PostgreSQL cannot be reached.
  static Result<std::unique_ptr<LogStore>> Open(const Options& options);

  virtual ~LogStore();
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  // "sqlite" or "postgresql".
  virtual const char* backend() const = 0;

  virtual Result<Head> GetHead() = 0;

  // The log's format version: 2 or 3. A log keeps the version it was created
  // with; new logs are created with 3, whose notes link to the note before
  // them (docs/event-log-format.md sections 2.1, 8).
  int format_version() const { return format_version_; }

  // Starts a read transaction on this connection: until it is destroyed,
  // every read through this LogStore (head, rows, nodes, checkpoints, scans)
  // sees one state of the log, whatever other processes append meanwhile.
  // Answers that combine several facts take one (DESIGN.md section 9). Must
  // not be held across Append. Inside one already open it does nothing.
  virtual Result<sql::ReadTransaction> BeginRead() = 0;

  // Appends `request.events` as consecutive records in one durable transaction
  // and signs the new checkpoint with `signer`. Errors: Aborted("stale_head"),
  // InvalidArgument (no events, record too large), Unavailable (lock timeout;
  // "log_unreachable" when PostgreSQL stays unreachable, see below), Internal
  // (I/O); in format 3, DataLoss("broken_tail") when the note on the head
  // row, written by another connection, is missing, is not signed by
  // `signer`'s key or does not match the records (nothing is written).
  //
  // A lost connection (log_unreachable) is retried here, within
  // retry_policy(): the store reconnects and appends again. When the
  // connection broke while COMMIT was in flight the outcome is unknown, so
  // the next attempt first looks, under the writer lock, whether that commit
  // landed: the row at the append's last seq holding the chain hash this
  // append computed for it (that hash covers the previous record's hash and
  // every byte of the record: seq, time, actor, command id, event). If it
  // did, the first result is returned (replayed false: it is this append);
  // if not, the append is made once more, on the current head (a command id
  // already in the log is still answered with its first result). No id is
  // generated for an append without a command id: the record's bytes stay
  // what the caller asked for. When the policy runs out, the error says
  // whether the outcome is unknown ("may or may not be in the log").
  Result<AppendResult> Append(const AppendRequest& request, const Signer& signer);

  // Several appends in one transaction (group commit, eventstore/group_commit.h),
  // in the order given: each keeps its own records, command id and signed note
  // on its own last row (in format 3 each note links to the note before it,
  // which may be the previous append of the batch), so the rows are exactly
  // those of the same appends made one after the other. Returns one result
  // per request, each as Append would have answered it at its place in the
  // batch: its seqs; replayed for a command id already in the log or earlier
  // in the batch (answered with that first result); Aborted("stale_head")
  // when its expected_head is not the head left by the appends before it;
  // InvalidArgument for no events or a record too large. Such a request
  // writes nothing and does not fail the others. A failure of the batch
  // itself (lock, broken tail, commit) is every request's answer, and a lost
  // connection retries the whole batch as Append does: a COMMIT cut off in
  // flight is found by the batch's last chain hash.
  std::vector<Result<AppendResult>> AppendBatch(std::span<const AppendRequest> requests,
                                                const Signer& signer);

  // How Append retries a lost connection: at most `attempts` tries in all,
  // started within `budget` of the first (pauses of 50 ms doubling to 1 s).
  struct RetryPolicy {
    int attempts = 10;
    std::chrono::milliseconds budget{10000};
  };
  const RetryPolicy& retry_policy() const { return retry_policy_; }
  void set_retry_policy(RetryPolicy policy) { retry_policy_ = policy; }

  // Test-only crash points "append.before_commit" (every record of the append
  // inserted, the transaction not yet committed; on PostgreSQL the records
  // are queued and go to the server with the COMMIT), "append.commit" (on
  // PostgreSQL: the head update and notify queued, just before COMMIT is
  // queued and all of it sent) and
  // "append.after_commit" (committed and durable, nothing after it done)
  // (domain/crash.h).
  void set_crash_points(CrashPoints crash) { crash_ = std::move(crash); }

  // The first result of an earlier append with this command id, if any.
  virtual Result<std::optional<AppendResult>> FindCommand(const std::string& command_id) = 0;

  // Reads one record's stored row. NotFound past the head.
  virtual Result<StoredRecord> ReadRow(std::uint64_t seq) = 0;
  // Reads and decodes one record.
  Result<Record> Read(std::uint64_t seq);

  // Calls `visit` for each stored row with from <= seq <= until (until 0: to the
  // end), in seq order, until it returns false. Rows are passed as stored,
  // undecoded and unverified.
  virtual Status Scan(std::uint64_t from, std::uint64_t until,
                      const std::function<bool(const StoredRecord&)>& visit) = 0;
  // The same with every column (eventstore/verify.cc).
  virtual Status ScanRaw(std::uint64_t from, std::uint64_t until,
                         const std::function<bool(const RawRow&)>& visit) = 0;

  // Checkpoints as stored: (size, note) in size order.
  virtual Status ScanCheckpoints(
      const std::function<bool(std::uint64_t size, const std::string& note)>& visit) = 0;
  // The newest stored checkpoint note; NotFound for an empty log.
  virtual Result<std::string> LatestCheckpoint() = 0;
  // The checkpoint note stored on row `seq` (the last row of an append holds
  // the checkpoint for the log's size after it). NotFound when that row has
  // none or does not exist.
  virtual Result<std::string> CheckpointAt(std::uint64_t seq) = 0;
  // The note on the last row before `seq` that has one, if any.
  virtual Result<std::optional<StoredNote>> NoteBefore(std::uint64_t seq) = 0;
  // How many rows before `seq` hold a note.
  virtual Result<std::uint64_t> CountNotesBefore(std::uint64_t seq) = 0;

  // Opens another read-only connection to the same log, for a second thread
  // (eventstore/verify.cc). Errors: as Open; Unavailable for a log that has no
  // file (an in-memory database).
  virtual Result<std::unique_ptr<LogStore>> OpenReader() const = 0;

  // Perfect-subtree hashes as stored, for proofs. Node (level, index) lives in
  // the row of seq (index + 1) << level: one point read per node.
  virtual merkle::NodeSource& nodes() = 0;

  // Stored perfect-subtree hashes, for verification: calls `visit` for each
  // (level, index, hash), row by row in seq order, leaf first within a row.
  Status ScanNodes(
      const std::function<bool(int level, std::uint64_t index, const Hash256&)>& visit);

 protected:
  LogStore() = default;

  // The primitives of an append, in the order Append calls them.
  // Starts the append's transaction holding the writer lock, and returns the
  // head under it.
  virtual Result<Head> BeginAppend() = 0;
  // BeginAppend, then FindCommand for each of `command_ids` (non-empty):
  // `found` gets one entry per id. PostgreSQL does both in one round trip.
  virtual Result<Head> BeginAppendFinding(const std::vector<const std::string*>& command_ids,
                                          std::vector<std::optional<AppendResult>>* found);
  // Inserts one row (command_id and note only on an append's last row).
  virtual Status InsertRow(std::uint64_t seq, ByteView record, const Hash256& hash,
                           ByteView nodes, const std::string* command_id,
                           const std::string* note) = 0;
  // Commits the append whose last record is `head` (updating whatever the
  // backend keeps besides the rows).
  virtual Status CommitAppend(const Head& head) = 0;
  // Ends the append's transaction without writing anything.
  virtual void RollbackAppend() = 0;
  // Ends the append's transaction, which found that an earlier COMMIT cut off
  // in flight had landed, so that it returns only once that append is as
  // durable as a committed one (PostgreSQL: a COMMIT of its own, later in the
  // WAL, waits for synchronous standbys). Default: RollbackAppend.
  virtual Status ConfirmLanded() {
    RollbackAppend();
    return Status::Ok();
  }

  int format_version_ = 0;
  // Set by CommitAppend when it failed after sending COMMIT, so that whether
  // the append landed is unknown (PostgreSQL: the connection broke).
  bool commit_outcome_unknown_ = false;
  const CrashPoints& crash_points() const { return crash_; }

 private:
  // An attempt whose COMMIT was sent: its first written seq, the head it
  // would leave (its last seq and that record's chain hash) and the answers
  // it would give.
  struct SentCommit {
    std::uint64_t first_seq = 0;
    Head head;
    std::vector<Result<AppendResult>> results;
  };
  // One attempt of AppendBatch, answering each request in `*results` when
  // it returns OK. `*unknown`: an earlier attempt whose outcome is unknown;
  // checked under the writer lock first, and cleared when it did not land.
  // Set when this attempt's COMMIT was sent and its outcome is unknown.
  Status AppendBatchOnce(std::span<const AppendRequest> requests, const Signer& signer,
                         std::optional<SentCommit>* unknown,
                         std::vector<Result<AppendResult>>* results);

  // The link of the next note: SHA-256 of the note on the head row (zeros for
  // an empty log), checked as Append's comment says unless this connection
  // wrote or checked it already.
  Result<Hash256> LinkToHeadNote(const Head& head, const merkle::Frontier& frontier,
                                 const Signer& signer);

  // The head after this connection's last append and the tree's frontier at
  // it, so an append needs no node reads while no other process has appended.
  std::optional<std::pair<Head, merkle::Frontier>> cached_frontier_;
  // Format 3: the newest note this connection wrote or verified, by the head
  // it was on (seq and record hash, as cached_frontier_), and its NoteHash;
  // and the signer's key parsed for verifying.
  struct AuthenticNote {
    Head head;
    Hash256 hash{};
  };
  std::optional<AuthenticNote> authentic_note_;
  std::unique_ptr<CheckpointVerifier> signer_verifier_;
  CrashPoints crash_;
  RetryPolicy retry_policy_;
};

// Hash256 of a 32-byte view (zeros for any other length).
Hash256 ToHash256(ByteView b);

}  // namespace via::eventstore
