// VerifyLog on several threads reports exactly what one thread reports, on
// intact logs and on every kind of damage, wherever it sits relative to the
// ranges the threads split the log into.

#include "eventstore/verify.h"

#include <sqlite3.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>

#include "crypto/crypto.h"
#include "eventstore/checkpoint.h"
#include "eventstore/event_log.h"
#include "eventstore/record_codec.h"
#include "log_backend.h"
#include "testing.h"

using namespace via;
using namespace via::eventstore;

namespace {

constexpr std::uint64_t kRecords = 120;

// Writes a home whose log holds kRecords records, appended 1 to 5 events at a
// time, some appends with a command id and some without.
void WriteLog(const std::filesystem::path& root, const std::string& log_url) {
  testing::FakeClock clock;
  testing::CountingIds ids;
  EventLog::Options options;
  options.home = Home{root};
  options.log_url = log_url;
  options.clock = &clock;
  options.ids = &ids;
  options.actor = "tester";
  auto log = EventLog::Open(options);
  REQUIRE(log.ok());
  std::uint64_t seq = 1;
  for (int i = 0; seq < kRecords; ++i) {
    AppendRequest request;
    request.actor = "tester";
    request.command_id = i % 3 == 0 ? "" : "cmd-" + std::to_string(i);
    request.recorded_at_ms = clock.NowMs();
    const std::uint64_t n = std::min<std::uint64_t>(1 + i % 5, kRecords - seq);
    for (std::uint64_t k = 0; k < n; ++k) {
      request.events.push_back(BindingAttached{"api", "B" + std::to_string(seq + k), "ad_1"});
    }
    auto appended = (*log)->Append(request);
    REQUIRE(appended.ok());
    seq = appended->last_seq;
  }
}

// A copy of one such home, written once per test binary (appends are durable,
// so writing it for every case would cost thousands of fsyncs).
struct LogFixture {
  testing::TempDir dir;
  std::unique_ptr<testing::TestLogDatabase> database;  // PostgreSQL: this copy's
  std::unique_ptr<testing::RawLog> raw_log;

  testing::RawLog& Raw() {
    if (!raw_log) raw_log = std::make_unique<testing::RawLog>(Home{dir.path()});
    return *raw_log;
  }

  LogFixture() {
    static testing::TempDir original;
    static testing::TestLogDatabase original_db;
    const std::string original_url = original_db.url();
    static bool written = false;
    if (!written) {
      WriteLog(original.path(), original_url);
      written = true;
    }
    std::filesystem::copy(original.path(), dir.path(),
                          std::filesystem::copy_options::recursive |
                              std::filesystem::copy_options::overwrite_existing);
    if (testing::kPostgresLog) {
      // The database too: a copy of the original's, named in the copied home.
      database = std::make_unique<testing::TestLogDatabase>(original_db.name());
      const std::string line = database->url() + "\n";
      REQUIRE(WriteFileAtomically(Home{dir.path()}.log_url_file(), AsBytes(line), 0644).ok());
    }
  }

  std::filesystem::path db() const { return Home{dir.path()}.log_db(); }

  // Runs SQL with the triggers off, binding `blob` to ?1 when given.
  void Tamper(const std::string& sql, const Bytes* blob = nullptr) {
    CHECK(Raw().Tamper(sql, blob));
  }

  Bytes Column(const std::string& column, std::uint64_t seq) {
    return Raw().Bytes1("SELECT " + column + " FROM records WHERE seq=" + std::to_string(seq));
  }

  std::uint64_t Int(const std::string& sql) {
    return static_cast<std::uint64_t>(Raw().Int(sql));
  }

  // Every row that holds a note, in seq order.
  std::vector<std::uint64_t> NoteSeqs() {
    std::vector<std::uint64_t> seqs;
    for (std::uint64_t seq = 1; seq <= kRecords; ++seq) {
      if (Int("SELECT checkpoint IS NOT NULL FROM records WHERE seq=" + std::to_string(seq))) {
        seqs.push_back(seq);
      }
    }
    return seqs;
  }

  std::string Note(std::uint64_t seq) { return std::string(AsChars(Column("checkpoint", seq))); }

