#pragma once

// The page of `via audit timeline --html FILE`: one self-contained HTML file
// (inline CSS and script, no request of any kind, a Content-Security-Policy
// that allows only its own style and script by hash) showing the log's events
// by add-on and app over the records' order, each add-on's lifecycle span,
// rotations, revocations, snapshots, restores, and every checkpoint with its
// verification state; filters by add-on, app, event type and text, which also
// read the page's URL (?addon=NAME|ID&app=APP&type=EVENT&q=TEXT).
//
// Everything that comes from the log (names, actors, labels, reasons) is
// escaped for HTML, and the data the script reads is only the escaped DOM, so
// a hostile log can neither inject markup nor run script.

#include <cstdint>
#include <string>

#include "commands/timeline.h"

namespace via::cli {

// Escapes text for HTML content and double-quoted attribute values; control
// characters become visible \xNN escapes.
std::string HtmlEscape(std::string_view text);

// The whole page. `generated_at_ms` and `version` are shown in its header.
std::string RenderTimelineHtml(const commands::Timeline& timeline, std::int64_t generated_at_ms,
                               const std::string& version);

}  // namespace via::cli
