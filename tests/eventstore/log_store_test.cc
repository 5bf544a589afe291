#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eventstore/event_log.h"
#include "eventstore/merkle.h"
#include "eventstore/record_codec.h"
#include "eventstore/verify.h"
#include "log_backend.h"
#include "testing.h"

using namespace via;
using namespace via::eventstore;

namespace {

struct Fixture {
  testing::TempDir dir;
  testing::FakeClock clock;
  testing::CountingIds ids;
  // Where the log lives: the home's SQLite file, or a new PostgreSQL database.
  testing::TestLogDatabase database;
  std::string log_url = database.url();

  std::unique_ptr<EventLog> Open() {
    EventLog::Options options;
    options.home = Home{dir.path()};
    options.log_url = log_url;
    options.clock = &clock;
    options.ids = &ids;
    options.actor = "tester";
    auto log = EventLog::Open(options);
    REQUIRE(log.ok());
    return std::move(log).value();
  }
};

AppendRequest TokenEvents(int n, const std::string& command_id = "") {
  AppendRequest request;
  request.actor = "tester";
  request.command_id = command_id;
  request.recorded_at_ms = 1732406400000;
  for (int i = 0; i < n; ++i) {
    request.events.push_back(WorkloadTokenIssued{"api", "v1", "tok" + std::to_string(i), 0});
  }
  return request;
}

[[maybe_unused]] int ExecRaw(const std::filesystem::path& db, const std::string& sql) {
  sqlite3* raw = nullptr;
  sqlite3_open(db.c_str(), &raw);
  int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  return rc;
}

}  // namespace

TEST_CASE("opening a new home initializes the log with LogInitialized at seq 1", "[eventstore]") {
  Fixture f;
  auto log = f.Open();
  CHECK(log->initialized_now());
  auto head = log->store().GetHead();
  REQUIRE(head.ok());
  CHECK(head->seq == 1);
  auto first = log->store().Read(1);
  REQUIRE(first.ok());
  CHECK(std::holds_alternative<LogInitialized>(first->event));
  CHECK(first->prev_hash == Hash256{});
  CHECK(log->origin().rfind("via.local/lg_", 0) == 0);
}

TEST_CASE("secret key files are created with mode 0600", "[eventstore]") {
  Fixture f;
  f.Open();
  Home home{f.dir.path()};
  for (const auto& path : {home.log_key(), home.workload_key(), home.credentials_key()}) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
}

TEST_CASE("reopening a home keeps its log and keys", "[eventstore]") {
  Fixture f;
  std::string key = f.Open()->verifier_key().ToString();
  auto again = f.Open();
  CHECK_FALSE(again->initialized_now());
  CHECK(again->verifier_key().ToString() == key);
}

TEST_CASE("an append links each record to the hash of the one before", "[eventstore]") {
  Fixture f;
  auto log = f.Open();
  auto appended = log->Append(TokenEvents(3));
  REQUIRE(appended.ok());
  CHECK(appended->first_seq == 2);
  CHECK(appended->last_seq == 4);
  for (std::uint64_t seq = 2; seq <= 4; ++seq) {
    auto before = log->store().ReadRow(seq - 1);
    auto record = log->store().Read(seq);
    REQUIRE(record.ok());
    CHECK(record->prev_hash == before->hash);
    CHECK(record->seq == seq);
  }
}

TEST_CASE("an append with a command id already in the log writes nothing", "[eventstore]") {
  Fixture f;
  auto log = f.Open();
  auto first = log->Append(TokenEvents(2, "cmd-42"));
  REQUIRE(first.ok());
  auto second = log->Append(TokenEvents(2, "cmd-42"));
  REQUIRE(second.ok());
  CHECK(second->replayed);
  CHECK(second->first_seq == first->first_seq);
  CHECK(second->last_seq == first->last_seq);
  CHECK(log->store().GetHead()->seq == 3);
}

TEST_CASE("event log rejects an append with a stale head", "[eventstore]") {
  Fixture f;
  auto log = f.Open();
  auto head = log->store().GetHead();
  REQUIRE(log->Append(TokenEvents(1)).ok());
  AppendRequest stale = TokenEvents(1);
  stale.expected_head = *head;
  auto result = log->Append(stale);
  REQUIRE_FALSE(result.ok());
  CHECK(result.status().code() == StatusCode::kAborted);
  CHECK(log->store().GetHead()->seq == 2);
}

