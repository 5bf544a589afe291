#include <catch2/catch.hpp>

#include "domain/decide.h"
#include "domain/snapshots.h"

using namespace via;

namespace {

constexpr std::int64_t kDay = 24LL * 3600 * 1000;
// 2026-12-07, a Monday, 00:00 UTC.
constexpr std::int64_t kMonday = 1796601600000LL;

struct Home {
  State s;
  void Add(const Event& e, std::int64_t at_ms = 0) {
    Apply(s, Record{s.seq + 1, {}, at_ms, "t", "", e});
  }
  Home() {
    Add(AddonCreated{"ad_1", "app-db", "sqlite", "api", ""});
    Add(StorageProvisioned{"ad_1"});
  }
  // A taken snapshot requested at `at_ms`.
  std::string Snap(const std::string& id, std::int64_t at_ms, const std::string& label = "") {
    Add(SnapshotRequested{"ad_1", id, label}, at_ms);
    Add(SnapshotTaken{"ad_1", id, Bytes{1}, 1, 1}, at_ms);
    return id;
  }
  void Verify(const std::string& id, bool ok) {
    Add(SnapshotVerified{"ad_1", id, ok, "sha256+integrity_check", ok ? "ok" : "damaged"});
  }
  void Policy(std::uint32_t last, std::uint32_t daily, std::uint32_t weekly) {
    Add(SnapshotPolicySet{"ad_1", last, daily, weekly, 0});
  }
};

}  // namespace

TEST_CASE("an add-on without a policy loses nothing to prune", "[domain][snapshots]") {
  Home h;
  for (int i = 0; i < 5; ++i) h.Snap("sn_" + std::to_string(i), kMonday + i);
  CHECK(PlanPrune(h.s, "ad_1").empty());
}

TEST_CASE("keep-last keeps the newest N and always the newest verified", "[domain][snapshots]") {
  Home h;
  for (int i = 0; i < 5; ++i) h.Snap("sn_" + std::to_string(i), kMonday + i);
  h.Verify("sn_1", true);
  h.Policy(2, 0, 0);
  CHECK(PlanPrune(h.s, "ad_1") == std::vector<std::string>{"sn_0", "sn_2"});
}

TEST_CASE("keep-daily and keep-weekly keep the newest of each recent period", "[domain][snapshots]") {
  Home h;
  // Two a day for ten days, from Monday on.
  for (int d = 0; d < 10; ++d) {
    h.Snap("sn_" + std::to_string(d) + "a", kMonday + d * kDay + 1000);
    h.Snap("sn_" + std::to_string(d) + "b", kMonday + d * kDay + 2000);
  }
  h.Policy(0, 3, 0);
  auto doomed = PlanPrune(h.s, "ad_1");
  CHECK(doomed.size() == 17);  // kept: 9b, 8b, 7b
  for (const char* kept : {"sn_9b", "sn_8b", "sn_7b"}) {
    CHECK(std::find(doomed.begin(), doomed.end(), kept) == doomed.end());
  }
  h.Policy(0, 0, 2);
  doomed = PlanPrune(h.s, "ad_1");
  // Weeks: days 0-6 (Mon-Sun) and 7-9; the newest of each: 6b and 9b.
  CHECK(doomed.size() == 18);
  CHECK(std::find(doomed.begin(), doomed.end(), "sn_6b") == doomed.end());
  CHECK(std::find(doomed.begin(), doomed.end(), "sn_9b") == doomed.end());
}

TEST_CASE("prune covers safety snapshots, drops failed ones, skips ones in flight",
          "[domain][snapshots]") {
  Home h;
  h.Snap("sn_old", kMonday);
  h.Snap("sn_safety", kMonday + 1, std::string(kSafetyLabelPrefix) + "sn_old");
  h.Snap("sn_bad", kMonday + 2);
  h.Verify("sn_bad", false);
  h.Snap("sn_new", kMonday + 3);
  h.Add(SnapshotRequested{"ad_1", "sn_pending", ""});
  h.Policy(1, 0, 0);
  CHECK(IsSafetySnapshot(h.s.snapshots.at("sn_safety")));
  CHECK(PlanPrune(h.s, "ad_1") == std::vector<std::string>{"sn_old", "sn_safety", "sn_bad"});
  // A snapshot being restored is never pruned.
  h.Add(RestoreRequested{"ad_1", "sn_old", "sn_safety"});
  CHECK(PlanPrune(h.s, "ad_1") == std::vector<std::string>{"sn_bad"});
}

TEST_CASE("repair candidates: verified newest first, then unverified, never failed or deleted",
          "[domain][snapshots]") {
  Home h;
  h.Snap("sn_1", kMonday);
  h.Snap("sn_2", kMonday + 1);
  h.Snap("sn_3", kMonday + 2);
  h.Snap("sn_4", kMonday + 3);
  h.Verify("sn_1", true);
  h.Verify("sn_2", true);
  h.Verify("sn_4", false);
  h.Add(SnapshotDeleted{"ad_1", "sn_2", "operator"});
  std::vector<std::string> order;
  for (const SnapshotState* s : RepairCandidates(h.s, "ad_1")) order.push_back(s->id);
  CHECK(order == std::vector<std::string>{"sn_1", "sn_3"});
  REQUIRE(NewestVerified(h.s, "ad_1") != nullptr);
  CHECK(NewestVerified(h.s, "ad_1")->id == "sn_1");
}

TEST_CASE("delete guards the newest verified snapshot and in-flight ones", "[domain][snapshots]") {
  Home h;
  h.Snap("sn_1", kMonday);
  h.Snap("sn_2", kMonday + 1);
  h.Verify("sn_1", true);
  auto guarded = DecideDeleteSnapshot(h.s, "sn_1", false, "operator");
  REQUIRE_FALSE(guarded.ok());
  CHECK(guarded.status().reason() == "newest_verified_snapshot");
  CHECK(DecideDeleteSnapshot(h.s, "sn_1", true, "operator").ok());
  auto events = DecideDeleteSnapshot(h.s, "sn_2", false, "operator");
  REQUIRE(events.ok());
  h.Add((*events)[0]);
  CHECK(h.s.snapshots.at("sn_2").deleted);
  CHECK(DecideDeleteSnapshot(h.s, "sn_2", false, "operator").status().reason() == "snapshot_deleted");
  CHECK(DecideDeleteSnapshot(h.s, "sn_9", false, "operator").status().code() == StatusCode::kNotFound);
  CHECK(CheckRestore(h.s, "app-db", "sn_2").reason() == "snapshot_deleted");
  h.Add(SnapshotRequested{"ad_1", "sn_3", ""});
  CHECK(DecideDeleteSnapshot(h.s, "sn_3", true, "operator").status().reason() == "snapshot_in_use");
}

TEST_CASE("a schedule is due when the newest snapshot is that old, and needs a keep rule",
          "[domain][snapshots]") {
  Home h;
  CHECK(DecidePolicy(h.s, "app-db", {0, 0, 0, 3600}).status().reason() == "policy_keeps_nothing");
  auto set = DecidePolicy(h.s, "app-db", {1, 0, 0, 3600});
  REQUIRE(set.ok());
  h.Add((*set)[0]);
  const AddonState& a = *h.s.FindAddon("app-db");
  CHECK(SnapshotDue(h.s, a, kMonday));  // none yet
  h.Snap("sn_1", kMonday);
  CHECK_FALSE(SnapshotDue(h.s, *h.s.FindAddon("app-db"), kMonday + 3599 * 1000));
  CHECK(SnapshotDue(h.s, *h.s.FindAddon("app-db"), kMonday + 3600 * 1000));
}
