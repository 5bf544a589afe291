// The event log on PostgreSQL: what only that backend has (its triggers, its
// head row, several processes on one server, the server going away) and that
// it stores exactly the rows the SQLite log stores. The backend-independent
// behaviour is covered by log_store_test.cc and verify_test.cc, built again
// for PostgreSQL in this binary.

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "eventstore/event_log.h"
#include "eventstore/postgres/pg_log_store.h"
#include "eventstore/sqlite_log_store.h"
#include "eventstore/verify.h"
#include "log_backend.h"
#include "testing.h"

using namespace via;
using namespace via::eventstore;
namespace pg = via::eventstore::postgres;

namespace {

AppendRequest Events(int n, const std::string& command_id = "", std::int64_t at = 1732406400000) {
  AppendRequest request;
  request.actor = "tester";
  request.command_id = command_id;
  request.recorded_at_ms = at;
  for (int i = 0; i < n; ++i) {
    request.events.push_back(WorkloadTokenIssued{"api", "v1", "tok" + std::to_string(i), 0});
  }
  return request;
}

struct Row {
  std::uint64_t seq;
  Bytes record, hash, nodes;
  std::optional<std::string> command_id, checkpoint;
  bool operator==(const Row&) const = default;
};

std::vector<Row> Rows(LogStore& store) {
  std::vector<Row> rows;
  REQUIRE(store
              .ScanRaw(1, 0,
                       [&](const RawRow& r) {
                         Row row{r.seq,
                                 Bytes(r.record.begin(), r.record.end()),
                                 Bytes(r.hash.begin(), r.hash.end()),
                                 Bytes(r.nodes.begin(), r.nodes.end()),
                                 {},
                                 {}};
                         if (r.command_id) row.command_id = std::string(*r.command_id);
                         if (r.checkpoint) row.checkpoint = std::string(*r.checkpoint);
                         rows.push_back(std::move(row));
                         return true;
                       })
              .ok());
  return rows;
}

// Runs `sql` on `url` as Via's role would (triggers on); the error, if any.
Status Run(const std::string& url, const std::string& sql) {
  auto conn = pg::Conn::Connect(url);
  REQUIRE(conn.ok());
  return conn->Exec(sql);
}

}  // namespace

TEST_CASE("the PostgreSQL log stores the SQLite log's rows byte for byte", "[postgres]") {
  testing::TempDir sqlite_home, pg_home;
  testing::TestLogDatabase database;
  const std::string url = database.url();
  // The same keys, clock and ids: the same log, record for record.
  testing::FakeClock clock_a, clock_b;
  testing::CountingIds ids_a, ids_b;
  auto a = testing::OpenTestEventLog(sqlite_home.path(), "", clock_a, ids_a);
  std::filesystem::create_directories(pg_home.path());
  std::filesystem::copy(Home{sqlite_home.path()}.keys_dir(), Home{pg_home.path()}.keys_dir(),
                        std::filesystem::copy_options::recursive);
  auto b = testing::OpenTestEventLog(pg_home.path(), url, clock_b, ids_b);
  CHECK(a->store().backend() == std::string("sqlite"));
  CHECK(b->store().backend() == std::string("postgresql"));
  for (int i = 0; i < 40; ++i) {
    AppendRequest request = Events(1 + i % 4, i % 3 ? "cmd-" + std::to_string(i) : "");
    REQUIRE(a->Append(request).ok());
    REQUIRE(b->Append(request).ok());
  }
  auto rows_a = Rows(a->store());
  auto rows_b = Rows(b->store());
  REQUIRE(rows_a.size() > 90);
  CHECK(rows_a == rows_b);
  CHECK(*a->store().GetHead() == *b->store().GetHead());
  CHECK(*a->store().LatestCheckpoint() == *b->store().LatestCheckpoint());
  // Proof material served from the stored nodes agrees too.
  const std::uint64_t size = a->store().GetHead()->seq;
  CHECK(*merkle::Root(a->store().nodes(), size) == *merkle::Root(b->store().nodes(), size));
  CHECK(*merkle::InclusionProof(a->store().nodes(), 17, size) ==
        *merkle::InclusionProof(b->store().nodes(), 17, size));
  VerifyReport report = VerifyLog(b->store(), {});
  CHECK(report.status.ok());
  CHECK(report.size == size);
}