  void SetNote(std::uint64_t seq, const std::string& note) {
    Bytes bytes(note.begin(), note.end());
    Tamper("UPDATE records SET checkpoint=CAST(?1 AS TEXT) WHERE seq=" + std::to_string(seq),
           &bytes);
  }

  // The key that signed this log (keys/log.key).
  std::unique_ptr<crypto::Ed25519PrivateKey> LogKey() {
    auto key = LoadOrCreateSigningKey(Home{dir.path()}.log_key());
    REQUIRE(key.ok());
    return std::move(key).value();
  }

  VerifyReport Verify(int threads, const VerifyOptions& base = {}) {
    LogStore::Options options;
    options.path = db().string();
    auto url = Home{dir.path()}.LogUrl();
    REQUIRE(url.ok());
    if (*url) options.postgres_url = **url;
    options.read_only = true;
    options.create_if_missing = false;
    auto store = LogStore::Open(options);
    REQUIRE(store.ok());
    VerifyOptions verify = base;
    verify.threads = threads;
    verify.parallel_min_records = 1;
    return VerifyLog(**store, verify);
  }

  // Verifies with 1 to 4 threads; all reports must agree. Returns the first.
  VerifyReport VerifyAgreeing(const VerifyOptions& base = {}) {
    VerifyReport one = Verify(1, base);
    for (int threads = 2; threads <= 4; ++threads) {
      VerifyReport many = Verify(threads, base);
      INFO("threads " << threads << ": " << many.status.ToString() << " vs "
                      << one.status.ToString());
      CHECK(many.status.code() == one.status.code());
      CHECK(many.status.reason() == one.status.reason());
      CHECK(many.status.message() == one.status.message());
      CHECK(many.first_bad_seq == one.first_bad_seq);
      CHECK(many.size == one.size);
      CHECK(many.root == one.root);
      CHECK(many.checkpoints_verified == one.checkpoints_verified);
      CHECK(many.signatures_verified == one.signatures_verified);
      CHECK(many.nodes_verified == one.nodes_verified);
      CHECK(many.auditor_checkpoint_verified == one.auditor_checkpoint_verified);
      CHECK(many.origin == one.origin);
    }
    return one;
  }
};

// Changes one letter of the actor text: the record still decodes, canonically.
void FlipActorByte(Bytes& record) {
  const std::string actor = "tester";
  auto at = std::search(record.begin(), record.end(), actor.begin(), actor.end());
  REQUIRE(at != record.end());
  *at ^= 0x01;
}

// Seqs at and around the boundaries of 2, 3 and 4 ranges of kRecords.
std::vector<std::uint64_t> BoundarySeqs() {
  std::vector<std::uint64_t> seqs = {1, 2, kRecords - 1, kRecords};
  for (std::uint64_t ranges = 2; ranges <= 4; ++ranges) {
    for (std::uint64_t i = 1; i < ranges; ++i) {
      std::uint64_t last = kRecords * i / ranges;
      for (std::uint64_t s : {last - 1, last, last + 1, last + 2}) seqs.push_back(s);
    }
  }
  return seqs;
}

}  // namespace

TEST_CASE("verify on several threads passes an intact log with the same report", "[eventstore]") {
  LogFixture f;
  VerifyReport report = f.VerifyAgreeing();
  CHECK(report.status.ok());
  CHECK(report.size == kRecords);
  CHECK(report.nodes_verified == 2 * kRecords - std::popcount(kRecords));
}

TEST_CASE("verify on several threads names the same seq for a flipped byte", "[eventstore]") {
  for (std::uint64_t seq : BoundarySeqs()) {
    LogFixture f;
    Bytes record = f.Column("record", seq);
    FlipActorByte(record);
    f.Tamper("UPDATE records SET record=?1 WHERE seq=" + std::to_string(seq), &record);
    VerifyReport report = f.VerifyAgreeing();
    CHECK(report.first_bad_seq == seq);
    CHECK(report.status.reason() == "hash_mismatch");
  }
}

