// client/http.h: the URLs the C++ client accepts, http:// and https://.

#include <catch2/catch.hpp>

#include "client/http.h"

using via::sql_internal::ParseUrl;

TEST_CASE("http and https URLs parse with their default ports", "[client][url]") {
  auto plain = ParseUrl("http://127.0.0.1:7600/base/");
  REQUIRE(plain.ok());
  CHECK_FALSE(plain->tls);
  CHECK(plain->host == "127.0.0.1");
  CHECK(plain->port == "7600");
  CHECK(plain->base_path == "/base");

  auto tls = ParseUrl("https://via.internal");
  REQUIRE(tls.ok());
  CHECK(tls->tls);
  CHECK(tls->host == "via.internal");
  CHECK(tls->port == "443");
  CHECK(tls->base_path.empty());

  auto v6 = ParseUrl("https://[::1]:8443");
  REQUIRE(v6.ok());
  CHECK(v6->tls);
  CHECK(v6->host == "::1");
  CHECK(v6->port == "8443");

  CHECK(ParseUrl("http://h").value().port == "80");
}

TEST_CASE("other schemes and malformed URLs are invalid_argument", "[client][url]") {
  for (const char* bad : {"ftp://h", "HTTPS://h", "https:/h", "https://", "https://h:0",
                          "https://h:99999", "https://user@h", "https://h/?q=1", "wss://h",
                          "libsql://h"}) {
    INFO(bad);
    auto url = ParseUrl(bad);
    REQUIRE_FALSE(url.ok());
    CHECK(url.error().code == via::kSqlInvalidArgument);
  }
}