TEST_CASE("the PostgreSQL log's triggers refuse UPDATE, DELETE and TRUNCATE", "[postgres]") {
  testing::TempDir home;
  testing::FakeClock clock;
  testing::CountingIds ids;
  testing::TestLogDatabase database;
  const std::string url = database.url();
  auto log = testing::OpenTestEventLog(home.path(), url, clock, ids);
  REQUIRE(log->Append(Events(3, "cmd-1")).ok());
  const auto before = Rows(log->store());
  for (const char* sql : {
           "UPDATE via.records SET record = '\\x00' WHERE seq = 2",
           "UPDATE via.records SET nodes = nodes WHERE seq = 2",
           "UPDATE via.records SET checkpoint = 'x' WHERE seq = 4",
           "UPDATE via.records SET command_id = NULL WHERE seq = 4",
           "DELETE FROM via.records WHERE seq = 4",
           "DELETE FROM via.records",
           "TRUNCATE via.records",
           "UPDATE via.log_meta SET format = 2",
           "DELETE FROM via.log_meta",
           "TRUNCATE via.log_meta",
           "DELETE FROM via.head",
           "TRUNCATE via.head",
           // The head moves only forward, to the newest stored record.
           "UPDATE via.head SET seq = 2, hash = (SELECT hash FROM via.records WHERE seq = 2)",
           "UPDATE via.head SET seq = 5",
           // Forward, but not to the newest record, or with another hash
           // (the rows inserted here go with the unfinished transaction).
           "BEGIN; INSERT INTO via.records(seq, record, hash, nodes) VALUES "
           "(5, '\\x00', '\\x05', ''), (6, '\\x00', '\\x06', ''); "
           "UPDATE via.head SET seq = 5, hash = '\\x05'",
           "BEGIN; INSERT INTO via.records(seq, record, hash, nodes) VALUES "
           "(5, '\\x00', '\\x05', ''); UPDATE via.head SET seq = 5, hash = '\\x06'",
       }) {
    Status status = Run(url, sql);
    INFO(sql << ": " << status.ToString());
    CHECK_FALSE(status.ok());
    CHECK((status.message().find("append-only") != std::string::npos ||
           status.message().find("only moves forward") != std::string::npos));
  }
  // The same move to the newest record with its hash passes the guard (and
  // goes with its transaction).
  CHECK(Run(url, "BEGIN; INSERT INTO via.records(seq, record, hash, nodes) VALUES "
                 "(5, '\\x00', '\\x05', ''); UPDATE via.head SET seq = 5, hash = '\\x05'")
            .ok());
  CHECK(Rows(log->store()) == before);
  CHECK(log->store().GetHead()->seq == 4);
  CHECK(VerifyLog(log->store(), {}).status.ok());
}

TEST_CASE("the home remembers its PostgreSQL log and refuses another", "[postgres]") {
  testing::TempDir home;
  testing::FakeClock clock;
  testing::CountingIds ids;
  testing::TestLogDatabase database;
  const std::string url = database.url();
  testing::OpenTestEventLog(home.path(), url, clock, ids);
  auto remembered = Home{home.path()}.LogUrl();
  REQUIRE(remembered.ok());
  REQUIRE(remembered->has_value());
  CHECK(**remembered == url);
  CHECK_FALSE(std::filesystem::exists(Home{home.path()}.log_db()));
  // Opened without --log: the remembered URL.
  auto again = testing::OpenTestEventLog(home.path(), "", clock, ids);
  CHECK(again->store().backend() == std::string("postgresql"));
  CHECK(again->store().GetHead()->seq == 1);
  // Another URL for this home, or --log for a home with a SQLite log: refused.
  EventLog::Options options;
  options.home = Home{home.path()};
  options.clock = &clock;
  options.ids = &ids;
  options.log_url = testing::WithDatabase(url, "postgres");
  auto other = EventLog::Open(options);
  REQUIRE_FALSE(other.ok());
  CHECK(other.status().reason() == "log_url_mismatch");
  testing::TempDir sqlite_home;
  testing::OpenTestEventLog(sqlite_home.path(), "", clock, ids);
  options.home = Home{sqlite_home.path()};
  options.log_url = url;
  auto moved = EventLog::Open(options);
  REQUIRE_FALSE(moved.ok());
  CHECK(moved.status().reason() == "home_has_log");
}

