#include "server/hrana.h"

#include <sqlite3.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>

#include "crypto/crypto.h"
#include "server/sql_policy.h"

namespace via::server {

namespace {

constexpr std::size_t kBatonBytes = 32;
constexpr std::int64_t kSweepEveryMs = 1000;

// True when the connection's file was renamed, replaced or deleted since it
// was opened (then it must not serve another stream).
bool FileMoved(sqlite3* db) {
  int moved = 0;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK) return true;
  return moved != 0;
}

// Batons are looked up by their SHA-256, so that the maps never hold a usable
// baton and lookups do not compare secrets byte by byte.
std::string HashBaton(std::string_view baton) {
  Hash256 h = crypto::Sha256::Digest(baton);
  return std::string(reinterpret_cast<const char*>(h.data()), h.size());
}

std::string NewBaton() { return crypto::Base64UrlEncode(crypto::RandomBytes(kBatonBytes)); }

}  // namespace

struct HranaEngine::Stream {
  std::uint64_t id = 0;
  std::string database_key;
  // Set once the connection is open. While `busy`, only the thread running the
  // pipeline touches it (Kill() is the thread-safe exception).
  std::unique_ptr<hrana::Session> session;
  std::string baton_hash;           // the baton that continues this stream; empty while busy
  std::string previous_baton_hash;  // the baton of the last pipeline, now refused as reused
  std::int64_t last_used_ms = 0;
  bool busy = false;
  bool holds_write_lock = false;      // as of the end of its last pipeline
  std::optional<Status> kill_reason;  // set by CloseStreamsFor() while busy
};

HranaEngine::HranaEngine(hrana::Limits limits, Clock clock)
    : limits_(std::move(limits)), clock_(std::move(clock)) {}

HranaEngine::~HranaEngine() {
  std::unordered_map<std::uint64_t, StreamPtr> streams;
  std::unordered_map<std::string, std::vector<Pooled>> pool;
  {
    std::lock_guard<std::mutex> lock(mu_);
    streams.swap(streams_);
    batons_.clear();
    pool.swap(pool_);
  }
  // Destroying the sessions rolls back and closes, outside the lock.
}

Result<std::string> HranaEngine::HandlePipeline(std::string_view database_key,
                                                std::string_view body,
                                                const ConnectionFactory& open_connection) {
  VIA_ASSIGN_OR_RETURN(hrana::PipelineRequest request, hrana::ParsePipelineRequest(body, limits_));
  VIA_ASSIGN_OR_RETURN(hrana::PipelineResponse response,
                       Execute(database_key, request, open_connection));
  return hrana::EncodePipelineResponse(response);
}

Result<hrana::PipelineResponse> HranaEngine::Execute(std::string_view database_key,
                                                     const hrana::PipelineRequest& request,
                                                     const ConnectionFactory& open_connection) {
  hrana::PipelineResponse response;
  response.results.reserve(request.requests.size());
  VIA_ASSIGN_OR_RETURN(
      response.baton,
      Run(database_key, request.baton, open_connection,
          [&](hrana::Session& session, const std::string&) {
            std::size_t budget = limits_.max_response_bytes;
            for (const hrana::StreamRequest& r : request.requests) {
              response.results.push_back(session.Handle(r, &budget));
            }
            return true;
          }));
  return response;
}

Status HranaEngine::ExecuteCursor(std::string_view database_key,
                                  const hrana::CursorRequest& request,
                                  const ConnectionFactory& open_connection,
                                  const std::function<bool(const std::string& baton)>& start,
                                  const hrana::CursorSink& sink) {
  auto baton = Run(database_key, request.baton, open_connection,
                   [&](hrana::Session& session, const std::string& next_baton) {
                     if (!start(next_baton)) return false;
                     return session.RunCursor(request.batch, sink);
                   });
  return baton.status();
}