TEST_CASE("verify on several threads names the same seq for a record rewritten with its hash",
          "[eventstore]") {
  for (std::uint64_t seq : BoundarySeqs()) {
    LogFixture f;
    Bytes record = f.Column("record", seq);
    FlipActorByte(record);
    Hash256 hash = crypto::Sha256::Digest(record);
    Bytes hash_bytes(hash.begin(), hash.end());
    f.Tamper("UPDATE records SET record=?1 WHERE seq=" + std::to_string(seq), &record);
    f.Tamper("UPDATE records SET hash=?1 WHERE seq=" + std::to_string(seq), &hash_bytes);
    VerifyReport report = f.VerifyAgreeing();
    CHECK(report.first_bad_seq == seq);
    CHECK(report.status.reason() == "merkle_node_mismatch");
  }
}

TEST_CASE("verify on several threads names the same seq for a changed Merkle node",
          "[eventstore]") {
  // The rows before a range hold the frontier a later thread starts from.
  for (std::uint64_t seq : BoundarySeqs()) {
    LogFixture f;
    Bytes nodes = f.Column("nodes", seq);
    nodes.back() ^= 0x80;  // the highest level this row completes
    f.Tamper("UPDATE records SET nodes=?1 WHERE seq=" + std::to_string(seq), &nodes);
    VerifyReport report = f.VerifyAgreeing();
    CHECK(report.first_bad_seq == seq);
    CHECK(report.status.reason() == "merkle_node_mismatch");
  }
}

TEST_CASE("verify on several threads names the same seq for a missing or extra Merkle node",
          "[eventstore]") {
  LogFixture f;
  Bytes nodes = f.Column("nodes", 64);  // completes levels 0..6
  REQUIRE(nodes.size() == 7 * 32);
  nodes.resize(nodes.size() - 32);
  f.Tamper("UPDATE records SET nodes=?1 WHERE seq=64", &nodes);
  VerifyReport report = f.VerifyAgreeing();
  CHECK(report.first_bad_seq == 64);
  CHECK(report.status.reason() == "merkle_node_missing");

  Bytes more = f.Column("nodes", 61);  // completes level 0 only
  REQUIRE(more.size() == 32);
  more.resize(more.size() + 32);
  f.Tamper("UPDATE records SET nodes=?1 WHERE seq=61", &more);
  report = f.VerifyAgreeing();
  CHECK(report.first_bad_seq == 61);
  CHECK(report.status.reason() == "merkle_node_extra");
}

TEST_CASE("verify on several threads names the same seq for a deleted row", "[eventstore]") {
  for (std::uint64_t seq : BoundarySeqs()) {
    if (seq == kRecords) continue;  // deleting the newest row is a truncation
    LogFixture f;
    f.Tamper("DELETE FROM records WHERE seq=" + std::to_string(seq));
    VerifyReport report = f.VerifyAgreeing();
    CHECK(report.first_bad_seq == seq);
    CHECK(report.status.reason() == "seq_gap");
  }
}

TEST_CASE("verify on several threads names the same seq for a changed stored hash",
          "[eventstore]") {
  for (std::uint64_t seq : BoundarySeqs()) {
    LogFixture f;
    f.Tamper("UPDATE records SET hash=zeroblob(32) WHERE seq=" + std::to_string(seq));
    VerifyReport report = f.VerifyAgreeing();
    CHECK(report.first_bad_seq == seq);
    CHECK(report.status.reason() == "hash_mismatch");
  }
}

TEST_CASE("verify on several threads names the same seq for a non-canonical record",
          "[eventstore]") {
  for (std::uint64_t seq : {std::uint64_t{1}, std::uint64_t{60}, std::uint64_t{61}}) {
    LogFixture f;
    Bytes record = f.Column("record", seq);
    record.insert(record.end(), 8, 0);
    Hash256 hash = crypto::Sha256::Digest(record);
    Bytes hash_bytes(hash.begin(), hash.end());
    f.Tamper("UPDATE records SET record=?1 WHERE seq=" + std::to_string(seq), &record);
    f.Tamper("UPDATE records SET hash=?1 WHERE seq=" + std::to_string(seq), &hash_bytes);
    VerifyReport report = f.VerifyAgreeing();
    CHECK(report.first_bad_seq == seq);
    CHECK(report.status.reason() == "record_not_canonical");
  }
}

