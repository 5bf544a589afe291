// Tamper detection end to end: the real `via audit verify` on a log that an
// attacker with file access edited. Each names the first bad seq and exits 6.

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "crypto/crypto.h"
#include "eventstore/checkpoint.h"
#include "eventstore/event_log.h"
#include "testing.h"

using namespace via;
using namespace via::eventstore;
using via::testing::Via;

namespace {

// A home whose log holds seq 1 (LogInitialized) and seq 2..7 (one append each).
struct TamperFixture {
  testing::TempDir dir;
  testing::FakeClock clock;
  testing::CountingIds ids;

  TamperFixture() {
    EventLog::Options options;
    options.home = Home{dir.path()};
    options.clock = &clock;
    options.ids = &ids;
    auto log = EventLog::Open(options);
    REQUIRE(log.ok());
    for (int i = 0; i < 6; ++i) {
      AppendRequest request;
      request.actor = "tester";
      request.recorded_at_ms = clock.NowMs();
      request.events.push_back(WorkloadTokenIssued{"api", "v1", "token-" + std::to_string(i), 0});
      REQUIRE((*log)->Append(request).ok());
    }
  }

  std::filesystem::path db() const { return Home{dir.path()}.log_db(); }

  void Exec(const std::string& sql) {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(db().c_str(), &raw) == SQLITE_OK);
    char* error = nullptr;
    int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &error);
    std::string message = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(raw);
    INFO(message);
    REQUIRE(rc == SQLITE_OK);
  }

  void FlipByte(std::uint64_t seq) {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(db().c_str(), &raw) == SQLITE_OK);
    sqlite3_stmt* read = nullptr;
    sqlite3_prepare_v2(raw, "SELECT record FROM records WHERE seq=?", -1, &read, nullptr);
    sqlite3_bind_int64(read, 1, static_cast<sqlite3_int64>(seq));
    REQUIRE(sqlite3_step(read) == SQLITE_ROW);
    auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(read, 0));
    Bytes bytes(p, p + sqlite3_column_bytes(read, 0));
    sqlite3_finalize(read);
    bytes[bytes.size() / 2] ^= 0x01;
    sqlite3_exec(raw, "DROP TRIGGER IF EXISTS records_no_update", nullptr, nullptr, nullptr);
    sqlite3_stmt* write = nullptr;
    sqlite3_prepare_v2(raw, "UPDATE records SET record=? WHERE seq=?", -1, &write, nullptr);
    sqlite3_bind_blob(write, 1, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(write, 2, static_cast<sqlite3_int64>(seq));
    REQUIRE(sqlite3_step(write) == SQLITE_DONE);
    sqlite3_finalize(write);
    sqlite3_close(raw);
  }

  void DropTriggers() {
    Exec("DROP TRIGGER IF EXISTS records_no_update; DROP TRIGGER IF EXISTS records_no_delete;");
  }

  // Runs `via audit verify --json ARGS`, expects exit 6 and returns first_bad_seq.
  std::uint64_t FirstBadSeq(const std::string& args = "") {
    auto result = Via(dir.path(), "--json audit verify " + args);
    INFO(result.out);
    CHECK(result.exit_code == 6);
    auto json = nlohmann::json::parse(result.out);
    CHECK(json["ok"] == false);
    return json["first_bad_seq"].get<std::uint64_t>();
  }
};

}  // namespace

TEST_CASE("audit verify passes on an untouched log", "[cli]") {
  TamperFixture f;
  auto result = Via(f.dir.path(), "--json audit verify");
  INFO(result.out);
  REQUIRE(result.exit_code == 0);
  auto json = nlohmann::json::parse(result.out);
  CHECK(json["ok"] == true);
  CHECK(json["size"] == 7);
  CHECK(json["checkpoints_verified"] == 7);
  // Format 3: the newest signature binds the six notes before it.
  CHECK(json["signatures_verified"] == 1);
}

TEST_CASE("audit verify names the record whose byte was flipped", "[cli]") {
  TamperFixture f;
  // Flip one bit in the middle of seq 4's bytes. Whether the record still
  // decodes or not, seq 4 is the first bad one.
  f.FlipByte(4);
  CHECK(f.FirstBadSeq() == 4);
}

TEST_CASE("audit verify names a deleted row", "[cli]") {
  TamperFixture f;
  f.DropTriggers();
  f.Exec("DELETE FROM records WHERE seq = 5");
  CHECK(f.FirstBadSeq() == 5);
}

TEST_CASE("audit verify names a swapped pair of rows", "[cli]") {
  TamperFixture f;
  f.DropTriggers();
  f.Exec("UPDATE records SET seq = 100 WHERE seq = 3;"
         "UPDATE records SET seq = 3 WHERE seq = 4;"
         "UPDATE records SET seq = 4 WHERE seq = 100;");
  CHECK(f.FirstBadSeq() == 3);
}

TEST_CASE("audit verify detects a truncated tail against a saved checkpoint", "[cli]") {
  TamperFixture f;
  auto saved = Via(f.dir.path(), "audit checkpoint");
  REQUIRE(saved.exit_code == 0);
  auto file = f.dir.path() / "saved.checkpoint";
  std::ofstream(file) << saved.out;
  // A careful attacker removes the rows of seq 6..7, which hold their tree
  // nodes and checkpoints too, so the shortened log is internally consistent.
  f.DropTriggers();
  f.Exec("DELETE FROM records WHERE seq > 5;");
  auto plain = Via(f.dir.path(), "--json audit verify");
  INFO(plain.out);
  CHECK(plain.exit_code == 0);  // nothing inside the file gives it away...
  CHECK(f.FirstBadSeq("--checkpoint '" + file.string() + "'") == 6);  // ...the saved one does
}

