#pragma once

// The runtime API behind `via serve` (DESIGN.md section 8), independent of the
// HTTP transport:
//
//   GET  /.well-known/jwks.json      the workload-token verifying key (JWKS)
//   GET  /v1/descriptors/{BINDING}   Bearer <workload JWT>: the binding as claimed by
//                                    the token's release, with a derived auth_token
//                                    (an add-on placed on another node: forwarded there)
//   GET  /v2                         200: Hrana over HTTP, version 2 (JSON)
//   POST /v2/pipeline                Bearer <auth_token>: a Hrana v2 pipeline
//   GET  /healthz                    liveness: {"ok":true,"seq":N,"streams":N,"sql":{...}}
//   GET  /readyz                     readiness: 200 while the log is read and caught up;
//                                    503 "log_unavailable" when the last catch-up failed,
//                                    503 "catch_up_lagging" when the last successful one
//                                    began more than ready_max_lag_ms ago
//   GET  /metrics                    the Prometheus text exposition (metrics.h)
//   anything else                    404 (so clients that probe /v3-protobuf fall back to v2)
//
// Several nodes (options.node): a Hrana request whose credential names an
// add-on placed on another node (AddonPlaced) is checked here first (mac,
// revocation, destroy: the log is shared), then forwarded to the owner's
// public URL and its answer returned as it came; batons are the owner's and
// come back to it with every request, whichever node receives them.
//
// Where the work runs. Handle() runs on an HTTP I/O thread and never blocks
// it: health, readiness, JWKS and routing errors are answered at once, from
// memory. Everything that may block runs on worker threads (work_pool.h):
//   - SQL (`/v2/pipeline`) on the SQL pool, keyed by add-on id: at most
//     per_addon_concurrency pipelines of one add-on run at once, add-ons are
//     served round-robin, and a full queue answers 503 "sql_queue_full" with
//     Retry-After. The I/O thread only checks the credential's mac and parses
//     the body (bounded by the body limit). A pipeline on the stream that holds
//     its database's write lock skips the add-on's limit, so that the lock
//     holder can commit while its own add-on's other requests wait for the lock.
//   - Descriptors (token checks, the storage probe, the GenerationDelivered
//     append) on a small control pool, so they are answered while every SQL
//     worker is busy.
//   - The log catch-up before each of those requests, on the worker, and every
//     tick_interval_ms (with the idle-stream sweep) on a tailer thread.
//
// State: the API folds the event log into an in-memory State (the same pure
// Apply the read model uses) and CatchUp() folds new records; the workers
// catch up before answering, so rotation, revocation, restore and destroy take
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
// {"message","code"} as Hrana clients expect. Codes are stable; messages never
// carry file paths or library texts (details go to the error log).
//
// Thread-safety: every method may be called from any thread at once.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "domain/ids.h"
#include "domain/readiness.h"
#include "domain/state.h"
#include "domain/status.h"
#include "eventstore/event_log.h"
#include "eventstore/group_commit.h"
#include "eventstore/home.h"
#include "providers/registry.h"
#include "server/forward.h"
#include "server/hrana.h"
#include "server/http_message.h"
#include "server/jwt.h"
#include "server/metrics.h"
#include "server/work_pool.h"

