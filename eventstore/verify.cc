#include "eventstore/verify.h"

// Invariants:
//   - RangeVerifier::Run performs, for each row of its range, exactly the checks
//     of docs/event-log-format.md section 9 in that order, so the first failure
//     of the first failing range is the first failure of the whole pass.
//   - A range after the first starts from stored values (the chain hash of the
//     row before it, the perfect subtrees that make up the frontier there), all
//     of them in rows of earlier ranges, which compare them with recomputed
//     values. Its result is used only when every earlier range passed, and then
//     those values are the recomputed ones.
//   - Every range reads only rows up to the head seen by the caller's read
//     transaction; rows never change once written, so all connections read
//     the same records.
//   - Records go through ViewCanonicalRecord; whatever it refuses goes through
//     DecodeRecord, which decides. Seq 1 is always fully decoded.
//   - Format 2: every note's signature is checked. Format 3: the note on the
//     head row has its signature checked; every other note is checked for
//     everything else, including its link, and its signature only when one of
//     those checks fails at it. When the pass fails at some row, the notes
//     before that row are all linked to each other, so the first of them with
//     a bad signature (the reference pass would have stopped there) is found
//     by bisection (FirstForgedNote) and reported instead. The report is thus
//     the one of a pass that checks every signature
//     (docs/event-log-format.md section 9).

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "crypto/crypto.h"
#include "eventstore/merkle.h"
#include "eventstore/record_codec.h"
#include "eventstore/record_view.h"

