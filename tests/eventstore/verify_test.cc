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
#include "testing.h"

using namespace via;
using namespace via::eventstore;

namespace {

constexpr std::uint64_t kRecords = 120;

// Writes a home whose log holds kRecords records, appended 1 to 5 events at a
// time, some appends with a command id and some without.
void WriteLog(const std::filesystem::path& root) {
  testing::FakeClock clock;
  testing::CountingIds ids;
  EventLog::Options options;
  options.home = Home{root};
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

  LogFixture() {
    static testing::TempDir original;
    static bool written = false;
    if (!written) {
      WriteLog(original.path());
      written = true;
    }
    std::filesystem::copy(original.path(), dir.path(),
                          std::filesystem::copy_options::recursive |
                              std::filesystem::copy_options::overwrite_existing);
  }

  std::filesystem::path db() const { return Home{dir.path()}.log_db(); }

  // Runs SQL with the triggers dropped, binding `blob` to ?1 when given.
  void Tamper(const std::string& sql, const Bytes* blob = nullptr) {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(db().c_str(), &raw) == SQLITE_OK);
    sqlite3_exec(raw,
                 "DROP TRIGGER IF EXISTS records_no_update;"
                 "DROP TRIGGER IF EXISTS records_no_delete;",
                 nullptr, nullptr, nullptr);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(raw, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    if (blob) {
      sqlite3_bind_blob(stmt, 1, blob->data(), static_cast<int>(blob->size()), SQLITE_TRANSIENT);
    }
    CHECK(sqlite3_step(stmt) == SQLITE_DONE);
    sqlite3_finalize(stmt);
    sqlite3_close(raw);
  }

  Bytes Column(const std::string& column, std::uint64_t seq) {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(db().c_str(), &raw) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    std::string sql = "SELECT " + column + " FROM records WHERE seq=" + std::to_string(seq);
    REQUIRE(sqlite3_prepare_v2(raw, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt, 0));
    Bytes out(p, p + sqlite3_column_bytes(stmt, 0));
    sqlite3_finalize(stmt);
    sqlite3_close(raw);
    return out;
  }

  std::uint64_t Int(const std::string& sql) {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(db().c_str(), &raw) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(raw, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    auto value = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0));
    sqlite3_finalize(stmt);
    sqlite3_close(raw);
    return value;
  }

  VerifyReport Verify(int threads, const VerifyOptions& base = {}) {
    LogStore::Options options;
    options.path = db().string();
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
