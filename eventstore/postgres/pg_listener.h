#pragma once

// LISTEN via_log on a dedicated PostgreSQL connection: how `via serve` nodes
// learn of appends made by other processes and machines at once, instead of
// at their next poll (docs/operations.md "Several nodes"). An append notifies
// channel `via_log` in its transaction (pg_log_store.h), so a notification
// arrives only after the records it announces are committed and readable.
//
// A listener only wakes its owner; it never reads the log. Notifications that
// arrive while the owner is busy are coalesced into one wake. When the
// connection breaks, Wait fails with Unavailable("log_unreachable") and the
// owner falls back to polling until Reconnect succeeds; a notification sent
// while no connection listened is lost, which the poll covers.
//
// Not thread-safe: one thread waits on it.

#include <cstdint>
#include <memory>
#include <string>

#include "domain/status.h"
#include "eventstore/postgres/pq.h"

namespace via::eventstore::postgres {

class PgListener {
 public:
  // Connects to the log at `url` (as PgLogStore: password from PGPASSFILE)
  // and LISTENs on `channel`. Errors: as Conn::Connect.
  static Result<std::unique_ptr<PgListener>> Open(const std::string& url,
                                                  const std::string& channel);
  ~PgListener();
  PgListener(const PgListener&) = delete;
  PgListener& operator=(const PgListener&) = delete;

  // Waits at most `timeout_ms` for notifications on the channel. Returns
  // true when at least one arrived (every one that arrived is consumed),
  // false on timeout. Errors: Unavailable "log_unreachable" when the
  // connection broke (call Reconnect).
  Result<bool> Wait(std::int64_t timeout_ms);

  // Connects and LISTENs again after a failure.
  Status Reconnect();

 private:
  PgListener(std::string url, std::string channel) : url_(std::move(url)), channel_(std::move(channel)) {}
  Status Listen();
  // Consumes every queued notification; true when there was one.
  bool Drain();

  std::string url_;
  std::string channel_;
  Conn conn_;
};

}  // namespace via::eventstore::postgres
