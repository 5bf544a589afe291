#pragma once

// JSON renderings of events and records for `audit log --json` and friends.
// Field names are the snake_case names of domain/events.h; bytes are base64.

#include <nlohmann/json.hpp>

#include "domain/events.h"

namespace via::cli {

nlohmann::json EventFieldsJson(const Event& event);

}  // namespace via::cli