#ifndef VIA_TEST_LOG_BACKEND_PG  // SQLite only: the file itself
TEST_CASE("the log's tables refuse UPDATE and DELETE", "[eventstore]") {
  Fixture f;
  REQUIRE(f.Open()->Append(TokenEvents(2)).ok());
  auto db = Home{f.dir.path()}.log_db();
  CHECK(ExecRaw(db, "UPDATE records SET record=x'00' WHERE seq=2") != SQLITE_OK);
  CHECK(ExecRaw(db, "UPDATE records SET nodes=x'00' WHERE seq=2") != SQLITE_OK);
  CHECK(ExecRaw(db, "UPDATE records SET checkpoint='x' WHERE seq=3") != SQLITE_OK);
  CHECK(ExecRaw(db, "UPDATE records SET command_id='x' WHERE seq=3") != SQLITE_OK);
  CHECK(ExecRaw(db, "DELETE FROM records WHERE seq=3") != SQLITE_OK);
  CHECK(ExecRaw(db, "DELETE FROM records") != SQLITE_OK);
  // The whole log is one table: nothing else to change.
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(raw, "SELECT group_concat(name) FROM sqlite_schema WHERE type='table'", -1,
                     &stmt, nullptr);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0))) == "records");
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
}
#endif

#ifndef VIA_TEST_LOG_BACKEND_PG  // SQLite only: the file itself
TEST_CASE("an append writes the checkpoint and command id on its last record only", "[eventstore]") {
  Fixture f;
  auto log = f.Open();
  REQUIRE(log->Append(TokenEvents(3, "cmd-7")).ok());
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(Home{f.dir.path()}.log_db().c_str(), &raw) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(raw,
                     "SELECT seq, command_id IS NULL, checkpoint IS NULL, length(nodes) "
                     "FROM records ORDER BY seq",
                     -1, &stmt, nullptr);
  // seq: command id absent?, checkpoint absent?, bytes of Merkle nodes
  // (leaf + one hash per trailing one bit of seq - 1).
  const int expected[][4] = {{1, 0, 0, 32}, {2, 1, 1, 64}, {3, 1, 1, 32}, {4, 0, 0, 96}};
  for (const auto& row : expected) {
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    for (int c = 0; c < 4; ++c) CHECK(sqlite3_column_int(stmt, c) == row[c]);
  }
  CHECK(sqlite3_step(stmt) == SQLITE_DONE);
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
}
#endif

#ifndef VIA_TEST_LOG_BACKEND_PG  // SQLite only: the file itself
TEST_CASE("looking up a command id uses the index, not a scan", "[eventstore]") {
  Fixture f;
  REQUIRE(f.Open()->Append(TokenEvents(1, "cmd-1")).ok());
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(Home{f.dir.path()}.log_db().c_str(), &raw) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  // The statement LogStore::FindCommand prepares.
  REQUIRE(sqlite3_prepare_v2(raw,
                             "EXPLAIN QUERY PLAN SELECT seq FROM records WHERE command_id = ? "
                             "ORDER BY seq LIMIT 1",
                             -1, &stmt, nullptr) == SQLITE_OK);
  std::string plan;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    plan += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
    plan += "\n";
  }
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
  INFO(plan);
  CHECK(plan.find("INDEX records_by_command") != std::string::npos);
}
#endif

TEST_CASE("a retried multi-event append reports its first and last seq", "[eventstore]") {
  Fixture f;
  auto log = f.Open();
  REQUIRE(log->Append(TokenEvents(2, "a")).ok());
  auto first = log->Append(TokenEvents(4, "b"));
  REQUIRE(log->Append(TokenEvents(1)).ok());
  auto again = log->Append(TokenEvents(4, "b"));
  REQUIRE(first.ok());
  REQUIRE(again.ok());
  CHECK(again->replayed);
  CHECK(again->first_seq == 4);
  CHECK(again->last_seq == 7);
  CHECK(again->head.seq == 8);
  auto found = log->store().FindCommand("a");
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->first_seq == 2);
  CHECK((*found)->last_seq == 3);
  CHECK_FALSE(log->store().FindCommand("nope")->has_value());
}

