#include <catch2/catch.hpp>

#include "domain/ids.h"
#include "domain/names.h"

using namespace via;

TEST_CASE("add-on names follow the lower-case rule", "[domain]") {
  CHECK(ValidateAddonName("app-db").ok());
  CHECK(ValidateAddonName("a").ok());
  CHECK(ValidateAddonName(std::string(63, 'a')).ok());
  CHECK_FALSE(ValidateAddonName("").ok());
  CHECK_FALSE(ValidateAddonName(std::string(64, 'a')).ok());
  CHECK_FALSE(ValidateAddonName("1db").ok());
  CHECK_FALSE(ValidateAddonName("App").ok());
  CHECK_FALSE(ValidateAddonName("app_db").ok());
  CHECK_FALSE(ValidateAddonName("app-db#destroyed#ad_1").ok());
}

TEST_CASE("a bad name is a usage error that quotes the rule", "[domain]") {
  Status s = ValidateBindingName("database");
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message().find(kBindingNameRule) != std::string::npos);
  CHECK(ExitCodeFor(s.code()) == 2);
}

TEST_CASE("binding names are upper-case with underscores", "[domain]") {
  CHECK(ValidateBindingName("DATABASE").ok());
  CHECK(ValidateBindingName("DB_2").ok());
  CHECK_FALSE(ValidateBindingName("_DB").ok());
  CHECK_FALSE(ValidateBindingName("DB-2").ok());
}

TEST_CASE("release ids allow dots, dashes and underscores", "[domain]") {
  CHECK(ValidateReleaseId("v7").ok());
  CHECK(ValidateReleaseId("2026.11.24-rc_1").ok());
  CHECK_FALSE(ValidateReleaseId("").ok());
  CHECK_FALSE(ValidateReleaseId("v 1").ok());
  CHECK_FALSE(ValidateReleaseId(std::string(65, 'v')).ok());
}

TEST_CASE("ULIDs encode time first so ids sort by creation", "[domain]") {
  std::array<std::uint8_t, 10> zero{};
  std::array<std::uint8_t, 10> ones;
  ones.fill(0xff);
  CHECK(MakeUlid(0, zero) == "00000000000000000000000000");
  CHECK(MakeUlid(0xffffffffffffLL, ones) == "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
  // Known value: the ULID spec's 48-bit time 1469918176385 starts 01ARYZ6S41.
  CHECK(MakeUlid(1469918176385LL, zero).substr(0, 10) == "01ARYZ6S41");
  CHECK(MakeUlid(1000, zero) < MakeUlid(1001, zero));
  CHECK(LooksLikeId("ad_" + MakeUlid(1, zero), "ad_"));
  CHECK_FALSE(LooksLikeId("ad_short", "ad_"));
}

TEST_CASE("tombstone names carry the add-on id", "[domain]") {
  CHECK(DestroyedTombstone("app-db", "ad_1") == "app-db#destroyed#ad_1");
  CHECK(FailedTombstone("app-db", "ad_1") == "app-db#failed#ad_1");
  CHECK(IsTombstoneName("app-db#failed#ad_1"));
  CHECK_FALSE(IsTombstoneName("app-db"));
}
