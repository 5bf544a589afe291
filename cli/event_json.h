#pragma once

// JSON renderings of events and records for `audit log --json` and friends.
// Field names are the snake_case names of domain/events.h, rendered by the
// JSON conventions of docs/cli.md: digests of content and secrets (sha256,
// fingerprint, secret_fingerprint) as lowercase hex, other bytes as base64,
// times as RFC 3339 under `*_at` (`expires_at_ms` prints as `expires_at`),
// durations as `*_ms` (`every_seconds` prints as `every_ms`).

#include <nlohmann/json.hpp>

#include "domain/events.h"

namespace via::cli {

nlohmann::json EventFieldsJson(const Event& event);

}  // namespace via::cli
