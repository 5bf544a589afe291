// Answers come from the command's own events, never from a later read that
// may include another process's work (issue 11). Another writer's command is
// landed right after this command's append through a crash-point callback.

#include <catch2/catch.hpp>

#include "commands/addon.h"
#include "testing.h"

using namespace via;

namespace {

struct Fixture {
  testing::TempDir dir;
  testing::FakeClock clock;
  testing::CountingIds ids;

  commands::Context Context(CrashPoints crash = {}) {
    commands::Context ctx;
    ctx.home = eventstore::Home{dir.path()};
    ctx.actor = "tester";
    ctx.clock = &clock;
    ctx.ids = &ids;
    ctx.crash = std::move(crash);
    return ctx;
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
  REQUIRE(commands::CreateAddon(plain, {"app-db", "sqlite", "api", "DATABASE"}).ok());
  std::uint32_t other_generation = 0;
  auto racing = f.Context(f.AfterFirstAppend([&] {
    auto other = commands::RotateCredentials(plain, "app-db");
    REQUIRE(other.ok());
    other_generation = other->generation;
  }));
  auto mine = commands::RotateCredentials(racing, "app-db");
  REQUIRE(mine.ok());
  CHECK(mine->generation == 2);
  CHECK(other_generation == 3);
  CHECK(mine->active == std::vector<std::uint32_t>{1, 2});
}

TEST_CASE("revoke-credentials reports the active generations right after its own revocation",
          "[commands]") {
  Fixture f;
  auto plain = f.Context();
  REQUIRE(commands::CreateAddon(plain, {"app-db", "sqlite", "api", "DATABASE"}).ok());
  REQUIRE(commands::RotateCredentials(plain, "app-db").ok());
  auto racing = f.Context(f.AfterFirstAppend([&] {
    REQUIRE(commands::RotateCredentials(plain, "app-db").ok());  // generation 3
  }));
  auto revoked = commands::RevokeCredentials(racing, "app-db", 1, false);
  REQUIRE(revoked.ok());
  CHECK(revoked->active == std::vector<std::uint32_t>{2});
}

TEST_CASE("a snapshot answers with its own snapshot even when the log moved on", "[commands]") {
  Fixture f;
  auto plain = f.Context();
  REQUIRE(commands::CreateAddon(plain, {"app-db", "sqlite", "api", "DATABASE"}).ok());
  auto racing = f.Context(f.AfterFirstAppend([&] {
    REQUIRE(commands::RotateCredentials(plain, "app-db").ok());
  }));
  auto snap = commands::SnapshotAddon(racing, "app-db", "mine");
  REQUIRE(snap.ok());
  CHECK(snap->label == "mine");
  CHECK(snap->status == SnapshotStatus::kTaken);
  CHECK(snap->sha256.size() == 32);
}
