// Workload JWTs: what Sign() writes verifies, and every way a token can be
// wrong is refused with its own stable reason.

#include "server/jwt.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "crypto/crypto.h"
#include "domain/bytes.h"

using namespace via;
using namespace via::server;
using json = nlohmann::json;

namespace {

constexpr std::int64_t kNow = 1'800'000'000;

std::unique_ptr<crypto::Ed25519PrivateKey> KeyFrom(std::uint8_t fill) {
  Bytes seed(32, fill);
  return crypto::Ed25519PrivateKey::FromSeed(seed);
}

jwt::Claims Good() {
  jwt::Claims c;
  c.app = "api";
  c.release = "v1";
  c.token_id = "wt_01";
  c.issued_at_s = kNow;
  c.not_before_s = kNow;
  c.expires_at_s = kNow + 3600;
  return c;
}

jwt::VerifyOptions At(std::int64_t now) {
  jwt::VerifyOptions o;
  o.now_s = now;
  return o;
}

std::string B64(const std::string& s) { return crypto::Base64UrlEncode(AsBytes(s)); }

// A token with arbitrary header and payload JSON, signed correctly.
std::string SignRaw(const crypto::Ed25519PrivateKey& key, const json& header, const json& payload) {
  std::string input = B64(header.dump()) + "." + B64(payload.dump());
  auto sig = key.Sign(AsBytes(input));
  return input + "." + crypto::Base64UrlEncode(sig);
}

json GoodHeader(const crypto::Ed25519PrivateKey& key) {
  return {{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", jwt::KeyId(key.PublicKey())}};
}

json GoodPayload() {
  return {{"iss", "via"}, {"sub", "spiffe://via.local/app/api/release/v1"},
          {"aud", "via-config"}, {"iat", kNow}, {"exp", kNow + 60}, {"jti", "wt_1"}};
}

std::string ReasonOf(const Result<jwt::Claims>& r) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kUnauthenticated);
  return r.status().reason();
}

}  // namespace

TEST_CASE("a signed workload token verifies and yields its claims", "[server][jwt]") {
  auto key = KeyFrom(1);
  std::string token = jwt::Sign(*key, Good());
  auto claims = jwt::Verify(token, key->PublicKey(), At(kNow + 10));
  REQUIRE(claims.ok());
  CHECK(*claims == Good());
}

TEST_CASE("the token's subject is the release's SPIFFE id", "[server][jwt]") {
  CHECK(jwt::SpiffeId("via.local", "api", "v7") == "spiffe://via.local/app/api/release/v7");
}

TEST_CASE("an expired token is refused as token_expired", "[server][jwt]") {
  auto key = KeyFrom(1);
  std::string token = jwt::Sign(*key, Good());
  CHECK(ReasonOf(jwt::Verify(token, key->PublicKey(), At(kNow + 3600))) == "token_expired");
  CHECK(jwt::Verify(token, key->PublicKey(), At(kNow + 3599)).ok());
}

TEST_CASE("a token from the future is refused beyond the leeway", "[server][jwt]") {
  auto key = KeyFrom(1);
  std::string token = jwt::Sign(*key, Good());
  CHECK(jwt::Verify(token, key->PublicKey(), At(kNow - 60)).ok());
  CHECK(ReasonOf(jwt::Verify(token, key->PublicKey(), At(kNow - 61))) == "token_not_yet_valid");
}

TEST_CASE("a token signed by another key is refused as bad_signature", "[server][jwt]") {
  auto key = KeyFrom(1);
  auto other = KeyFrom(2);
  // Same kid as the real key, signature by the other key.
  std::string token = SignRaw(*other, GoodHeader(*key), GoodPayload());
  CHECK(ReasonOf(jwt::Verify(token, key->PublicKey(), At(kNow))) == "bad_signature");
}

TEST_CASE("a token with a modified payload is refused as bad_signature", "[server][jwt]") {
  auto key = KeyFrom(1);
  std::string token = jwt::Sign(*key, Good());
  std::size_t dot1 = token.find('.');
  std::size_t dot2 = token.find('.', dot1 + 1);
  json payload = GoodPayload();
  payload["sub"] = "spiffe://via.local/app/admin/release/v1";
  std::string forged = token.substr(0, dot1 + 1) + B64(payload.dump()) + token.substr(dot2);
  CHECK(ReasonOf(jwt::Verify(forged, key->PublicKey(), At(kNow))) == "bad_signature");
}

TEST_CASE("a token with another kid is refused as unknown_key", "[server][jwt]") {
  auto key = KeyFrom(1);
  auto other = KeyFrom(2);
  std::string token = jwt::Sign(*other, Good());
  CHECK(ReasonOf(jwt::Verify(token, key->PublicKey(), At(kNow))) == "unknown_key");
}

