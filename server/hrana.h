#pragma once

// The Hrana "HTTP API v2" pipeline engine (JSON encoding), independent of any
// HTTP code: the HTTP server resolves the credential to a database, then hands
// the `POST /v2/pipeline` body to HranaEngine::HandlePipeline() (or parses it
// itself and calls Execute()) and sends back the encoded response.
//
// Streams and batons. A pipeline with a null (or absent) baton opens a stream:
// a dedicated SQLite connection that lives between HTTP requests, so that a
// transaction can span several pipelines. Every response that leaves the stream
// open carries a NEW baton (32 random bytes, base64url); the baton of the
// request is consumed and refused from then on. A stream ends with a `close`
// request (the response baton is null), after Limits::stream_idle_timeout_ms
// without requests, or when the server calls CloseStreamsFor(); an open
// transaction is rolled back in every case.
//
// A stream belongs to the database key it was opened with (for instance
// "<addon id>/<generation>"); a baton presented with another key is refused, so
// a credential for one add-on can never continue another add-on's stream.
//
// Statuses returned by Execute()/HandlePipeline() (the whole HTTP request
// fails; per-request SQL errors are results, not statuses, see hrana_session.h):
//   InvalidArgument  "invalid_pipeline"     malformed body (HandlePipeline only): 400
//   InvalidArgument  "baton_invalid"        unknown or forged baton: 400
//   InvalidArgument  "baton_reused"         a baton that was already used: 400
//   InvalidArgument  "stream_expired"       the stream was idle too long: 400
//   Aborted          "stream_busy"          another request on this stream is running
//   PermissionDenied "baton_wrong_database" the baton belongs to another database: 403
//   Unavailable      "too_many_streams"     Limits::max_streams streams are open, or
//                                           Limits::max_streams_per_database of this
//                                           database key: 503
//   whatever the caller passed to CloseStreamsFor() for a stream it closed
//   whatever the connection factory returned, with context
// Precise errors for dead batons are kept for Limits::tombstone_ttl_ms; after
// that such a baton is "baton_invalid".
//
// Connection reuse (when Limits::pooled_connections > 0; then the connection
// factory is not called for every new stream): a stream that ends with `close`, with no transaction open
// and no per-connection state changed (Session::TakeReusableConnection), gives
// its connection back to a small pool of its database key; the next new stream
// of that key reuses it (SQLite's parsed schema included) unless the file was
// moved or deleted since it was opened. CloseStreamsFor() also closes the
// pooled connections of the keys it matches, and idle ones close after
// Limits::stream_idle_timeout_ms. All keys together keep at most
// kPoolCapFactor * Limits::pooled_connections idle connections; beyond that the
// least recently returned one (of any key) is closed.
//
// Thread-safety: all methods may be called concurrently from any threads. A
// stream runs one pipeline at a time; SQL, and closing any connection (which
// may checkpoint and fsync), runs outside the engine's lock.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "domain/status.h"
#include "server/hrana_json.h"
#include "server/hrana_proto.h"
#include "server/hrana_session.h"

namespace via::server {

class HranaEngine {
 public:
  // Milliseconds on any monotonic-enough scale (Unix time is fine). Called
  // from several threads at once, also while statements run (for timeouts).
  using Clock = std::function<std::int64_t()>;
  // Opens a new connection to the right database file. Called once per new
  // stream that finds no pooled connection, outside the engine's lock. The
  // engine applies the SQL policy to it (hrana::ConfigureConnection,
  // sql_policy.h) and owns it from then on; the factory may set pragmas of its
  // own and should set a busy timeout, which bounds how long a statement waits
  // for another stream's lock (statement_timeout_ms does not cover that wait).
  using ConnectionFactory = std::function<Result<sql::Connection>()>;

  // The pool of idle connections holds at most this many times
  // Limits::pooled_connections connections over all database keys.
  static constexpr std::size_t kPoolCapFactor = 4;

  HranaEngine(hrana::Limits limits, Clock clock);
  // Closes every stream, rolling back open transactions. No call may be
  // running.
  ~HranaEngine();
  HranaEngine(const HranaEngine&) = delete;
  HranaEngine& operator=(const HranaEngine&) = delete;

  // Parses `body`, runs it on the stream of `database_key` and returns the
  // response body. Errors: see the list above.
  Result<std::string> HandlePipeline(std::string_view database_key, std::string_view body,
                                     const ConnectionFactory& open_connection);

  // Runs `request` on the stream named by its baton (or a new stream) and
  // returns one result per request, in order; every request runs even when an
  // earlier one failed. Errors: see the list above (never "invalid_pipeline").
  Result<hrana::PipelineResponse> Execute(std::string_view database_key,
                                          const hrana::PipelineRequest& request,
                                          const ConnectionFactory& open_connection);

