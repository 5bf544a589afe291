// Property: after any sequence of operator commands (successful or refused),
// the incremental read model's digest equals a full replay's, and the log
// verifies.

#include <catch2/catch.hpp>

#include <random>

#include "commands/addon.h"
#include "commands/audit.h"
#include "projections/read_model.h"
#include "providers/sqlite/provider.h"
#include "testing.h"

using namespace via;

TEST_CASE("read model digest equals replay after random command sequences", "[commands]") {
  for (unsigned seed = 1; seed <= 4; ++seed) {
    testing::TempDir dir;
    testing::FakeClock clock;
    testing::CountingIds ids;
    providers::Registry registry;
    providers::sqlite::Register(registry);
    commands::Context ctx;
    ctx.providers = &registry;
    ctx.home = eventstore::Home{dir.path()};
    ctx.actor = "prop";
    ctx.clock = &clock;
    ctx.ids = &ids;
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    int ok = 0;
    for (int step = 0; step < 80; ++step) {
      std::string name = "db" + std::to_string(pick(4));
      std::string app = "app" + std::to_string(pick(2));
      std::string binding = pick(2) ? "DATABASE" : "CACHE";
      bool succeeded = false;
      switch (pick(6)) {
        case 0: succeeded = commands::CreateAddon(ctx, {name, "sqlite", app, pick(2) ? binding : ""}).ok(); break;
        case 1: succeeded = commands::BindAddon(ctx, name, app, binding).ok(); break;
        case 2: succeeded = commands::UnbindAddon(ctx, name, app, binding).ok(); break;
        case 3: succeeded = commands::DestroyAddon(ctx, name).ok(); break;
        case 4: succeeded = commands::EnsureAddon(ctx, {name, "sqlite", app, binding}, pick(2) == 1).ok(); break;
        default: succeeded = commands::AddonStatus(ctx, name).ok(); break;
      }
      ok += succeeded ? 1 : 0;
      clock.Advance(1000);
    }
    INFO("seed " << seed);
    CHECK(ok > 20);  // the sequence did real work, not only refusals
    auto replay = commands::AuditReplay(ctx, 0);
    REQUIRE(replay.ok());
    REQUIRE(replay->read_model_digest.has_value());
    CHECK(*replay->read_model_digest == replay->digest);
    auto verified = commands::AuditVerify(ctx, {});
    REQUIRE(verified.ok());
    CHECK(verified->status.ok());
  }
}