Result<std::optional<std::string>> HranaEngine::Run(std::string_view database_key,
                                                    const std::optional<std::string>& request_baton,
                                                    const ConnectionFactory& open_connection,
                                                    const Body& body) {
  std::vector<StreamPtr> dead;  // declared first: destroyed after any lock is released
  std::vector<sql::Connection> unpooled;  // likewise: closed after the lock
  sql::Connection reused;  // a pooled connection for a new stream
  sql::Connection returned;  // destroyed (closed) after the lock when not pooled
  StreamPtr stream;
  std::string used_hash;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::int64_t now = clock_();
    if (now - last_sweep_ms_ >= kSweepEveryMs) {
      SweepLocked(now, &dead, &unpooled);
      last_sweep_ms_ = now;
    }
    if (request_baton) {
      used_hash = HashBaton(*request_baton);
      VIA_ASSIGN_OR_RETURN(stream, AcquireLocked(database_key, used_hash, now, &dead));
    } else {
      const std::string key(database_key);
      auto full = [&] {
        auto per_key = streams_per_key_.find(key);
        return streams_.size() >= limits_.max_streams ||
               (per_key != streams_per_key_.end() &&
                per_key->second >= limits_.max_streams_per_database);
      };
      if (full()) SweepLocked(now, &dead, &unpooled);
      if (streams_.size() >= limits_.max_streams) {
        return Unavailable("too_many_streams", "the SQL proxy already has " +
                                                   std::to_string(streams_.size()) +
                                                   " open streams; close streams or retry later");
      }
      if (full()) {
        return Unavailable("too_many_streams",
                           "this database already has " +
                               std::to_string(limits_.max_streams_per_database) +
                               " open streams; close streams or retry later");
      }
      stream = std::make_shared<Stream>();
      stream->id = next_stream_id_++;
      stream->database_key = std::string(database_key);
      stream->busy = true;
      streams_.emplace(stream->id, stream);
      ++streams_per_key_[stream->database_key];
      // Taken in the same critical section that registers the stream, so a
      // CloseStreamsFor() either purged it from the pool or kills this stream.
      auto pooled = pool_.find(stream->database_key);
      if (pooled != pool_.end() && !pooled->second.empty()) {
        reused = std::move(pooled->second.back().connection);
        pooled->second.pop_back();
        if (pooled->second.empty()) pool_.erase(pooled);
      }
    }
  }
  dead.clear();
  unpooled.clear();

  if (reused && FileMoved(reused.get())) reused.reset();
  if (!stream->session) {
    const bool reused_connection = static_cast<bool>(reused);
    Result<sql::Connection> connection =
        reused ? Result<sql::Connection>(std::move(reused)) : open_connection();
    Status failure;
    if (!connection.ok()) {
      failure = connection.status().WithContext("open database");
    } else if (!*connection) {
      failure = Internal("open database: the connection factory returned no connection");
    }
    if (failure.ok() && !reused_connection) {
      // A new connection gets the proxy's SQL policy once; a pooled one kept it.
      failure = hrana::ConfigureConnection(connection->get(), limits_)
                    .WithContext("open database: configure the connection");
    }
    std::unique_ptr<hrana::Session> session;
    if (failure.ok()) {
      session = std::make_unique<hrana::Session>(std::move(connection).value(), limits_, &clock_);
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (failure.ok() && stream->kill_reason) failure = *stream->kill_reason;
    if (!failure.ok()) {
      EraseLocked(*stream);
      return failure;
    }
    stream->session = std::move(session);
  }

  // The baton that continues the stream is chosen before the body runs, so
  // that a cursor can announce it ahead of its entries.
  std::string next_baton = NewBaton();
  const bool completed = body(*stream->session, next_baton);
  if (!completed) {
    // The reader went away in the middle: nobody holds the new baton, and an
    // open transaction must not keep its locks until the stream expires.
    stream->session->Kill("the client stopped reading the cursor");
  }
  const bool holds_write_lock = stream->session->InWriteTransaction();

  std::optional<std::string> response_baton;
  std::lock_guard<std::mutex> lock(mu_);
  if (!completed && !stream->kill_reason) {
    stream->kill_reason = Aborted("cursor_abandoned", "the client stopped reading the cursor");
  }
  stream->busy = false;
  stream->holds_write_lock = holds_write_lock;
  if (!stream->previous_baton_hash.empty()) batons_.erase(stream->previous_baton_hash);
  stream->previous_baton_hash = used_hash;
  if (stream->kill_reason || stream->session->closed()) {
    if (stream->kill_reason) {
      const std::int64_t now = clock_();
      if (!used_hash.empty()) AddTombstoneLocked(used_hash, *stream->kill_reason, now);
      // A cursor may already have handed out the next baton.
      AddTombstoneLocked(HashBaton(next_baton), *stream->kill_reason, now);
    }
    returned = stream->session->TakeReusableConnection();
    if (returned && !stream->kill_reason && limits_.pooled_connections > 0) {
      std::vector<Pooled>& idle = pool_[stream->database_key];
      if (idle.size() < limits_.pooled_connections) {
        idle.push_back(Pooled{std::move(returned), clock_(), next_pool_seq_++});
        EnforcePoolCapLocked(&unpooled);
      }
    }
    RemoveLocked(stream, nullptr, &dead);
  } else {
    stream->baton_hash = HashBaton(next_baton);
    batons_[stream->baton_hash] = BatonEntry{stream->id, true};
    stream->last_used_ms = clock_();
    response_baton = std::move(next_baton);
  }
  return response_baton;
}