TEST_CASE("log URLs with a password or without a user, host or database are refused",
          "[postgres]") {
  CHECK(pg::ValidateLogUrl("postgresql://via@127.0.0.1:5432/db").ok());
  CHECK(pg::ValidateLogUrl("postgres://via@db.example/via?sslmode=require").ok());
  CHECK(pg::ValidateLogUrl("postgresql://via:secret@127.0.0.1/db").reason() ==
        "password_in_url");
  CHECK(pg::ValidateLogUrl("postgresql://via@127.0.0.1/db?password=secret").reason() ==
        "password_in_url");
  for (const char* bad : {"", "mysql://via@h/db", "postgresql://127.0.0.1/db",
                          "postgresql://via@/db", "postgresql://via@h", "postgresql://via@h/",
                          "postgresql://via@h/db x"}) {
    INFO(bad);
    CHECK(pg::ValidateLogUrl(bad).reason() == "bad_log_url");
  }
}

TEST_CASE("four processes appending at once on PostgreSQL form one chain", "[postgres]") {
  testing::TempDir home;
  testing::FakeClock clock;
  testing::CountingIds ids;
  testing::TestLogDatabase database;
  const std::string url = database.url();
  testing::OpenTestEventLog(home.path(), url, clock, ids);  // initialize before forking
  constexpr int kProcesses = 4;
  constexpr int kAppends = 60;
  pid_t children[kProcesses];
  for (int c = 0; c < kProcesses; ++c) {
    children[c] = ::fork();
    if (children[c] == 0) {
      testing::FakeClock child_clock;
      testing::CountingIds child_ids;
      EventLog::Options options;
      options.home = Home{home.path()};  // the home names the log
      options.clock = &child_clock;
      options.ids = &child_ids;
      auto log = EventLog::Open(options);
      if (!log.ok()) ::_exit(10);
      for (int i = 0; i < kAppends; ++i) {
        const std::string id = "c" + std::to_string(c) + "-" + std::to_string(i);
        // Half expect the head they read (and retry on a race), half do not.
        for (int attempt = 0;; ++attempt) {
          auto head = (*log)->store().GetHead();
          if (!head.ok()) ::_exit(11);
          AppendRequest request = Events(1 + i % 2, id);
          if (i % 2 == 0) request.expected_head = *head;
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
  auto log = testing::OpenTestEventLog(home.path(), "", clock, ids);
  const std::uint64_t expected = 1 + kProcesses * (kAppends / 2) * 3;
  CHECK(log->store().GetHead()->seq == expected);
  VerifyReport report = VerifyLog(log->store(), {});
  CHECK(report.status.ok());
  CHECK(report.size == expected);
  // Every command id landed exactly once.
  for (int c = 0; c < kProcesses; ++c) {
    for (int i = 0; i < kAppends; ++i) {
      auto found = log->store().FindCommand("c" + std::to_string(c) + "-" + std::to_string(i));
      REQUIRE(found.ok());
      CHECK(found->has_value());
    }
  }
}

TEST_CASE("an unreachable PostgreSQL server is a retryable log_unreachable", "[postgres]") {
  // A port nothing listens on: the cluster's port with the server asked for
  // another database name is not enough, so take a closed one.
  LogStore::Options options;
  options.postgres_url = "postgresql://via@127.0.0.1:1/via";
  auto store = LogStore::Open(options);
  REQUIRE_FALSE(store.ok());
  CHECK(store.status().code() == StatusCode::kUnavailable);
  CHECK(store.status().reason() == "log_unreachable");
}

namespace {

// Ends the server session of `store` and waits until the server has.
void TerminateSession(const std::string& url, pg::PgLogStore& store) {
  const int pid = store.conn().backend_pid();
  REQUIRE(Run(url, "SELECT pg_terminate_backend(" + std::to_string(pid) + ")").ok());
  for (int i = 0; i < 500; ++i) {
    auto conn = pg::Conn::Connect(url);
    REQUIRE(conn.ok());
    auto r = conn->Query("SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                         {pg::Param::Int8(pid)});
    REQUIRE(r.ok());
    if (r->Int8(0, 0) == 0) return;
    ::usleep(10000);
  }
  FAIL("the server did not end session " << pid);
}

}  // namespace

TEST_CASE("a connection lost in the middle of an append or its COMMIT: the append reconnects "
          "and lands once",
          "[postgres]") {
  // append.before_commit: every record inserted, uncommitted (the server
  // rolls back). append.commit: the session is gone when COMMIT is sent, so
  // the outcome is unknown to the client until it looks again.
  const std::string point = GENERATE(std::string("append.before_commit"),
                                     std::string("append.commit"));
  const std::string command_id = GENERATE(std::string("second"), std::string(""));
  INFO(point << ", command id '" << command_id << "'");
  testing::TempDir home;
  testing::FakeClock clock;
  testing::CountingIds ids;
  testing::TestLogDatabase database;
  const std::string url = database.url();
  int kills = 0;
  bool armed = false;
  std::unique_ptr<EventLog> log;
  auto crash = CrashPoints::Calling([&](std::string_view name) {
    if (name != point || !armed || kills > 0) return;
    ++kills;
    TerminateSession(url, static_cast<pg::PgLogStore&>(log->store()));
  });
  log = testing::OpenTestEventLog(home.path(), url, clock, ids, crash);
  REQUIRE(log->Append(Events(2, "first")).ok());
  const Head head = *log->store().GetHead();
  armed = true;
  auto appended = log->Append(Events(3, command_id));
  INFO(appended.status().ToString());
  CHECK(kills == 1);
  REQUIRE(appended.ok());
  CHECK_FALSE(appended->replayed);
  CHECK(appended->first_seq == head.seq + 1);
  CHECK(appended->last_seq == head.seq + 3);
  // Exactly one copy, read through a connection of its own.
  {
    testing::FakeClock c2;
    testing::CountingIds i2;
    auto reader = testing::OpenTestEventLog(home.path(), "", c2, i2);
    CHECK(reader->store().GetHead()->seq == head.seq + 3);
    VerifyReport report = VerifyLog(reader->store(), {});
    CHECK(report.status.ok());
    CHECK(report.size == head.seq + 3);
  }
  if (!command_id.empty()) {
    auto again = log->Append(Events(3, command_id));
    REQUIRE(again.ok());
    CHECK(again->replayed);
    CHECK(again->last_seq == head.seq + 3);
  }
}

TEST_CASE("an append whose retries run out says whether its outcome is unknown", "[postgres]") {
  const std::string point = GENERATE(std::string("append.before_commit"),
                                     std::string("append.commit"));
  INFO(point);
  testing::TempDir home;
  testing::FakeClock clock;
  testing::CountingIds ids;
  testing::TestLogDatabase database;
  const std::string url = database.url();
  int kills = 0;
  bool armed = false;
  std::unique_ptr<EventLog> log;
  auto crash = CrashPoints::Calling([&](std::string_view name) {
    if (name != point || !armed || kills > 0) return;
    ++kills;
    TerminateSession(url, static_cast<pg::PgLogStore&>(log->store()));
  });
  log = testing::OpenTestEventLog(home.path(), url, clock, ids, crash);
  log->store().set_retry_policy({1, std::chrono::milliseconds(10000)});
  const Head head = *log->store().GetHead();
  armed = true;
  auto appended = log->Append(Events(3, "second"));
  REQUIRE_FALSE(appended.ok());
  CHECK(appended.status().code() == StatusCode::kUnavailable);
  CHECK(appended.status().reason() == "log_unreachable");
  const bool unknown =
      appended.status().message().find("may or may not be in the log") != std::string::npos;
  CHECK(unknown == (point == "append.commit"));
  // Nothing of it is in the log; the same store reconnects for the retry,
  // which lands once.
  CHECK(*log->store().GetHead() == head);
  auto retried = log->Append(Events(3, "second"));
  INFO(retried.status().ToString());
  REQUIRE(retried.ok());
  CHECK_FALSE(retried->replayed);
  CHECK(retried->first_seq == head.seq + 1);
  CHECK(VerifyLog(log->store(), {}).status.ok());
}

TEST_CASE("a read snapshot on PostgreSQL does not see appends made after it began",
          "[postgres]") {
  testing::TempDir home;
  testing::FakeClock clock;
  testing::CountingIds ids;
  testing::TestLogDatabase database;
  const std::string url = database.url();
  auto writer = testing::OpenTestEventLog(home.path(), url, clock, ids);
  testing::FakeClock c2;
  testing::CountingIds i2;
  auto reader = testing::OpenTestEventLog(home.path(), "", c2, i2);
  {
    auto snapshot = reader->store().BeginRead();
    REQUIRE(snapshot.ok());
    const Head before = *reader->store().GetHead();
    REQUIRE(writer->Append(Events(2)).ok());
    CHECK(*reader->store().GetHead() == before);
    CHECK_FALSE(reader->store().ReadRow(before.seq + 1).ok());
    CHECK(reader->store().LatestCheckpoint()->find("\n" + std::to_string(before.seq) + "\n") !=
          std::string::npos);
  }
  CHECK(reader->store().GetHead()->seq == 3);
}

TEST_CASE("a role with only SELECT and INSERT on the records appends, and cannot change them",
          "[postgres]") {
  testing::TempDir home;
  testing::FakeClock clock;
  testing::CountingIds ids;
  testing::TestLogDatabase database;
  const std::string url = database.url();
  auto owner = testing::OpenTestEventLog(home.path(), url, clock, ids);  // creates schema via
  const std::string role = "via_app_" + std::to_string(::getpid());
  REQUIRE(Run(url, testing::ServiceRoleSql(role)).ok());
  // The session runs as that role from its start (libpq's options=-c role=…),
  // as a service connecting with it would.
  const std::string as_role = url + "?options=-c%20role%3D" + role;
  REQUIRE(pg::ValidateLogUrl(as_role).ok());
  LogStore::Options options;
  options.postgres_url = as_role;
  auto store = LogStore::Open(options);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  auto key = LoadOrCreateSigningKey(Home{home.path()}.log_key());
  REQUIRE(key.ok());
  auto appended = (*store)->Append(Events(3, "as-role"), Signer{key->get(), owner->origin()});
  INFO(appended.status().ToString());
  REQUIRE(appended.ok());
  CHECK(appended->last_seq == 4);

  auto conn = pg::Conn::Connect(as_role);
  REQUIRE(conn.ok());
  for (const char* sql : {"UPDATE via.records SET checkpoint = checkpoint WHERE seq = 4",
                          "DELETE FROM via.records WHERE seq = 4", "TRUNCATE via.records",
                          "ALTER TABLE via.records DISABLE TRIGGER ALL",
                          "SET session_replication_role = replica"}) {
    Status status = conn->Exec(sql);
    INFO(sql << ": " << status.ToString());
    CHECK_FALSE(status.ok());
    CHECK((status.message().find("permission denied") != std::string::npos ||
           status.message().find("must be owner") != std::string::npos));
  }
  VerifyReport report = VerifyLog(**store, {});
  CHECK(report.status.ok());
  CHECK(report.size == 4);
  (void)Run(url, "DROP OWNED BY " + role + "; DROP ROLE " + role);
}

TEST_CASE("array parameters carry int8, text and bytea elements, NULLs and no elements",
          "[postgres]") {
  testing::TestLogDatabase database;
  auto conn = pg::Conn::Connect(database.url());
  REQUIRE(conn.ok());
  pg::ArrayParam numbers(pg::kInt8Oid);
  for (std::int64_t n : {std::int64_t{7}, std::int64_t{-1}, INT64_MAX}) numbers.AddInt8(n);
  auto ints = conn->Query("SELECT x FROM unnest($1::bigint[]) WITH ORDINALITY AS t(x, i) ORDER BY i",
                          {numbers.param()});
  INFO(ints.status().ToString());
  REQUIRE(ints.ok());
  REQUIRE(ints->rows() == 3);
  CHECK(ints->Int8(0, 0) == 7);
  CHECK(ints->Int8(1, 0) == -1);
  CHECK(ints->Int8(2, 0) == INT64_MAX);

  pg::ArrayParam texts(pg::kTextOid);
  texts.Add(std::string_view("a,b \"c\" {d}"));
  texts.AddNull();
  texts.Add(std::string_view(""));
  pg::ArrayParam blobs(pg::kByteaOid);
  const Bytes blob = {0, 1, 0xff, 0};
  blobs.Add(ByteView(blob));
  blobs.Add(ByteView());
  blobs.AddNull();
  auto rows = conn->Query(
      "SELECT t, t IS NULL, b, b IS NULL FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY "
      "AS u(t, b, i) ORDER BY i",
      {texts.param(), blobs.param()});
  INFO(rows.status().ToString());
  REQUIRE(rows.ok());
  REQUIRE(rows->rows() == 3);
  CHECK(rows->Text(0, 0) == "a,b \"c\" {d}");
  CHECK(Bytes(rows->Bytes(0, 2).begin(), rows->Bytes(0, 2).end()) == blob);
  CHECK(rows->IsNull(1, 0));
  CHECK(rows->Bytes(1, 2).empty());
  CHECK_FALSE(rows->IsNull(1, 2));
  CHECK_FALSE(rows->IsNull(2, 0));
  CHECK(rows->Text(2, 0).empty());
  CHECK(rows->IsNull(2, 2));

  pg::ArrayParam none(pg::kTextOid);
  auto empty = conn->Query("SELECT count(*) FROM unnest($1::text[])", {none.param()});
  REQUIRE(empty.ok());
  CHECK(empty->Int8(0, 0) == 0);
}

namespace {

// How `store`'s session (and any other) has read via.records so far, once
// that session has handed the server its statistics.
struct RecordReads {
  std::int64_t seq_scans = 0;
  std::int64_t rows = 0;  // by sequential scans and fetched through indexes
};

RecordReads ReadsOfRecords(pg::PgLogStore& store, const std::string& url) {
  // Flushed as the session turns idle, before it answers this.
  REQUIRE(store.conn().Query("SELECT pg_stat_force_next_flush()").ok());
  auto conn = pg::Conn::Connect(url);
  REQUIRE(conn.ok());
  auto r = conn->Query(
      "SELECT seq_scan, seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables "
      "WHERE relid = 'via.records'::regclass");
  REQUIRE(r.ok());
  REQUIRE(r->rows() == 1);
  return RecordReads{r->Int8(0, 0), r->Int8(0, 1)};
}

}  // namespace

TEST_CASE("an append on a long connection reads a few rows of a log of thousands, never scans it",
          "[postgres]") {
  testing::TempDir home;
  testing::FakeClock clock;
  testing::CountingIds ids;
  testing::TestLogDatabase database;
  const std::string url = database.url();
  auto log = testing::OpenTestEventLog(home.path(), url, clock, ids);
  // Never analyzed: the planner goes by its defaults, as on a new log
  // between autovacuum's visits.
  REQUIRE(Run(url, "ALTER TABLE via.records SET (autovacuum_enabled = false)").ok());
  auto& store = static_cast<pg::PgLogStore&>(log->store());
  constexpr int kFill = 300, kEvents = 10;
  std::vector<AppendRequest> batch;
  for (int i = 0; i < kFill; ++i) {
    batch.push_back(Events(kEvents, "fill-" + std::to_string(i)));
    if (batch.size() == 50) {
      for (const auto& r : store.AppendBatch(batch, log->signer())) REQUIRE(r.ok());
      batch.clear();
    }
  }
  const std::uint64_t size = store.GetHead()->seq;
  REQUIRE(size == 1 + kFill * kEvents);

  // The same connection goes on (plpgsql has settled on generic plans for
  // the head guard): appends with new command ids, and retries of old ones.
  const RecordReads before = ReadsOfRecords(store, url);
  constexpr int kAppends = 20;
  for (int i = 0; i < kAppends; ++i) {
    auto appended = store.Append(Events(1, "more-" + std::to_string(i)), log->signer());
    REQUIRE(appended.ok());
    REQUIRE_FALSE(appended->replayed);
  }
  for (const char* id : {"fill-0", "fill-299"}) {
    auto again = store.Append(Events(kEvents, id), log->signer());
    REQUIRE(again.ok());
    CHECK(again->replayed);
  }
  const RecordReads after = ReadsOfRecords(store, url);
  INFO("log of " << size << " records; rows read " << after.rows - before.rows
                 << ", sequential scans " << after.seq_scans - before.seq_scans);
  CHECK(after.seq_scans == before.seq_scans);
  // The head guard reads the newest record, a retry the rows of one append:
  // a handful per append, far below the log's size.
  CHECK(after.rows - before.rows <= (kAppends + 2) * (kEvents + 4));
}

TEST_CASE("an older head guard is replaced when the log's owner opens it, kept for a service role",
          "[postgres]") {
  testing::TempDir home;
  testing::FakeClock clock;
  testing::CountingIds ids;
  testing::TestLogDatabase database;
  const std::string url = database.url();
  auto owner = testing::OpenTestEventLog(home.path(), url, clock, ids);
  // The body logs were created with before 2026-12-06.
  REQUIRE(Run(url, testing::kFirstHeadGuardSql).ok());
  auto guard = [&] { return testing::HeadGuardBody(url); };
  const std::string role = "via_svc_" + std::to_string(::getpid());
  REQUIRE(Run(url, testing::ServiceRoleSql(role)).ok());
  auto key = LoadOrCreateSigningKey(Home{home.path()}.log_key());
  REQUIRE(key.ok());
  {
    LogStore::Options options;
    options.postgres_url = url + "?options=-c%20role%3D" + role;
    auto service = LogStore::Open(options);
    INFO(service.status().ToString());
    REQUIRE(service.ok());
    CHECK(guard().find(testing::kFirstHeadGuardClause) !=
          std::string::npos);
    auto appended = (*service)->Append(Events(2, "as-service"), Signer{key->get(), owner->origin()});
    INFO(appended.status().ToString());
    CHECK(appended.ok());
  }
  {
    LogStore::Options options;
    options.postgres_url = url;
    auto reopened = LogStore::Open(options);
    REQUIRE(reopened.ok());
    CHECK(guard().find("(SELECT pg_catalog.max(seq) FROM via.records)") != std::string::npos);
    auto appended = (*reopened)->Append(Events(2, "as-owner"), Signer{key->get(), owner->origin()});
    INFO(appended.status().ToString());
    CHECK(appended.ok());
    CHECK(VerifyLog(**reopened, {}).status.ok());
  }
  CHECK(Run(url, "UPDATE via.head SET seq = 2, hash = (SELECT hash FROM via.records WHERE seq = 2)")
            .message()
            .find("only moves forward") != std::string::npos);
  // A body that is neither the first nor this build's (a later build's, or
  // one an operator changed) is left as it is by the owner's open.
  const std::string later = guard() + "-- a later build\n";
  REQUIRE(Run(url, "CREATE OR REPLACE FUNCTION via.check_head_move() RETURNS trigger "
                   "LANGUAGE plpgsql AS $$" + later + "$$")
              .ok());
  {
    LogStore::Options options;
    options.postgres_url = url;
    auto reopened = LogStore::Open(options);
    REQUIRE(reopened.ok());
    CHECK(guard() == later);
  }
  (void)Run(url, "DROP OWNED BY " + role + "; DROP ROLE " + role);
}
