// What a readiness report reads besides the add-on: only the latest release
// of its apps, never their whole release lists (issue 13: status must not
// cost O(releases); tests/projections shows that read is one indexed row).

#include <catch2/catch.hpp>

#include "commands/session.h"

using namespace via;

TEST_CASE("a readiness report asks for the latest release of the add-on apps and not every release",
          "[commands]") {
  State slice;
  AddonState a;
  a.id = "ad_1";
  a.name = "app-db";
  a.original_name = "app-db";
  a.app = "api";
  a.requested_binding = "DATABASE";
  slice.addons["ad_1"] = a;
  slice.names["app-db"] = "ad_1";
  slice.bindings[{"web", "SHARED"}] = "ad_1";  // bound by a second app too
  StateKeys keys = commands::AddonDetailKeys(slice, "app-db");
  CHECK(keys.latest_release_of == std::set<std::string>{"api", "web"});
  CHECK(keys.releases_of.empty());
  CHECK(keys.claims_on.empty());
}