TEST_CASE("alg none and HS256 are refused as unsupported_algorithm", "[server][jwt]") {
  auto key = KeyFrom(1);
  for (const char* alg : {"none", "HS256", "ES256", "eddsa"}) {
    json header = GoodHeader(*key);
    header["alg"] = alg;
    std::string token = SignRaw(*key, header, GoodPayload());
    CHECK(ReasonOf(jwt::Verify(token, key->PublicKey(), At(kNow))) == "unsupported_algorithm");
  }
  std::string unsigned_token = B64(R"({"alg":"none"})") + "." + B64(GoodPayload().dump()) + ".";
  CHECK(ReasonOf(jwt::Verify(unsigned_token, key->PublicKey(), At(kNow))) ==
        "unsupported_algorithm");
}

TEST_CASE("a critical header extension is refused", "[server][jwt]") {
  auto key = KeyFrom(1);
  json header = GoodHeader(*key);
  header["crit"] = json::array({"b64"});
  CHECK(ReasonOf(jwt::Verify(SignRaw(*key, header, GoodPayload()), key->PublicKey(), At(kNow))) ==
        "unsupported_algorithm");
}

TEST_CASE("a token for another audience is refused as wrong_audience", "[server][jwt]") {
  auto key = KeyFrom(1);
  json payload = GoodPayload();
  payload["aud"] = "other";
  CHECK(ReasonOf(jwt::Verify(SignRaw(*key, GoodHeader(*key), payload), key->PublicKey(),
                             At(kNow))) == "wrong_audience");
  payload.erase("aud");
  CHECK(ReasonOf(jwt::Verify(SignRaw(*key, GoodHeader(*key), payload), key->PublicKey(),
                             At(kNow))) == "wrong_audience");
  payload["aud"] = json::array({"x", "via-config"});
  CHECK(jwt::Verify(SignRaw(*key, GoodHeader(*key), payload), key->PublicKey(), At(kNow)).ok());
}

TEST_CASE("a subject outside the trust domain is refused as wrong_subject", "[server][jwt]") {
  auto key = KeyFrom(1);
  for (const char* sub : {"spiffe://evil.example/app/api/release/v1", "api",
                          "spiffe://via.local/app/API/release/v1",
                          "spiffe://via.local/app/api/release/", "spiffe://via.local/app/api"}) {
    json payload = GoodPayload();
    payload["sub"] = sub;
    INFO(sub);
    CHECK(ReasonOf(jwt::Verify(SignRaw(*key, GoodHeader(*key), payload), key->PublicKey(),
                               At(kNow))) == "wrong_subject");
  }
}

TEST_CASE("missing or mistyped claims are malformed_token", "[server][jwt]") {
  auto key = KeyFrom(1);
  for (const char* field : {"exp", "iat", "jti"}) {
    json payload = GoodPayload();
    payload.erase(field);
    INFO(field);
    CHECK(ReasonOf(jwt::Verify(SignRaw(*key, GoodHeader(*key), payload), key->PublicKey(),
                               At(kNow))) == "malformed_token");
  }
  json payload = GoodPayload();
  payload["exp"] = "tomorrow";
  CHECK(ReasonOf(jwt::Verify(SignRaw(*key, GoodHeader(*key), payload), key->PublicKey(),
                             At(kNow))) == "malformed_token");
}

TEST_CASE("garbage is malformed_token", "[server][jwt]") {
  auto key = KeyFrom(1);
  for (const char* token : {"", "a", "a.b", "a.b.c.d", "...", "e30.e30.", "!!.e30.AAAA",
                            "eyJhbGciOiJFZERTQSJ9.e30"}) {
    INFO(token);
    CHECK(ReasonOf(jwt::Verify(token, key->PublicKey(), At(kNow))) == "malformed_token");
  }
  jwt::VerifyOptions small = At(kNow);
  small.max_token_bytes = 10;
  CHECK(ReasonOf(jwt::Verify(jwt::Sign(*key, Good()), key->PublicKey(), small)) ==
        "malformed_token");
}

TEST_CASE("the JWKS publishes the key as an OKP Ed25519 JWK", "[server][jwt]") {
  auto key = KeyFrom(1);
  json jwks = json::parse(jwt::Jwks(key->PublicKey()));
  REQUIRE(jwks["keys"].size() == 1);
  const json& k = jwks["keys"][0];
  CHECK(k["kty"] == "OKP");
  CHECK(k["crv"] == "Ed25519");
  CHECK(k["alg"] == "EdDSA");
  CHECK(k["use"] == "sig");
  CHECK(k["kid"] == jwt::KeyId(key->PublicKey()));
  auto x = crypto::Base64UrlDecode(k["x"].get<std::string>());
  REQUIRE(x);
  CHECK(std::equal(x->begin(), x->end(), key->PublicKey().begin(), key->PublicKey().end()));
}

TEST_CASE("the key id is the RFC 7638 thumbprint", "[server][jwt]") {
  // RFC 8037 appendix A.3: thumbprint of the example Ed25519 key.
  auto x = crypto::Base64UrlDecode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
  REQUIRE(x);
  crypto::Ed25519PublicKey pub{};
  std::copy(x->begin(), x->end(), pub.begin());
  CHECK(jwt::KeyId(pub) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
}
