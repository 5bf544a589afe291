#include <catch2/catch.hpp>

#include <filesystem>
#include <random>

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
  std::unique_ptr<EventLog> log;

  Fixture() { Reopen(); }

  void Reopen() {
    log.reset();
    EventLog::Options options;
    options.home = Home{dir.path()};
    options.clock = &clock;
    options.ids = &ids;
    options.actor = "tester";
    auto opened = EventLog::Open(options);
    REQUIRE(opened.ok());
    log = std::move(opened).value();
  }

  void Append(std::vector<Event> events) {
    AppendRequest request;
    request.actor = "tester";
    request.recorded_at_ms = clock.NowMs();
    request.events = std::move(events);
    REQUIRE(log->Append(request).ok());
    clock.Advance(1000);
  }

  std::string state_path() const { return Home{dir.path()}.state_db().string(); }
};

// Random but meaningful events over a small universe of names, apps and ids, so
// that creates, renames, binds, snapshots and destroys collide often.
std::vector<Event> RandomEvents(std::mt19937& rng, int& next_id) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  std::string addon = "ad_" + std::to_string(pick(std::max(next_id, 1)));
  std::string app = "app" + std::to_string(pick(3));
  std::string name = "db" + std::to_string(pick(4));
  std::string binding = pick(2) ? "DATABASE" : "CACHE";
  std::string snapshot = "sn_" + std::to_string(pick(6));
  switch (pick(21)) {
    case 0: {
      std::string id = "ad_" + std::to_string(next_id++);
      return {AddonCreated{id, name, "sqlite", app, binding},
              GenerationRotated{id, 1, Bytes{1, 2}, Bytes{3}}};
    }
    case 1: return {StorageProvisioned{addon}};
    case 2: return {ProvisioningFailed{addon, "disk", pick(2) == 1}};
    case 3: return {AddonRenamed{addon, name, name + "#failed#" + addon}};
    case 4: return {BindingAttached{app, binding, addon}};
    case 5: return {BindingDetached{app, binding, addon}};
    case 6: return {BindingSnapshotted{app, "v" + std::to_string(pick(5)), {{binding, addon}}}};
    case 7: return {GenerationRotated{addon, static_cast<std::uint32_t>(pick(5) + 2), Bytes{9}, Bytes{8}}};
    case 8: return {GenerationRevoked{addon, static_cast<std::uint32_t>(pick(4) + 1)}};
    case 9: return {SnapshotRequested{addon, snapshot, "label"}, SnapshotTaken{addon, snapshot, Bytes{7}, 4096, 1}};
    case 10: return {RestoreRequested{addon, snapshot, "sn_safety"}, SnapshotRestored{addon, snapshot, "sn_safety"}};
    case 11: return {StorageRepaired{addon, "recreated_empty", "", ""}};
    case 12: return {AddonDestroyed{addon, name + "#destroyed#" + addon}};
    case 13: return {StorageChecked{addon, pick(2) == 1, "integrity_check", "detail"}};
    case 14: return {SnapshotVerified{addon, snapshot, pick(2) == 1, "sha256", "ok"}};
    case 15: return {SnapshotDeleted{addon, snapshot, "operator"}};
    case 16: return {SnapshotPolicySet{addon, 3, 7, 4, 86400}};
    case 17: return {NodeAnnounced{"node" + std::to_string(pick(3)),
                                   "http://10.0.0." + std::to_string(pick(3)) + ":7600"}};
    case 18: return {AddonPlaced{addon, "node" + std::to_string(pick(3))}};
    case 19: return {OwnerWorkRequested{addon, "check", ""},
                     OwnerWorkFinished{addon, "owner/x/check", "", "", "checked", ""}};
    default: return {GenerationDelivered{addon, 1, app, "v1"}, WorkloadTokenIssued{app, "v1", "t", 0}};
  }
}

}  // namespace

