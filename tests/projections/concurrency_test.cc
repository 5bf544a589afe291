// Regression tests for answers that combine several reads (issue 11): another
// process's commit is landed between two reads through a crash-point callback,
// and the answer must be the same as without it.

#include <catch2/catch.hpp>

#include "eventstore/event_log.h"
#include "projections/read_model.h"
#include "testing.h"

using namespace via;
using namespace via::eventstore;
using namespace via::projections;

namespace {

struct Fixture {
  testing::TempDir dir;
  testing::FakeClock clock;
  testing::CountingIds ids;

  Home home() const { return Home{dir.path()}; }
  std::string state_path() const { return home().state_db().string(); }

  // Another writer: its own connection, as another process would have.
  std::unique_ptr<EventLog> OpenLog(CrashPoints crash = {}) {
    EventLog::Options options;
    options.home = home();
    options.clock = &clock;
    options.ids = &ids;
    options.actor = "tester";
    options.crash = std::move(crash);
    auto opened = EventLog::Open(options);
    REQUIRE(opened.ok());
    return std::move(opened).value();
  }

  void Append(EventLog& log, std::vector<Event> events) {
    AppendRequest request;
    request.actor = "tester";
    request.recorded_at_ms = clock.NowMs();
    request.events = std::move(events);
    REQUIRE(log.Append(request).ok());
  }

  void CreateAddon(EventLog& log, const std::string& id, const std::string& name) {
    Append(log, {AddonCreated{id, name, "sqlite", "api", ""}, GenerationRotated{id, 1, {1}, {2}}});
  }
};

}  // namespace

TEST_CASE("a commit landing inside the tail check does not make a healthy tail look broken",
          "[projections]") {
  Fixture f;
  auto writer = f.OpenLog();
  f.CreateAddon(*writer, "ad_1", "one");
  int landed = 0;
  auto checker = f.OpenLog(CrashPoints::Calling([&](std::string_view point) {
    if (point != "tail.between_reads") return;
    f.CreateAddon(*writer, "ad_" + std::to_string(landed + 2), "more");
    ++landed;
  }));
  // Open() checked the tail with a commit landed between its reads of the
  // head and of the newest checkpoint; it succeeded (REQUIRE in OpenLog).
  CHECK(landed == 1);
}

TEST_CASE("a commit and catch-up landing inside a catch-up never rebuild the read model",
          "[projections]") {
  Fixture f;
  auto writer = f.OpenLog();
  f.CreateAddon(*writer, "ad_1", "one");
  auto other = ReadModel::Open(f.state_path());
  REQUIRE(other.ok());
  REQUIRE((*other)->CatchUp(writer->store()).ok());

  auto model = ReadModel::Open(f.state_path());
  REQUIRE(model.ok());
  int landed = 0;
  int rebuilds = 0;
  (*model)->set_crash_points(CrashPoints::Calling([&](std::string_view point) {
    if (point == "projection.rebuild") ++rebuilds;
    if (point != "catchup.between_reads" || landed > 0) return;
    ++landed;
    // Another process appends and catches the model up between the two
    // reads (cursor and log head) of this catch-up.
    f.CreateAddon(*writer, "ad_2", "two");
    REQUIRE((*other)->CatchUp(writer->store()).ok());
  }));
  f.CreateAddon(*writer, "ad_3", "three");
  auto applied = (*model)->CatchUp(writer->store());
  REQUIRE(applied.ok());
  CHECK(landed == 1);
  CHECK(rebuilds == 0);
  auto state = (*model)->Load();
  REQUIRE(state.ok());
  CHECK(state->addons.size() == 3);
  auto head = writer->store().GetHead();
  REQUIRE(head.ok());
  CHECK(state->seq == head->seq);
}

TEST_CASE("a reader never sees a read model half rebuilt", "[projections]") {
  Fixture f;
  auto writer = f.OpenLog();
  for (int i = 0; i < 5; ++i) f.CreateAddon(*writer, "ad_" + std::to_string(i), "db" + std::to_string(i));
  auto model = ReadModel::Open(f.state_path());
  REQUIRE(model.ok());
  REQUIRE((*model)->CatchUp(writer->store()).ok());
  auto reader = ReadModel::Open(f.state_path());
  REQUIRE(reader.ok());
  int seen = 0;
  (*model)->set_crash_points(CrashPoints::Calling([&](std::string_view point) {
    if (point != "projection.before_commit") return;
    // Everything is deleted and refolded, not yet committed: another
    // connection still sees the whole old model.
    auto state = (*reader)->Load();
    REQUIRE(state.ok());
    CHECK(state->addons.size() == 5);
    ++seen;
  }));
  REQUIRE((*model)->Rebuild(writer->store()).ok());
  CHECK(seen == 1);
}

TEST_CASE("the read model is compared with the log at its own cursor, not at the log's head",
          "[projections]") {
  Fixture f;
  auto writer = f.OpenLog();
  f.CreateAddon(*writer, "ad_1", "one");
  auto model = ReadModel::Open(f.state_path());
  REQUIRE(model.ok());
  REQUIRE((*model)->CatchUp(writer->store()).ok());
  // The log moves on; the model has not caught up yet.
  f.CreateAddon(*writer, "ad_2", "two");
  auto compared = CompareWithLog(f.state_path(), writer->store(), /*catch_up=*/false);
  REQUIRE(compared.ok());
  CHECK(compared->matches());
  CHECK(compared->size == 3);  // LogInitialized, then the first add-on's two records
  CHECK(compared->replayed.addons.size() == 1);
}

TEST_CASE("a read model that differs from the log at its cursor does not match", "[projections]") {
  Fixture f;
  auto writer = f.OpenLog();
  f.CreateAddon(*writer, "ad_1", "one");
  auto model = ReadModel::Open(f.state_path());
  REQUIRE(model.ok());
  REQUIRE((*model)->CatchUp(writer->store()).ok());
  {
    auto db = sql::Db::Open(f.state_path(), sql::OpenOptions{});
    REQUIRE(db.ok());
    REQUIRE((*db)->Exec("DELETE FROM names").ok());
  }
  auto compared = CompareWithLog(f.state_path(), writer->store(), /*catch_up=*/false);
  REQUIRE(compared.ok());
  CHECK_FALSE(compared->matches());
}
