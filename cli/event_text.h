#pragma once

// Events as text for people: the one-line summary that `via audit log` prints
// after each record's time, actor and type, and that the timeline page shows.
// Text from the log is returned as it is; each medium escapes it (a terminal
// with TerminalSafe, HTML with the page's escaping).

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "domain/events.h"

namespace via::cli {

// A one-line summary of what the event says, naming add-ons as
// "NAME (ID)" where `names` (id -> name) knows them, e.g.
// "app-db (ad_01…) generation 3".
std::string EventSummary(const Event& event, const std::map<std::string, std::string>& names);

// Unix milliseconds as RFC 3339 UTC with milliseconds: 2026-01-01T00:00:00.123Z.
std::string Rfc3339(std::int64_t ms);

// Control characters (and DEL) escaped as \n, \t, \xNN, so that text from the
// log cannot move the cursor or recolour a terminal.
std::string TerminalSafe(std::string_view text);

}  // namespace via::cli
