#include "server/api.h"

#include <sqlite3.h>

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "crypto/credentials.h"
#include "eventstore/postgres/pg_listener.h"
#include "eventstore/postgres/pg_log_store.h"
#include "crypto/crypto.h"
#include "domain/names.h"
#include "domain/readiness.h"
#include "domain/reasons.h"
#include "eventstore/filenames.h"
#include "projections/read_model.h"
#include "server/forward.h"
#include "server/hrana_cursor.h"
#include "server/hrana_json.h"
#include "server/hrana_protobuf.h"
#include "server/jwt.h"

namespace via::server {
namespace {

using json = nlohmann::json;

constexpr std::string_view kTokenPrefix = "via1";

// Bodies hold client-supplied text at most as ASCII (the server refuses other
// bytes first); Dump() still never throws on invalid UTF-8.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpResponse JsonError(int status, const std::string& code, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.body = Dump(json{{"error", {{"code", code}, {"message", message}}}});
  r.error_code = code;
  return r;
}

// An error that says what to do: a command to paste, or null and who decides.
HttpResponse JsonErrorWithFix(int status, const std::string& code, const std::string& message,
                              const std::string& remediation, const std::string& owner) {
  HttpResponse r;
  r.status = status;
  r.body = Dump(json{{"error",
                      {{"code", code},
                       {"message", message},
                       {"remediation", remediation.empty() ? json(nullptr) : json(remediation)},
                       {"owner", owner}}}});
  r.error_code = code;
  return r;
}

HttpResponse HranaError(int status, const std::string& code, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.body = hrana::EncodeError(hrana::Error{message, code});
  r.error_code = code;
  return r;
}

HttpResponse Unauthorized(HttpResponse r) {
  r.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
  return r;
}

// HTTP status for a Status that fails a whole request.
int HttpStatusFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAborted:
    case StatusCode::kUnusable: return 409;
    case StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

// The token after "Bearer " (scheme case-insensitive), or nullopt.
std::optional<std::string> BearerToken(const std::string& header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return std::nullopt;
  }
  std::size_t start = kScheme.size();
  while (start < header.size() && header[start] == ' ') ++start;
  std::size_t end = header.size();
  while (end > start && header[end - 1] == ' ') --end;
  if (start == end) return std::nullopt;
  return header.substr(start, end - start);
}

struct ParsedCredential {
  std::string addon_id;
  std::uint32_t generation = 0;
  Bytes mac;
};

std::optional<ParsedCredential> ParseAuthToken(std::string_view token) {
  if (token.size() > 512) return std::nullopt;
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = token.find('.', start);
    parts.push_back(token.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (parts.size() != 4 || parts[0] != kTokenPrefix || parts[1].empty()) return std::nullopt;
  ParsedCredential out;
  out.addon_id = std::string(parts[1]);
  const std::string_view gen = parts[2];
  if (gen.empty() || gen.size() > 10 || gen[0] == '0') return std::nullopt;
  auto [ptr, ec] = std::from_chars(gen.data(), gen.data() + gen.size(), out.generation);
  if (ec != std::errc() || ptr != gen.data() + gen.size()) return std::nullopt;
  auto mac = crypto::Base64UrlDecode(parts[3]);
  if (!mac || mac->size() != 32) return std::nullopt;
  out.mac = std::move(*mac);
  return out;
}

const GenerationState* FindGeneration(const AddonState& a, std::uint32_t number) {
  for (const auto& g : a.generations) {
    if (g.number == number) return &g;
  }
  return nullptr;
}

const GenerationState* NewestActive(const AddonState& a) {
  const GenerationState* best = nullptr;
  for (const auto& g : a.generations) {
    if (!g.revoked && (best == nullptr || g.number > best->number)) best = &g;
  }
  return best;
}

// Splits "/path?query" into the path.
std::string_view PathOf(std::string_view target) {
  std::size_t q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

// A healthy storage probe (a full open + PRAGMA quick_check) is reused for
// this long, as long as the file is still the same regular, non-empty file.
constexpr std::int64_t kProbeReuseMs = 1000;
// Verified workload tokens kept (the cache is emptied when full).
constexpr std::size_t kTokenCacheMax = 4096;

std::string DatabaseKey(const std::string& addon_id, std::uint32_t generation) {
  return addon_id + "/" + std::to_string(generation);
}

}  // namespace

std::string FormatAuthToken(const std::string& addon_id, std::uint32_t generation,
                            const Hash256& mac) {
  return std::string(kTokenPrefix) + "." + addon_id + "." + std::to_string(generation) + "." +
         crypto::Base64UrlEncode(mac);
}

Api::Api(const ApiOptions& options)
    : options_(options),
      engine_(options.hrana, [clock = options.clock]() { return clock->NowMs(); }) {}

Api::~Api() { Shutdown(); }

void Api::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(tail_mu_);
    tail_stop_ = true;
  }
  tail_wake_.notify_all();
  if (tailer_.joinable()) tailer_.join();
  listen_stop_ = true;
  if (listener_.joinable()) listener_.join();
  const Status closing = Unavailable("shutting_down", "the server is shutting down; retry");
  if (control_pool_) control_pool_->Shutdown(closing);
  if (sql_pool_) sql_pool_->Shutdown(closing);
  // After the pools: their last jobs may still start a forward (refused
  // then); those in flight end with shutting_down.
  if (forwarder_) forwarder_->Shutdown();
}

void Api::TailLoop() {
  std::unique_lock<std::mutex> lock(tail_mu_);
  std::int64_t polled_ns = MonotonicNs();
  while (!tail_stop_) {
    tail_wake_.wait_for(lock, std::chrono::milliseconds(options_.tick_interval_ms),
                        [this] { return tail_stop_; });
    if (tail_stop_) break;
    lock.unlock();
    // While LISTEN wakes us, polling is only the fallback for a notification
    // lost while the listener reconnected.
    const std::int64_t now = MonotonicNs();
    if (!listening_ || now - polled_ns >= PollFallbackMs() * 1000000) {
      polled_ns = now;
      (void)CatchUpForRequest(now);  // failures are logged there
    }
    engine_.SweepIdle();
    lock.lock();
  }
}

std::int64_t Api::PollFallbackMs() const {
  return std::clamp<std::int64_t>(options_.ready_max_lag_ms / 4, options_.tick_interval_ms, 1000);
}

