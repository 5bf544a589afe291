#include "eventstore/postgres/pg_listener.h"

#include <dlfcn.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>

namespace via::eventstore::postgres {
namespace {

// The four libpq calls a listener needs besides pq.h's, looked up in the
// libpq that LoadLibpq() already loaded.
struct NotifyApi {
  decltype(&::PQsocket) socket = nullptr;
  decltype(&::PQconsumeInput) consume_input = nullptr;
  decltype(&::PQnotifies) notifies = nullptr;
  decltype(&::PQfreemem) freemem = nullptr;
};

Result<const NotifyApi*> LoadNotifyApi() {
  VIA_RETURN_IF_ERROR(LoadLibpq().status());
  static const NotifyApi api = [] {
    NotifyApi out;
    void* lib = ::dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (lib == nullptr) return out;
    out.socket = reinterpret_cast<decltype(&::PQsocket)>(::dlsym(lib, "PQsocket"));
    out.consume_input = reinterpret_cast<decltype(&::PQconsumeInput)>(::dlsym(lib, "PQconsumeInput"));
    out.notifies = reinterpret_cast<decltype(&::PQnotifies)>(::dlsym(lib, "PQnotifies"));
    out.freemem = reinterpret_cast<decltype(&::PQfreemem)>(::dlsym(lib, "PQfreemem"));
    return out;
  }();
  if (!api.socket || !api.consume_input || !api.notifies || !api.freemem) {
    return Unavailable("libpq_missing", "libpq lacks the LISTEN/NOTIFY calls")
        .WithRemediation("apt install libpq5");
  }
  return &api;
}

// A channel name as a quoted SQL identifier.
std::string QuoteIdentifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

Result<std::unique_ptr<PgListener>> PgListener::Open(const std::string& url,
                                                     const std::string& channel) {
  VIA_RETURN_IF_ERROR(LoadNotifyApi().status());
  std::unique_ptr<PgListener> listener(new PgListener(url, channel));
  VIA_RETURN_IF_ERROR(listener->Reconnect());
  return listener;
}

PgListener::~PgListener() = default;

Status PgListener::Reconnect() {
  VIA_ASSIGN_OR_RETURN(conn_, Conn::Connect(url_, 5));
  return Listen();
}

Status PgListener::Listen() { return conn_.Exec("LISTEN " + QuoteIdentifier(channel_)); }

bool PgListener::Drain() {
  const NotifyApi& api = **LoadNotifyApi();
  bool any = false;
  while (PGnotify* n = api.notifies(conn_.raw())) {
    any = true;
    api.freemem(n);
  }
  return any;
}

Result<bool> PgListener::Wait(std::int64_t timeout_ms) {
  VIA_ASSIGN_OR_RETURN(const NotifyApi* api, LoadNotifyApi());
  if (!conn_.ok()) return Unreachable("the LISTEN connection is down");
  if (Drain()) return true;  // arrived with an earlier command's answer
  const int fd = api->socket(conn_.raw());
  if (fd < 0) return Unreachable("the LISTEN connection has no socket");
  pollfd p{fd, POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(std::clamp<std::int64_t>(timeout_ms, 0, 60000)));
  if (ready < 0) {
    if (errno == EINTR) return false;
    return Unreachable("poll on the LISTEN connection failed");
  }
  if (ready == 0) return false;
  if (api->consume_input(conn_.raw()) == 0 || !conn_.ok()) {
    conn_ = Conn();
    return Unreachable("the LISTEN connection broke");
  }
  return Drain();
}

}  // namespace via::eventstore::postgres
