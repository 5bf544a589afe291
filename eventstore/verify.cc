#include "eventstore/verify.h"

#include <cstring>
#include <vector>

#include "crypto/crypto.h"
#include "eventstore/merkle.h"
#include "eventstore/record_codec.h"

namespace via::eventstore {
namespace {

// Walks the stored perfect-subtree hashes of one tree level in index order, so
// that the verifier can compare each node the recomputation completes with the
// stored one without a point query per node.
class LevelCursor {
 public:
  LevelCursor(sql::Db& db, int level) : db_(db), level_(level) {}

  // OK when the next stored node of this level is (index, hash).
  Status Expect(std::uint64_t index, const Hash256& hash) {
    if (!stmt_) {
      VIA_ASSIGN_OR_RETURN(sql::Stmt stmt,
                           db_.Prepare("SELECT idx, hash FROM merkle_nodes WHERE level=? ORDER BY idx"));
      stmt.Bind(1, static_cast<std::int64_t>(level_));
      stmt_.emplace(std::move(stmt));
    }
    VIA_ASSIGN_OR_RETURN(bool row, stmt_->Step());
    auto where = [&] {
      return "Merkle node level " + std::to_string(level_) + " index " + std::to_string(index);
    };
    if (!row) return DataLoss("merkle_node_missing", where() + " is missing");
    if (static_cast<std::uint64_t>(stmt_->Int(0)) != index) {
      return DataLoss("merkle_node_missing", where() + " is missing (found index " +
                                                 std::to_string(stmt_->Int(0)) + ")");
    }
    ByteView stored = stmt_->Blob(1);
    if (stored.size() != hash.size() || std::memcmp(stored.data(), hash.data(), hash.size()) != 0) {
      return DataLoss("merkle_node_mismatch", where() + " does not match the records");
    }
    return Status::Ok();
  }

  // OK when no stored node of this level is left over.
  Status ExpectEnd() {
    if (!stmt_) {
      VIA_ASSIGN_OR_RETURN(sql::Stmt stmt,
                           db_.Prepare("SELECT idx FROM merkle_nodes WHERE level=? ORDER BY idx"));
      stmt.Bind(1, static_cast<std::int64_t>(level_));
      stmt_.emplace(std::move(stmt));
    }
    VIA_ASSIGN_OR_RETURN(bool row, stmt_->Step());
    if (row) {
      return DataLoss("merkle_node_extra", "Merkle node level " + std::to_string(level_) +
                                               " index " + std::to_string(stmt_->Int(0)) +
                                               " covers records that do not exist");
    }
    return Status::Ok();
  }