TEST_CASE("verify on several threads names the same seq for checkpoint damage", "[eventstore]") {
  LogFixture f;
  auto forger = crypto::Ed25519PrivateKey::FromSeed(Bytes(32, 7));
  REQUIRE(forger);
  SECTION("a checkpoint signed by another key") {
    auto note = f.Column("checkpoint", kRecords);
    auto parsed = ParseCheckpointUnverified(AsChars(note));
    REQUIRE(parsed.ok());
    std::string forged = SignCheckpoint(*parsed, *forger);
    Bytes forged_bytes(forged.begin(), forged.end());
    f.Tamper("UPDATE records SET checkpoint=CAST(?1 AS TEXT) WHERE seq=" + std::to_string(kRecords),
             &forged_bytes);
    VerifyReport report = f.VerifyAgreeing();
    CHECK(report.first_bad_seq == kRecords);
    CHECK(report.status.reason() == "checkpoint_bad_signature");
  }
  SECTION("a checkpoint moved to another row") {
    // Find two checkpoint rows in the second half and copy the earlier note down.
    f.Tamper(
        "UPDATE records SET checkpoint=(SELECT checkpoint FROM records WHERE seq < 90 AND "
        "checkpoint IS NOT NULL ORDER BY seq DESC LIMIT 1) WHERE seq=" +
        std::to_string(kRecords));
    VerifyReport report = f.VerifyAgreeing();
    CHECK(report.first_bad_seq == kRecords);
    CHECK(report.status.reason() == "checkpoint_mismatch");
  }
  SECTION("the newest checkpoint removed") {
    f.Tamper("UPDATE records SET checkpoint=NULL, command_id=NULL WHERE seq=" +
             std::to_string(kRecords));
    VerifyReport report = f.VerifyAgreeing();
    CHECK(report.status.reason() == "unsigned_records");
    CHECK(report.first_bad_seq > 1);
    CHECK(report.first_bad_seq <= kRecords);
  }
  SECTION("a command id on a row without a checkpoint") {
    std::uint64_t seq =
        f.Int("SELECT min(seq) FROM records WHERE seq >= 60 AND checkpoint IS NULL");
    f.Tamper("UPDATE records SET command_id='cmd-x' WHERE seq=" + std::to_string(seq));
    VerifyReport report = f.VerifyAgreeing();
    CHECK(report.first_bad_seq == seq);
    CHECK(report.status.reason() == "command_id_mismatch");
  }
  SECTION("a changed command id") {
    std::uint64_t seq =
        f.Int("SELECT min(seq) FROM records WHERE seq >= 60 AND command_id IS NOT NULL");
    f.Tamper("UPDATE records SET command_id='cmd-x' WHERE seq=" + std::to_string(seq));
    VerifyReport report = f.VerifyAgreeing();
    CHECK(report.first_bad_seq == seq);
    CHECK(report.status.reason() == "command_id_mismatch");
  }
}

TEST_CASE("verify on several threads checks a saved checkpoint alike", "[eventstore]") {
  LogFixture f;
  // The note of some append in the middle of the log, as an auditor saved it.
  Bytes note;
  for (std::uint64_t seq = kRecords / 2;; ++seq) {
    note = f.Column("checkpoint", seq);
    if (!note.empty()) break;
  }
  VerifyOptions options;
  options.auditor_checkpoint = std::string(AsChars(note));
  VerifyReport report = f.VerifyAgreeing(options);
  CHECK(report.status.ok());
  CHECK(report.auditor_checkpoint_verified);

  Bytes record = f.Column("record", 10);
  FlipActorByte(record);
  Hash256 hash = crypto::Sha256::Digest(record);
  Bytes hash_bytes(hash.begin(), hash.end());
  f.Tamper("UPDATE records SET record=?1 WHERE seq=10", &record);
  f.Tamper("UPDATE records SET hash=?1 WHERE seq=10", &hash_bytes);
  report = f.VerifyAgreeing(options);
  CHECK(report.first_bad_seq == 10);
}