TEST_CASE("the stored nodes are exactly the perfect subtrees of the tree", "[eventstore]") {
  Fixture f;
  auto log = f.Open();
  for (int i = 0; i < 12; ++i) REQUIRE(log->Append(TokenEvents(i % 4 + 1)).ok());
  const std::uint64_t size = log->store().GetHead()->seq;
  merkle::MemoryTree tree;
  for (std::uint64_t seq = 1; seq <= size; ++seq) {
    tree.Append(merkle::LeafHash(log->store().ReadRow(seq)->bytes));
  }
  std::uint64_t visited = 0;
  REQUIRE(log->store()
              .ScanNodes([&](int level, std::uint64_t index, const Hash256& hash) {
                CHECK(*tree.Node(level, index) == hash);
                ++visited;
                return true;
              })
              .ok());
  // A tree of n leaves has n + floor(n/2) + floor(n/4) + ... perfect subtrees.
  std::uint64_t expected = 0;
  for (std::uint64_t n = size; n > 0; n /= 2) expected += n;
  CHECK(visited == expected);
  CHECK(log->store().nodes().Node(0, size).status().code() == StatusCode::kNotFound);
  CHECK(log->store().nodes().Node(63, 0).status().code() == StatusCode::kNotFound);
}

TEST_CASE("every append signs a checkpoint over the new size and root", "[eventstore]") {
  Fixture f;
  auto log = f.Open();
  for (int i = 0; i < 5; ++i) REQUIRE(log->Append(TokenEvents(i + 1)).ok());
  auto note = log->store().LatestCheckpoint();
  REQUIRE(note.ok());
  auto checkpoint = OpenCheckpoint(*note, log->verifier_key());
  REQUIRE(checkpoint.ok());
  CHECK(checkpoint->size == 16);
  auto root = merkle::Root(log->store().nodes(), 16);
  REQUIRE(root.ok());
  CHECK(checkpoint->root == *root);
  VerifyReport report = VerifyLog(log->store(), {});
  CHECK(report.status.ok());
  CHECK(report.checkpoints_verified == 6);
  CHECK(report.root == *root);
}

TEST_CASE("proofs served from the stored tree verify against the signed root", "[eventstore]") {
  Fixture f;
  auto log = f.Open();
  for (int i = 0; i < 9; ++i) REQUIRE(log->Append(TokenEvents(i % 3 + 1)).ok());
  std::uint64_t size = log->store().GetHead()->seq;
  auto& nodes = log->store().nodes();
  Hash256 root = *merkle::Root(nodes, size);
  for (std::uint64_t seq = 1; seq <= size; ++seq) {
    auto row = log->store().ReadRow(seq);
    auto proof = merkle::InclusionProof(nodes, seq - 1, size);
    REQUIRE(proof.ok());
    CHECK(merkle::VerifyInclusion(seq - 1, size, merkle::LeafHash(row->bytes), *proof, root).ok());
  }
  for (std::uint64_t old = 1; old <= size; ++old) {
    auto proof = merkle::ConsistencyProof(nodes, old, size);
    REQUIRE(proof.ok());
    CHECK(merkle::VerifyConsistency(old, size, *merkle::Root(nodes, old), root, *proof).ok());
  }
}

TEST_CASE("opening a log whose newest record was altered is refused", "[eventstore]") {
  Fixture f;
  REQUIRE(f.Open()->Append(TokenEvents(3)).ok());
  REQUIRE(testing::RawLog(Home{f.dir.path()}).Tamper("UPDATE records SET hash=zeroblob(32) WHERE seq=4"));
  EventLog::Options options;
  options.home = Home{f.dir.path()};
  options.clock = &f.clock;
  options.ids = &f.ids;
  auto log = EventLog::Open(options);
  REQUIRE_FALSE(log.ok());
  CHECK(log.status().code() == StatusCode::kDataLoss);
  CHECK(log.status().reason() == "broken_tail");
}

