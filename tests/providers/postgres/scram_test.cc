// The SCRAM-SHA-256 verifier of a role password (RFC 5802 / RFC 7677, as
// PostgreSQL stores it). The expected value was computed independently with
// Python's hashlib.pbkdf2_hmac and hmac for RFC 7677's example password and
// salt; the real proof is that PostgreSQL logs the role in with it
// (conformance_test.cc "postgres: role passwords reach the server only as
// SCRAM verifiers").

#include <catch2/catch.hpp>

#include "crypto/crypto.h"
#include "providers/postgres/scram.h"

using namespace via;

TEST_CASE("scram: the verifier of RFC 7677's example", "[providers][postgres][scram]") {
  auto salt = crypto::Base64Decode("W22ZaJ0SNY7soEsUEjb6gQ==");
  REQUIRE(salt.has_value());
  CHECK(providers::postgres::ScramVerifier("pencil", ByteView(salt->data(), salt->size()), 4096) ==
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
}

TEST_CASE("scram: a fresh salt each time, never the password", "[providers][postgres][scram]") {
  const std::string a = providers::postgres::ScramVerifier("secret-password");
  const std::string b = providers::postgres::ScramVerifier("secret-password");
  CHECK(a != b);
  CHECK(a.rfind("SCRAM-SHA-256$4096:", 0) == 0);
  CHECK(a.find("secret-password") == std::string::npos);
  // <salt>$<StoredKey>:<ServerKey>: 16 bytes of salt, two 32-byte keys.
  const auto dollar = a.find('$', 19);
  REQUIRE(dollar != std::string::npos);
  CHECK(crypto::Base64Decode(a.substr(19, dollar - 19))->size() == 16);
  const auto colon = a.find(':', dollar);
  REQUIRE(colon != std::string::npos);
  CHECK(crypto::Base64Decode(a.substr(dollar + 1, colon - dollar - 1))->size() == 32);
  CHECK(crypto::Base64Decode(a.substr(colon + 1))->size() == 32);
}