void Api::ListenLoop(std::string url) {
  std::unique_ptr<eventstore::postgres::PgListener> listener;
  std::string last_error;
  while (!listen_stop_) {
    if (!listener) {
      auto opened = eventstore::postgres::PgListener::Open(url, eventstore::postgres::kNotifyChannel);
      if (!opened.ok()) {
        if (opened.status().message() != last_error) {
          last_error = opened.status().message();
          ErrorLog("via serve: LISTEN " + std::string(eventstore::postgres::kNotifyChannel) +
                   ": " + last_error + " (polling meanwhile)");
        }
        for (int i = 0; i < 4 && !listen_stop_; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
        continue;
      }
      listener = std::move(opened).value();
      last_error.clear();
      listening_ = true;
      // Whatever was appended while no one listened.
      (void)CatchUpForRequest(MonotonicNs());
    }
    auto woke = listener->Wait(250);
    if (!woke.ok()) {
      listening_ = false;
      listener.reset();
      continue;
    }
    if (*woke) (void)CatchUpForRequest(MonotonicNs());
  }
  listening_ = false;
}

eventstore::LogStore::RetryPolicy ServeRetryPolicy() {
  return {2, std::chrono::milliseconds(200)};
}

Result<ServeKeys> ReadServeKeys(const eventstore::Home& home) {
  ServeKeys keys;
  auto pem = eventstore::ReadFile(home.workload_key());
  if (!pem.ok()) {
    return FailedPrecondition("workload_key_missing",
                              home.workload_key().string() + ": " + pem.status().message())
        .WithRemediation("via init (new home) or restore keys/workload.key from backup");
  }
  keys.workload = crypto::Ed25519PrivateKey::FromPem(AsChars(*pem));
  if (!keys.workload) {
    return DataLoss("workload_key_damaged", home.workload_key().string() + " is not an Ed25519 key");
  }
  auto secret = eventstore::ReadFile(home.credentials_key());
  if (!secret.ok() || secret->size() != 32) {
    return FailedPrecondition("credentials_key_missing",
                              home.credentials_key().string() + " is missing or damaged")
        .WithRemediation("restore keys/credentials.key from backup (see docs/operations.md)");
  }
  keys.credentials = std::move(secret).value();
  return keys;
}

Result<std::unique_ptr<Api>> Api::Open(const ApiOptions& options) {
  if (options.clock == nullptr) return Internal("Api::Open: no clock");
  std::unique_ptr<Api> api(new Api(options));
  const eventstore::Home& home = options.home;
  VIA_ASSIGN_OR_RETURN(ServeKeys keys, ReadServeKeys(home));
  api->workload_key_ = std::move(keys.workload);
  api->credentials_key_ = std::move(keys.credentials);

  VIA_ASSIGN_OR_RETURN(std::optional<std::string> log_url, home.LogUrl());
  eventstore::EventLog::Options log_options;
  log_options.home = home;
  log_options.clock = options.clock;
  log_options.ids = options.ids;
  log_options.actor = options.actor;
  VIA_ASSIGN_OR_RETURN(api->log_, eventstore::EventLog::Open(log_options));
  // A request waits for the server's own appends (a delivery) and every
  // request's catch-up for log_mu_: a lost connection gets one quick second
  // try (a COMMIT cut off in flight is still found by its chain hash), not
  // the CLI's 10 s of retries, so requests answer log_unreachable at once
  // while the log's server is away instead of queueing behind the retries.
  api->log_->store().set_retry_policy(ServeRetryPolicy());
  // Serve's own appends: batched by a group committer on a second
  // connection (via serve's, or one of the Api's own), with the same quick
  // retry.
  if (options.committer != nullptr) {
    api->committer_ = options.committer;
  } else {
    VIA_ASSIGN_OR_RETURN(api->append_log_, eventstore::EventLog::Open(log_options));
    api->append_log_->store().set_retry_policy(ServeRetryPolicy());
    api->own_committer_ = std::make_unique<eventstore::GroupCommitter>(
        api->append_log_->store(), api->append_log_->signer());
    api->committer_ = api->own_committer_.get();
  }
  const std::int64_t replay_started = MonotonicNs();
  {
    // The home's read model remembers how far this home has seen the log: a
    // log that now holds fewer of those records is refused here (exit 6
    // log_shorter_than_seen, naming both sizes) as by every command, instead
    // of serving from what is left.
    VIA_ASSIGN_OR_RETURN(auto model, projections::ReadModel::Open(home.state_db().string()));
    VIA_RETURN_IF_ERROR(model->CatchUp(api->log_->store()).status());
  }
  // The state, folded from the whole log (as projections::Replay), noting on
  // the way the owner-work requests without an intent of their own
  // (OwnerWorkRequested) that no OwnerWorkFinished answered yet.
  std::map<std::string, std::string> unanswered;  // request command id -> add-on
  VIA_ASSIGN_OR_RETURN(
      State state, projections::Replay(api->log_->store(), 0, [&](const Record& record) {
        if (const auto* e = std::get_if<OwnerWorkRequested>(&record.event);
            e != nullptr && IsOwnerWorkCommandId(record.command_id)) {
          unanswered[record.command_id] = e->addon_id;
        } else if (const auto* f = std::get_if<OwnerWorkFinished>(&record.event)) {
          unanswered.erase(f->request);
        }
      }));
  // Owner work another node's home asked for while this node was down: the
  // command of each intent still pending on an add-on placed here.
  if (options.on_owner_work && !options.node.empty()) {
    std::set<std::string> pending;
    for (const auto& [id, a] : state.addons) {
      if (a.node != options.node) continue;
      std::vector<std::uint64_t> intents;
      if (a.phase == AddonPhase::kProvisioning) intents.push_back(a.created_seq);
      // A remote restore's command also requested its safety snapshot.
      const std::string restore_of =
          a.restoring_snapshot.empty() ? std::string() : a.restore_safety_snapshot;
      for (const std::string& sid : {a.pending_snapshot, restore_of}) {
        auto snap = state.snapshots.find(sid);
        if (!sid.empty() && snap != state.snapshots.end()) intents.push_back(snap->second.requested_seq);
      }
      for (std::uint64_t seq : intents) {
        if (seq == 0) continue;
        VIA_ASSIGN_OR_RETURN(Record intent, api->log_->store().Read(seq));
        if (IsOwnerWorkCommandId(intent.command_id)) pending.insert(intent.command_id);
      }
    }
    for (const auto& [command_id, addon_id] : unanswered) {
      const AddonState* a = state.FindById(addon_id);
      if (a != nullptr && a->node == options.node) pending.insert(command_id);
    }
    for (const std::string& command_id : pending) options.on_owner_work(command_id);
  }
  api->state_ = std::make_shared<const State>(std::move(state));
  api->caught_up_at_ns_ = replay_started;

  WorkPool::Options sql;
  sql.name = "sql";
  sql.workers = std::max(1, options.sql_workers);
  sql.per_key_limit = std::max<std::size_t>(1, options.per_addon_concurrency);
  sql.max_queued = options.sql_queue;
  sql.busy_reason = "sql_queue_full";
  sql.error_log = options.error_log;
  sql.restore_priority = true;  // long statements lower it (Limits::long_statement_ms)
  api->sql_pool_ = std::make_unique<WorkPool>(sql);
  WorkPool::Options control;
  control.name = "control";
  control.workers = std::max(1, options.control_workers);
  control.per_key_limit = static_cast<std::size_t>(control.workers);
  control.max_queued = options.control_queue;
  control.busy_reason = "server_busy";
  control.error_log = options.error_log;
  api->control_pool_ = std::make_unique<WorkPool>(control);
  ForwardOptions forward;
  forward.from_node = options.node.empty() ? "unnamed" : options.node;
  forward.timeout_ms = options.forward_timeout_ms;
  // The owner bounds its rows by the same limit; the rest is framing.
  forward.max_body_bytes = options.hrana.max_response_bytes + (1 << 20);
  forward.per_owner_limit = options.forward_per_owner;
  forward.max_in_flight = options.forward_max_in_flight;
  forward.breaker_failures = options.forward_breaker_failures;
  forward.breaker_cooldown_ms = options.forward_breaker_cooldown_ms;
  forward.ca_file = options.forward_ca_file;
  VIA_ASSIGN_OR_RETURN(api->forwarder_, Forwarder::Create(std::move(forward)));
  Api* raw = api.get();
  api->tailer_ = std::thread([raw] { raw->TailLoop(); });
  if (log_url) {
    api->listener_ = std::thread([raw, u = *log_url] { raw->ListenLoop(u); });
  }
  return api;
}

std::shared_ptr<const State> Api::Snapshot() const {
  std::lock_guard lock(state_mu_);
  return state_;
}

std::uint64_t Api::seq() const { return Snapshot()->seq; }

void Api::set_public_url(std::string url) {
  std::lock_guard lock(state_mu_);
  options_.public_url = std::move(url);
}

Result<std::uint64_t> Api::CatchUp() {
  struct Closing {
    std::string addon_id;
    std::optional<std::uint32_t> generation;  // nullopt: every generation
    Status reason;
  };
  std::vector<Closing> closing;
  // Owner work read in this catch-up: (command id, an add-on its records name).
  std::vector<std::pair<std::string, std::string>> owner_work;
  std::uint64_t folded = 0;
  {
    std::lock_guard log_lock(log_mu_);
    std::shared_ptr<const State> current = Snapshot();
    auto got_head = log_->store().GetHead();
    log_readable_ = got_head.ok();
    VIA_ASSIGN_OR_RETURN(eventstore::Head head, std::move(got_head));
    if (head.seq < current->seq || log_shorter_) {
      // Never folded over or served from: what this node saw and answered
      // with is no longer in the log.
      log_shorter_ = true;
      return DataLoss(reason::kLogShorterThanSeen,
                      "the event log holds " + std::to_string(head.seq) +
                          " records, fewer than the " + std::to_string(current->seq) +
                          " this node has applied: records it served are gone (a failover to a "
                          "replica that lagged, or a log restored from an older backup)")
          .WithOwner("operator");
    }
    if (head.seq == current->seq) return std::uint64_t{0};
    State next = *current;
    for (std::uint64_t seq = current->seq + 1; seq <= head.seq; ++seq) {
      VIA_ASSIGN_OR_RETURN(Record record, log_->store().Read(seq));
      Apply(next, record);
      ++folded;
      if (!options_.node.empty() && IsOwnerWorkCommandId(record.command_id) &&
          (owner_work.empty() || owner_work.back().first != record.command_id)) {
        std::string addon_id = EventAddonId(record.event);
        if (!addon_id.empty()) owner_work.emplace_back(record.command_id, std::move(addon_id));
      }
      if (const auto* e = std::get_if<GenerationRevoked>(&record.event)) {
        if (options_.metrics) options_.metrics->CountRevocationApplied();
        closing.push_back({e->addon_id, e->generation,
                           Status(StatusCode::kUnauthenticated, reason::kCredentialRevoked,
                                  "generation " + std::to_string(e->generation) + " of " +
                                      e->addon_id + " was revoked")});
      } else if (const auto* e = std::get_if<AddonDestroyed>(&record.event)) {
        closing.push_back({e->addon_id, std::nullopt,
                           Status(StatusCode::kUnauthenticated, "addon_destroyed",
                                  "add-on " + e->addon_id + " was destroyed")});
      } else if (const auto* e = std::get_if<RestoreRequested>(&record.event)) {
        // Final, not retryable: the content a stream's transaction read and
        // wrote is replaced, so its baton can never be continued (a new
        // stream waits out the restore with 503 and Retry-After).
        closing.push_back({e->addon_id, std::nullopt,
                           InvalidArgument("stream_closed_by_restore",
                                           "add-on " + e->addon_id +
                                               " was restored: this stream's transaction was "
                                               "discarded; start a new one")});
      } else if (const auto* e = std::get_if<RepairRequested>(&record.event)) {
        closing.push_back({e->addon_id, std::nullopt,
                           InvalidArgument("stream_closed_by_repair",
                                           "add-on " + e->addon_id +
                                               " was repaired: this stream's transaction was "
                                               "discarded; start a new one")});
      }
    }
    std::lock_guard state_lock(state_mu_);
    state_ = std::make_shared<const State>(std::move(next));
  }
  if (options_.on_owner_work) {
    // Placed on this node once the catch-up is folded (an AddonPlaced comes
    // after the AddonCreated of its command).
    std::shared_ptr<const State> now = Snapshot();
    for (const auto& [command_id, addon_id] : owner_work) {
      const AddonState* a = now->FindById(addon_id);
      if (a != nullptr && a->node == options_.node) options_.on_owner_work(command_id);
    }
  }
  for (const auto& c : closing) {
    const std::string exact = c.generation ? DatabaseKey(c.addon_id, *c.generation) : "";
    const std::string prefix = c.addon_id + "/";
    const std::size_t closed = engine_.CloseStreamsFor(
        [&](std::string_view key) {
          return c.generation ? key == exact : key.substr(0, prefix.size()) == prefix;
        },
        c.reason);
    if (options_.metrics && c.reason.reason() == reason::kCredentialRevoked) {
      options_.metrics->CountStreamsClosedByRevocation(closed);
    }
  }
  return folded;
}

void Api::Handle(HttpRequest request, Responder respond) {
  // Everything here runs on an I/O thread: no SQL, no file, no lock wait.
  HttpResponse answer;
  try {
    const std::string path(PathOf(request.target));
    const bool get = request.method == "GET";
    constexpr std::string_view kDescriptors = "/v1/descriptors/";
    if (path == "/healthz") {
      answer = Health();
    } else if (path == "/readyz") {
      answer = Ready();
    } else if (path == "/metrics" && options_.metrics != nullptr) {
      answer = get ? MetricsPage() : JsonError(405, "method_not_allowed", "use GET");
    } else if (path == "/.well-known/jwks.json") {
      answer = get ? Jwks() : JsonError(405, "method_not_allowed", "use GET");
    } else if (path.rfind(kDescriptors, 0) == 0) {
      if (!get) {
        answer = JsonError(405, "method_not_allowed", "use GET");
      } else {
        const std::string binding = path.substr(kDescriptors.size());
        auto in = std::make_shared<HttpRequest>(std::move(request));
        const std::int64_t arrived = MonotonicNs();
        OnControlPool(respond, [this, in, binding, arrived](
                                   std::optional<ForwardPlan>* forward) -> HttpResponse {
          Status caught_up = CatchUpForRequest(arrived);
          if (!caught_up.ok()) {
            HttpResponse r = JsonError(503, caught_up.reason(), caught_up.message());
            r.headers.emplace_back("Retry-After", std::to_string(options_.retry_after_s));
            return r;
          }
          return Descriptor(*in, binding, forward);
        });
        return;
      }
    } else if (path == "/v2" || path == "/v3" || path == "/v3-protobuf") {
      if (get) {
        answer.content_type = "text/plain";
      } else {
        answer = JsonError(405, "method_not_allowed", "use GET");
      }
    } else if (path == "/v2/pipeline" || path == "/v3/pipeline" || path == "/v3/cursor" ||
               path == "/v3-protobuf/pipeline" || path == "/v3-protobuf/cursor") {
      if (request.method != "POST") {
        answer = HranaError(405, "method_not_allowed", "use POST");
      } else {
        const bool protobuf = path.rfind("/v3-protobuf/", 0) == 0;
        Pipeline(std::move(request), respond, /*cursor=*/path.ends_with("/cursor"),
                 protobuf ? hrana::Encoding::kProtobuf : hrana::Encoding::kJson);
        return;
      }
    } else {
      answer = JsonError(404, "not_found", "no route for " + path);
    }
  } catch (const std::exception& e) {
    // `respond` was only copied, never moved, so it can still answer (a
    // second answer after a worker's is ignored).
    ErrorLog(std::string("via serve: request failed: ") + e.what());
    answer = JsonError(500, "internal", "unexpected server error");
  }
  respond(std::move(answer));
}

HttpResponse Api::Health() {
  const WorkPool::Stats sql = sql_pool_->stats();
  HttpResponse r;
  r.body = Dump(
      json{{"ok", true},
           {"seq", seq()},
           {"streams", engine_.open_streams()},
           {"sql", {{"workers", sql.workers}, {"running", sql.running}, {"queued", sql.queued}}}});
  return r;
}

std::string Api::NotReadyReason(std::string* detail, std::int64_t* lag_ms) const {
  *lag_ms = std::max<std::int64_t>(0, (MonotonicNs() - caught_up_at_ns_.load()) / 1000000);
  if (log_shorter_.load()) {
    *detail = "the event log holds fewer records than this node has applied (seq " +
              std::to_string(seq()) + "); see docs/operations.md, \"The event log on PostgreSQL\"";
    return reason::kLogShorterThanSeen;
  }
  if (!log_readable_.load()) {
    *detail = "the event log could not be read at the last catch-up";
    return "log_unavailable";
  }
  if (*lag_ms > options_.ready_max_lag_ms) {
    *detail = "the last log catch-up began " + std::to_string(*lag_ms) + " ms ago (bound " +
              std::to_string(options_.ready_max_lag_ms) + " ms)";
    return "catch_up_lagging";
  }
  return "";
}

HttpResponse Api::Ready() {
  std::string detail;
  std::int64_t lag_ms = 0;
  const std::string reason = NotReadyReason(&detail, &lag_ms);
  if (!reason.empty()) {
    HttpResponse r;
    r.status = 503;
    r.error_code = reason;
    r.body = Dump(json{{"ready", false},
                       {"seq", seq()},
                       {"lag_ms", lag_ms},
                       {"error",
                        {{"code", reason},
                         {"message", reason == reason::kLogShorterThanSeen ? detail : detail + "; retry"}}}});
    r.headers.emplace_back("Retry-After", std::to_string(options_.retry_after_s));
    return r;
  }
  HttpResponse r;
  r.body = Dump(json{{"ready", true}, {"seq", seq()}, {"lag_ms", lag_ms}});
  return r;
}

HttpResponse Api::MetricsPage() {
  Metrics::Gauges g;
  g.log_seq = seq();
  std::string detail;
  std::int64_t lag_ms = 0;
  g.ready = NotReadyReason(&detail, &lag_ms).empty();
  g.catch_up_age_seconds =
      static_cast<double>(std::max<std::int64_t>(0, MonotonicNs() - caught_up_at_ns_.load())) / 1e9;
  g.log_readable = log_readable_.load();
  g.log_listening = listening_.load();
  g.open_streams = engine_.open_streams();
  g.pooled_connections = engine_.pooled_connections();
  const WorkPool::Stats sql = sql_pool_->stats();
  g.sql_workers = sql.workers;
  g.sql_running = sql.running;
  g.sql_queued = sql.queued;
  g.sql_queue_limit = options_.sql_queue;
  const WorkPool::Stats control = control_pool_->stats();
  g.control_workers = control.workers;
  g.control_running = control.running;
  g.control_queued = control.queued;
  const Forwarder::Stats forward = forwarder_->stats();
  g.forwards_in_flight = forward.in_flight;
  g.forward_busy = forward.busy_refusals;
  g.forward_breaker_refusals = forward.breaker_refusals;
  g.forward_breaker_opened = forward.breaker_opened;
  g.forward_probes = forward.probes;
  g.appends_submitted = committer_->submitted();
  g.append_batches = committer_->batches();
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = options_.metrics->Render(g);
  return r;
}

void Api::OnControlPool(Responder respond,
                        std::function<HttpResponse(std::optional<ForwardPlan>*)> run) {
  const std::int64_t retry_after = options_.retry_after_s;
  auto busy = [retry_after](const Status& s) {
    HttpResponse r = JsonError(503, s.reason(), s.message());
    r.headers.emplace_back("Retry-After", std::to_string(retry_after));
    return r;
  };
  Status queued = control_pool_->Submit(
      "", WorkPool::Job{[this, respond, run = std::move(run)] {
                          std::optional<ForwardPlan> forward;
                          HttpResponse answer = Guarded(false, [&] { return run(&forward); });
                          Reply(respond, std::move(answer), std::move(forward));
                        },
                        [respond, busy](const Status& s) { respond(busy(s)); }});
  if (!queued.ok()) respond(busy(queued));
}

HttpResponse Api::Jwks() {
  HttpResponse r;
  r.body = jwt::Jwks(workload_key_->PublicKey());
  r.headers.emplace_back("Cache-Control", "public, max-age=300");
  return r;
}

HttpResponse Api::Descriptor(const HttpRequest& request, const std::string& binding,
                             std::optional<ForwardPlan>* forward) {
  if (!ValidateBindingName(binding).ok()) {
    return JsonError(404, "binding_not_found", "not a binding name: " + binding);
  }
  auto bearer = BearerToken(request.authorization);
  if (!bearer) {
    return Unauthorized(JsonError(401, "missing_token", "Authorization: Bearer <workload JWT> required"));
  }
  auto claims = VerifyToken(*bearer);
  if (!claims.ok()) {
    return Unauthorized(JsonError(401, claims.status().reason(), claims.status().message()));
  }
  std::shared_ptr<const State> state = Snapshot();
  const ReleaseState* release = nullptr;
  auto releases = state->releases.find(claims->app);
  if (releases != state->releases.end()) {
    for (const auto& r : releases->second) {
      if (r.id == claims->release) release = &r;
    }
  }
  if (release == nullptr) {
    return Unauthorized(JsonError(401, "unknown_release",
                                  "the token names " + claims->app + "/" + claims->release +
                                      ", which is not a release"));
  }
  const BindingClaim* claim = nullptr;
  for (const auto& c : release->claims) {
    if (c.binding == binding) claim = &c;
  }
  if (claim == nullptr) {
    // 403 when the app knows the binding (attached now or claimed by another
    // release), 404 when it never had one by that name.
    bool known = state->bindings.count({claims->app, binding}) > 0;
    for (const auto& r : releases->second) {
      for (const auto& c : r.claims) known |= c.binding == binding;
    }
    if (known) {
      // A new release claims the current bindings; the workload then needs
      // a token for that release (a redeploy), which is the app's side.
      return JsonErrorWithFix(403, "binding_not_claimed",
                              "release " + claims->release + " of " + claims->app +
                                  " does not claim " + binding +
                                  " (bindings are snapshotted at `via release create`; deploy "
                                  "the new release)",
                              "via release create --app " + claims->app, "app_developer");
    }
    return JsonError(404, "binding_not_found", "app " + claims->app + " has no binding " + binding);
  }
  const AddonState* addon = state->FindById(claim->addon_id);
  if (addon == nullptr) {
    return JsonError(404, "addon_not_found", "add-on " + claim->addon_id + " does not exist");
  }
  if (!addon->node.empty() && addon->node != options_.node) {
    // Its storage is probed (and its first delivery recorded) by its owner.
    return ForwardToOwner(request, *state, *addon, /*hrana=*/false, forward);
  }
  ReadinessInput input;
  input.requested = addon->id;
  input.addon = addon;
  input.app = claims->app;
  input.binding = binding;
  input.binding_target = claim->addon_id;
  // The token's release claims it (checked above): that is the release the
  // workload runs.
  input.latest_release = claims->release;
  input.latest_release_claims = true;
  auto provider = ProviderOf(*addon);
  if (options_.providers != nullptr) {
    providers::Environment env;
    env.home = options_.home;
    options_.providers->Describe(addon->provider, input, env);
  }
  std::string probe_detail;
  if (provider.ok()) {
    input.storage = ProbeStorage(**provider, addon->id, &probe_detail);
  } else {
    input.provider_known = false;
  }
  if (input.storage != StorageFact::kOk) {
    // The probe's detail names files: it goes to the error log, not the app.
    ErrorLog("via serve: storage of " + addon->id + ": " + probe_detail);
    input.storage_detail = "the operator sees details with `via addon status " + addon->name + "`";
  }
  input.credentials_key_present = true;
  Readiness readiness = Evaluate(input);
  if (!readiness.usable_by_app) {
    const std::string code = readiness.blocking.value_or("not_usable");
    HttpResponse r;
    r.status = 409;
    r.error_code = code;
    r.body = Dump(json{{"error", {{"code", code}, {"message", readiness.reason}}},
                       {"blocking", code},
                       {"owner", readiness.owner},
                       {"reason", readiness.reason},
                       {"remediation", readiness.remediation}});
    if (code == reason::kRestoreInProgress) {
      r.headers.emplace_back("Retry-After", std::to_string(options_.retry_after_s));
    }
    return r;
  }
  const GenerationState* generation = NewestActive(*addon);
  if (generation == nullptr) {
    return JsonError(409, "no_active_generation", "add-on " + addon->id + " has no active credentials");
  }
  Hash256 mac = crypto::DeriveCredential(credentials_key_, addon->id, generation->number,
                                         generation->salt);
  if (!state->deliveries.count({addon->id, generation->number, claims->app, claims->release})) {
    RecordDelivery(addon->id, generation->number, claims->app, claims->release);
  }
  providers::DescriptorInput described;
  described.addon_id = addon->id;
  described.generation = generation->number;
  described.credential = mac;
  {
    std::lock_guard lock(state_mu_);
    described.proxy_url = options_.public_url;
  }
  // An add-on placed on another announced node is served there.
  if (!addon->node.empty() && addon->node != options_.node) {
    auto owner = state->nodes.find(addon->node);
    if (owner != state->nodes.end()) described.proxy_url = owner->second;
  }
  described.proxy_token = FormatAuthToken(addon->id, generation->number, mac);
  auto fields = (*provider)->Describe(described);
  if (!fields.ok()) {
    ErrorLog("via serve: descriptor of " + addon->id + ": " + fields.status().message());
    return JsonError(503, "descriptor_unavailable",
                     "the descriptor of " + addon->id + " cannot be made now; retry");
  }
  HttpResponse r;
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = Dump(json{{"binding", binding},
                     {"provider", addon->provider},
                     {"addon_id", addon->id},
                     {"url", fields->url},
                     {"auth_token", fields->auth_token},
                     {"generation", generation->number},
                     {"app", claims->app},
                     {"release", claims->release}});
  return r;
}

// Verifying an Ed25519 signature costs more than the rest of a descriptor
// request, so a token whose signature and claims verified is remembered by the
// SHA-256 of its exact text (same bytes, same signature; the map never holds a
// token, and a lookup never compares one byte by byte, as with batons). Every
// use re-checks what depends on the time, exactly as jwt::Verify does: exp (no
// grace), iat/nbf (leeway); the release is looked up in the current state by
// the caller as before.
Result<jwt::Claims> Api::VerifyToken(const std::string& token) {
  const std::int64_t now_s = options_.clock->NowMs() / 1000;
  const Hash256 digest = crypto::Sha256::Digest(token);
  const std::string key(digest.begin(), digest.end());
  {
    std::lock_guard lock(token_cache_mu_);
    auto it = token_cache_.find(key);
    if (it != token_cache_.end()) {
      const jwt::Claims& c = it->second;
      if (now_s < c.expires_at_s && c.not_before_s <= now_s + options_.jwt_leeway_s &&
          c.issued_at_s <= now_s + options_.jwt_leeway_s) {
        return c;
      }
      token_cache_.erase(it);  // expired (or not yet valid): verify again for the exact reason
    }
  }
  jwt::VerifyOptions verify;
  verify.now_s = now_s;
  verify.trust_domain = options_.trust_domain;
  verify.leeway_s = options_.jwt_leeway_s;
  auto claims = jwt::Verify(token, workload_key_->PublicKey(), verify);
  if (claims.ok()) {
    std::lock_guard lock(token_cache_mu_);
    if (token_cache_.size() >= kTokenCacheMax) token_cache_.clear();
    token_cache_.emplace(key, *claims);
  }
  return claims;
}

// The full probe opens the database and runs PRAGMA quick_check (cost grows
// with the file). A healthy result is reused for kProbeReuseMs while a stat()
// shows the same regular, non-empty file (same device and inode), so a file
// that is deleted, emptied or replaced is noticed on the next request, and
// damage inside the file within a second. Unhealthy results are never reused.
Result<std::unique_ptr<providers::Provider>> Api::ProviderOf(const AddonState& addon) const {
  if (options_.providers == nullptr) return Internal("via serve has no provider registry");
  providers::Environment env;
  env.home = options_.home;
  env.actor = options_.actor;
  env.clock = options_.clock;
  return options_.providers->Make(addon.provider, env);
}

StorageFact Api::ProbeStorage(const providers::Provider& provider, const std::string& addon_id,
                              std::string* detail) {
  if (!provider.ProxiesSql()) return provider.Probe(addon_id, detail);  // not a local file
  const std::string path = provider.StorageLocation(addon_id);
  const std::int64_t now = options_.clock->NowMs();
  struct stat st {};
  const bool present = ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
  if (present) {
    std::lock_guard lock(probe_cache_mu_);
    auto it = probe_cache_.find(addon_id);
    if (it != probe_cache_.end() && now - it->second.probed_ms < kProbeReuseMs &&
        now >= it->second.probed_ms && it->second.dev == static_cast<std::uint64_t>(st.st_dev) &&
        it->second.ino == static_cast<std::uint64_t>(st.st_ino)) {
      if (detail) *detail = "ok";
      return StorageFact::kOk;
    }
  }
  StorageFact fact = provider.Probe(addon_id, detail);
  std::lock_guard lock(probe_cache_mu_);
  if (fact == StorageFact::kOk && present) {
    probe_cache_[addon_id] = ProbeEntry{now, static_cast<std::uint64_t>(st.st_dev),
                                        static_cast<std::uint64_t>(st.st_ino)};
  } else {
    probe_cache_.erase(addon_id);
  }
  return fact;
}

void Api::RecordDelivery(const std::string& addon_id, std::uint32_t generation,
                         const std::string& app, const std::string& release) {
  eventstore::AppendRequest append;
  append.actor = options_.actor;
  append.command_id = eventstore::DeliverCommandId(addon_id, generation, app, release);
  append.recorded_at_ms = options_.clock->NowMs();
  append.events = {GenerationDelivered{addon_id, generation, app, release}};
  // Best effort: the descriptor is still served when the audit record cannot
  // be written now; the next delivery retries (the command id keeps it single).
  // Deliveries arriving together are committed in one transaction.
  (void)committer_->Submit(append);
}

struct Api::SqlRequest {
  ParsedCredential credential;
  hrana::PipelineRequest pipeline;
  std::int64_t arrived_ns = 0;  // MonotonicNs() when the request was read
  std::optional<hrana::CursorRequest> cursor;  // set for /v3/cursor (then `pipeline` is empty)
  hrana::Encoding encoding = hrana::Encoding::kJson;
  // The request as it came (method, target, Authorization, body), for
  // forwarding it to the add-on's owner.
  HttpRequest raw;
  const std::optional<std::string>& baton() const {
    return cursor ? cursor->baton : pipeline.baton;
  }
  std::string database_key() const {
    return DatabaseKey(credential.addon_id, credential.generation);
  }
};

namespace {

HttpResponse HranaFailure(const Status& s, std::int64_t retry_after_s) {
  HttpResponse r = HranaError(HttpStatusFor(s), s.reason(), s.message());
  if (r.status == 401) r = Unauthorized(std::move(r));
  if (r.status == 503) r.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  return r;
}

Status BadCredential() {
  return Status(StatusCode::kUnauthenticated, "bad_credential", "the auth token is not valid");
}

enum class MacCheck { kValid, kInvalid, kUnknownGeneration };

MacCheck CheckMac(const State& state, const Bytes& key, const ParsedCredential& credential) {
  const AddonState* addon = state.FindById(credential.addon_id);
  const GenerationState* generation =
      addon ? FindGeneration(*addon, credential.generation) : nullptr;
  if (generation == nullptr) return MacCheck::kUnknownGeneration;
  const Hash256 expected =
      crypto::DeriveCredential(key, addon->id, generation->number, generation->salt);
  return crypto::ConstantTimeEqual(expected, credential.mac) ? MacCheck::kValid
                                                             : MacCheck::kInvalid;
}

}  // namespace

HttpResponse Api::Guarded(bool hrana, const std::function<HttpResponse()>& run) {
  try {
    return run();
  } catch (const std::exception& e) {
    ErrorLog(std::string("via serve: request failed: ") + e.what());
    return hrana ? HranaError(500, "internal", "unexpected server error")
                 : JsonError(500, "internal", "unexpected server error");
  }
}

std::int64_t Api::MonotonicNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A catch-up that started after the request arrived has seen every record
// committed before it arrived, so one catch-up serves all the requests that
// arrived before it started: a worker waits for the running one when that
// one started after its request arrived, and reuses the last one when it did.
Status Api::CatchUpForRequest(std::int64_t arrived_ns) {
  std::unique_lock<std::mutex> lock(catch_up_mu_);
  for (;;) {
    if (catch_up_done_start_ns_ >= arrived_ns) return catch_up_done_status_;
    if (!catch_up_running_) break;
    catch_up_done_.wait(lock);
  }
  catch_up_running_ = true;
  const std::int64_t started = MonotonicNs();
  lock.unlock();
  auto caught_up = CatchUp();
  Status status = Status::Ok();
  if (!caught_up.ok()) {
    ErrorLog("via serve: log catch-up: " + caught_up.status().ToString());
    status = caught_up.status().reason() == reason::kLogShorterThanSeen
                 ? Unavailable(reason::kLogShorterThanSeen,
                               "the event log holds fewer records than this node has served; "
                               "the operator must restore them")
                 : Unavailable("log_unavailable", "the event log could not be read; retry");
    log_readable_ = false;
  } else {
    log_readable_ = true;
    caught_up_at_ns_ = started;
  }
  lock.lock();
  catch_up_running_ = false;
  catch_up_done_start_ns_ = started;
  catch_up_done_status_ = status;
  catch_up_done_.notify_all();
  return status;
}

void Api::Pipeline(HttpRequest request, Responder respond, bool cursor, hrana::Encoding encoding) {
  const std::int64_t arrived = MonotonicNs();
  const std::int64_t retry_after = options_.retry_after_s;
  auto bearer = BearerToken(request.authorization);
  if (!bearer) {
    respond(Unauthorized(
        HranaError(401, "missing_credential", "Authorization: Bearer <auth_token> required")));
    return;
  }
  auto credential = ParseAuthToken(*bearer);
  if (!credential) {
    respond(HranaFailure(BadCredential(), retry_after));
    return;
  }
  // The mac is checked here, against the state of the last catch-up, so that
  // only the add-on's own credentials queue under its id; the worker checks
  // revocation and the add-on's phase after catching up.
  const MacCheck mac = CheckMac(*Snapshot(), credentials_key_, *credential);
  if (mac == MacCheck::kInvalid) {
    respond(HranaFailure(BadCredential(), retry_after));
    return;
  }
  auto sql = std::make_shared<SqlRequest>();
  sql->credential = std::move(credential).value();
  sql->arrived_ns = arrived;
  sql->encoding = encoding;
  const bool protobuf = encoding == hrana::Encoding::kProtobuf;
  Status parsed;
  if (cursor) {
    auto c = protobuf ? hrana::ParseCursorRequestProtobuf(request.body, options_.hrana)
                      : hrana::ParseCursorRequest(request.body, options_.hrana);
    if (c.ok()) sql->cursor = std::move(c).value();
    parsed = c.status();
  } else {
    auto p = protobuf ? hrana::ParsePipelineRequestProtobuf(request.body, options_.hrana)
                      : hrana::ParsePipelineRequest(request.body, options_.hrana);
    if (p.ok()) sql->pipeline = std::move(p).value();
    parsed = p.status();
  }
  if (!parsed.ok()) {
    respond(HranaFailure(parsed, retry_after));
    return;
  }
  sql->raw = std::move(request);
  if (mac == MacCheck::kValid) {
    SubmitSql(std::move(sql), std::move(respond));
    return;
  }
  // A generation this state does not know yet (rotated since the last
  // catch-up): check it again after a catch-up, on the control pool.
  auto refuse = [respond, retry_after](const Status& s) { respond(HranaFailure(s, retry_after)); };
  Status queued = control_pool_->Submit(
      "", WorkPool::Job{[this, sql, respond, refuse] {
                          Status caught_up = CatchUpForRequest(sql->arrived_ns);
                          if (!caught_up.ok()) return refuse(caught_up);
                          if (CheckMac(*Snapshot(), credentials_key_, sql->credential) !=
                              MacCheck::kValid) {
                            return refuse(BadCredential());
                          }
                          SubmitSql(sql, respond);
                        },
                        refuse});
  if (!queued.ok()) refuse(queued);
}

void Api::SubmitSql(std::shared_ptr<SqlRequest> sql, Responder respond) {
  const std::int64_t retry_after = options_.retry_after_s;
  // The stream holding its database's write lock skips the add-on's limit
  // (at most one per database file: see work_pool.h).
  const bool urgent = sql->baton() && engine_.HoldsWriteLock(sql->database_key(), *sql->baton());
  auto refuse = [respond, retry_after](const Status& s) { respond(HranaFailure(s, retry_after)); };
  const std::string addon_id = sql->credential.addon_id;
  const std::int64_t submitted = MonotonicNs();
  Status queued = sql_pool_->Submit(
      addon_id,
      WorkPool::Job{[this, sql, respond, submitted] {
                      if (options_.metrics) {
                        options_.metrics->ObserveSqlWait((MonotonicNs() - submitted) / 1000);
                      }
                      if (sql->cursor) {
                        StreamCursor(*sql, respond);
                        return;
                      }
                      std::optional<ForwardPlan> forward;
                      HttpResponse answer =
                          Guarded(/*hrana=*/true, [&] { return RunPipeline(*sql, &forward); });
                      Reply(respond, std::move(answer), std::move(forward));
                    },
                    refuse},
      urgent);
  if (!queued.ok()) refuse(queued);
}

HttpResponse Api::RunPipeline(const SqlRequest& sql, std::optional<ForwardPlan>* forward) {
  HranaEngine::ConnectionFactory open;
  if (std::optional<HttpResponse> refused = AdmitSql(sql, &open, forward)) {
    return std::move(*refused);
  }
  auto response = engine_.Execute(sql.database_key(), sql.pipeline, open);
  if (!response.ok()) return HranaFailure(response.status(), options_.retry_after_s);
  HttpResponse r;
  if (sql.encoding == hrana::Encoding::kProtobuf) {
    r.content_type = "application/x-protobuf";
    r.body = hrana::EncodePipelineResponseProtobuf(*response);
  } else {
    r.body = hrana::EncodePipelineResponse(*response);
  }
  return r;
}

void Api::StreamCursor(const SqlRequest& sql, const Responder& respond) {
  const std::int64_t retry_after = options_.retry_after_s;
  try {
    HranaEngine::ConnectionFactory open;
    std::optional<ForwardPlan> forward;
    if (std::optional<HttpResponse> refused = AdmitSql(sql, &open, &forward)) {
      return Reply(respond, std::move(*refused), std::move(forward));
    }
    RunCursor(engine_, sql.database_key(), *sql.cursor, sql.encoding, open, respond,
              [retry_after](const Status& s) { return HranaFailure(s, retry_after); });
  } catch (const std::exception& e) {
    ErrorLog(std::string("via serve: request failed: ") + e.what());
    respond(HranaError(500, "internal", "unexpected server error"));
  }
}

std::optional<HttpResponse> Api::AdmitSql(const SqlRequest& sql,
                                          HranaEngine::ConnectionFactory* open,
                                          std::optional<ForwardPlan>* forward) {
  const std::int64_t retry_after = options_.retry_after_s;
  Status caught_up = CatchUpForRequest(sql.arrived_ns);
  if (!caught_up.ok()) return HranaFailure(caught_up, retry_after);
  std::shared_ptr<const State> state = Snapshot();
  const AddonState* addon = state->FindById(sql.credential.addon_id);
  const GenerationState* generation =
      addon ? FindGeneration(*addon, sql.credential.generation) : nullptr;
  if (generation == nullptr) return HranaFailure(BadCredential(), retry_after);
  if (addon->phase == AddonPhase::kDestroyed) {
    return Unauthorized(HranaError(401, "addon_destroyed", "add-on " + addon->id + " was destroyed"));
  }
  if (generation->revoked) {
    if (options_.metrics) options_.metrics->CountRevokedRequest();
    return Unauthorized(HranaError(401, reason::kCredentialRevoked,
                                   "generation " + std::to_string(generation->number) +
                                       " of " + addon->id + " was revoked"));
  }
  if (!addon->restoring_snapshot.empty() || !addon->pending_repair.empty()) {
    const bool restoring = !addon->restoring_snapshot.empty();
    if (sql.pipeline.baton) {
      // Every stream of the add-on was closed when the restore or repair
      // began, so a baton now continues none: final, not worth a retry.
      return HranaError(400, restoring ? "stream_closed_by_restore" : "stream_closed_by_repair",
                        "add-on " + addon->id + (restoring ? " is being restored" : " is being repaired") +
                            ": this stream's transaction was discarded; start a new one");
    }
    HttpResponse r = HranaError(503, addon->restoring_snapshot.empty() ? "repair_in_progress"
                                                                       : reason::kRestoreInProgress,
                                "add-on " + addon->id + " is being restored or repaired; retry");
    r.headers.emplace_back("Retry-After", std::to_string(retry_after));
    return r;
  }
  if (addon->phase != AddonPhase::kActive) {
    return HranaError(409, "addon_not_usable", "add-on " + addon->id + " is " + PhaseName(addon->phase));
  }
  if (!addon->node.empty() && addon->node != options_.node) {
    return ForwardToOwner(sql.raw, *state, *addon, /*hrana=*/true, forward);
  }
  auto provider = ProviderOf(*addon);
  if (!provider.ok() || !(*provider)->ProxiesSql()) {
    // Apps of such add-ons connect to the url of their descriptor.
    return HranaError(400, "addon_not_proxied",
                      "add-on " + addon->id + " (provider " + addon->provider +
                          ") is not served by the SQL proxy: connect to the url of its descriptor");
  }
  const std::string path = (*provider)->StorageLocation(addon->id);
  const int busy_ms = options_.sqlite_busy_timeout_ms;
  *open = [path, busy_ms]() -> Result<via::sql::Connection> {
    via::sql::Opened opened =
        via::sql::OpenHandle(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, busy_ms);
    const int rc = opened.rc;
    if (rc != SQLITE_OK) {
      if (rc == SQLITE_CANTOPEN) {
        return FailedPrecondition("storage_missing", "the database file is missing");
      }
      return Unavailable("storage_unavailable",
                         std::string("cannot open the database: ") + sqlite3_errstr(rc));
    }
    return std::move(opened.db);
  };
  return std::nullopt;
}

HttpResponse Api::ForwardToOwner(const HttpRequest& raw, const State& state,
                                 const AddonState& addon, bool hrana,
                                 std::optional<ForwardPlan>* plan) {
  const std::int64_t retry_after = options_.retry_after_s;
  auto unavailable = [&](const std::string& code, const std::string& message) {
    if (hrana) return HranaFailure(Unavailable(code, message), retry_after);
    HttpResponse r = JsonError(503, code, message);
    r.headers.emplace_back("Retry-After", std::to_string(retry_after));
    return r;
  };
  if (!raw.forwarded_by.empty()) {
    // The forwarding node and this one disagree about the owner (one of
    // them has not read the newest placement yet): never forward twice.
    return unavailable("owner_mismatch", "node " + raw.forwarded_by + " forwarded a request for " +
                                             addon.id + ", which node " + addon.node +
                                             " owns, not this one; retry");
  }
  auto owner = state.nodes.find(addon.node);
  if (owner == state.nodes.end()) {
    return unavailable("owner_unknown", "add-on " + addon.id + " is placed on node " + addon.node +
                                            ", which has not announced a public URL");
  }
  *plan = ForwardPlan{raw, addon.node, owner->second, addon.id, hrana};
  return HttpResponse{};
}

void Api::Reply(const Responder& respond, HttpResponse answer, std::optional<ForwardPlan> plan) {
  if (plan) return StartForward(std::move(*plan), respond);
  respond(std::move(answer));
}

void Api::StartForward(ForwardPlan plan, Responder respond) {
  const std::int64_t default_retry_after = options_.retry_after_s;
  Metrics* metrics = options_.metrics;
  auto log = options_.error_log;
  const std::string node = plan.node;
  const std::string url = plan.url;
  forwarder_->Forward(
      node, url, plan.request,
      [respond = std::move(respond), metrics, log, node, url, addon_id = plan.addon_id,
       hrana = plan.hrana, default_retry_after](Result<HttpResponse> answer,
                                                std::int64_t retry_after_s) {
        if (metrics) metrics->CountForwarded(answer.ok());
        if (answer.ok()) return respond(std::move(answer).value());
        const Status& s = answer.status();
        if (log && s.reason() != "forward_busy") {
          log("via serve: forward to node " + node + " (" + url + "): " + s.message());
        }
        if (s.reason() == "owner_answer_lost") {
          // Not retryable: the owner may have run it (see server/forward.h).
          const std::string message = "add-on " + addon_id + " is served by node " + node +
                                      ", whose answer was lost: the request may have run there";
          HttpResponse r = hrana ? HranaError(502, "owner_answer_lost", message)
                                 : JsonError(502, "owner_answer_lost", message);
          return respond(std::move(r));
        }
        std::string message;
        if (s.reason() == "forward_busy") {
          message = "add-on " + addon_id + " is served by node " + node + ": " + s.message() +
                    "; retry";
        } else if (s.reason() == "shutting_down") {
          message = "the server is shutting down; retry";
        } else {
          message = "add-on " + addon_id + " is served by node " + node +
                    ", which did not answer; retry";
        }
        const int status = s.code() == StatusCode::kUnavailable ? 503 : 502;
        HttpResponse r = hrana ? HranaError(status, s.reason(), message)
                               : JsonError(status, s.reason(), message);
        if (status == 503) {
          r.headers.emplace_back("Retry-After",
                                 std::to_string(retry_after_s > 0 ? retry_after_s
                                                                  : default_retry_after));
        }
        respond(std::move(r));
      });
}

}  // namespace via::server