TEST_CASE("the read model catches up from its cursor and matches a replay", "[projections]") {
  Fixture f;
  f.Append({AddonCreated{"ad_1", "app-db", "sqlite", "api", "DATABASE"}});
  auto model = ReadModel::Open(f.state_path());
  REQUIRE(model.ok());
  auto applied = (*model)->CatchUp(f.log->store());
  REQUIRE(applied.ok());
  CHECK(*applied == 2);
  f.Append({StorageProvisioned{"ad_1"}, BindingAttached{"api", "DATABASE", "ad_1"}});
  applied = (*model)->CatchUp(f.log->store());
  REQUIRE(applied.ok());
  CHECK(*applied == 2);
  CHECK(*(*model)->CatchUp(f.log->store()) == 0);
  auto addon = (*model)->FindAddon("app-db");
  REQUIRE(addon.ok());
  REQUIRE(addon->has_value());
  CHECK((*addon)->phase == AddonPhase::kActive);
  StateKeys keys;
  keys.bindings.insert({"api", "DATABASE"});
  auto slice = (*model)->LoadSlice(keys);
  REQUIRE(slice.ok());
  CHECK(slice->bindings.at({"api", "DATABASE"}) == "ad_1");
  CHECK(slice->addons.empty());  // only what was asked for
  auto replay = Replay(f.log->store(), 0);
  REQUIRE(replay.ok());
  CHECK(*(*model)->Digest() == StateDigest(*replay));
}

TEST_CASE("deleting the read model loses nothing: it is rebuilt from the log", "[projections]") {
  Fixture f;
  f.Append({AddonCreated{"ad_1", "app-db", "sqlite", "api", ""}, StorageProvisioned{"ad_1"}});
  Hash256 before;
  {
    auto model = ReadModel::Open(f.state_path());
    REQUIRE((*model)->CatchUp(f.log->store()).ok());
    before = *(*model)->Digest();
  }
  std::filesystem::remove(f.state_path());
  auto model = ReadModel::Open(f.state_path());
  REQUIRE((*model)->CatchUp(f.log->store()).ok());
  CHECK(*(*model)->Digest() == before);
}

TEST_CASE("a damaged read model file is replaced and rebuilt", "[projections]") {
  Fixture f;
  f.Append({AddonCreated{"ad_1", "app-db", "sqlite", "api", ""}});
  {
    auto model = ReadModel::Open(f.state_path());
    REQUIRE((*model)->CatchUp(f.log->store()).ok());
  }
  for (const char* suffix : {"-wal", "-shm"}) std::filesystem::remove(f.state_path() + suffix);
  {
    FILE* file = std::fopen(f.state_path().c_str(), "wb");
    std::fputs("this is not a database, it is garbage of sufficient length to matter", file);
    std::fclose(file);
  }
  auto model = ReadModel::Open(f.state_path());
  REQUIRE(model.ok());
  REQUIRE((*model)->CatchUp(f.log->store()).ok());
  CHECK(*(*model)->Digest() == StateDigest(*Replay(f.log->store(), 0)));
}

TEST_CASE("a read model of another log is rebuilt instead of trusted", "[projections]") {
  Fixture a;
  Fixture b;
  a.Append({AddonCreated{"ad_1", "from-a", "sqlite", "api", ""}});
  b.Append({AddonCreated{"ad_1", "from-b", "sqlite", "api", ""}});
  auto model = ReadModel::Open(a.state_path());
  REQUIRE((*model)->CatchUp(a.log->store()).ok());
  REQUIRE((*model)->CatchUp(b.log->store()).ok());
  CHECK(*(*model)->Digest() == StateDigest(*Replay(b.log->store(), 0)));
  CHECK((*model)->FindAddon("from-a")->has_value() == false);
}

TEST_CASE("a log shorter than what the read model already applied is an integrity failure",
          "[projections]") {
  // The same log, fewer records: a copy of the log taken before the last
  // appends stands in for a restored backup or a lagging replica.
  Fixture f;
  f.Append({AddonCreated{"ad_1", "one", "sqlite", "api", ""}});
  const std::string log_file = Home{f.dir.path()}.log_db().string();
  std::filesystem::path old_copy = log_file + ".old";
  {
    // A consistent copy of the log as it is now (two records).
    auto db = sql::Db::Open(log_file, {});
    REQUIRE(db.ok());
    REQUIRE((*db)->Exec("VACUUM INTO '" + old_copy.string() + "'").ok());
  }
  f.Append({AddonCreated{"ad_2", "two", "sqlite", "api", ""}});
  auto model = ReadModel::Open(f.state_path());
  REQUIRE(model.ok());
  REQUIRE((*model)->CatchUp(f.log->store()).ok());
  const auto seen = *(*model)->Cursor();
  f.log.reset();
  for (const char* suffix : {"-wal", "-shm"}) std::filesystem::remove(log_file + suffix);
  std::filesystem::rename(old_copy, log_file);
  f.Reopen();
  auto caught = (*model)->CatchUp(f.log->store());
  REQUIRE_FALSE(caught.ok());
  CHECK(caught.status().code() == StatusCode::kDataLoss);
  CHECK(caught.status().reason() == "log_shorter_than_seen");
  const std::string message = caught.status().message();
  CHECK(message.find("holds " + std::to_string(seen - 1) + " records") != std::string::npos);
  CHECK(message.find("already applied " + std::to_string(seen)) != std::string::npos);
  // Nothing was forgotten: the model still has what it saw.
  CHECK((*model)->FindAddon("two")->has_value());
  // Deleting the read model accepts the shorter log.
  model->reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(f.state_path() + suffix);
  auto fresh = ReadModel::Open(f.state_path());
  REQUIRE(fresh.ok());
  REQUIRE((*fresh)->CatchUp(f.log->store()).ok());
  CHECK_FALSE((*fresh)->FindAddon("two")->has_value());
}

