#pragma once

// Errors are values. A Status carries a code that maps to the CLI's exit codes
// (DESIGN.md section 6), a stable machine-readable reason ("name_taken",
// "chain_broken", ...), a human message that gains context as it travels up,
// and an optional remediation: a command that an operator can paste.

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace via {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad usage or input: exit 2
  kNotFound,            // exit 5
  kAlreadyExists,       // name taken: exit 4
  kFailedPrecondition,  // refused by current state: exit 4
  kAborted,             // stale expected head or lost race: exit 4
  kUnusable,            // add-on exists but is not usable: exit 3
  kDataLoss,            // integrity failure: broken chain, bad record, bad signature: exit 6
  kUnauthenticated,     // bad or expired credential (HTTP 401)
  kPermissionDenied,    // credential valid but not allowed (HTTP 403)
  kUnavailable,         // retryable (restore in progress, busy)
  kInternal,            // unexpected failure: exit 1
};

// Stable lower-case name of a code ("invalid_argument", "data_loss", ...).
const char* StatusCodeName(StatusCode code);

// Exit code of the CLI for a code (DESIGN.md section 6).
int ExitCodeFor(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string reason, std::string message, std::string remediation = {})
      : code_(code),
        reason_(std::move(reason)),
        message_(std::move(message)),
        remediation_(std::move(remediation)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  // Stable machine-readable reason; defaults to the code's name.
  const std::string& reason() const { return reason_; }
  const std::string& message() const { return message_; }
  const std::string& remediation() const { return remediation_; }
  // Who must act when there is no command to paste: operator | app_developer
  // | security | platform ("" when the remediation says it all).
  const std::string& owner() const { return owner_; }

  // Prefixes the message with what the caller was doing ("snapshot ad_x: ...").
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    Status s = *this;
    s.message_ = context + ": " + message_;
    return s;
  }
  Status WithRemediation(std::string remediation) const {
    Status s = *this;
    s.remediation_ = std::move(remediation);
    return s;
  }
  Status WithOwner(std::string owner) const {
    Status s = *this;
    s.owner_ = std::move(owner);
    return s;
  }
  std::string ToString() const;

  bool operator==(const Status&) const = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string reason_;
  std::string message_;
  std::string remediation_;
  std::string owner_;
};

// Shorthands. `reason` is the stable code that JSON errors print.
inline Status InvalidArgument(std::string reason, std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(reason), std::move(message));
}
inline Status NotFound(std::string reason, std::string message) {
  return Status(StatusCode::kNotFound, std::move(reason), std::move(message));
}
inline Status AlreadyExists(std::string reason, std::string message) {
  return Status(StatusCode::kAlreadyExists, std::move(reason), std::move(message));
}
inline Status FailedPrecondition(std::string reason, std::string message) {
  return Status(StatusCode::kFailedPrecondition, std::move(reason), std::move(message));
}
inline Status Aborted(std::string reason, std::string message) {
  return Status(StatusCode::kAborted, std::move(reason), std::move(message));
}
inline Status DataLoss(std::string reason, std::string message) {
  return Status(StatusCode::kDataLoss, std::move(reason), std::move(message));
}
inline Status Unavailable(std::string reason, std::string message) {
  return Status(StatusCode::kUnavailable, std::move(reason), std::move(message));
}
inline Status Internal(std::string message) {
  return Status(StatusCode::kInternal, "internal", std::move(message));
}

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace via

// Returns early from the enclosing function when `expr` (a Status) is not OK.
#define VIA_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::via::Status via_status_ = (expr);        \
    if (!via_status_.ok()) return via_status_; \
  } while (0)

#define VIA_CONCAT_INNER_(a, b) a##b
#define VIA_CONCAT_(a, b) VIA_CONCAT_INNER_(a, b)

// `VIA_ASSIGN_OR_RETURN(auto x, MakeX());` binds the value or returns the error.
#define VIA_ASSIGN_OR_RETURN(lhs, expr) \
  VIA_ASSIGN_OR_RETURN_IMPL_(VIA_CONCAT_(via_result_, __LINE__), lhs, expr)
#define VIA_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()