namespace via::server {

// How via serve's connections to the log retry a lost connection: one quick
// second try (a COMMIT cut off in flight is still found by its chain hash),
// not the CLI's 10 s of retries, so requests answer log_unreachable at once
// while the log's server is away instead of queueing behind the retries.
eventstore::LogStore::RetryPolicy ServeRetryPolicy();

struct ApiOptions {
  eventstore::Home home;
  // The providers this build runs (built by cli/): descriptors, storage
  // probes and whether the SQL proxy serves an add-on come from them.
  const providers::Registry* providers = nullptr;
  // Base URL put in descriptors ("http://127.0.0.1:7600"); set by the server
  // once it knows its port when empty.
  std::string public_url;
  std::string trust_domain = "via.local";
  // This node's name on a shared log (`via serve --node`); "" when unnamed.
  // A Hrana request for an add-on placed on another announced node is
  // forwarded to that node's public URL (forward.h), and descriptors carry
  // the owner's URL.
  std::string node;
  std::int64_t forward_timeout_ms = 30000;
  // Forwarding runs on a thread of its own, never on the pools below
  // (forward.h): at most this many requests in flight to one owner (more:
  // 503 forward_busy), a breaker that opens after this many consecutive
  // failures to reach an owner for the cool-down, and the CA that https://
  // owners' certificates chain to ("": the system's store).
  std::size_t forward_per_owner = 16;
  std::size_t forward_max_in_flight = 256;
  int forward_breaker_failures = 3;
  std::int64_t forward_breaker_cooldown_ms = 5000;
  std::string forward_ca_file;
  // Owner work (docs/operations.md "Several nodes"): called (from the
  // catch-up, on any thread; must not block) with the command id of every
  // command that another node's home appended under kOwnerWorkPrefix for an
  // add-on placed on this node (a snapshot, a restore, a new add-on's
  // storage): once at Open for those whose intent is still pending, then as
  // they are read. The callee carries them out (commands::RunOwnerWork).
  std::function<void(const std::string& command_id)> on_owner_work;
  std::string actor = "via-serve";  // of GenerationDelivered records
  // The group committer the server's own appends go through (deliveries),
  // shared with the rest of via serve's work; it must outlive the Api. Null:
  // the Api makes one of its own on a connection of its own.
  eventstore::GroupCommitter* committer = nullptr;
  hrana::Limits hrana;
  int sqlite_busy_timeout_ms = 5000;  // how long a statement waits for a lock
  std::int64_t jwt_leeway_s = 60;     // clock skew allowed for iat/nbf
  std::int64_t retry_after_s = 1;     // Retry-After of 503 answers
  // SQL workers (threads that run Hrana pipelines), how many pipelines of one
  // add-on may run at once, and how many may wait in all.
  int sql_workers = 8;
  std::size_t per_addon_concurrency = 4;
  std::size_t sql_queue = 1024;
  // Threads and queue for descriptor requests.
  int control_workers = 2;
  std::size_t control_queue = 1024;
  // How often the tailer thread folds new log records and closes idle streams.
  std::int64_t tick_interval_ms = 100;
  // /readyz fails ("catch_up_lagging") when the last successful catch-up
  // began longer ago than this.
  std::int64_t ready_max_lag_ms = 5000;
  // Counters for /metrics; null: none (then /metrics is 404). Outlives the Api.
  Metrics* metrics = nullptr;
  // Unexpected failures and details kept out of answers, one line each.
  std::function<void(const std::string&)> error_log;
  Clock* clock = nullptr;             // wall clock (token expiry, records)
  IdGenerator* ids = nullptr;         // only for initializing a log (never here)
};

// The keys via serve signs tokens and seals credentials with, read from the
// home. via serve never makes them (`via init` does; docs/runtime.md):
// FailedPrecondition "workload_key_missing"/"credentials_key_missing",
// DataLoss "workload_key_damaged".
struct ServeKeys {
  std::unique_ptr<crypto::Ed25519PrivateKey> workload;
  Bytes credentials;
};
Result<ServeKeys> ReadServeKeys(const eventstore::Home& home);

class Api {
 public:
  // Loads keys/workload.key and keys/credentials.key (never creates them:
  // FailedPrecondition "workload_key_missing"/"credentials_key_missing"),
  // opens the log and folds it, and starts the worker pools and the tailer.
  static Result<std::unique_ptr<Api>> Open(const ApiOptions& options);
  // Shutdown().
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Answers one request by calling `respond` exactly once, at once or later
  // from a worker thread (see above). Never blocks, never throws.
  void Handle(HttpRequest request, Responder respond);

  // Stops the tailer, answers waiting requests 503 "shutting_down", and waits
  // for running ones. Idempotent. Call it before destroying the HttpServer
  // whose responders it may still hold.
  void Shutdown();

  // Folds records appended since the last call and reacts to them (see above).
  // Returns the number of records folded.
  Result<std::uint64_t> CatchUp();

  void set_public_url(std::string url);
  std::uint64_t seq() const;
  HranaEngine& engine() { return engine_; }

