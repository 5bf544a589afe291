#pragma once

// The one time format of every `--json` output and of the access log
// (docs/cli.md "JSON conventions"): RFC 3339, UTC, milliseconds, e.g.
// "2026-12-06T13:00:00.123Z".

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace via {

// Unix milliseconds as RFC 3339 UTC with exactly three fraction digits.
std::string Rfc3339Ms(std::int64_t unix_ms);

// Unix milliseconds of `text` when it is exactly that form,
// YYYY-MM-DDTHH:MM:SS.mmmZ with a valid date and time of day; nullopt
// otherwise (for tests and tools that read our output).
std::optional<std::int64_t> ParseRfc3339Ms(std::string_view text);
inline bool IsRfc3339Ms(std::string_view text) { return ParseRfc3339Ms(text).has_value(); }

}  // namespace via