 private:
  sql::Db& db_;
  int level_;
  std::optional<sql::Stmt> stmt_;
};

struct Failure {
  std::uint64_t seq;
  Status status;
};

}  // namespace

VerifyReport VerifyLog(LogStore& log, const VerifyOptions& options) {
  VerifyReport report;
  auto fail = [&report](std::uint64_t seq, Status status) {
    report.first_bad_seq = seq;
    report.status = status.WithContext("seq " + std::to_string(seq));
    return report;
  };

  sql::Db& db = log.db();
  // One read transaction: every cursor sees the same snapshot of the file.
  auto tx = sql::Transaction::BeginDeferred(db);
  if (!tx.ok()) {
    report.status = tx.status();
    return report;
  }
  auto head = log.GetHead();
  if (!head.ok()) {
    report.status = head.status();
    return report;
  }
  const std::uint64_t total = head->seq;

  auto records = db.Prepare("SELECT seq, record, hash FROM records ORDER BY seq");
  auto checkpoints = db.Prepare("SELECT size, note FROM checkpoints ORDER BY size");
  if (!records.ok() || !checkpoints.ok()) {
    report.status = records.ok() ? checkpoints.status() : records.status();
    return report;
  }

  std::optional<VerifierKey> key;
  if (!options.pinned_key.empty()) {
    auto parsed = VerifierKey::Parse(options.pinned_key);
    if (!parsed.ok()) {
      report.status = parsed.status();
      return report;
    }
    key = *parsed;
  }
  std::optional<Checkpoint> auditor;

  std::vector<LevelCursor> levels;
  Status node_status;
  std::uint64_t node_fail_seq = 0;
  merkle::Frontier frontier;
  crypto::Sha256 hasher;
  Hash256 prev{};
  std::uint64_t expected_seq = 1;
  std::uint64_t last_checkpoint_size = 0;

  // Checkpoint cursor: the next stored checkpoint not yet checked.
  std::optional<std::pair<std::uint64_t, std::string>> next_checkpoint;
  auto advance_checkpoint = [&]() -> Status {
    VIA_ASSIGN_OR_RETURN(bool row, checkpoints->Step());
    if (row) {
      next_checkpoint.emplace(static_cast<std::uint64_t>(checkpoints->Int(0)),
                              checkpoints->Text(1));
    } else {
      next_checkpoint.reset();
    }
    return Status::Ok();
  };
  if (Status s = advance_checkpoint(); !s.ok()) {
    report.status = s;
    return report;
  }

  // Checks every stored checkpoint of the current size against the recomputed root.
  auto check_checkpoints = [&]() -> std::optional<Failure> {
    while (next_checkpoint && next_checkpoint->first <= frontier.size()) {
      std::uint64_t size = next_checkpoint->first;
      if (size < frontier.size() || size == 0) {
        return Failure{size == 0 ? 1 : size,
                       DataLoss("checkpoint_out_of_order", "checkpoint row for size " +
                                                               std::to_string(size) +
                                                               " is out of place")};
      }
      auto opened = OpenCheckpoint(next_checkpoint->second, *key);
      if (!opened.ok()) return Failure{size, opened.status()};
      if (opened->size != size) {
        return Failure{size, DataLoss("checkpoint_mismatch",
                                      "checkpoint stored for size " + std::to_string(size) +
                                          " says size " + std::to_string(opened->size))};
      }
      if (opened->root != frontier.Root()) {
        return Failure{size, DataLoss("checkpoint_mismatch",
                                      "signed root at size " + std::to_string(size) +
                                          " does not match the records")};
      }
      ++report.checkpoints_verified;
      last_checkpoint_size = size;
      if (Status s = advance_checkpoint(); !s.ok()) return Failure{size, s};
    }
    if (auditor && auditor->size == frontier.size()) {
      if (auditor->root != frontier.Root()) {
        return Failure{auditor->size,
                       DataLoss("auditor_checkpoint_mismatch",
                                "the log does not match the saved checkpoint at size " +
                                    std::to_string(auditor->size) + ": the log was rewritten")};
      }
      report.auditor_checkpoint_verified = true;
    }
    return std::nullopt;
  };

  auto sink = [&](int level, std::uint64_t index, const Hash256& hash) {
    if (!node_status.ok()) return;
    while (levels.size() <= static_cast<std::size_t>(level)) {
      levels.emplace_back(db, static_cast<int>(levels.size()));
    }
    node_status = levels[level].Expect(index, hash);
    if (!node_status.ok()) node_fail_seq = expected_seq;
    ++report.nodes_verified;
  };

  while (true) {
    auto has_row = records->Step();
    if (!has_row.ok()) return fail(expected_seq, has_row.status());
    if (!*has_row) break;
    const std::uint64_t row_seq = static_cast<std::uint64_t>(records->Int(0));
    if (row_seq != expected_seq) {
      return fail(expected_seq, DataLoss("seq_gap", "record is missing (next stored seq is " +
                                                        std::to_string(row_seq) + ")"));
    }
    ByteView bytes = records->Blob(1);
    ByteView stored_hash = records->Blob(2);
    // Checked in this order so that the seq named is the record that changed:
    // its bytes against its stored hash, then decoding, then its link. A record
    // edited together with its stored hash is caught by its Merkle leaf (checked
    // below, before the next record's link).
    Hash256 hash = hasher.Update(bytes).Final();
    if (stored_hash.size() != hash.size() ||
        std::memcmp(stored_hash.data(), hash.data(), hash.size()) != 0) {
      return fail(row_seq, DataLoss("hash_mismatch", "record bytes do not match their stored hash"));
    }
    auto record = DecodeRecord(bytes);
    if (!record.ok()) return fail(row_seq, record.status());
    if (record->seq != row_seq) {
      return fail(row_seq, DataLoss("seq_mismatch", "row holds the record of seq " +
                                                        std::to_string(record->seq)));
    }
    if (record->prev_hash != prev) {
      return fail(row_seq, DataLoss("chain_broken",
                                    "prevHash does not match the hash of the record before it"));
    }
    if (row_seq == 1) {
      const auto* init = std::get_if<LogInitialized>(&record->event);
      if (init == nullptr) {
        return fail(1, DataLoss("log_not_initialized", "seq 1 is not LogInitialized"));
      }
      auto logged_key = VerifierKey::Parse(init->checkpoint_verifier_key);
      if (!logged_key.ok()) return fail(1, logged_key.status());
      if (key && !(*key == *logged_key)) {
        return fail(1, DataLoss("key_mismatch",
                                "the log was initialized with another checkpoint key than the "
                                "pinned one"));
      }
      key = *logged_key;
      report.origin = init->origin;
      report.verifier_key = init->checkpoint_verifier_key;
      if (!options.auditor_checkpoint.empty()) {
        auto opened = OpenCheckpoint(options.auditor_checkpoint, *key);
        if (!opened.ok()) {
          report.status = opened.status().WithContext("saved checkpoint");
          return report;
        }
        auditor = *opened;
        if (auditor->size > total) {
          return fail(total + 1,
                      DataLoss("log_truncated",
                               "the saved checkpoint covers " + std::to_string(auditor->size) +
                                   " records but the log holds " + std::to_string(total) +
                                   ": records were removed"));
        }
      }
    }
    frontier.Append(merkle::LeafHash(hasher, bytes), sink, hasher);
    if (!node_status.ok()) return fail(node_fail_seq, node_status);
    prev = hash;
    ++expected_seq;
    if (auto failure = check_checkpoints()) return fail(failure->seq, failure->status);
    if (options.progress && (row_seq % 65536 == 0)) options.progress(row_seq, total);
  }

  report.size = frontier.size();
  report.root = frontier.Root();
  if (next_checkpoint) {
    return fail(report.size + 1,
                DataLoss("log_truncated", "a signed checkpoint covers " +
                                              std::to_string(next_checkpoint->first) +
                                              " records but the log holds " +
                                              std::to_string(report.size)));
  }
  if (last_checkpoint_size < report.size) {
    return fail(last_checkpoint_size + 1,
                DataLoss("unsigned_records", "records after size " +
                                                 std::to_string(last_checkpoint_size) +
                                                 " are covered by no signed checkpoint"));
  }
  for (auto& level : levels) {
    if (Status s = level.ExpectEnd(); !s.ok()) return fail(report.size, s);
  }
  if (options.progress) options.progress(report.size, total);
  return report;
}

}  // namespace via::eventstore