Result<HranaEngine::StreamPtr> HranaEngine::AcquireLocked(std::string_view database_key,
                                                          const std::string& baton_hash,
                                                          std::int64_t now,
                                                          std::vector<StreamPtr>* dead) {
  auto entry = batons_.find(baton_hash);
  if (entry == batons_.end()) {
    if (const Status* reason = FindTombstoneLocked(baton_hash, now)) return *reason;
    return InvalidArgument("baton_invalid",
                           "unknown baton: the stream does not exist or was closed; "
                           "start a new stream with a null baton");
  }
  StreamPtr stream = streams_.at(entry->second.stream_id);
  if (stream->database_key != database_key) {
    return Status(StatusCode::kPermissionDenied, "baton_wrong_database",
                  "the baton belongs to a stream of another database");
  }
  if (!entry->second.current) {
    if (stream->busy) {
      return Aborted("stream_busy",
                     "another request on this stream is running; requests on a stream must be "
                     "sent one at a time");
    }
    return InvalidArgument("baton_reused",
                           "the baton was already used; send the baton of the latest response");
  }
  if (now - stream->last_used_ms >= limits_.stream_idle_timeout_ms) {
    Status expired = ExpiredStatus();
    RemoveLocked(stream, &expired, dead);
    return expired;
  }
  stream->busy = true;
  entry->second.current = false;
  stream->baton_hash.clear();
  return stream;
}

void HranaEngine::EraseLocked(const Stream& stream) {
  if (streams_.erase(stream.id) == 0) return;
  auto per_key = streams_per_key_.find(stream.database_key);
  if (per_key != streams_per_key_.end() && --per_key->second == 0) streams_per_key_.erase(per_key);
}

void HranaEngine::RemoveLocked(const StreamPtr& stream, const Status* reason,
                               std::vector<StreamPtr>* dead) {
  EraseLocked(*stream);
  if (!stream->baton_hash.empty()) {
    batons_.erase(stream->baton_hash);
    if (reason) AddTombstoneLocked(stream->baton_hash, *reason, clock_());
  }
  if (!stream->previous_baton_hash.empty()) batons_.erase(stream->previous_baton_hash);
  dead->push_back(stream);
}

std::size_t HranaEngine::SweepLocked(std::int64_t now, std::vector<StreamPtr>* dead,
                                     std::vector<sql::Connection>* unpooled) {
  std::vector<StreamPtr> idle;
  for (const auto& [id, stream] : streams_) {
    if (!stream->busy && now - stream->last_used_ms >= limits_.stream_idle_timeout_ms) {
      idle.push_back(stream);
    }
  }
  Status expired = ExpiredStatus();
  for (const StreamPtr& stream : idle) RemoveLocked(stream, &expired, dead);
  for (auto it = pool_.begin(); it != pool_.end();) {
    std::vector<Pooled>& conns = it->second;
    auto expired_begin = std::stable_partition(conns.begin(), conns.end(), [&](const Pooled& p) {
      return now - p.returned_ms < limits_.stream_idle_timeout_ms;
    });
    for (auto p = expired_begin; p != conns.end(); ++p) {
      unpooled->push_back(std::move(p->connection));
    }
    conns.erase(expired_begin, conns.end());
    it = conns.empty() ? pool_.erase(it) : std::next(it);
  }
  FindTombstoneLocked(std::string(), now);  // prunes expired tombstones
  return idle.size();
}

std::size_t HranaEngine::SweepIdle() {
  std::vector<StreamPtr> dead;
  std::vector<sql::Connection> unpooled;
  std::lock_guard<std::mutex> lock(mu_);
  const std::int64_t now = clock_();
  last_sweep_ms_ = now;
  return SweepLocked(now, &dead, &unpooled);
}

