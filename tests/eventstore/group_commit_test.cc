// Group commit (eventstore/group_commit.h, LogStore::AppendBatch) on both log
// backends: many threads submitting at once make one chain in fewer
// transactions than appends, each append keeping its own rows, command id and
// signed note; every caller gets its own answer (seqs, replays, stale heads,
// invalid requests), and `via audit verify` and the independent verifier
// accept a log written in batches. On PostgreSQL also: a batch whose
// connection is killed lands once or not at all, and concurrent deliveries
// through `via serve`'s committer make one chain.

#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "eventstore/event_log.h"
#include "eventstore/group_commit.h"
#include "eventstore/record_codec.h"
#include "eventstore/verify.h"
#include "log_backend.h"
#include "testing.h"

#ifdef VIA_TEST_LOG_BACKEND_PG
#include "serve_process.h"
#include "server/http_get.h"
#endif

using namespace via;
using namespace via::eventstore;

namespace {

AppendRequest Tokens(int n, const std::string& command_id, const std::string& tag = "t") {
  AppendRequest request;
  request.actor = "tester";
  request.command_id = command_id;
  request.recorded_at_ms = 1732406400000;
  for (int i = 0; i < n; ++i) {
    request.events.push_back(
        WorkloadTokenIssued{"api", "v1", tag + "-" + std::to_string(i), 0, 0});
  }
  return request;
}

// Rows whose command_id is `id`.
std::int64_t RowsWithCommand(testing::RawLog& raw, const std::string& id) {
  return raw.Int("SELECT count(*) FROM records WHERE command_id = '" + id + "'");
}

}  // namespace

TEST_CASE("group commit: a thread of lower priority leaves the commit to a waiting thread of "
          "normal priority",
          "[eventstore][group_commit]") {
  testing::TempDir home;
  testing::FakeClock clock;
  testing::CountingIds ids;
  testing::TestLogDatabase database;
  const std::string url = database.url();
  // Each round: a first batch is held inside its transaction until a
  // background thread (nice +10, as via serve's passes) and then a normal
  // one have queued behind it; when it ends, both wake, and the batch that
  // takes both must be committed by the normal one. Without the hand-over
  // the first to get the lock commits, about one round in two.
  GroupCommitter* committer = nullptr;
  std::atomic<std::uint64_t> hold_until{0};  // submitted() that releases the first batch
  std::mutex mu;
  std::vector<pid_t> committed_by;  // the thread of each batch, in order
  auto crash = CrashPoints::Calling([&](std::string_view name) {
    if (name != "append.before_commit") return;
    {
      std::lock_guard lock(mu);
      committed_by.push_back(static_cast<pid_t>(::gettid()));
    }
    const std::uint64_t until = hold_until.exchange(0);
    for (int i = 0; i < 30000 && until != 0 && committer->submitted() < until; ++i) ::usleep(1000);
  });
  auto writer = testing::OpenTestEventLog(home.path(), url, clock, ids, crash);
  GroupCommitter group(writer->store(), writer->signer());
  committer = &group;
  constexpr int kRounds = 40;
  for (int round = 0; round < kRounds; ++round) {
    const std::string tag = "r" + std::to_string(round);
    const std::uint64_t base = group.submitted();
    hold_until = base + 3;
    std::atomic<bool> first_ok{false};
    std::thread first([&] { first_ok = group.Submit(Tokens(1, tag + "-first")).ok(); });
    for (int i = 0; i < 30000 && group.submitted() < base + 1; ++i) ::usleep(100);
    pid_t background_tid = 0;
    std::atomic<bool> background_ok{false}, normal_ok{false};
    std::thread background([&] {
      background_tid = static_cast<pid_t>(::gettid());
      (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(background_tid), 10);
      background_ok = group.Submit(Tokens(1, tag + "-background")).ok();
    });
    for (int i = 0; i < 30000 && group.submitted() < base + 2; ++i) ::usleep(100);
    pid_t normal_tid = 0;
    std::thread normal([&] {
      normal_tid = static_cast<pid_t>(::gettid());
      normal_ok = group.Submit(Tokens(1, tag + "-normal")).ok();
    });
    first.join();
    background.join();
    normal.join();
    CHECK(first_ok);
    CHECK(background_ok);
    CHECK(normal_ok);
    std::lock_guard lock(mu);
    REQUIRE(committed_by.size() >= 2);
    INFO("round " << round);
    // The last batch took both queued requests (they queued while the
    // first was held), and the normal thread committed it.
    CHECK(committed_by.back() == normal_tid);
    CHECK(committed_by.back() != background_tid);
    committed_by.clear();
  }
  CHECK(group.submitted() == 3 * kRounds);
  CHECK(group.batches() == 2 * kRounds);
  CHECK(VerifyLog(writer->store(), {}).status.ok());
}

