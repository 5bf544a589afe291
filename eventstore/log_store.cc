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
  std::vector<Result<AppendResult>> results = AppendBatch(std::span(&request, 1), signer);
  return std::move(results.front());
}

std::vector<Result<AppendResult>> LogStore::AppendBatch(std::span<const AppendRequest> requests,
                                                        const Signer& signer) {
  std::vector<Result<AppendResult>> results;
  auto every = [&](const Status& status) {
    results.clear();
    for (std::size_t i = 0; i < requests.size(); ++i) results.emplace_back(status);
    return std::move(results);
  };
  if (requests.empty()) return results;
  if (signer.key == nullptr) return every(Internal("append without a signing key"));

  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + retry_policy_.budget;
  std::chrono::milliseconds pause(50);
  // An attempt whose COMMIT was in flight when the connection broke.
  std::optional<SentCommit> unknown;
  for (int attempt = 1;; ++attempt) {
    Status status = AppendBatchOnce(requests, signer, &unknown, &results);
    if (status.ok()) return results;
    if (status.reason() != reason::kLogUnreachable) return every(status);
    if (attempt >= retry_policy_.attempts || Clock::now() + pause > deadline) {
      if (!unknown) return every(status);
      bool with_ids = true;
      for (const AppendRequest& request : requests) with_ids &= !request.command_id.empty();
      return every(status
                       .WithContext("after " + std::to_string(attempt) +
                                    " attempts the append (seqs " +
                                    std::to_string(unknown->first_seq) + "-" +
                                    std::to_string(unknown->head.seq) +
                                    ") may or may not be in the log")
                       .WithRemediation(!with_ids
                                            ? "check the log (via audit log) before appending again"
                                            : "retry with the same command id: a retry returns the "
                                              "first result"));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(1000));
  }
}

Result<Head> LogStore::BeginAppendFinding(const std::vector<const std::string*>& command_ids,
                                          std::vector<std::optional<AppendResult>>* found) {
  VIA_ASSIGN_OR_RETURN(Head head, BeginAppend());
  found->clear();
  for (const std::string* id : command_ids) {
    auto previous = FindCommand(*id);
    if (!previous.ok()) {
      RollbackAppend();
      return previous.status();
    }
    found->push_back(std::move(previous).value());
  }
  return head;
}