 private:
  explicit Api(const ApiOptions& options);
  // A request for an add-on placed on another node, to be sent there.
  struct ForwardPlan {
    HttpRequest request;
    std::string node;  // the owner
    std::string url;   // its public URL
    std::string addon_id;
    bool hrana = false;  // Hrana-shaped errors
  };
  std::shared_ptr<const State> Snapshot() const;
  HttpResponse Health();
  HttpResponse Ready();
  HttpResponse MetricsPage();
  // Why the server is not ready ("log_unavailable", "catch_up_lagging"), or
  // "" when it is; `detail` gets a sentence, `lag_ms` the catch-up age.
  std::string NotReadyReason(std::string* detail, std::int64_t* lag_ms) const;
  HttpResponse Jwks();
  // Runs `run` on the control pool and answers with its result (or forwards
  // the plan it sets).
  void OnControlPool(Responder respond,
                     std::function<HttpResponse(std::optional<ForwardPlan>*)> run);
  // Sets `forward` (the answer is then unused) when another node owns the add-on.
  HttpResponse Descriptor(const HttpRequest& request, const std::string& binding,
                          std::optional<ForwardPlan>* forward);
  // POST /v2/pipeline, /v3/pipeline (same JSON body), /v3-protobuf/pipeline
  // and, with `cursor`, /v3/cursor and /v3-protobuf/cursor.
  void Pipeline(HttpRequest request, Responder respond, bool cursor, hrana::Encoding encoding);
  struct SqlRequest;
  // Queues a pipeline whose credential verified on the SQL pool.
  void SubmitSql(std::shared_ptr<SqlRequest> sql, Responder respond);
  // On a SQL worker: catch up, check the add-on and generation, run.
  HttpResponse RunPipeline(const SqlRequest& sql, std::optional<ForwardPlan>* forward);
  // The same checks for a /v3/cursor request, whose answer streams
  // (hrana_cursor.h).
  void StreamCursor(const SqlRequest& sql, const Responder& respond);
  // For a request for an add-on placed on another node: sets `plan` (the
  // returned answer is then unused), or answers 503 (Hrana-shaped when
  // `hrana`) owner_unknown or owner_mismatch.
  HttpResponse ForwardToOwner(const HttpRequest& raw, const State& state, const AddonState& addon,
                              bool hrana, std::optional<ForwardPlan>* plan);
  // Sends `plan` through the forwarder and answers `respond` with the
  // owner's answer, or 503 forward_busy / owner_unreachable, or 502
  // owner_answer_lost. Never blocks: the calling worker is free at once.
  void StartForward(ForwardPlan plan, Responder respond);
  // Answers with `answer`, or starts `plan` when it is set.
  void Reply(const Responder& respond, HttpResponse answer, std::optional<ForwardPlan> plan);
  // The checks of both: an answer when the request must be refused (or
  // `forward` set: another node owns the add-on), else sets `open` to the
  // factory of connections to the add-on's file.
  std::optional<HttpResponse> AdmitSql(const SqlRequest& sql, HranaEngine::ConnectionFactory* open,
                                       std::optional<ForwardPlan>* forward);
  // Makes sure a catch-up that started after `arrived_ns` (MonotonicNs()
  // when the request arrived) has run, so the answer reflects every record
  // committed before the request; concurrent requests share one catch-up.
  // Ok, or Unavailable "log_unavailable" (the detail goes to the error log).
  Status CatchUpForRequest(std::int64_t arrived_ns);
  static std::int64_t MonotonicNs();
  // run(), or a generic 500 (Hrana-shaped when `hrana`) if it throws.
  HttpResponse Guarded(bool hrana, const std::function<HttpResponse()>& run);
  void RecordDelivery(const std::string& addon_id, std::uint32_t generation,
                      const std::string& app, const std::string& release);
  // jwt::Verify with a cache of verified signatures (see api.cc).
  Result<jwt::Claims> VerifyToken(const std::string& token);
  // The add-on's provider (probing and describing only: no log), or an
  // error (unknown_provider).
  Result<std::unique_ptr<providers::Provider>> ProviderOf(const AddonState& addon) const;
  // The provider's probe, with a short-lived cache of healthy results for
  // file storage (see api.cc).
  StorageFact ProbeStorage(const providers::Provider& provider, const std::string& addon_id,
                           std::string* detail);
  void TailLoop();
  // On a log on PostgreSQL: LISTENs on via_log and catches up at once when
  // another process appends; while it listens, the tailer's poll only runs
  // as a fallback (every PollFallbackMs()).
  void ListenLoop(std::string url);
  std::int64_t PollFallbackMs() const;
  void ErrorLog(const std::string& line) const {
    if (options_.error_log) options_.error_log(line);
  }

  ApiOptions options_;
  std::unique_ptr<crypto::Ed25519PrivateKey> workload_key_;
  Bytes credentials_key_;
  HranaEngine engine_;

  std::mutex log_mu_;  // guards log_ (one SQLite connection)
  std::unique_ptr<eventstore::EventLog> log_;
  // Serve's own appends (RecordDelivery) go through a group committer on a
  // connection of their own: appends that arrive together share one
  // transaction, and none waits for log_mu_ (eventstore/group_commit.h).
  std::unique_ptr<eventstore::EventLog> append_log_;  // when the Api made committer_
  std::unique_ptr<eventstore::GroupCommitter> own_committer_;
  eventstore::GroupCommitter* committer_ = nullptr;

  mutable std::mutex state_mu_;  // guards state_ and public_url
  std::shared_ptr<const State> state_;
  std::atomic<bool> log_readable_{true};  // the last catch-up succeeded
  // The log holds fewer records than this node has applied (a failover to a
  // replica that lagged, a log restored from an older backup): an integrity
  // failure; the node stays not ready and refuses requests until restarted
  // on a log that holds them again (a restart checks the home's read model,
  // which remembers how far this home has seen the log).
  std::atomic<bool> log_shorter_{false};
  // MonotonicNs() when the last successful catch-up began.
  std::atomic<std::int64_t> caught_up_at_ns_{0};
  // CatchUpForRequest(): whether one runs, and when the last one started.
  std::mutex catch_up_mu_;
  std::condition_variable catch_up_done_;
  bool catch_up_running_ = false;
  std::int64_t catch_up_done_start_ns_ = 0;
  Status catch_up_done_status_;

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

  // Declared last: destroyed (joined) first, while everything above exists.
  std::unique_ptr<Forwarder> forwarder_;
  std::unique_ptr<WorkPool> sql_pool_;
  std::unique_ptr<WorkPool> control_pool_;
  std::mutex tail_mu_;
  std::condition_variable tail_wake_;
  bool tail_stop_ = false;
  std::thread tailer_;
  std::atomic<bool> listen_stop_{false};
  std::atomic<bool> listening_{false};  // the LISTEN connection is up
  std::thread listener_;
};

// "via1.<addon id>.<generation>.<base64url HMAC>".
std::string FormatAuthToken(const std::string& addon_id, std::uint32_t generation,
                            const Hash256& mac);

}  // namespace via::server