TEST_CASE("verify names the seq of a row moved to another place", "[eventstore]") {
  LogFixture f;
  f.Tamper("UPDATE records SET seq=1000 WHERE seq=70");
  f.Tamper("UPDATE records SET seq=70 WHERE seq=71");
  f.Tamper("UPDATE records SET seq=71 WHERE seq=1000");
  VerifyReport report = f.VerifyAgreeing();
  CHECK(report.first_bad_seq == 70);
  CHECK(report.status.reason() == "seq_mismatch");
}

#ifndef VIA_TEST_LOG_BACKEND_PG  // SQLite only: an in-memory log
TEST_CASE("verify of a log without a file runs on the calling thread", "[eventstore]") {
  LogStore::Options options;
  options.path = ":memory:";
  auto store = LogStore::Open(options);
  REQUIRE(store.ok());
  CHECK_FALSE((*store)->OpenReader().ok());
  auto key = crypto::Ed25519PrivateKey::FromSeed(Bytes(32, 9));
  REQUIRE(key);
  const std::string origin = "via.local/lg_test";
  AppendRequest init;
  init.command_id = "init";
  init.events.push_back(
      LogInitialized{"lg_test", origin, VerifierKey::For(origin, key->PublicKey()).ToString(),
                     VerifierKey::For("via-workload", key->PublicKey()).ToString()});
  REQUIRE((*store)->Append(init, Signer{key.get(), origin}).ok());
  for (int i = 0; i < 20; ++i) {
    AppendRequest request;
    request.events.push_back(StorageProvisioned{"ad_" + std::to_string(i)});
    REQUIRE((*store)->Append(request, Signer{key.get(), origin}).ok());
  }
  VerifyOptions verify;
  verify.threads = 4;
  verify.parallel_min_records = 1;
  VerifyReport report = VerifyLog(**store, verify);
  CHECK(report.status.ok());
  CHECK(report.size == 21);
  CHECK(report.checkpoints_verified == 21);
}
#endif

// --- format 3: notes linked into the newest one ---------------------------------

namespace {

// Notes at and around the boundaries of the ranges, the first and the newest.
std::vector<std::uint64_t> SomeNoteSeqs(const std::vector<std::uint64_t>& notes) {
  std::vector<std::uint64_t> picked;
  for (std::uint64_t target : BoundarySeqs()) {
    auto at = std::lower_bound(notes.begin(), notes.end(), target);
    if (at != notes.end() && std::find(picked.begin(), picked.end(), *at) == picked.end()) {
      picked.push_back(*at);
    }
  }
  std::sort(picked.begin(), picked.end());
  return picked;
}

// The same note text with its last signature character changed (still base64).
std::string FlipSignature(std::string note) {
  char& c = note[note.size() - 6];
  c = c == 'A' ? 'B' : 'A';
  return note;
}

}  // namespace

TEST_CASE("a new log is format 3 and each note links to the note before it", "[eventstore]") {
  LogFixture f;
  CHECK(f.Int("PRAGMA user_version") == 3);
  Hash256 previous{};
  const auto notes = f.NoteSeqs();
  REQUIRE(notes.size() > 30);
  for (std::uint64_t seq : notes) {
    std::string note = f.Note(seq);
    auto parsed = ParseCheckpointUnverified(note);
    REQUIRE(parsed.ok());
    REQUIRE(parsed->previous_note.has_value());
    CHECK(*parsed->previous_note == previous);
    previous = NoteHash(note);
  }
  VerifyReport report = f.VerifyAgreeing();
  CHECK(report.status.ok());
  CHECK(report.checkpoints_verified == notes.size());
  CHECK(report.signatures_verified == 1);
}

TEST_CASE("verify names an old note signed by another key", "[eventstore]") {
  auto forger = crypto::Ed25519PrivateKey::FromSeed(Bytes(32, 7));
  REQUIRE(forger);
  LogFixture probe;
  for (std::uint64_t seq : SomeNoteSeqs(probe.NoteSeqs())) {
    LogFixture f;
    // Same size, root and link: only who signed it differs.
    auto parsed = ParseCheckpointUnverified(f.Note(seq));
    REQUIRE(parsed.ok());
    f.SetNote(seq, SignCheckpoint(*parsed, *forger));
    VerifyReport report = f.VerifyAgreeing();
    INFO("note of seq " << seq);
    CHECK(report.first_bad_seq == seq);
    CHECK(report.status.reason() == "checkpoint_bad_signature");
  }
}

