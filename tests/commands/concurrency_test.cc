// Answers come from the command's own events, never from a later read that
// may include another process's work (issue 11). Another writer's events are
// landed right after this command's append through a crash-point callback.
// That writer appends without queueing on the CLI's append lock, as `via
// serve` and provider completions do (a CLI command would wait for the lock
// and land after this command finished).

#include <catch2/catch.hpp>

#include "commands/addon.h"
#include "eventstore/event_log.h"
#include "providers/sqlite/provider.h"
#include "testing.h"

using namespace via;

namespace {

struct Fixture {
  testing::TempDir dir;
  testing::FakeClock clock;
  testing::CountingIds ids;
  providers::Registry registry = [] {
    providers::Registry r;
    providers::sqlite::Register(r);
    return r;
  }();

  commands::Context Context(CrashPoints crash = {}) {
    commands::Context ctx;
    ctx.providers = &registry;
    ctx.home = eventstore::Home{dir.path()};
    ctx.actor = "tester";
    ctx.clock = &clock;
    ctx.ids = &ids;
    ctx.crash = std::move(crash);
    return ctx;
  }

  // Appends generation `generation` of `addon_id` as a writer that does not
  // queue on the append lock.
  void AppendRotation(const std::string& addon_id, std::uint32_t generation) {
    eventstore::EventLog::Options options;
    options.home = eventstore::Home{dir.path()};
    options.clock = &clock;
    options.ids = &ids;
    options.actor = "other";
    auto log = eventstore::EventLog::Open(options);
    REQUIRE(log.ok());
    eventstore::AppendRequest request;
    request.actor = "other";
    request.events = {GenerationRotated{addon_id, generation, Bytes(32, 7), Bytes(16, 1)}};
    REQUIRE((*log)->Append(request).ok());
  }

  // Calls `other` once, right after this command's first append commits.
  CrashPoints AfterFirstAppend(std::function<void()> other) {
    auto done = std::make_shared<bool>(false);
    return CrashPoints::Calling([done, other](std::string_view point) {
      if (point != "append.after_commit" || *done) return;
      *done = true;
      other();
    });
  }
};

}  // namespace

TEST_CASE("rotate-credentials answers with the generation it rotated, not a later one",
          "[commands]") {
  Fixture f;
  auto plain = f.Context();
  auto created = commands::CreateAddon(plain, {"app-db", "sqlite", "api", "DATABASE"});
  REQUIRE(created.ok());
  auto racing = f.Context(f.AfterFirstAppend([&] { f.AppendRotation(created->addon->id, 3); }));
  auto mine = commands::RotateCredentials(racing, "app-db");
  REQUIRE(mine.ok());
  CHECK(mine->generation == 2);
  CHECK(mine->active == std::vector<std::uint32_t>{1, 2});
  auto later = commands::AddonStatus(plain, "app-db");
  REQUIRE(later.ok());
  REQUIRE(later->addon.has_value());
  CHECK(later->addon->current_generation() == 3);  // the other writer's rotation landed
}

TEST_CASE("revoke-credentials reports the active generations right after its own revocation",
          "[commands]") {
  Fixture f;
  auto plain = f.Context();
  auto created = commands::CreateAddon(plain, {"app-db", "sqlite", "api", "DATABASE"});
  REQUIRE(created.ok());
  REQUIRE(commands::RotateCredentials(plain, "app-db").ok());
  auto racing = f.Context(f.AfterFirstAppend([&] { f.AppendRotation(created->addon->id, 3); }));
  auto revoked = commands::RevokeCredentials(racing, "app-db", 1, false);
  REQUIRE(revoked.ok());
  CHECK(revoked->active == std::vector<std::uint32_t>{2});
}

TEST_CASE("a snapshot answers with its own snapshot even when the log moved on", "[commands]") {
  Fixture f;
  auto plain = f.Context();
  auto created = commands::CreateAddon(plain, {"app-db", "sqlite", "api", "DATABASE"});
  REQUIRE(created.ok());
  auto racing = f.Context(f.AfterFirstAppend([&] { f.AppendRotation(created->addon->id, 2); }));
  auto snap = commands::SnapshotAddon(racing, "app-db", "mine");
  REQUIRE(snap.ok());
  CHECK(snap->label == "mine");
  CHECK(snap->status == SnapshotStatus::kTaken);
  CHECK(snap->sha256.size() == 32);
}
