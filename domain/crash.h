#pragma once

// Named crash points for recovery tests (DESIGN.md section 5: every step of
// every write path can be interrupted). Production code calls
// `crash.At("snapshot.after_file")` at each point; a test sets the name (the
// CLI reads $VIA_CRASH_AT) and the process kills itself with SIGKILL there,
// exactly as a power cut or `kill -9` would stop it. Unset, it does nothing.
//
// Points: provision.before_file, provision.after_file,
// snapshot.before_file, snapshot.during_file, snapshot.after_file,
// restore.before_file, restore.during_file, restore.after_file,
// repair.before_file, repair.after_file, projection.before_commit.

#include <string>
#include <string_view>

namespace via {

class CrashPoints {
 public:
  CrashPoints() = default;
  explicit CrashPoints(std::string armed) : armed_(std::move(armed)) {}
  // Kills the process (SIGKILL) when `name` is the armed point.
  void At(std::string_view name) const;
  bool armed() const { return !armed_.empty(); }

 private:
  std::string armed_;
};

}  // namespace via
