#include "server/jwt.h"

#include <nlohmann/json.hpp>

#include "domain/bytes.h"
#include "domain/names.h"

namespace via::server::jwt {
namespace {

using json = nlohmann::json;

Status Reject(const std::string& reason, const std::string& message) {
  return Status(StatusCode::kUnauthenticated, reason, message);
}

std::string B64Url(std::string_view text) { return crypto::Base64UrlEncode(AsBytes(text)); }

// Parses one base64url part as a JSON object; nullopt when it is not one.
std::optional<json> DecodeObject(std::string_view part) {
  auto bytes = crypto::Base64UrlDecode(part);
  if (!bytes) return std::nullopt;
  json value = json::parse(bytes->begin(), bytes->end(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) return std::nullopt;
  return value;
}

// A NumericDate claim: an integer (a float with no fraction is accepted too,
// as RFC 7519 allows non-integer values; fractions are rejected as malformed).
std::optional<std::int64_t> NumericDate(const json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::nullopt;
  if (it->is_number_integer()) {
    if (it->is_number_unsigned() && it->get<std::uint64_t>() > (1ull << 53)) return std::nullopt;
    return it->get<std::int64_t>();
  }
  return std::nullopt;
}

// Splits "spiffe://<domain>/app/<app>/release/<release>".
bool ParseSubject(std::string_view sub, std::string_view trust_domain, Claims* out) {
  const std::string prefix = "spiffe://" + std::string(trust_domain) + "/app/";
  if (sub.substr(0, prefix.size()) != prefix) return false;
  std::string_view rest = sub.substr(prefix.size());
  const std::string_view middle = "/release/";
  std::size_t at = rest.find(middle);
  if (at == std::string_view::npos) return false;
  std::string_view app = rest.substr(0, at);
  std::string_view release = rest.substr(at + middle.size());
  if (!ValidateAppName(app).ok() || !ValidateReleaseId(release).ok()) return false;
  out->app = std::string(app);
  out->release = std::string(release);
  return true;
}

}  // namespace

std::string SpiffeId(std::string_view trust_domain, std::string_view app,
                     std::string_view release) {
  return "spiffe://" + std::string(trust_domain) + "/app/" + std::string(app) + "/release/" +
         std::string(release);
}

std::string KeyId(const crypto::Ed25519PublicKey& public_key) {
  // RFC 7638: required members in lexicographic order, no whitespace.
  std::string canonical = R"({"crv":"Ed25519","kty":"OKP","x":")" +
                          crypto::Base64UrlEncode(public_key) + R"("})";
  Hash256 digest = crypto::Sha256::Digest(canonical);
  return crypto::Base64UrlEncode(digest);
}