TEST_CASE("verify names an old note with one changed byte", "[eventstore]") {
  LogFixture probe;
  for (std::uint64_t seq : SomeNoteSeqs(probe.NoteSeqs())) {
    for (const char* where : {"signature", "root", "link"}) {
      LogFixture f;
      std::string note = f.Note(seq);
      if (std::string(where) == "signature") {
        note = FlipSignature(note);
      } else {
        // The first base64 character of the root line (third line) or of the link.
        std::size_t at = std::string(where) == "root" ? note.find('\n', note.find('\n') + 1) + 1
                                                      : note.find("prev-note-sha256 ") + 17;
        note[at] = note[at] == 'A' ? 'B' : 'A';
      }
      f.SetNote(seq, note);
      VerifyReport report = f.VerifyAgreeing();
      INFO("note of seq " << seq << ", " << where);
      CHECK(report.first_bad_seq == seq);
      CHECK(report.status.reason() == "checkpoint_bad_signature");
    }
  }
}

TEST_CASE("verify names an old note whose link line was removed", "[eventstore]") {
  LogFixture probe;
  for (std::uint64_t seq : SomeNoteSeqs(probe.NoteSeqs())) {
    LogFixture f;
    std::string note = f.Note(seq);
    std::size_t at = note.find("prev-note-sha256 ");
    REQUIRE(at != std::string::npos);
    note.erase(at, note.find('\n', at) + 1 - at);
    f.SetNote(seq, note);
    VerifyReport report = f.VerifyAgreeing();
    INFO("note of seq " << seq);
    CHECK(report.first_bad_seq == seq);
    CHECK(report.status.reason() == "checkpoint_bad_signature");
  }
}

TEST_CASE("verify names a truncated old note", "[eventstore]") {
  LogFixture f;
  const auto notes = f.NoteSeqs();
  const std::uint64_t seq = notes[notes.size() / 2];
  std::string note = f.Note(seq);
  f.SetNote(seq, note.substr(0, note.size() - 1));
  VerifyReport report = f.VerifyAgreeing();
  CHECK(report.first_bad_seq == seq);
  CHECK(report.status.reason() == "checkpoint_malformed");
}

TEST_CASE("verify names a note taken from another log", "[eventstore]") {
  // Another home, another key and origin, the same shape of appends.
  testing::TempDir other_dir;
  testing::TestLogDatabase other_db;
  WriteLog(other_dir.path(), other_db.url());
  LogFixture probe;
  for (std::uint64_t seq : SomeNoteSeqs(probe.NoteSeqs())) {
    LogFixture f;
    const Bytes other_note = testing::RawLog(Home{other_dir.path()})
                                 .Bytes1("SELECT checkpoint FROM records WHERE seq=" +
                                         std::to_string(seq));
    std::string swapped(AsChars(other_note));
    f.SetNote(seq, swapped);
    VerifyReport report = f.VerifyAgreeing();
    INFO("note of seq " << seq);
    CHECK(report.first_bad_seq == seq);
    CHECK(report.status.reason() == "checkpoint_bad_signature");
  }
}

TEST_CASE("verify names the first note of a chain re-signed by another key", "[eventstore]") {
  // The attacker rewrites every note from some point on with consistent links:
  // only the newest signature fails during the pass; the first forged note is
  // still the one named.
  auto forger = crypto::Ed25519PrivateKey::FromSeed(Bytes(32, 7));
  REQUIRE(forger);
  LogFixture probe;
  const auto all = probe.NoteSeqs();
  for (std::uint64_t from : SomeNoteSeqs(all)) {
    LogFixture f;
    auto start = std::find(all.begin(), all.end(), from);
    Hash256 link = start == all.begin() ? Hash256{} : NoteHash(f.Note(*(start - 1)));
    for (auto it = start; it != all.end(); ++it) {
      auto parsed = ParseCheckpointUnverified(f.Note(*it));
      REQUIRE(parsed.ok());
      parsed->previous_note = link;
      std::string forged = SignCheckpoint(*parsed, *forger);
      f.SetNote(*it, forged);
      link = NoteHash(forged);
    }
    VerifyReport report = f.VerifyAgreeing();
    INFO("forged from the note of seq " << from);
    CHECK(report.first_bad_seq == from);
    CHECK(report.status.reason() == "checkpoint_bad_signature");
    // What a pass checking every signature would have counted up to there.
    CHECK(report.checkpoints_verified ==
          static_cast<std::uint64_t>(std::distance(all.begin(), start)));
    CHECK(report.nodes_verified == 2 * from - std::popcount(from));
  }
}