namespace via::eventstore {
namespace {

// The default thread count: one per CPU, at most this many (each holds a
// connection to the log).
constexpr unsigned kMaxDefaultThreads = 16;

struct Failure {
  std::uint64_t seq = 0;  // 0: not tied to a record (a saved checkpoint that does not open)
  Status status;
  // The row being checked when the failure was found (log size + 1: after the
  // last row). Only notes on earlier rows can come before it in the pass.
  std::uint64_t row = 0;
};

// What the pass learns from seq 1, or what the auditor brings.
struct Anchors {
  std::optional<VerifierKey> key;
  std::optional<Checkpoint> auditor;
  std::string origin;
  std::string verifier_key;
};

struct RangeResult {
  std::optional<Failure> failure;
  std::uint64_t checkpoints_verified = 0;
  std::uint64_t signatures_verified = 0;
  std::uint64_t nodes_verified = 0;
  std::uint64_t last_checkpoint_size = 0;  // 0: no checkpoint in the range
  bool auditor_checkpoint_verified = false;
  merkle::Frontier frontier;  // after the range
  Anchors anchors;            // as learned by the range that holds seq 1
};

bool Equal(ByteView a, ByteView b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

// A pass that stops at `row` has checked every perfect subtree completed by
// rows 1 .. row: 2 * row - popcount(row) of them.
std::uint64_t NodesUpTo(std::uint64_t row) {
  return 2 * row - static_cast<std::uint64_t>(std::popcount(row));
}

std::string NodeName(int level, std::uint64_t seq) {
  return "Merkle node level " + std::to_string(level) + " index " +
         std::to_string((seq >> level) - 1);
}

// Shared by the threads of one VerifyLog call.
struct Shared {
  explicit Shared(std::size_t ranges) : done(ranges), earliest_failure(ranges) {}
  std::vector<std::atomic<std::uint64_t>> done;  // rows checked, per range
  std::atomic<std::size_t> earliest_failure;     // index of the first range known to fail
};

// Checks rows [first, last] of a log whose head is `total`, starting from the
// state after record first - 1.
class RangeVerifier {
 public:
  RangeVerifier(LogStore& db, const VerifyOptions& options, int format, std::uint64_t total,
                std::uint64_t first, std::uint64_t last, std::size_t index, Shared& shared)
      : db_(db),
        options_(options),
        format_(format),
        total_(total),
        first_(first),
        last_(last),
        index_(index),
        shared_(shared) {}

  // The state after record first - 1: its chain hash, the tree's frontier and
  // the NoteHash of the last note stored before `first` (zeros when none).
  void StartFrom(const Hash256& prev, merkle::Frontier frontier, const Hash256& prev_note,
                 Anchors anchors) {
    prev_ = prev;
    result_.frontier = std::move(frontier);
    prev_note_ = prev_note;
    result_.anchors = std::move(anchors);
    if (result_.anchors.key) verifier_.emplace(*result_.anchors.key);
  }

  RangeResult Run() {
    if (auto failure = Rows()) {
      if (failure->row == 0) failure->row = failure->seq;  // a missing row
      result_.failure = std::move(failure);
      std::size_t expected = shared_.earliest_failure.load();
      while (index_ < expected &&
             !shared_.earliest_failure.compare_exchange_weak(expected, index_)) {
      }
    }
    return std::move(result_);
  }

 private:
  std::optional<Failure> Rows() {
    std::uint64_t expected = first_;
    std::optional<Failure> failure;
    Status scanned = db_.ScanRaw(first_, total_, [&](const RawRow& row) {
      if (expected > last_) return false;
      if ((failure = Row(row, expected))) {
        if (failure->row == 0) failure->row = expected;
        return false;
      }
      ++expected;
      const std::uint64_t done = expected - first_;
      if (done % 4096 == 0) {
        shared_.done[index_].store(done, std::memory_order_relaxed);
        // A failure in an earlier range makes the rest of this one moot.
        if (shared_.earliest_failure.load(std::memory_order_relaxed) < index_) {
          failure = Failure{expected, Aborted("cancelled", "an earlier range failed")};
          return false;
        }
        if (index_ == 0 && options_.progress && done % 65536 == 0) Progress();
      }
      return true;
    });
    if (failure) return failure;
    if (!scanned.ok()) return Failure{expected, scanned};
    shared_.done[index_].store(expected - first_, std::memory_order_relaxed);
    if (expected <= last_) return Failure{expected, DataLoss("seq_gap", "record is missing")};
    return std::nullopt;
  }

  void Progress() {
    std::uint64_t done = 0;
    for (const auto& d : shared_.done) done += d.load(std::memory_order_relaxed);
    options_.progress(done, total_);
  }

  // The checks of one row, in the order of docs/event-log-format.md section 9.
  std::optional<Failure> Row(const RawRow& row, std::uint64_t expected) {
    auto fail = [](std::uint64_t seq, Status status) {
      return std::optional<Failure>(Failure{seq, std::move(status)});
    };
    const std::uint64_t seq = row.seq;
    if (seq != expected) {
      return fail(expected, DataLoss("seq_gap", "record is missing (next stored seq is " +
                                                    std::to_string(seq) + ")"));
    }
    const ByteView bytes = row.record;
    // Checked in this order so that the seq named is the record that changed:
    // its bytes against its stored hash, then decoding, then its link. A record
    // edited together with its stored hash is caught by its Merkle leaf (checked
    // below, before the next record's link).
    const Hash256 hash = crypto::Sha256Concat({bytes});
    if (!Equal(row.hash, hash)) {
      return fail(seq, DataLoss("hash_mismatch", "record bytes do not match their stored hash"));
    }

    std::optional<Record> decoded;
    std::optional<RecordView> view;
    if (seq != 1) view = ViewCanonicalRecord(bytes);
    if (!view) {
      auto full = DecodeRecord(bytes);
      if (!full.ok()) return fail(seq, full.status());
      decoded = std::move(full).value();
      view = RecordView{decoded->seq,   decoded->recorded_at_ms, ByteView(decoded->prev_hash),
                        decoded->actor, decoded->command_id,     0};
    }
    if (view->seq != seq) {
      return fail(seq, DataLoss("seq_mismatch",
                                "row holds the record of seq " + std::to_string(view->seq)));
    }
    if (!Equal(view->prev_hash, prev_)) {
      return fail(seq, DataLoss("chain_broken",
                                "prevHash does not match the hash of the record before it"));
    }
    // The command id is kept on the last record of its append, the one with
    // the checkpoint, for idempotent retries.
    const bool has_checkpoint = row.checkpoint.has_value();
    const bool expect_command = has_checkpoint && !view->command_id.empty();
    if (!row.command_id ? expect_command
                        : (!expect_command || *row.command_id != view->command_id)) {
      return fail(
          seq, DataLoss("command_id_mismatch", "the command_id column does not match the record"));
    }
    if (seq == 1) {
      if (auto failure = FirstRecord(*decoded)) return failure;
    }

    int n = result_.frontier.Append(merkle::LeafHash(bytes), completed_);
    const ByteView stored_nodes = row.nodes;
    const ByteView nodes(reinterpret_cast<const std::uint8_t*>(completed_),
                         sizeof(Hash256) * static_cast<std::size_t>(n));
    if (!Equal(stored_nodes, nodes)) return fail(seq, NodeError(seq, stored_nodes, n));
    result_.nodes_verified += static_cast<std::uint64_t>(n);
    prev_ = hash;

    if (has_checkpoint) {
      if (auto failure = CheckCheckpoint(seq, *row.checkpoint)) return failure;
    }
    const auto& auditor = result_.anchors.auditor;
    if (auditor && auditor->size == seq) {
      if (auditor->root != result_.frontier.Root()) {
        return fail(seq, DataLoss("auditor_checkpoint_mismatch",
                                  "the log does not match the saved checkpoint at size " +
                                      std::to_string(seq) + ": the log was rewritten"));
      }
      result_.auditor_checkpoint_verified = true;
    }
    return std::nullopt;
  }

  // Seq 1 names the key; a saved checkpoint is opened with it.
  std::optional<Failure> FirstRecord(const Record& record) {
    Anchors& anchors = result_.anchors;
    const auto* init = std::get_if<LogInitialized>(&record.event);
    if (init == nullptr) {
      return Failure{1, DataLoss("log_not_initialized", "seq 1 is not LogInitialized")};
    }
    auto logged_key = VerifierKey::Parse(init->checkpoint_verifier_key);
    if (!logged_key.ok()) return Failure{1, logged_key.status()};
    if (anchors.key && !(*anchors.key == *logged_key)) {
      return Failure{1, DataLoss("key_mismatch",
                                 "the log was initialized with another checkpoint key than the "
                                 "pinned one")};
    }
    anchors.key = *logged_key;
    verifier_.emplace(*anchors.key);
    anchors.origin = init->origin;
    anchors.verifier_key = init->checkpoint_verifier_key;
    if (!options_.auditor_checkpoint.empty()) {
      auto opened = OpenCheckpoint(options_.auditor_checkpoint, *anchors.key);
      if (!opened.ok()) return Failure{0, opened.status().WithContext("saved checkpoint")};
      anchors.auditor = *opened;
      if (anchors.auditor->size > total_) {
        return Failure{total_ + 1, DataLoss("log_truncated",
                                            "the saved checkpoint covers " +
                                                std::to_string(anchors.auditor->size) +
                                                " records but the log holds " +
                                                std::to_string(total_) + ": records were removed")};
      }
    }
    return std::nullopt;
  }

  // Why the stored nodes differ from the `n` recomputed ones, lowest level first.
  Status NodeError(std::uint64_t seq, ByteView stored, int n) const {
    for (int level = 0; level < n; ++level) {
      const std::size_t at = sizeof(Hash256) * static_cast<std::size_t>(level);
      if (stored.size() < at + sizeof(Hash256)) {
        return DataLoss("merkle_node_missing", NodeName(level, seq) + " is missing");
      }
      if (!Equal(stored.subspan(at, sizeof(Hash256)), completed_[level])) {
        return DataLoss("merkle_node_mismatch",
                        NodeName(level, seq) + " does not match the records");
      }
    }
    return DataLoss("merkle_node_extra", "the row holds " + std::to_string(stored.size()) +
                                             " bytes of Merkle nodes, its leaf completes " +
                                             std::to_string(n) + " subtrees");
  }

  // Check 9 of docs/event-log-format.md section 9, in its order: the note's
  // grammar, its signature, its body and origin, its size and root, and in
  // format 3 its link. In format 3 the signature is checked here only on the
  // head row, or when a later check fails, so that the failure reported is
  // the one a pass that checks every signature reports at this row.
  std::optional<Failure> CheckCheckpoint(std::uint64_t seq, std::string_view note) {
    if (!verifier_) return Failure{seq, Internal("no verifier key before a checkpoint")};
    const bool linked = format_ >= 3;
    const bool check_signature = !linked || seq == total_;
    const Hash256 root = result_.frontier.Root();
    if (linked && !check_signature && verifier_->IsNoteFor(note, seq, root, prev_note_)) {
      // Exactly the note via writes for this size, root and link: check 9
      // holds but for (b), which the links carry (see the file comment).
      return Accepted(seq, note, false);
    }
    auto opened = check_signature ? verifier_->Open(note) : verifier_->OpenWithoutSignature(note);
    Status status;
    if (!opened.ok()) {
      status = opened.status();
    } else if (opened->size != seq) {
      status = DataLoss("checkpoint_mismatch", "checkpoint stored for size " + std::to_string(seq) +
                                                   " says size " + std::to_string(opened->size));
    } else if (opened->root != root) {
      status = DataLoss("checkpoint_mismatch", "signed root at size " + std::to_string(seq) +
                                                   " does not match the records");
    } else if (linked && !opened->previous_note) {
      status = DataLoss("checkpoint_link_mismatch",
                        "the checkpoint carries no link to the checkpoint before it");
    } else if (linked && *opened->previous_note != prev_note_) {
      status = DataLoss("checkpoint_link_mismatch",
                        "the checkpoint's link is not the SHA-256 of the checkpoint stored before "
                        "it: a checkpoint was changed, removed or inserted");
    }
    if (!status.ok()) {
      if (!check_signature) {
        auto signed_open = verifier_->Open(note);
        if (!signed_open.ok()) status = signed_open.status();
      }
      return Failure{seq, std::move(status)};
    }
    return Accepted(seq, note, check_signature);
  }

  std::optional<Failure> Accepted(std::uint64_t seq, std::string_view note,
                                  bool signature_checked) {
    ++result_.checkpoints_verified;
    if (signature_checked) ++result_.signatures_verified;
    result_.last_checkpoint_size = seq;
    if (format_ >= 3) prev_note_ = NoteHash(note);
    return std::nullopt;
  }

  LogStore& db_;
  const VerifyOptions& options_;
  const int format_;
  const std::uint64_t total_;
  const std::uint64_t first_;
  const std::uint64_t last_;
  const std::size_t index_;
  Shared& shared_;
  RangeResult result_;
  Hash256 prev_{};
  Hash256 prev_note_{};  // format 3: NoteHash of the last note checked (zeros: none yet)
  std::optional<CheckpointVerifier> verifier_;  // this thread's, once the key is known
  Hash256 completed_[merkle::Frontier::kMaxCompleted];
};

// The anchors a range after the first needs, read from seq 1 the way the
// first range will check them. nullopt when that fails: the first range will
// then report why, and there is no point in other ranges.
std::optional<Anchors> PreviewAnchors(LogStore& log, const VerifyOptions& options,
                                      const std::optional<VerifierKey>& pinned,
                                      std::uint64_t total) {
  auto record = log.Read(1);
  if (!record.ok()) return std::nullopt;
  const auto* init = std::get_if<LogInitialized>(&record->event);
  if (init == nullptr) return std::nullopt;
  auto key = VerifierKey::Parse(init->checkpoint_verifier_key);
  if (!key.ok() || (pinned && !(*pinned == *key))) return std::nullopt;
  Anchors anchors;
  anchors.key = *key;
  if (!options.auditor_checkpoint.empty()) {
    auto opened = OpenCheckpoint(options.auditor_checkpoint, *key);
    if (!opened.ok() || opened->size > total) return std::nullopt;
    anchors.auditor = *opened;
  }
  return anchors;
}

// Format 3: the note with the lowest seq below `row` whose signature does not
// verify, and why, or nullopt when there is none. Every note below `row` has
// passed all other checks, links included, so if the last of them verifies,
// all of them are authentic (each was linked by the writer of the next only
// once authentic: docs/event-log-format.md section 9); and if one verifies,
// every earlier one does. The first bad one is found by bisection over seqs:
// O(log n) signature checks and point reads.
Result<std::optional<Failure>> FirstForgedNote(LogStore& db, const CheckpointVerifier& verifier,
                                               std::uint64_t row) {
  // Whether the note on the last row at or below `seq` that has one is forged.
  auto forged_at_or_below = [&](std::uint64_t seq) -> Result<std::optional<Failure>> {
    VIA_ASSIGN_OR_RETURN(auto stored, db.NoteBefore(seq + 1));
    if (!stored) return std::optional<Failure>();
    auto opened = verifier.Open(stored->note);
    if (opened.ok()) return std::optional<Failure>();
    return std::optional<Failure>(Failure{stored->seq, opened.status(), stored->seq});
  };
  if (row <= 1) return std::optional<Failure>();
  VIA_ASSIGN_OR_RETURN(auto forged, forged_at_or_below(row - 1));
  if (!forged) return forged;
  std::uint64_t low = 1;  // invariant: the first forged note is at a seq in [low, high]
  std::uint64_t high = forged->seq;
  while (low < high) {
    const std::uint64_t mid = low + (high - low) / 2;
    VIA_ASSIGN_OR_RETURN(auto at_mid, forged_at_or_below(mid));
    if (at_mid) {
      high = at_mid->seq;
      forged = std::move(at_mid);
    } else {
      low = mid + 1;
    }
  }
  return forged;
}

// The failure of the pass that checks every signature, given `found`, the
// first failure of this pass (docs/event-log-format.md section 9); fixes the
// report's counts to match when it moves to an earlier note.
Failure EarliestFailure(LogStore& log, int format, const Anchors& anchors, const Failure& found,
                        VerifyReport& report) {
  if (format < 3 || found.seq == 0 || !anchors.key ||
      found.status.code() != StatusCode::kDataLoss) {
    return found;
  }
  CheckpointVerifier verifier(*anchors.key);
  auto forged = FirstForgedNote(log, verifier, found.row);
  if (!forged.ok() || !*forged) return found;
  const Failure& earlier = **forged;
  // What a pass stopping at check 9 of that row has verified (signatures
  // stay the ones this pass checked).
  report.size = 0;
  report.root = Hash256{};
  report.nodes_verified = NodesUpTo(earlier.seq);
  report.auditor_checkpoint_verified = anchors.auditor && anchors.auditor->size < earlier.seq;
  report.checkpoints_verified = 0;
  if (auto count = log.CountNotesBefore(earlier.seq); count.ok()) {
    report.checkpoints_verified = *count;
  }
  return earlier;
}

}  // namespace

VerifyReport VerifyLog(LogStore& log, const VerifyOptions& options) {
  VerifyReport report;
  auto fail = [&report](const Failure& failure) {
    report.first_bad_seq = failure.seq;
    report.status = failure.seq == 0
                        ? failure.status
                        : failure.status.WithContext("seq " + std::to_string(failure.seq));
    return report;
  };

  // One read transaction on the caller's connection fixes the head; every
  // range reads only rows up to it.
  auto tx = log.BeginRead();
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
  const int format = log.format_version();

  std::optional<VerifierKey> pinned;
  if (!options.pinned_key.empty()) {
    auto parsed = VerifierKey::Parse(options.pinned_key);
    if (!parsed.ok()) {
      report.status = parsed.status();
      return report;
    }
    pinned = *parsed;
  }

  // Split into ranges when the log is large enough and the extra connections open.
  std::size_t ranges = 1;
  const unsigned threads =
      options.threads > 0 ? static_cast<unsigned>(options.threads)
                          : std::clamp(std::thread::hardware_concurrency(), 1u, kMaxDefaultThreads);
  if (threads > 1 && options.parallel_min_records > 0) {
    const std::uint64_t by_size = total / options.parallel_min_records;
    ranges = static_cast<std::size_t>(std::clamp<std::uint64_t>(by_size, 1, threads));
  }
  std::optional<Anchors> preview;
  std::vector<std::unique_ptr<LogStore>> readers;
  if (ranges > 1) preview = PreviewAnchors(log, options, pinned, total);
  if (preview) {
    for (std::size_t i = 1; i < ranges; ++i) {
      auto reader = log.OpenReader();
      if (!reader.ok()) break;
      readers.push_back(std::move(reader).value());
    }
  }
  ranges = readers.size() + 1;

  Shared shared(ranges);
  std::vector<RangeResult> results(ranges);
  auto first_of = [&](std::size_t i) { return 1 + total * i / ranges; };
  auto last_of = [&](std::size_t i) { return total * (i + 1) / ranges; };

  std::vector<std::thread> workers;
  for (std::size_t i = 1; i < ranges; ++i) {
    workers.emplace_back([&, i] {
      LogStore& store = *readers[i - 1];
      const std::uint64_t first = first_of(i);
      auto reader_tx = store.BeginRead();
      // The state after record first - 1, as stored in the rows before the range.
      auto before = store.ReadRow(first - 1);
      auto frontier = merkle::Frontier::Load(store.nodes(), first - 1);
      auto note_before = format >= 3 ? store.NoteBefore(first)
                                     : Result<std::optional<StoredNote>>(std::nullopt);
      if (!reader_tx.ok() || !before.ok() || !frontier.ok() || !note_before.ok()) {
        Status why = !reader_tx.ok()  ? reader_tx.status()
                     : !before.ok()   ? before.status()
                     : !frontier.ok() ? frontier.status()
                                      : note_before.status();
        results[i].failure = Failure{first, why.WithContext("start of range"), first};
        return;
      }
      const Hash256 prev_note = *note_before ? NoteHash((*note_before)->note) : Hash256{};
      RangeVerifier range(store, options, format, total, first, last_of(i), i, shared);
      range.StartFrom(before->hash, std::move(frontier).value(), prev_note, *preview);
      results[i] = range.Run();
    });
  }
  {
    RangeVerifier range(log, options, format, total, first_of(0), last_of(0), 0, shared);
    Anchors anchors;
    anchors.key = pinned;
    range.StartFrom(Hash256{}, merkle::Frontier(), Hash256{}, std::move(anchors));
    results[0] = range.Run();
  }
  for (auto& worker : workers) worker.join();

  report.origin = results[0].anchors.origin;
  report.verifier_key = results[0].anchors.verifier_key;
  // Counts cover what was verified before the first failure, as one thread's would.
  for (const RangeResult& result : results) {
    report.checkpoints_verified += result.checkpoints_verified;
    report.signatures_verified += result.signatures_verified;
    report.nodes_verified += result.nodes_verified;
    report.auditor_checkpoint_verified |= result.auditor_checkpoint_verified;
    if (result.failure) {
      return fail(EarliestFailure(log, format, results[0].anchors, *result.failure, report));
    }
  }
  const RangeResult& last_range = results.back();
  std::uint64_t last_checkpoint_size = 0;
  for (const RangeResult& result : results) {
    last_checkpoint_size = std::max(last_checkpoint_size, result.last_checkpoint_size);
  }
  report.size = last_range.frontier.size();
  report.root = last_range.frontier.Root();
  if (last_checkpoint_size < report.size) {
    Failure unsigned_records{
        last_checkpoint_size + 1,
        DataLoss("unsigned_records", "records after size " + std::to_string(last_checkpoint_size) +
                                         " are covered by no signed checkpoint"),
        report.size + 1};
    return fail(EarliestFailure(log, format, results[0].anchors, unsigned_records, report));
  }
  if (options.progress) options.progress(report.size, total);
  return report;
}

}  // namespace via::eventstore