TEST_CASE("audit verify rejects a checkpoint re-signed with another key", "[cli]") {
  TamperFixture f;
  auto forger = crypto::Ed25519PrivateKey::Generate();
  REQUIRE(forger);
  auto key = Via(f.dir.path(), "audit key");
  std::string origin = key.out.substr(0, key.out.find('+'));
  Checkpoint forged{origin, 7, {}, Hash256{}};
  forged.root.fill(0x42);
  std::string note = SignCheckpoint(forged, *forger);
  f.DropTriggers();
  f.Exec("UPDATE records SET checkpoint = '" + note + "' WHERE seq = 7");
  CHECK(f.FirstBadSeq() == 7);
}

TEST_CASE("audit verify names an old checkpoint re-signed with another key", "[cli]") {
  for (int seq = 1; seq <= 6; ++seq) {
    TamperFixture f;
    auto forger = crypto::Ed25519PrivateKey::Generate();
    REQUIRE(forger);
    // The stored note, re-signed: same size, root and link, another signer.
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(f.db().c_str(), &raw) == SQLITE_OK);
    sqlite3_stmt* read = nullptr;
    sqlite3_prepare_v2(raw, "SELECT checkpoint FROM records WHERE seq=?", -1, &read, nullptr);
    sqlite3_bind_int(read, 1, seq);
    REQUIRE(sqlite3_step(read) == SQLITE_ROW);
    auto parsed =
        ParseCheckpointUnverified(reinterpret_cast<const char*>(sqlite3_column_text(read, 0)));
    sqlite3_finalize(read);
    sqlite3_close(raw);
    REQUIRE(parsed.ok());
    REQUIRE(parsed->previous_note.has_value());
    f.DropTriggers();
    f.Exec("UPDATE records SET checkpoint = '" + SignCheckpoint(*parsed, *forger) +
           "' WHERE seq = " + std::to_string(seq));
    INFO("seq " << seq);
    CHECK(f.FirstBadSeq() == static_cast<std::uint64_t>(seq));
  }
}

TEST_CASE("audit verify checks a format-2 log written by the previous build note by note",
          "[cli]") {
  // tests/testdata/log-v2: 10 records, 7 notes without links.
  testing::TempDir home;
  const std::filesystem::path golden =
      std::filesystem::path(VIA_SOURCE_DIR) / "tests" / "testdata" / "log-v2";
  std::filesystem::create_directories(home.path() / "log");
  std::filesystem::copy_file(golden / "events.db", home.path() / "log" / "events.db");
  std::ifstream pub(golden / "log.pub");
  std::string key;
  std::getline(pub, key);
  auto result = Via(home.path(), "--json audit verify --key '" + key + "'");
  INFO(result.out);
  REQUIRE(result.exit_code == 0);
  auto json = nlohmann::json::parse(result.out);
  CHECK(json["size"] == 10);
  CHECK(json["checkpoints_verified"] == 7);
  CHECK(json["signatures_verified"] == 7);

  // An old note re-signed by another key: found by its own signature.
  auto forger = crypto::Ed25519PrivateKey::Generate();
  REQUIRE(forger);
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open((home.path() / "log" / "events.db").c_str(), &raw) == SQLITE_OK);
  sqlite3_stmt* read = nullptr;
  sqlite3_prepare_v2(raw, "SELECT checkpoint FROM records WHERE seq=5", -1, &read, nullptr);
  REQUIRE(sqlite3_step(read) == SQLITE_ROW);
  auto parsed =
      ParseCheckpointUnverified(reinterpret_cast<const char*>(sqlite3_column_text(read, 0)));
  sqlite3_finalize(read);
  REQUIRE(parsed.ok());
  CHECK_FALSE(parsed->previous_note.has_value());
  std::string forged =
      "UPDATE records SET checkpoint = '" + SignCheckpoint(*parsed, *forger) + "' WHERE seq = 5";
  REQUIRE(sqlite3_exec(raw, "DROP TRIGGER records_no_update", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  REQUIRE(sqlite3_exec(raw, forged.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(raw);
  auto tampered = Via(home.path(), "--json audit verify");
  INFO(tampered.out);
  CHECK(tampered.exit_code == 6);
  auto failed = nlohmann::json::parse(tampered.out);
  CHECK(failed["first_bad_seq"] == 5);
  CHECK(failed["error"]["code"] == "checkpoint_bad_signature");
}

TEST_CASE("audit verify rejects a whole log re-signed with another key when pinned", "[cli]") {
  TamperFixture f;
  auto key = Via(f.dir.path(), "audit key");
  REQUIRE(key.exit_code == 0);
  std::string pinned = key.out.substr(0, key.out.size() - 1);
  // Another home with its own key stands in for a forged log.
  TamperFixture other;
  auto result = Via(other.dir.path(), "--json audit verify --key '" + pinned + "'");
  INFO(result.out);
  CHECK(result.exit_code == 6);
  auto json = nlohmann::json::parse(result.out);
  CHECK(json["first_bad_seq"] == 1);
  CHECK(json["error"]["code"] == "key_mismatch");
}
