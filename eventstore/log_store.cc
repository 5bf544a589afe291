#include "eventstore/log_store.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "eventstore/checkpoint.h"
#include "eventstore/postgres/pg_log_store.h"
#include "eventstore/record_codec.h"
#include "eventstore/sqlite_log_store.h"
#include "domain/reasons.h"

namespace via::eventstore {

Hash256 ToHash256(ByteView b) {
  Hash256 h{};
  if (b.size() == h.size()) std::memcpy(h.data(), b.data(), h.size());
  return h;
}

LogStore::~LogStore() = default;

Result<std::unique_ptr<LogStore>> LogStore::Open(const Options& options) {
  if (!options.postgres_url.empty()) {
    VIA_ASSIGN_OR_RETURN(auto store, postgres::PgLogStore::Open(options));
    return std::unique_ptr<LogStore>(std::move(store));
  }
  VIA_ASSIGN_OR_RETURN(auto store, SqliteLogStore::Open(options));
  return std::unique_ptr<LogStore>(std::move(store));
}

Result<AppendResult> LogStore::Append(const AppendRequest& request, const Signer& signer) {
  if (request.events.empty()) return InvalidArgument("no_events", "an append needs an event");
  if (signer.key == nullptr) return Internal("append without a signing key");

  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + retry_policy_.budget;
  std::chrono::milliseconds pause(50);
  // An attempt whose COMMIT was in flight when the connection broke.
  std::optional<SentCommit> unknown;
  for (int attempt = 1;; ++attempt) {
    Result<AppendResult> result = AppendOnce(request, signer, &unknown);
    if (result.ok() || result.status().reason() != reason::kLogUnreachable) return result;
    if (attempt >= retry_policy_.attempts || Clock::now() + pause > deadline) {
      if (!unknown) return result;
      return result.status()
          .WithContext("after " + std::to_string(attempt) +
                       " attempts the append (seqs " + std::to_string(unknown->first_seq) + "-" +
                       std::to_string(unknown->head.seq) +
                       ") may or may not be in the log")
          .WithRemediation(request.command_id.empty()
                               ? "check the log (via audit log) before appending again"
                               : "retry with the same command id: a retry returns the first "
                                 "result");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(1000));
  }
}

Result<AppendResult> LogStore::AppendOnce(const AppendRequest& request, const Signer& signer,
                                          std::optional<SentCommit>* unknown) {
  VIA_ASSIGN_OR_RETURN(Head head, BeginAppend());
  // Rolls back on every early return; nothing is written unless committed.
  struct RollbackUnlessCommitted {
    LogStore* store;
    ~RollbackUnlessCommitted() {
      if (store != nullptr) store->RollbackAppend();
    }
  } guard{this};

  // An earlier attempt's COMMIT was cut off: under the writer lock (held by
  // that transaction until it ended, wherever it ended) its last row is
  // either there with the hash it was computed with, or it never landed.
  if (*unknown) {
    const SentCommit sent = **unknown;
    if (head.seq >= sent.head.seq) {
      VIA_ASSIGN_OR_RETURN(StoredRecord row, ReadRow(sent.head.seq));
      if (row.hash == sent.head.hash) {
        // Acknowledged only once this transaction, which comes after it,
        // committed (with synchronous replication: the landed append has
        // reached a standby too). Until then it stays unknown.
        guard.store = nullptr;
        VIA_RETURN_IF_ERROR(ConfirmLanded());
        unknown->reset();
        AppendResult landed;
        landed.first_seq = sent.first_seq;
        landed.last_seq = sent.head.seq;
        landed.head = head;
        return landed;
      }
    }
    unknown->reset();  // it did not land
  }

  if (!request.command_id.empty()) {
    VIA_ASSIGN_OR_RETURN(auto previous, FindCommand(request.command_id));
    if (previous) {
      previous->head = head;
      return *previous;  // rolls back: nothing written
    }
  }

  if (request.expected_head && *request.expected_head != head) {
    return Aborted("stale_head", "the log moved on: expected head seq " +
                                     std::to_string(request.expected_head->seq) + ", found " +
                                     std::to_string(head.seq));
  }

  // The cached frontier is used up by this append: on any failure below it
  // is gone, and the next append reloads it.
  merkle::Frontier frontier;
  if (cached_frontier_ && cached_frontier_->first == head) {
    frontier = std::move(cached_frontier_->second);
  } else {
    VIA_ASSIGN_OR_RETURN(frontier, merkle::Frontier::Load(nodes(), head.seq));
  }
  cached_frontier_.reset();

  // Format 3: the new note links to the note on the head row.
  Hash256 link{};
  if (format_version_ >= 3) {
    VIA_ASSIGN_OR_RETURN(link, LinkToHeadNote(head, frontier, signer));
  }

  AppendResult result;
  result.first_seq = head.seq + 1;
  Hash256 completed[merkle::Frontier::kMaxCompleted];
  std::string note;  // the append's signed note, on its last record
  Record record;
  record.prev_hash = head.hash;
  record.recorded_at_ms = request.recorded_at_ms;
  record.actor = request.actor;
  record.command_id = request.command_id;
  for (std::size_t i = 0; i < request.events.size(); ++i) {
    const bool last = i + 1 == request.events.size();
    record.seq = head.seq + 1;
    record.event = request.events[i];
    Bytes bytes = EncodeRecord(record);
    if (bytes.size() > kMaxRecordBytes) {
      return InvalidArgument("record_too_large", "record of " + std::to_string(bytes.size()) +
                                                     " bytes exceeds the limit");
    }
    Hash256 hash = crypto::Sha256Concat({bytes});
    int n = frontier.Append(merkle::LeafHash(bytes), completed);
    ByteView nodes(reinterpret_cast<const std::uint8_t*>(completed),
                   sizeof(Hash256) * static_cast<std::size_t>(n));
    const bool with_command = last && !request.command_id.empty();
    if (last) {
      Checkpoint checkpoint{signer.origin, record.seq, frontier.Root(), std::nullopt};
      if (format_version_ >= 3) checkpoint.previous_note = link;
      note = SignCheckpoint(checkpoint, *signer.key);
    }
    if (Status inserted = InsertRow(record.seq, bytes, hash, nodes,
                                    with_command ? &request.command_id : nullptr,
                                    last ? &note : nullptr);
        !inserted.ok()) {
      return inserted.WithContext("append seq " + std::to_string(record.seq));
    }
    head.seq = record.seq;
    head.hash = hash;
    record.prev_hash = hash;
  }

  crash_.At("append.before_commit");
  commit_outcome_unknown_ = false;
  if (Status committed = CommitAppend(head); !committed.ok()) {
    if (commit_outcome_unknown_) *unknown = SentCommit{result.first_seq, head};
    return committed;
  }
  guard.store = nullptr;
  crash_.At("append.after_commit");
  cached_frontier_.emplace(head, std::move(frontier));
  if (format_version_ >= 3) authentic_note_ = AuthenticNote{head, NoteHash(note)};
  result.last_seq = head.seq;
  result.head = head;
  return result;
}

Result<Hash256> LogStore::LinkToHeadNote(const Head& head, const merkle::Frontier& frontier,
                                         const Signer& signer) {
  if (head.seq == 0) return Hash256{};  // the log's first note
  if (authentic_note_ && authentic_note_->head == head) return authentic_note_->hash;
  // Another connection wrote the head: its note is linked only once its
  // signature, size and root check out, so that a later note never vouches
  // for a forged one (docs/event-log-format.md section 9).
  auto refuse = [&](const std::string& why) {
    return DataLoss("broken_tail", "the event log's newest checkpoint (seq " +
                                       std::to_string(head.seq) + ") " + why +
                                       "; refusing to append after it")
        .WithRemediation("via audit verify");
  };
  auto note = CheckpointAt(head.seq);
  if (!note.ok()) {
    if (note.status().code() == StatusCode::kNotFound) return refuse("is missing");
    return note.status().WithContext("read the newest checkpoint");
  }
  if (!signer_verifier_ || signer_verifier_->key().name != signer.origin ||
      signer_verifier_->key().public_key != signer.key->PublicKey()) {
    signer_verifier_ = std::make_unique<CheckpointVerifier>(
        VerifierKey::For(signer.origin, signer.key->PublicKey()));
  }
  auto opened = signer_verifier_->Open(*note);
  if (!opened.ok()) return refuse("does not verify: " + opened.status().message());
  if (opened->size != head.seq || opened->root != frontier.Root()) {
    return refuse("does not match the records");
  }
  authentic_note_ = AuthenticNote{head, NoteHash(*note)};
  return authentic_note_->hash;
}

Result<Record> LogStore::Read(std::uint64_t seq) {
  VIA_ASSIGN_OR_RETURN(StoredRecord row, ReadRow(seq));
  Result<Record> record = DecodeRecord(row.bytes);
  if (!record.ok()) return record.status().WithContext("seq " + std::to_string(seq));
  return record;
}


Status LogStore::ScanNodes(
    const std::function<bool(int level, std::uint64_t index, const Hash256&)>& visit) {
  bool stopped = false;
  return ScanRaw(1, 0, [&](const RawRow& row) {
    for (std::size_t level = 0; level < 63 && 32 * (level + 1) <= row.nodes.size(); ++level) {
      if (!visit(static_cast<int>(level), (row.seq >> level) - 1,
                 ToHash256(row.nodes.subspan(32 * level, 32)))) {
        stopped = true;
        return false;
      }
    }
    return !stopped;
  });
}

}  // namespace via::eventstore