  // Runs a Hrana 3 cursor (`POST /v3/cursor`) on the stream named by the
  // request's baton (or a new stream): `start` gets the baton that continues
  // the stream before any entry, then `sink` gets the entries as the
  // statements run (Session::RunCursor). When `start` or `sink` returns false
  // (the reader is gone) the stream is closed, its transaction rolled back,
  // and the announced baton answers Aborted "cursor_abandoned". Errors (before
  // `start` was called): as for Execute().
  Status ExecuteCursor(std::string_view database_key, const hrana::CursorRequest& request,
                       const ConnectionFactory& open_connection,
                       const std::function<bool(const std::string& baton)>& start,
                       const hrana::CursorSink& sink);

  // Closes every stream whose database key satisfies `predicate` (for
  // instance all streams of an add-on that was destroyed or restored, or of a
  // revoked credential generation). Idle streams close at once; a running
  // pipeline has its statement interrupted, its remaining requests fail with
  // STREAM_CLOSED, and its response baton is null. A later request with one of
  // their batons gets `reason` (e.g. Unauthenticated "credential_revoked").
  // Returns the number of streams closed. `predicate` runs under the engine's
  // lock and must not call back into the engine.
  std::size_t CloseStreamsFor(const std::function<bool(std::string_view database_key)>& predicate,
                              const Status& reason);

  // Closes streams idle for Limits::stream_idle_timeout_ms or longer and
  // returns how many. Execute() also does this at most once a second; a server
  // may call it from a timer so that abandoned transactions release their
  // locks promptly.
  std::size_t SweepIdle();

  // True when `baton` continues an idle stream of `database_key` that holds
  // its database's write lock (its last pipeline left a write transaction
  // open). At most one stream per database file does at any time.
  bool HoldsWriteLock(std::string_view database_key, std::string_view baton) const;

  // Streams currently open (idle or running).
  std::size_t open_streams() const;
  // Idle connections kept in the pool for new streams, over all keys.
  std::size_t pooled_connections() const;

  const hrana::Limits& limits() const { return limits_; }

 private:
  struct Stream;
  using StreamPtr = std::shared_ptr<Stream>;
  // Runs on the stream's session with the baton that will continue the
  // stream; false: the stream must close (its reader is gone).
  using Body = std::function<bool(hrana::Session& session, const std::string& next_baton)>;
  // Takes the stream of `baton` (or opens one), runs `body` and releases the
  // stream; returns the baton that continues it, null when it was closed.
  Result<std::optional<std::string>> Run(std::string_view database_key,
                                         const std::optional<std::string>& baton,
                                         const ConnectionFactory& open_connection,
                                         const Body& body);
  struct BatonEntry {
    std::uint64_t stream_id = 0;
    bool current = false;  // false: the baton of the request running or just run
  };
  struct Tombstone {
    Status reason;
    std::int64_t expires_ms = 0;
  };

  // All *Locked methods need mu_; streams they remove go to `dead` and pooled
  // connections they drop to `unpooled`, which the caller destroys after
  // unlocking (closing a connection may take time).
  Result<StreamPtr> AcquireLocked(std::string_view database_key, const std::string& baton,
                                  std::int64_t now, std::vector<StreamPtr>* dead);
  void RemoveLocked(const StreamPtr& stream, const Status* reason, std::vector<StreamPtr>* dead);
  // Drops the stream from streams_ and streams_per_key_.
  void EraseLocked(const Stream& stream);
  std::size_t SweepLocked(std::int64_t now, std::vector<StreamPtr>* dead,
                          std::vector<sql::Connection>* unpooled);
  // Drops the least recently returned pooled connections while the pool holds
  // more than kPoolCapFactor * Limits::pooled_connections in all.
  void EnforcePoolCapLocked(std::vector<sql::Connection>* unpooled);
  void AddTombstoneLocked(const std::string& baton_hash, const Status& reason, std::int64_t now);
  const Status* FindTombstoneLocked(const std::string& baton_hash, std::int64_t now);
  Status ExpiredStatus() const;

  const hrana::Limits limits_;
  const Clock clock_;

  mutable std::mutex mu_;
  std::uint64_t next_stream_id_ = 1;
  std::int64_t last_sweep_ms_ = 0;
  std::unordered_map<std::uint64_t, StreamPtr> streams_;
  std::unordered_map<std::string, std::size_t> streams_per_key_;  // open streams by database key
  std::unordered_map<std::string, BatonEntry> batons_;  // by SHA-256 of the baton
  std::unordered_map<std::string, Tombstone> tombstones_;
  std::deque<std::string> tombstone_order_;  // oldest first

  // Connections of streams that ended cleanly with `close`, by database key,
  // most recently used last; a new stream of that key takes one instead of
  // opening the file (see hrana.cc). Purged with CloseStreamsFor().
  struct Pooled {
    sql::Connection connection;
    std::int64_t returned_ms = 0;
    std::uint64_t seq = 0;  // order of return over all keys (for the global cap)
  };
  std::unordered_map<std::string, std::vector<Pooled>> pool_;
  std::uint64_t next_pool_seq_ = 0;
};

}  // namespace via::server
