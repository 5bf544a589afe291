#pragma once

// Readiness for systemd (a unit with Type=notify): `via serve` says READY=1
// once it listens and STOPPING=1 when it begins to drain, through
// libsystemd's sd_notify(3).
//
// libsystemd.so.0 is loaded with dlopen, and only when $NOTIFY_SOCKET is set
// (that is, when systemd, or a test standing in for it, asked for
// notifications): via needs no libsystemd headers to build, a via run by hand
// or in a container never loads it, and the Debian package depends on
// libsystemd0, which every Debian system with apt has.
//
// Thread-safety: Notify() may be called from any thread.

#include <functional>
#include <string>

namespace via::server {

// Sends `state` ("READY=1\nSTATUS=...") to $NOTIFY_SOCKET. Does nothing when
// the variable is unset. When it is set but libsystemd cannot be loaded or
// the message cannot be sent, says so once on `error_log` (systemd then
// times the start out: the unit's TimeoutStartSec).
void NotifySystemd(const std::string& state,
                   const std::function<void(const std::string&)>& error_log);

}  // namespace via::server
