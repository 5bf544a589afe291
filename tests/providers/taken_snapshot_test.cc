// providers::TakenSnapshot: the snapshot preconditions both providers share.

#include <catch2/catch.hpp>

#include "providers/provider.h"

namespace via::providers {
namespace {

State WithSnapshot(SnapshotStatus status, bool deleted) {
  State state;
  SnapshotState snap;
  snap.id = "sn_1";
  snap.addon_id = "ad_1";
  snap.status = status;
  snap.deleted = deleted;
  state.snapshots[snap.id] = snap;
  return state;
}

TEST_CASE("TakenSnapshot returns a taken, live snapshot of the add-on", "[providers]") {
  State state = WithSnapshot(SnapshotStatus::kTaken, false);
  auto found = TakenSnapshot(state, "ad_1", "sn_1");
  REQUIRE(found.ok());
  CHECK(*found == &state.snapshots.at("sn_1"));
}

TEST_CASE("TakenSnapshot refuses with the reasons the providers report", "[providers]") {
  State taken = WithSnapshot(SnapshotStatus::kTaken, false);
  CHECK(TakenSnapshot(taken, "ad_1", "sn_9").status().reason() == "snapshot_not_found");
  CHECK(TakenSnapshot(taken, "ad_2", "sn_1").status().reason() == "snapshot_not_found");
  State requested = WithSnapshot(SnapshotStatus::kRequested, false);
  CHECK(TakenSnapshot(requested, "ad_1", "sn_1").status().reason() == "snapshot_not_taken");
  State deleted = WithSnapshot(SnapshotStatus::kTaken, true);
  CHECK(TakenSnapshot(deleted, "ad_1", "sn_1").status().reason() == "snapshot_deleted");
}

}  // namespace
}  // namespace via::providers