TEST_CASE("incremental read model digest equals replay after random event sequences",
          "[projections]") {
  for (unsigned seed = 1; seed <= 8; ++seed) {
    Fixture f;
    std::mt19937 rng(seed);
    int next_id = 0;
    auto model = ReadModel::Open(f.state_path());
    REQUIRE(model.ok());
    // Odd seeds catch up after every append (one record at a time through
    // the row-level slices), even ones now and then (batches).
    for (int step = 0; step < 80; ++step) {
      f.Append(RandomEvents(rng, next_id));
      if (seed % 2 == 1 || rng() % 3 == 0) REQUIRE((*model)->CatchUp(f.log->store()).ok());
    }
    REQUIRE((*model)->CatchUp(f.log->store()).ok());
    auto replay = Replay(f.log->store(), 0);
    REQUIRE(replay.ok());
    INFO("seed " << seed);
    CHECK(*(*model)->Digest() == StateDigest(*replay));
    CHECK(*(*model)->Load() == *replay);
  }
}

TEST_CASE("catch-up and rebuild in windows of a few rows give the model a replay gives",
          "[projections]") {
  // A long catch-up or rebuild writes its rows out and forgets them every
  // few rows (set_slice_rows); rows written in one window are read back by
  // the next inside the same transaction. Windows of 1, 2 and 7 rows cut
  // every add-on's lifecycle across many windows.
  for (std::size_t window : {1u, 2u, 7u}) {
    for (unsigned seed = 1; seed <= 4; ++seed) {
      Fixture f;
      std::mt19937 rng(seed * 31 + static_cast<unsigned>(window));
      int next_id = 0;
      auto model = ReadModel::Open(f.state_path());
      REQUIRE(model.ok());
      (*model)->set_slice_rows(window);
      for (int step = 0; step < 60; ++step) {
        f.Append(RandomEvents(rng, next_id));
        if (rng() % 8 == 0) REQUIRE((*model)->CatchUp(f.log->store()).ok());
      }
      REQUIRE((*model)->CatchUp(f.log->store()).ok());
      auto replay = Replay(f.log->store(), 0);
      REQUIRE(replay.ok());
      INFO("window " << window << ", seed " << seed);
      CHECK(*(*model)->Digest() == StateDigest(*replay));
      CHECK(*(*model)->Load() == *replay);
      REQUIRE((*model)->Rebuild(f.log->store()).ok());
      CHECK(*(*model)->Digest() == StateDigest(*replay));
      CHECK(*(*model)->Load() == *replay);
    }
  }
}

TEST_CASE("replay until a seq folds only the records up to it", "[projections]") {
  Fixture f;
  f.Append({AddonCreated{"ad_1", "app-db", "sqlite", "api", ""}});
  f.Append({AddonDestroyed{"ad_1", "app-db#destroyed#ad_1"}});
  auto early = Replay(f.log->store(), 2);
  auto late = Replay(f.log->store(), 0);
  REQUIRE(early.ok());
  REQUIRE(late.ok());
  CHECK(early->seq == 2);
  CHECK(early->FindAddon("app-db") != nullptr);
  CHECK(late->FindAddon("app-db") == nullptr);
  CHECK(late->FindById("ad_1")->name == "app-db#destroyed#ad_1");
}