Status LogStore::AppendBatchOnce(std::span<const AppendRequest> requests, const Signer& signer,
                                 std::optional<SentCommit>* unknown,
                                 std::vector<Result<AppendResult>>* results) {
  std::vector<const std::string*> command_ids;
  for (const AppendRequest& request : requests) {
    if (!request.command_id.empty()) command_ids.push_back(&request.command_id);
  }
  std::vector<std::optional<AppendResult>> found;
  VIA_ASSIGN_OR_RETURN(Head head, BeginAppendFinding(command_ids, &found));
  // Rolls back on every early return; nothing is written unless committed.
  struct RollbackUnlessCommitted {
    LogStore* store;
    ~RollbackUnlessCommitted() {
      if (store != nullptr) store->RollbackAppend();
    }
  } guard{this};
  results->clear();
  auto answer_with_head = [&](const Head& final_head) {
    for (Result<AppendResult>& r : *results) {
      if (r.ok()) r->head = final_head;
    }
  };

  // An earlier attempt's COMMIT was cut off: under the writer lock (held by
  // that transaction until it ended, wherever it ended) its last row is
  // either there with the hash it was computed with, or it never landed.
  if (*unknown) {
    // The marker stays set until the outcome is known: a read that fails
    // here (the connection lost again) leaves it for the next attempt, which
    // must not write the batch a second time.
    if (head.seq >= (*unknown)->head.seq) {
      VIA_ASSIGN_OR_RETURN(StoredRecord row, ReadRow((*unknown)->head.seq));
      if (row.hash == (*unknown)->head.hash) {
        SentCommit sent = std::move(**unknown);
        unknown->reset();
        // Acknowledged only once this transaction, which comes after it,
        // committed (with synchronous replication: the landed append has
        // reached a standby too). Until then it stays unknown.
        guard.store = nullptr;
        if (Status confirmed = ConfirmLanded(); !confirmed.ok()) {
          *unknown = std::move(sent);
          return confirmed;
        }
        *results = std::move(sent.results);
        answer_with_head(head);
        return Status::Ok();
      }
    }
    // It did not land.
    unknown->reset();
  }

  // The first result of each command id: found in the log, or written by an
  // append earlier in this batch.
  std::vector<std::pair<std::string_view, AppendResult>> first_results;
  for (std::size_t i = 0; i < command_ids.size(); ++i) {
    if (found[i]) first_results.emplace_back(*command_ids[i], *found[i]);
  }
  auto first_result = [&](const std::string& id) -> const AppendResult* {
    for (const auto& [known, result] : first_results) {
      if (known == id) return &result;
    }
    return nullptr;
  };

  // The cached frontier is used up by this attempt: on any failure below it
  // is gone, and the next append reloads it.
  merkle::Frontier frontier;
  bool frontier_loaded = false;
  Hash256 link{};  // format 3: the NoteHash the next note links to
  bool link_known = false;
  std::uint64_t first_written = 0;
  Hash256 completed[merkle::Frontier::kMaxCompleted];
  struct Row {
    Bytes bytes;
    Hash256 hash{};
    Bytes nodes;
  };
  std::vector<Row> rows;

  for (const AppendRequest& request : requests) {
    if (request.events.empty()) {
      results->emplace_back(InvalidArgument("no_events", "an append needs an event"));
      continue;
    }
    if (!request.command_id.empty()) {
      if (const AppendResult* previous = first_result(request.command_id)) {
        AppendResult replay = *previous;
        replay.replayed = true;
        results->emplace_back(replay);  // nothing written for it
        continue;
      }
    }
    if (request.expected_head && *request.expected_head != head) {
      results->emplace_back(Aborted("stale_head", "the log moved on: expected head seq " +
                                                      std::to_string(request.expected_head->seq) +
                                                      ", found " + std::to_string(head.seq)));
      continue;
    }
    if (!frontier_loaded) {
      if (cached_frontier_ && cached_frontier_->first == head) {
        frontier = std::move(cached_frontier_->second);
      } else {
        VIA_ASSIGN_OR_RETURN(frontier, merkle::Frontier::Load(nodes(), head.seq));
      }
      cached_frontier_.reset();
      frontier_loaded = true;
    }
    // Format 3: the new note links to the note on the head row.
    if (format_version_ >= 3 && !link_known) {
      VIA_ASSIGN_OR_RETURN(link, LinkToHeadNote(head, frontier, signer));
      link_known = true;
    }

    // The request's rows, all encoded before any is written, so that one
    // too large leaves the batch as it was.
    merkle::Frontier next = frontier;
    rows.clear();
    std::string note;  // the append's signed note, on its last record
    Status refused = Status::Ok();
    Record record;
    record.prev_hash = head.hash;
    record.recorded_at_ms = request.recorded_at_ms;
    record.actor = request.actor;
    record.command_id = request.command_id;
    std::uint64_t seq = head.seq;
    for (std::size_t i = 0; i < request.events.size(); ++i) {
      record.seq = ++seq;
      record.event = request.events[i];
      Row row;
      row.bytes = EncodeRecord(record);
      if (row.bytes.size() > kMaxRecordBytes) {
        refused = InvalidArgument("record_too_large", "record of " +
                                                          std::to_string(row.bytes.size()) +
                                                          " bytes exceeds the limit");
        break;
      }
      row.hash = crypto::Sha256Concat({row.bytes});
      const int n = next.Append(merkle::LeafHash(row.bytes), completed);
      const auto* begin = reinterpret_cast<const std::uint8_t*>(completed);
      row.nodes.assign(begin, begin + sizeof(Hash256) * static_cast<std::size_t>(n));
      record.prev_hash = row.hash;
      rows.push_back(std::move(row));
    }
    if (!refused.ok()) {
      results->emplace_back(std::move(refused));
      continue;
    }
    Checkpoint checkpoint{signer.origin, seq, next.Root(), std::nullopt};
    if (format_version_ >= 3) checkpoint.previous_note = link;
    note = SignCheckpoint(checkpoint, *signer.key);

    AppendResult result;
    result.first_seq = head.seq + 1;
    result.last_seq = seq;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const bool last = i + 1 == rows.size();
      const bool with_command = last && !request.command_id.empty();
      if (Status inserted = InsertRow(head.seq + 1 + i, rows[i].bytes, rows[i].hash,
                                      rows[i].nodes, with_command ? &request.command_id : nullptr,
                                      last ? &note : nullptr);
          !inserted.ok()) {
        return inserted.WithContext("append seq " + std::to_string(head.seq + 1 + i));
      }
    }
    if (first_written == 0) first_written = result.first_seq;
    head = Head{seq, rows.back().hash};
    frontier = std::move(next);
    if (format_version_ >= 3) link = NoteHash(note);
    if (!request.command_id.empty()) first_results.emplace_back(request.command_id, result);
    results->emplace_back(result);
  }

  if (first_written == 0) {
    // Nothing to write: replays and refusals only.
    answer_with_head(head);
    return Status::Ok();
  }
  crash_.At("append.before_commit");
  commit_outcome_unknown_ = false;
  if (Status committed = CommitAppend(head); !committed.ok()) {
    if (commit_outcome_unknown_) *unknown = SentCommit{first_written, head, *results};
    return committed;
  }
  guard.store = nullptr;
  crash_.At("append.after_commit");
  cached_frontier_.emplace(head, std::move(frontier));
  if (format_version_ >= 3) authentic_note_ = AuthenticNote{head, link};
  answer_with_head(head);
  return Status::Ok();
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
