// The names of eventstore/filenames.h are a persistent format: homes written
// by earlier versions and logs with earlier command ids must still match.

#include "eventstore/filenames.h"

#include <catch2/catch.hpp>

namespace via::eventstore {
namespace {

TEST_CASE("file names under a home keep their layout") {
  Home home{"/h"};
  CHECK(AddonLockFile(home, "ad_1") == "/h/addons/ad_1/.lock");
  CHECK(AddonFile(home, "ad_1", "data.sqlite") == "/h/addons/ad_1/data.sqlite");
  CHECK(SnapshotFile(home, "ad_1", "sn_2", "sqlite") == "/h/snapshots/ad_1/sn_2.sqlite");
  CHECK(SnapshotFile(home, "ad_1", "sn_2", "dump") == "/h/snapshots/ad_1/sn_2.dump");
  CHECK(ProviderKeyFile(home, "postgres", "password") == "/h/keys/providers/postgres.password");
  CHECK(SideFile("/h/x.dump", ".log") == "/h/x.dump.log");
  CHECK(CreatingFile("/h/d.sqlite", "ab") == "/h/d.sqlite.creating-ab");
  CHECK(ExportTempFile("/b/e.sqlite", "cd") == "/b/e.sqlite.via-export-cd");
  CHECK(QuarantineFile("/h/d.sqlite", "7") == "/h/d.sqlite.corrupt-7");
}

TEST_CASE("temporary names are recognised, final ones are not") {
  CHECK(IsTemporaryFileName("sn_1.sqlite.tmp"));
  CHECK(IsTemporaryFileName("log.key.tmp.4242"));
  CHECK(IsTemporaryFileName("data.sqlite.creating-0011aabb"));
  CHECK_FALSE(IsTemporaryFileName("sn_1.sqlite"));
  CHECK_FALSE(IsTemporaryFileName("data.sqlite.corrupt-12"));
  CHECK_FALSE(IsTemporaryFileName(".tmp"));
  CHECK(IsSnapshotTempFileName("sn_1.dump.tmp"));
  CHECK_FALSE(IsSnapshotTempFileName("data.sqlite.creating-00"));
}

TEST_CASE("command ids derived from intents keep their form") {
  CHECK(ProvisionCommandId("ad_1") == "provision/ad_1");
  CHECK(SnapshotCommandId("sn_2") == "snapshot/sn_2");
  CHECK(RestoreCommandId("ad_1", "sn_2", "sn_3") == "restore/ad_1/sn_2/sn_3");
  CHECK(RepairCommandId("ad_1", 41) == "repair/ad_1/41");
  CHECK(RepairDoneCommandId("ad_1", 41) == "repair/ad_1/41/done");
  CHECK(RepairFinishCommandId("ad_1", 41) == "repair-finish/ad_1/41");
  CHECK(DeliverCommandId("ad_1", 3, "api", "r7") == "deliver/ad_1/3/api/r7");
  CHECK(StepCommandId("cli/x/ab", "snapshot") == "cli/x/ab/snapshot");
  CHECK(StepCommandId("", "snapshot").empty());
  CHECK(OperatorCommandId("x", "00ff") == "cli/x/00ff");
}

}  // namespace
}  // namespace via::eventstore