TEST_CASE("a slice holds exactly the rows it names, as the whole state has them",
          "[projections]") {
  Fixture f;
  std::mt19937 rng(42);
  int next_id = 0;
  for (int step = 0; step < 120; ++step) f.Append(RandomEvents(rng, next_id));
  auto model = ReadModel::Open(f.state_path());
  REQUIRE(model.ok());
  REQUIRE((*model)->CatchUp(f.log->store()).ok());
  auto whole = Replay(f.log->store(), 0);
  REQUIRE(whole.ok());
  REQUIRE(whole->addons.size() > 3);
  for (const auto& [id, addon] : whole->addons) {
    StateKeys keys;
    keys.addons.insert(id);
    keys.bindings_of.insert(id);
    keys.snapshots_of.insert(id);
    keys.claims_on.insert(id);
    auto slice = (*model)->LoadSlice(keys);
    REQUIRE(slice.ok());
    INFO(id);
    CHECK(slice->seq == whole->seq);
    CHECK(slice->addons.at(id) == addon);
    for (const auto& key : whole->BindingsOf(id)) CHECK(slice->bindings.at(key) == id);
    for (const auto& [key, target] : slice->bindings) CHECK(whole->bindings.at(key) == target);
    for (const auto& [sid, snap] : whole->snapshots) {
      if (snap.addon_id == id) CHECK(slice->snapshots.at(sid) == snap);
    }
    for (const auto& [app, list] : slice->releases) CHECK(whole->releases.at(app) == list);
    for (const auto& [name, target] : slice->names) CHECK(whole->names.at(name) == target);
  }
}

TEST_CASE("readiness reads an app's latest release only: the rows read do not grow with releases",
          "[projections]") {
  // Rows a slice of one add-on, its binding and the app's latest release
  // reads, in a home where the app has made `releases` releases.
  auto rows_for = [](int releases, State* out) {
    Fixture f;
    f.Append({AddonCreated{"ad_1", "app-db", "sqlite", "api", "DATABASE"},
              GenerationRotated{"ad_1", 1, Bytes{1}, Bytes{2}}, StorageProvisioned{"ad_1"},
              BindingAttached{"api", "DATABASE", "ad_1"}});
    std::vector<Event> made;
    for (int i = 1; i <= releases; ++i) {
      // The last release claims DATABASE; every earlier one claims CACHE.
      made.push_back(BindingSnapshotted{"api", "v" + std::to_string(i),
                                        {{i == releases ? "DATABASE" : "CACHE", "ad_1"}}});
    }
    f.Append(made);
    auto model = ReadModel::Open(f.state_path());
    REQUIRE(model.ok());
    REQUIRE((*model)->CatchUp(f.log->store()).ok());
    StateKeys keys;
    keys.addons.insert("ad_1");
    keys.bindings.insert({"api", "DATABASE"});
    keys.latest_release_of.insert("api");
    const std::uint64_t before = (*model)->rows_read();
    auto slice = (*model)->LoadSlice(keys);
    REQUIRE(slice.ok());
    *out = std::move(slice).value();
    return (*model)->rows_read() - before;
  };
  State few, many;
  const std::uint64_t rows_few = rows_for(2, &few);
  const std::uint64_t rows_many = rows_for(400, &many);
  CHECK(rows_many == rows_few);
  CHECK(rows_few < 12);
  // What it read is the latest release, claims and all.
  REQUIRE(many.releases.at("api").size() == 1);
  CHECK(many.releases.at("api").back().id == "v400");
  CHECK(many.releases.at("api").back().claims ==
        std::vector<BindingClaim>{{"DATABASE", "ad_1"}});
  CHECK(few.releases.at("api").back().id == "v2");

  // The whole list (what numbering a new release needs) is O(releases): the
  // counter counts what a full read costs.
  Fixture f;
  std::vector<Event> made;
  for (int i = 1; i <= 50; ++i) made.push_back(BindingSnapshotted{"api", "v" + std::to_string(i), {}});
  f.Append(made);
  auto model = ReadModel::Open(f.state_path());
  REQUIRE(model.ok());
  REQUIRE((*model)->CatchUp(f.log->store()).ok());
  StateKeys keys;
  keys.releases_of.insert("api");
  keys.latest_release_of.insert("api");
  const std::uint64_t before = (*model)->rows_read();
  auto slice = (*model)->LoadSlice(keys);
  REQUIRE(slice.ok());
  CHECK((*model)->rows_read() - before >= 50);
  CHECK(slice->releases.at("api").size() == 50);  // the whole list wins over the latest
}