TEST_CASE("two processes appending 500 events each at once form one chain", "[eventstore]") {
  Fixture f;
  f.Open();  // initialize before forking
  pid_t children[2];
  for (int c = 0; c < 2; ++c) {
    children[c] = ::fork();
    if (children[c] == 0) {
      testing::FakeClock clock;
      testing::CountingIds ids;
      EventLog::Options options;
      options.home = Home{f.dir.path()};
      options.clock = &clock;
      options.ids = &ids;
      auto log = EventLog::Open(options);
      if (!log.ok()) ::_exit(10);
      for (int i = 0; i < 500; ++i) {
        // What command handlers do: read the head, append expecting it, retry on a race.
        for (int attempt = 0;; ++attempt) {
          auto head = (*log)->store().GetHead();
          if (!head.ok()) ::_exit(11);
          AppendRequest request = TokenEvents(1, "c" + std::to_string(c) + "-" + std::to_string(i));
          request.expected_head = *head;
          auto appended = (*log)->Append(request);
          if (appended.ok()) break;
          if (appended.status().code() != StatusCode::kAborted || attempt > 1000) ::_exit(12);
        }
      }
      ::_exit(0);
    }
  }
  for (pid_t child : children) {
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto log = f.Open();
  CHECK(log->store().GetHead()->seq == 1001);
  VerifyReport report = VerifyLog(log->store(), {});
  CHECK(report.status.ok());
  CHECK(report.size == 1001);
}

// --- format 3: every note links to the note before it -------------------------

namespace {

// The notes stored in the log, in seq order.
std::vector<std::string> Notes(LogStore& store) {
  std::vector<std::string> notes;
  REQUIRE(store
              .ScanCheckpoints([&](std::uint64_t, const std::string& note) {
                notes.push_back(note);
                return true;
              })
              .ok());
  return notes;
}

// Links of `notes` as parsed, checked against the note before each.
void CheckLinked(const std::vector<std::string>& notes) {
  Hash256 previous{};
  for (const std::string& note : notes) {
    auto parsed = ParseCheckpointUnverified(note);
    REQUIRE(parsed.ok());
    REQUIRE(parsed->previous_note.has_value());
    CHECK(*parsed->previous_note == previous);
    previous = NoteHash(note);
  }
}

std::unique_ptr<LogStore> OpenStore(const Home& home) {
  LogStore::Options options;
  options.path = home.log_db().string();
  auto url = home.LogUrl();
  REQUIRE(url.ok());
  if (*url) options.postgres_url = **url;
  auto store = LogStore::Open(options);
  REQUIRE(store.ok());
  return std::move(store).value();
}

}  // namespace

TEST_CASE("a new log is created in format 3", "[eventstore]") {
  Fixture f;
  auto log = f.Open();
  CHECK(log->store().format_version() == 3);
}

TEST_CASE("each append's note links to the note before it", "[eventstore]") {
  Fixture f;
  auto log = f.Open();
  for (int i = 0; i < 6; ++i) REQUIRE(log->Append(TokenEvents(i % 3 + 1)).ok());
  auto notes = Notes(log->store());
  REQUIRE(notes.size() == 7);
  CheckLinked(notes);
}

TEST_CASE("appends by two connections in turn keep the notes linked", "[eventstore]") {
  Fixture f;
  auto log = f.Open();
  auto key = LoadOrCreateSigningKey(Home{f.dir.path()}.log_key());
  REQUIRE(key.ok());
  auto other = OpenStore(Home{f.dir.path()});
  for (int i = 0; i < 4; ++i) {
    REQUIRE(log->Append(TokenEvents(1)).ok());
    REQUIRE(other->Append(TokenEvents(2), Signer{key->get(), log->origin()}).ok());
  }
  CheckLinked(Notes(log->store()));
  VerifyReport report = VerifyLog(log->store(), {});
  CHECK(report.status.ok());
  CHECK(report.checkpoints_verified == 9);
  CHECK(report.signatures_verified == 1);
}

TEST_CASE("an append refuses to link to a newest note that the log key did not sign",
          "[eventstore]") {
  Fixture f;
  const std::string origin = f.Open()->origin();
  auto key = LoadOrCreateSigningKey(Home{f.dir.path()}.log_key());
  REQUIRE(key.ok());
  Home home{f.dir.path()};
  auto forger = crypto::Ed25519PrivateKey::FromSeed(Bytes(32, 7));
  REQUIRE(forger);
  std::string note = Notes(*OpenStore(home)).back();
  auto parsed = ParseCheckpointUnverified(note);
  REQUIRE(parsed.ok());
  SECTION("signed by another key") { note = SignCheckpoint(*parsed, *forger); }
  SECTION("signed by the log key over another root") {
    parsed->root[0] ^= 1;
    note = SignCheckpoint(*parsed, **key);
  }
  Bytes note_bytes(note.begin(), note.end());
  REQUIRE(testing::RawLog(home).Tamper("UPDATE records SET checkpoint=CAST(?1 AS TEXT) WHERE seq=1",
                                       &note_bytes));
  // A fresh connection has not written or checked the newest note itself.
  auto store = OpenStore(home);
  auto appended = store->Append(TokenEvents(1), Signer{key->get(), origin});
  REQUIRE_FALSE(appended.ok());
  CHECK(appended.status().code() == StatusCode::kDataLoss);
  CHECK(appended.status().reason() == "broken_tail");
  CHECK(store->GetHead()->seq == 1);
}

#ifndef VIA_TEST_LOG_BACKEND_PG  // SQLite only: the file itself
TEST_CASE("a format-2 log keeps format 2: its new notes carry no link", "[eventstore]") {
  // An empty log file of format 2, as docs/event-log-format.md section 2 describes it.
  Fixture f;
  Home home{f.dir.path()};
  std::filesystem::create_directories(home.log_db().parent_path());
  REQUIRE(ExecRaw(home.log_db(),
                  "CREATE TABLE records(seq INTEGER PRIMARY KEY, record BLOB NOT NULL, hash BLOB "
                  "NOT NULL, nodes BLOB NOT NULL, command_id TEXT, checkpoint TEXT);"
                  "CREATE INDEX records_by_command ON records(command_id) WHERE command_id IS "
                  "NOT NULL;"
                  "PRAGMA application_id=1447641420; PRAGMA user_version=2;") == SQLITE_OK);
  auto log = f.Open();
  CHECK(log->store().format_version() == 2);
  for (int i = 0; i < 3; ++i) REQUIRE(log->Append(TokenEvents(2)).ok());
  for (const std::string& note : Notes(log->store())) {
    auto parsed = ParseCheckpointUnverified(note);
    REQUIRE(parsed.ok());
    CHECK_FALSE(parsed->previous_note.has_value());
  }
  VerifyReport report = VerifyLog(log->store(), {});
  CHECK(report.status.ok());
  CHECK(report.checkpoints_verified == 4);
  CHECK(report.signatures_verified == 4);
}
#endif

#ifndef VIA_TEST_LOG_BACKEND_PG  // SQLite only: the file itself
TEST_CASE("a log of an unknown format version is refused", "[eventstore]") {
  Fixture f;
  f.Open();
  auto db = Home{f.dir.path()}.log_db();
  for (int version : {1, 4}) {
    REQUIRE(ExecRaw(db, "PRAGMA user_version=" + std::to_string(version)) == SQLITE_OK);
    LogStore::Options options;
    options.path = db.string();
    auto store = LogStore::Open(options);
    REQUIRE_FALSE(store.ok());
    CHECK(store.status().reason() == "log_version");
  }
}

TEST_CASE("one append per process keeps the WAL bounded, as a CLI writes it", "[eventstore]") {
  // Each `via` command opens the log, appends once and exits without a
  // checkpoint. A process that opens the file first counts every WAL frame
  // as not yet copied, so SQLite's own auto-checkpoint never lets the WAL
  // restart: it grew with every command (and every open read all of it).
  Fixture f;
  const auto wal = f.dir.path() / "log" / "events.db-wal";
  std::uintmax_t largest = 0;
  for (int i = 0; i < 150; ++i) {
    auto log = f.Open();
    REQUIRE(log->Append(TokenEvents(1)).ok());
    log.reset();  // the process exits: the connection closes
    largest = std::max(largest, std::filesystem::file_size(wal));
  }
  // 150 appends wrote well over 300 frames; the WAL never held more than the
  // truncation threshold (64 frames of 4,120 bytes) and one append's frames.
  CHECK(largest <= (64 + 8) * 4120 + 32);
  CHECK(largest > 0);
}
#endif
