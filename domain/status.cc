#include "domain/status.h"

namespace via {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kAlreadyExists: return "already_exists";
    case StatusCode::kFailedPrecondition: return "failed_precondition";
    case StatusCode::kAborted: return "aborted";
    case StatusCode::kUnusable: return "unusable";
    case StatusCode::kDataLoss: return "data_loss";
    case StatusCode::kUnauthenticated: return "unauthenticated";
    case StatusCode::kPermissionDenied: return "permission_denied";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kInternal: return "internal";
  }
  return "internal";
}

int ExitCodeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 0;
    case StatusCode::kInvalidArgument: return 2;
    case StatusCode::kUnusable: return 3;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAborted:
    case StatusCode::kPermissionDenied: return 4;
    case StatusCode::kNotFound: return 5;
    case StatusCode::kDataLoss:
    case StatusCode::kUnauthenticated: return 6;
    case StatusCode::kUnavailable:
    case StatusCode::kInternal: return 1;
  }
  return 1;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out = reason_.empty() ? StatusCodeName(code_) : reason_;
  out += ": ";
  out += message_;
  return out;
}

}  // namespace via
