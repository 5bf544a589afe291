#pragma once

// The runtime API behind `via serve` (DESIGN.md section 8), independent of the
// HTTP transport:
//
//   GET  /.well-known/jwks.json      the workload-token verifying key (JWKS)
//   GET  /v1/descriptors/{BINDING}   Bearer <workload JWT>: the binding as claimed by
//                                    the token's release, with a derived auth_token
//   GET  /v2                         200: Hrana over HTTP, version 2 (JSON)
//   POST /v2/pipeline                Bearer <auth_token>: a Hrana v2 pipeline
//   GET  /healthz                    {"ok":true,"seq":N}
//   anything else                    404 (so clients that probe /v3-protobuf fall back to v2)
//
// State: the API folds the event log into an in-memory State (the same pure
// Apply the read model uses) and CatchUp() folds new records; Handle() catches
// up before answering, so rotation, revocation, restore and destroy take
// effect on the next request. When CatchUp() sees GenerationRevoked or
// AddonDestroyed it closes the add-on's Hrana streams with 401 (their batons
// die at once); on RestoreRequested or RepairRequested with a retryable 503.
//
// Credentials: auth_token = "via1.<addon id>.<generation>.<base64url mac>" where
// mac = DeriveCredential(keys/credentials.key, addon id, generation, salt of its
// GenerationRotated) for the newest active generation. It is derived on every
// request, never stored; the proxy recomputes the mac and compares in constant
// time. The first delivery of a generation to a release appends
// GenerationDelivered with command id "deliver/<addon>/<gen>/<app>/<release>".
//
// Error bodies: descriptor and JWKS routes answer {"error":{"code","message"}}
// (409 adds "blocking", "owner", "reason", "remediation"); Hrana routes answer
// {"message","code"} as Hrana clients expect. Codes are stable.
//
// Thread-safety: Handle() and CatchUp() may be called from any threads at once.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "domain/ids.h"
#include "domain/readiness.h"
#include "domain/state.h"
#include "domain/status.h"
#include "eventstore/event_log.h"
#include "eventstore/home.h"
#include "server/hrana.h"
#include "server/http_message.h"
#include "server/jwt.h"

namespace via::server {

struct ApiOptions {
  eventstore::Home home;
  // Base URL put in descriptors ("http://127.0.0.1:7600"); set by the server
  // once it knows its port when empty.
  std::string public_url;
  std::string trust_domain = "via.local";
  std::string actor = "via-serve";  // of GenerationDelivered records
  hrana::Limits hrana;
  int sqlite_busy_timeout_ms = 5000;  // how long a statement waits for a lock
  std::int64_t jwt_leeway_s = 60;     // clock skew allowed for iat/nbf
  std::int64_t retry_after_s = 1;     // Retry-After of 503 answers
  Clock* clock = nullptr;             // wall clock (token expiry, records)
  IdGenerator* ids = nullptr;         // only for initializing a log (never here)
};

class Api {
 public:
  // Loads keys/workload.key and keys/credentials.key (never creates them:
  // FailedPrecondition "workload_key_missing"/"credentials_key_missing"),
  // opens the log and folds it.
  static Result<std::unique_ptr<Api>> Open(const ApiOptions& options);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Answers one request. Never throws for any input.
  HttpResponse Handle(const HttpRequest& request);

  // Folds records appended since the last call and reacts to them (see above).
  // Returns the number of records folded.
  Result<std::uint64_t> CatchUp();

  // Closes Hrana streams idle past their timeout.
  void SweepIdle() { engine_.SweepIdle(); }

  void set_public_url(std::string url);
  std::uint64_t seq() const;
  HranaEngine& engine() { return engine_; }

 private:
  explicit Api(const ApiOptions& options);
  std::shared_ptr<const State> Snapshot() const;
  HttpResponse Jwks();
  HttpResponse Descriptor(const HttpRequest& request, const std::string& binding);
  HttpResponse Pipeline(const HttpRequest& request);
  void RecordDelivery(const std::string& addon_id, std::uint32_t generation,
                      const std::string& app, const std::string& release);
  // jwt::Verify with a cache of verified signatures (see api.cc).
  Result<jwt::Claims> VerifyToken(const std::string& token);
  // ProbeAddonStorage with a short-lived cache of healthy results (see api.cc).
  StorageFact ProbeStorage(const std::string& addon_id, std::string* detail);

  ApiOptions options_;
  std::unique_ptr<crypto::Ed25519PrivateKey> workload_key_;
  Bytes credentials_key_;
  HranaEngine engine_;

  std::mutex log_mu_;  // guards log_ (one SQLite connection)
  std::unique_ptr<eventstore::EventLog> log_;

  mutable std::mutex state_mu_;  // guards state_ and public_url
  std::shared_ptr<const State> state_;

  // Workload tokens whose signature and claims verified, by the SHA-256 of
  // the token text; the time claims are checked again on every use.
  std::mutex token_cache_mu_;
  std::unordered_map<std::string, jwt::Claims> token_cache_;
  // Healthy storage probes by add-on id: probed when (ms), file identity.
  struct ProbeEntry {
    std::int64_t probed_ms = 0;
    std::uint64_t dev = 0, ino = 0;
  };
  std::mutex probe_cache_mu_;
  std::unordered_map<std::string, ProbeEntry> probe_cache_;
};

// "via1.<addon id>.<generation>.<base64url HMAC>".
std::string FormatAuthToken(const std::string& addon_id, std::uint32_t generation,
                            const Hash256& mac);

}  // namespace via::server