void HranaEngine::EnforcePoolCapLocked(std::vector<sql::Connection>* unpooled) {
  const std::size_t per_key = limits_.pooled_connections;
  constexpr std::size_t kMax = std::numeric_limits<std::size_t>::max();
  const std::size_t cap = per_key > kMax / kPoolCapFactor ? kMax : per_key * kPoolCapFactor;
  std::size_t total = 0;
  for (const auto& [key, conns] : pool_) total += conns.size();
  while (total > cap) {
    // The least recently returned connection: the front of some key's list.
    auto oldest = pool_.end();
    for (auto it = pool_.begin(); it != pool_.end(); ++it) {
      if (oldest == pool_.end() || it->second.front().seq < oldest->second.front().seq) oldest = it;
    }
    unpooled->push_back(std::move(oldest->second.front().connection));
    oldest->second.erase(oldest->second.begin());
    if (oldest->second.empty()) pool_.erase(oldest);
    --total;
  }
}

std::size_t HranaEngine::CloseStreamsFor(
    const std::function<bool(std::string_view database_key)>& predicate, const Status& reason) {
  std::vector<StreamPtr> dead;
  std::vector<sql::Connection> unpooled;  // closed after the lock, like `dead`
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<StreamPtr> matching;
  for (const auto& [id, stream] : streams_) {
    if (predicate(stream->database_key)) matching.push_back(stream);
  }
  for (auto it = pool_.begin(); it != pool_.end();) {
    if (!predicate(it->first)) {
      ++it;
      continue;
    }
    for (Pooled& p : it->second) unpooled.push_back(std::move(p.connection));
    it = pool_.erase(it);
  }
  for (const StreamPtr& stream : matching) {
    if (stream->busy) {
      if (!stream->kill_reason) {
        stream->kill_reason = reason;
        if (stream->session) stream->session->Kill(reason.message());
      }
    } else {
      RemoveLocked(stream, &reason, &dead);
    }
  }
  return matching.size();
}

bool HranaEngine::HoldsWriteLock(std::string_view database_key, std::string_view baton) const {
  const std::string hash = HashBaton(baton);
  std::lock_guard<std::mutex> lock(mu_);
  auto entry = batons_.find(hash);
  if (entry == batons_.end() || !entry->second.current) return false;
  auto stream = streams_.find(entry->second.stream_id);
  return stream != streams_.end() && stream->second->database_key == database_key &&
         !stream->second->busy && stream->second->holds_write_lock;
}

std::size_t HranaEngine::open_streams() const {
  std::lock_guard<std::mutex> lock(mu_);
  return streams_.size();
}

std::size_t HranaEngine::pooled_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t n = 0;
  for (const auto& [key, connections] : pool_) n += connections.size();
  return n;
}

void HranaEngine::AddTombstoneLocked(const std::string& baton_hash, const Status& reason,
                                     std::int64_t now) {
  FindTombstoneLocked(std::string(), now);
  const std::size_t cap = std::max<std::size_t>(1024, 4 * limits_.max_streams);
  while (tombstones_.size() >= cap && !tombstone_order_.empty()) {
    tombstones_.erase(tombstone_order_.front());
    tombstone_order_.pop_front();
  }
  if (tombstones_.emplace(baton_hash, Tombstone{reason, now + limits_.tombstone_ttl_ms}).second) {
    tombstone_order_.push_back(baton_hash);
  }
}

const Status* HranaEngine::FindTombstoneLocked(const std::string& baton_hash, std::int64_t now) {
  while (!tombstone_order_.empty()) {
    auto it = tombstones_.find(tombstone_order_.front());
    if (it != tombstones_.end() && it->second.expires_ms > now) break;
    if (it != tombstones_.end()) tombstones_.erase(it);
    tombstone_order_.pop_front();
  }
  if (baton_hash.empty()) return nullptr;
  auto it = tombstones_.find(baton_hash);
  return it == tombstones_.end() ? nullptr : &it->second.reason;
}

Status HranaEngine::ExpiredStatus() const {
  return InvalidArgument("stream_expired",
                         "the stream was closed after " +
                             std::to_string(limits_.stream_idle_timeout_ms) +
                             " ms without requests and its open transaction was rolled back");
}

}  // namespace via::server