TEST_CASE("verify names a forged note before a later damaged record", "[eventstore]") {
  auto forger = crypto::Ed25519PrivateKey::FromSeed(Bytes(32, 7));
  REQUIRE(forger);
  LogFixture f;
  const auto notes = f.NoteSeqs();
  const std::uint64_t seq = notes[notes.size() / 3];
  auto parsed = ParseCheckpointUnverified(f.Note(seq));
  REQUIRE(parsed.ok());
  f.SetNote(seq, SignCheckpoint(*parsed, *forger));
  f.Tamper("UPDATE records SET hash=zeroblob(32) WHERE seq=" + std::to_string(seq + 20));
  VerifyReport report = f.VerifyAgreeing();
  CHECK(report.first_bad_seq == seq);
  CHECK(report.status.reason() == "checkpoint_bad_signature");
}

TEST_CASE("verify names a removed old note at the note that linked to it", "[eventstore]") {
  LogFixture probe;
  const auto all = probe.NoteSeqs();
  for (std::uint64_t seq : SomeNoteSeqs(all)) {
    if (seq == all.back()) continue;  // removing the newest note leaves records unsigned
    LogFixture f;
    f.Tamper("UPDATE records SET checkpoint=NULL, command_id=NULL WHERE seq=" +
             std::to_string(seq));
    VerifyReport report = f.VerifyAgreeing();
    const std::uint64_t next = *std::upper_bound(all.begin(), all.end(), seq);
    INFO("removed the note of seq " << seq);
    CHECK(report.first_bad_seq == next);
    CHECK(report.status.reason() == "checkpoint_link_mismatch");
  }
}

TEST_CASE("verify names a note signed by the log key that links elsewhere", "[eventstore]") {
  // Only the key holder can write these; the link rule itself still holds.
  LogFixture probe;
  for (std::uint64_t seq : SomeNoteSeqs(probe.NoteSeqs())) {
    for (bool drop_link : {false, true}) {
      LogFixture f;
      auto key = f.LogKey();
      auto parsed = ParseCheckpointUnverified(f.Note(seq));
      REQUIRE(parsed.ok());
      if (drop_link) {
        parsed->previous_note.reset();
      } else {
        (*parsed->previous_note)[0] ^= 1;
      }
      std::string note = SignCheckpoint(*parsed, *key);
      f.SetNote(seq, note);
      // Keep the later notes linked to the changed one, as its writer would.
      Hash256 link = NoteHash(note);
      for (std::uint64_t later : f.NoteSeqs()) {
        if (later <= seq) continue;
        auto next = ParseCheckpointUnverified(f.Note(later));
        REQUIRE(next.ok());
        next->previous_note = link;
        std::string rewritten = SignCheckpoint(*next, *key);
        f.SetNote(later, rewritten);
        link = NoteHash(rewritten);
      }
      VerifyReport report = f.VerifyAgreeing();
      INFO("note of seq " << seq << (drop_link ? " without a link" : " with another link"));
      CHECK(report.first_bad_seq == seq);
      CHECK(report.status.reason() == "checkpoint_link_mismatch");
    }
  }
}

TEST_CASE("verify checks the newest note's signature on a format-3 log", "[eventstore]") {
  LogFixture f;
  f.SetNote(kRecords, FlipSignature(f.Note(kRecords)));
  VerifyReport report = f.VerifyAgreeing();
  CHECK(report.first_bad_seq == kRecords);
  CHECK(report.status.reason() == "checkpoint_bad_signature");
}