TEST_CASE("group commit: concurrent submitters make one chain in fewer transactions than "
          "appends, each with its own result and note",
          "[eventstore][group_commit]") {
  testing::TempDir home;
  testing::FakeClock clock;
  testing::CountingIds ids;
  testing::TestLogDatabase database;
  const std::string url = database.url();
  auto reader = testing::OpenTestEventLog(home.path(), url, clock, ids);
  const Head start = *reader->store().GetHead();

  constexpr int kThreads = 8;
  constexpr int kEach = 10;
  // The first batch waits, inside its transaction, until every thread has
  // submitted once: the others queue behind it and go together next.
  GroupCommitter* committer = nullptr;
  bool gated = false;
  auto crash = CrashPoints::Calling([&](std::string_view name) {
    if (name != "append.before_commit" || gated) return;
    gated = true;
    for (int i = 0; i < 30000 && committer->submitted() < kThreads; ++i) ::usleep(1000);
  });
  testing::FakeClock clock2;
  testing::CountingIds ids2;
  auto writer = testing::OpenTestEventLog(home.path(), url, clock2, ids2, crash);
  GroupCommitter group(writer->store(), writer->signer());
  committer = &group;

  struct Answer {
    std::string id;
    int events = 0;
    Result<AppendResult> result = Internal("not run");
  };
  std::vector<std::vector<Answer>> answers(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        Answer a;
        a.id = "c" + std::to_string(t) + "-" + std::to_string(i);
        a.events = 1 + (t + i) % 3;
        a.result = group.Submit(Tokens(a.events, a.id, a.id));
        answers[t].push_back(std::move(a));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(gated);

  // Every caller's own seqs: disjoint, together exactly the records appended.
  const Head head = *reader->store().GetHead();
  std::uint64_t total = 0;
  std::set<std::uint64_t> seen;
  testing::RawLog raw(Home{home.path()});
  for (const auto& per_thread : answers) {
    for (const Answer& a : per_thread) {
      INFO(a.id << ": " << a.result.status().ToString());
      REQUIRE(a.result.ok());
      CHECK_FALSE(a.result->replayed);
      CHECK(a.result->last_seq - a.result->first_seq + 1 == static_cast<std::uint64_t>(a.events));
      CHECK(a.result->head.seq >= a.result->last_seq);
      total += static_cast<std::uint64_t>(a.events);
      for (std::uint64_t seq = a.result->first_seq; seq <= a.result->last_seq; ++seq) {
        CHECK(seen.insert(seq).second);
        auto record = reader->store().Read(seq);
        REQUIRE(record.ok());
        CHECK(record->command_id == a.id);
        CHECK(record->actor == "tester");
        const auto* token = std::get_if<WorkloadTokenIssued>(&record->event);
        REQUIRE(token != nullptr);
        CHECK(token->token_id == a.id + "-" + std::to_string(seq - a.result->first_seq));
      }
      // The command id is stored once, on the append's last row, with its note.
      CHECK(RowsWithCommand(raw, a.id) == 1);
      CHECK(reader->store().CheckpointAt(a.result->last_seq).ok());
    }
  }
  CHECK(head.seq == start.seq + total);
  CHECK(seen.size() == total);
  CHECK(*seen.begin() == start.seq + 1);
  CHECK(*seen.rbegin() == head.seq);
  // One note per append (the log's own first one included) ...
  constexpr int kAppends = kThreads * kEach;
  CHECK(*reader->store().CountNotesBefore(head.seq + 1) == 1 + kAppends);
  // ... in fewer transactions than appends.
  CHECK(group.submitted() == kAppends);
  CHECK(group.batches() < static_cast<std::uint64_t>(kAppends));
  if (testing::kPostgresLog) {
    // The rows of one transaction share its id (xmin).
    const std::int64_t transactions =
        raw.Int("SELECT count(DISTINCT xmin::text) FROM records WHERE seq > " +
                std::to_string(start.seq));
    CHECK(transactions == static_cast<std::int64_t>(group.batches()));
    CHECK(transactions < kAppends);
  }
  WARN(kAppends << " appends in " << group.batches() << " batches");

  // A command id already in the log is answered with its first result.
  const Answer& first = answers[3][4];
  auto again = group.Submit(Tokens(first.events, first.id, first.id));
  REQUIRE(again.ok());
  CHECK(again->replayed);
  CHECK(again->first_seq == first.result->first_seq);
  CHECK(again->last_seq == first.result->last_seq);
  CHECK(reader->store().GetHead()->seq == head.seq);

  // Verified: Via's verifier, `via audit verify`, and on SQLite the
  // independent one (tests/tools/independent_verify.py reads the file).
  VerifyReport report = VerifyLog(reader->store(), {});
  INFO(report.status.ToString());
  CHECK(report.status.ok());
  CHECK(report.size == head.seq);
  reader.reset();
  writer.reset();
  auto audited = testing::Via(home.path(), "--json audit verify");
  INFO(audited.out);
  CHECK(audited.exit_code == 0);
  if (!testing::kPostgresLog) {
    auto independent = testing::Run("python3 '" + std::string(VIA_SOURCE_DIR) +
                                    "/tests/tools/independent_verify.py' --via '" +
                                    testing::ViaBinary() + "' --all-signatures '" +
                                    home.path().string() + "' 2>&1");
    INFO(independent.out);
    CHECK(independent.exit_code == 0);
  }
}

TEST_CASE("a batch answers each append on its own: replays, stale heads and invalid requests "
          "do not fail the others",
          "[eventstore][group_commit]") {
  testing::TempDir home;
  testing::FakeClock clock;
  testing::CountingIds ids;
  testing::TestLogDatabase database;
  auto log = testing::OpenTestEventLog(home.path(), database.url(), clock, ids);
  const Head start = *log->store().GetHead();
  const std::uint64_t notes_before = *log->store().CountNotesBefore(start.seq + 1);

  std::vector<AppendRequest> batch;
  batch.push_back(Tokens(1, "x"));
  batch.back().expected_head = start;  // holds: first in the batch
  batch.push_back(Tokens(2, "a"));
  batch.push_back(Tokens(0, "empty"));  // no events
  batch.push_back(Tokens(1, "stale"));
  batch.back().expected_head = start;  // no longer holds after x and a
  batch.push_back(Tokens(1, "big"));
  std::get<WorkloadTokenIssued>(batch.back().events[0]).token_id =
      std::string(kMaxRecordBytes, 'x');
  batch.push_back(Tokens(2, "a"));  // a again, later in the same batch
  batch.push_back(Tokens(1, ""));   // no command id
  auto results = log->store().AppendBatch(batch, log->signer());
  REQUIRE(results.size() == batch.size());
  for (auto& r : results) INFO(r.status().ToString());

  const Head head = *log->store().GetHead();
  CHECK(head.seq == start.seq + 4);
  REQUIRE(results[0].ok());
  CHECK(results[0]->first_seq == start.seq + 1);
  CHECK(results[0]->last_seq == start.seq + 1);
  REQUIRE(results[1].ok());
  CHECK_FALSE(results[1]->replayed);
  CHECK(results[1]->first_seq == start.seq + 2);
  CHECK(results[1]->last_seq == start.seq + 3);
  REQUIRE_FALSE(results[2].ok());
  CHECK(results[2].status().reason() == "no_events");
  REQUIRE_FALSE(results[3].ok());
  CHECK(results[3].status().code() == StatusCode::kAborted);
  CHECK(results[3].status().reason() == "stale_head");
  REQUIRE_FALSE(results[4].ok());
  CHECK(results[4].status().reason() == "record_too_large");
  REQUIRE(results[5].ok());
  CHECK(results[5]->replayed);
  CHECK(results[5]->first_seq == results[1]->first_seq);
  CHECK(results[5]->last_seq == results[1]->last_seq);
  REQUIRE(results[6].ok());
  CHECK(results[6]->first_seq == start.seq + 4);
  for (std::size_t i : {0, 1, 5, 6}) CHECK(results[i]->head == head);

  // Nothing of the refused ones, every written append with its own note.
  testing::RawLog raw(Home{home.path()});
  for (const char* id : {"empty", "stale", "big"}) CHECK(RowsWithCommand(raw, id) == 0);
  CHECK(RowsWithCommand(raw, "a") == 1);
  CHECK(RowsWithCommand(raw, "x") == 1);
  CHECK(*log->store().CountNotesBefore(head.seq + 1) == notes_before + 3);
  VerifyReport report = VerifyLog(log->store(), {});
  INFO(report.status.ToString());
  CHECK(report.status.ok());
  CHECK(report.size == head.seq);

  // In a later batch, an id in the log is answered with its first result.
  std::vector<AppendRequest> later{Tokens(1, "new"), Tokens(2, "a")};
  auto replayed = log->store().AppendBatch(later, log->signer());
  REQUIRE(replayed[0].ok());
  CHECK(replayed[0]->first_seq == head.seq + 1);
  REQUIRE(replayed[1].ok());
  CHECK(replayed[1]->replayed);
  CHECK(replayed[1]->first_seq == start.seq + 2);
  CHECK(replayed[1]->last_seq == start.seq + 3);
  // A batch of nothing but refusals writes nothing.
  const Head after = *log->store().GetHead();
  std::vector<AppendRequest> refused{Tokens(0, "none"), Tokens(1, "stale2")};
  refused.back().expected_head = start;
  auto none = log->store().AppendBatch(refused, log->signer());
  CHECK_FALSE(none[0].ok());
  CHECK_FALSE(none[1].ok());
  CHECK(*log->store().GetHead() == after);
}

#ifdef VIA_TEST_LOG_BACKEND_PG
namespace pg = via::eventstore::postgres;

namespace {

// Ends the server session of `store` and waits until the server has.
void EndSession(const std::string& url, pg::PgLogStore& store) {
  const int pid = store.conn().backend_pid();
  auto admin = pg::Conn::Connect(url);
  REQUIRE(admin.ok());
  REQUIRE(admin->Query("SELECT pg_terminate_backend($1::int)", {pg::Param::Int8(pid)}).ok());
  for (int i = 0; i < 500; ++i) {
    auto r = admin->Query("SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                          {pg::Param::Int8(pid)});
    REQUIRE(r.ok());
    if (r->Int8(0, 0) == 0) return;
    ::usleep(10000);
  }
  FAIL("the server did not end session " << pid);
}

}  // namespace

TEST_CASE("a batch whose connection is killed lands once or not at all", "[postgres][group_commit]") {
  const std::string point = GENERATE(std::string("append.before_commit"),
                                     std::string("append.commit"));
  const int attempts = GENERATE(1, 10);
  INFO(point << ", " << attempts << " attempt(s)");
  testing::TempDir home;
  testing::FakeClock clock;
  testing::CountingIds ids;
  testing::TestLogDatabase database;
  const std::string url = database.url();
  bool armed = false;
  int kills = 0;
  std::unique_ptr<EventLog> log;
  auto crash = CrashPoints::Calling([&](std::string_view name) {
    if (name != point || !armed || kills > 0) return;
    ++kills;
    EndSession(url, static_cast<pg::PgLogStore&>(log->store()));
  });
  log = testing::OpenTestEventLog(home.path(), url, clock, ids, crash);
  log->store().set_retry_policy({attempts, std::chrono::milliseconds(10000)});
  const Head start = *log->store().GetHead();
  std::vector<AppendRequest> batch{Tokens(2, "b1"), Tokens(1, "b2"), Tokens(3, "b3")};
  armed = true;
  auto results = log->store().AppendBatch(batch, log->signer());
  CHECK(kills == 1);
  testing::RawLog raw(Home{home.path()});
  if (attempts == 1) {
    // Not retried: every append of the batch fails alike, and none landed
    // (the session was gone before COMMIT was sent).
    for (auto& r : results) {
      REQUIRE_FALSE(r.ok());
      CHECK(r.status().reason() == "log_unreachable");
    }
    CHECK(*log->store().GetHead() == start);
    results = log->store().AppendBatch(batch, log->signer());
  }
  std::uint64_t next = start.seq + 1;
  for (std::size_t i = 0; i < results.size(); ++i) {
    INFO(i << ": " << results[i].status().ToString());
    REQUIRE(results[i].ok());
    CHECK_FALSE(results[i]->replayed);
    CHECK(results[i]->first_seq == next);
    next = results[i]->last_seq + 1;
    CHECK(RowsWithCommand(raw, batch[i].command_id) == 1);
  }
  CHECK(log->store().GetHead()->seq == start.seq + 6);
  VerifyReport report = VerifyLog(log->store(), {});
  CHECK(report.status.ok());
  CHECK(report.size == start.seq + 6);
}

TEST_CASE("via serve records concurrent descriptor deliveries through its group committer on one chain",
          "[postgres][group_commit][server]") {
  testing::TestLogDatabase database;  // sets PGPASSFILE for `via`
  testing::TempDir dir;
  const auto home = dir.path() / "home";
  auto via = [&](const std::string& args) { return testing::Via(home, args + " 2>/dev/null"); };
  REQUIRE(via("init --log " + database.url() + " >/dev/null").exit_code == 0);
  REQUIRE(via("addon create sqlite app-db --app api --bind DATABASE >/dev/null").exit_code == 0);
  constexpr int kReleases = 8;
  const std::vector<std::string> tokens = testing::ReleaseTokens(home, kReleases);
  testing::ServeProcess server(home, {"--snapshot-maintenance", "false"});
  REQUIRE(!server.url().empty());
  const int port = testing::PortOf(server.url());
  auto admin = pg::Conn::Connect(database.url());
  REQUIRE(admin.ok());
  auto count = [&](const std::string& sql) {
    auto r = admin->Query(sql.c_str());
    REQUIRE(r.ok());
    return r->Int8(0, 0);
  };
  const std::int64_t start = count("SELECT seq FROM via.head");

  // The log's writer lock held meanwhile, so that the deliveries queue up
  // behind serve's first commit.
  auto holder = pg::Conn::Connect(database.url());
  REQUIRE(holder.ok());
  REQUIRE(holder->Exec("BEGIN").ok());
  REQUIRE(holder->Exec("SELECT seq FROM via.head FOR UPDATE").ok());
  std::vector<int> statuses(kReleases, 0);
  std::atomic<int> sent{0};
  std::vector<std::thread> clients;
  for (int r = 0; r < kReleases; ++r) {
    clients.emplace_back([&, r] {
      ++sent;
      statuses[r] = testing::HttpCall(port, "GET", "/v1/descriptors/DATABASE", tokens[r], "",
                                      60000)
                        .status;
    });
  }
  // Serve's committer waits on the lock; the other requests queue behind it.
  bool waiting = false;
  for (int i = 0; i < 3000 && !waiting; ++i) {
    waiting = count("SELECT count(*) FROM pg_locks WHERE NOT granted") > 0;
    if (!waiting) ::usleep(10000);
  }
  CHECK(waiting);
  while (sent < kReleases) ::usleep(1000);
  ::usleep(1000000);
  REQUIRE(holder->Exec("ROLLBACK").ok());
  for (auto& c : clients) c.join();
  for (int s : statuses) CHECK(s == 200);

  // One delivery each, once, on one verified chain. How many transactions
  // they took is printed, not asserted: descriptor requests run on the
  // control pool's 2 workers (ApiOptions::control_workers), so at most two
  // deliveries are ever in the committer at once, and the one leading a batch
  // has taken it before it waits for the lock.
  CHECK(count("SELECT count(*) FROM via.records WHERE seq > " + std::to_string(start) +
              " AND command_id IS NOT NULL") == kReleases);
  CHECK(count("SELECT seq FROM via.head") == start + kReleases);
  const std::int64_t transactions = count(
      "SELECT count(DISTINCT xmin::text) FROM via.records WHERE seq > " + std::to_string(start));
  WARN(kReleases << " deliveries in " << transactions << " transactions");
  CHECK(transactions <= kReleases);
  auto audited = via("--json audit verify");
  INFO(audited.out);
  CHECK(audited.exit_code == 0);
  // Served again: already delivered, nothing more appended.
  CHECK(testing::HttpCall(port, "GET", "/v1/descriptors/DATABASE", tokens[0]).status == 200);
  CHECK(count("SELECT seq FROM via.head") == start + kReleases);
}
#endif