std::string Sign(const crypto::Ed25519PrivateKey& key, const Claims& claims) {
  json header = {{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", KeyId(key.PublicKey())}};
  json payload = {{"iss", kIssuer},
                  {"sub", SpiffeId(claims.trust_domain, claims.app, claims.release)},
                  {"aud", claims.audience},
                  {"iat", claims.issued_at_s},
                  {"nbf", claims.not_before_s},
                  {"exp", claims.expires_at_s},
                  {"jti", claims.token_id}};
  std::string signing_input = B64Url(header.dump()) + "." + B64Url(payload.dump());
  crypto::Ed25519Signature signature = key.Sign(AsBytes(signing_input));
  return signing_input + "." + crypto::Base64UrlEncode(signature);
}

Result<Claims> Verify(std::string_view token, const crypto::Ed25519PublicKey& public_key,
                      const VerifyOptions& options) {
  if (token.empty()) return Reject("malformed_token", "empty token");
  if (token.size() > options.max_token_bytes) {
    return Reject("malformed_token", "token longer than " +
                                         std::to_string(options.max_token_bytes) + " bytes");
  }
  const std::size_t dot1 = token.find('.');
  const std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Reject("malformed_token", "a JWT has three dot-separated parts");
  }
  std::string_view header_part = token.substr(0, dot1);
  std::string_view payload_part = token.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view signature_part = token.substr(dot2 + 1);

  auto header = DecodeObject(header_part);
  if (!header) return Reject("malformed_token", "header is not base64url JSON object");
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string()) {
    return Reject("malformed_token", "header has no alg");
  }
  if (alg->get<std::string>() != "EdDSA") {
    return Reject("unsupported_algorithm", "alg must be EdDSA");
  }
  if (header->contains("crit")) {
    return Reject("unsupported_algorithm", "no critical header extension is understood");
  }
  auto typ = header->find("typ");
  if (typ != header->end() && (!typ->is_string() || typ->get<std::string>() != "JWT")) {
    return Reject("malformed_token", "typ must be JWT");
  }
  auto kid = header->find("kid");
  if (kid == header->end() || !kid->is_string()) {
    return Reject("malformed_token", "header has no kid");
  }
  if (kid->get<std::string>() != KeyId(public_key)) {
    return Reject("unknown_key", "kid does not name the workload key (see /.well-known/jwks.json)");
  }

  auto signature = crypto::Base64UrlDecode(signature_part);
  if (!signature || signature->size() != crypto::kEd25519SignatureSize) {
    return Reject("malformed_token", "signature is not 64 base64url bytes");
  }
  std::string_view signing_input = token.substr(0, dot2);
  if (!crypto::Ed25519Verify(public_key, AsBytes(signing_input), *signature)) {
    return Reject("bad_signature", "signature does not verify");
  }

  auto payload = DecodeObject(payload_part);
  if (!payload) return Reject("malformed_token", "claims are not a base64url JSON object");
  Claims claims;
  claims.trust_domain = options.trust_domain;

  auto exp = NumericDate(*payload, "exp");
  auto iat = NumericDate(*payload, "iat");
  if (!exp || !iat) return Reject("malformed_token", "exp and iat must be integer NumericDates");
  claims.expires_at_s = *exp;
  claims.issued_at_s = *iat;
  claims.not_before_s = *iat;
  if (payload->contains("nbf")) {
    auto nbf = NumericDate(*payload, "nbf");
    if (!nbf) return Reject("malformed_token", "nbf must be an integer NumericDate");
    claims.not_before_s = *nbf;
  }
  auto jti = payload->find("jti");
  if (jti == payload->end() || !jti->is_string() || jti->get<std::string>().empty() ||
      jti->get<std::string>().size() > 128) {
    return Reject("malformed_token", "jti must be a non-empty string");
  }
  claims.token_id = jti->get<std::string>();

  if (options.now_s >= claims.expires_at_s + options.exp_leeway_s) {
    return Reject("token_expired", "token expired at " + std::to_string(claims.expires_at_s));
  }
  if (claims.not_before_s > options.now_s + options.leeway_s ||
      claims.issued_at_s > options.now_s + options.leeway_s) {
    return Reject("token_not_yet_valid", "token is not valid yet (nbf/iat in the future)");
  }

  auto aud = payload->find("aud");
  bool audience_ok = false;
  if (aud != payload->end() && aud->is_string()) {
    audience_ok = aud->get<std::string>() == options.audience;
  } else if (aud != payload->end() && aud->is_array()) {
    for (const auto& a : *aud) audience_ok |= a.is_string() && a.get<std::string>() == options.audience;
  }
  if (!audience_ok) return Reject("wrong_audience", "aud must be " + options.audience);
  claims.audience = options.audience;

  auto sub = payload->find("sub");
  if (sub == payload->end() || !sub->is_string() ||
      !ParseSubject(sub->get<std::string>(), options.trust_domain, &claims)) {
    return Reject("wrong_subject", "sub must be spiffe://" + options.trust_domain +
                                       "/app/<app>/release/<release>");
  }
  return claims;
}

std::string Jwks(const crypto::Ed25519PublicKey& public_key) {
  json key = {{"kty", "OKP"},
              {"crv", "Ed25519"},
              {"x", crypto::Base64UrlEncode(public_key)},
              {"kid", KeyId(public_key)},
              {"alg", "EdDSA"},
              {"use", "sig"}};
  return json{{"keys", json::array({key})}}.dump();
}

}  // namespace via::server::jwt
