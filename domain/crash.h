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
// repair.before_file, repair.after_file, projection.before_commit,
// append.before_commit, append.commit (PostgreSQL log: just before COMMIT
// is sent), append.after_commit.
// Between the reads of one answer (where another process's commit must not
// change the answer; tests land one there): tail.between_reads,
// catchup.between_reads. A rebuild of the read model reaches
// projection.rebuild.
//
// `NAME` crashes at the first time the process reaches NAME; `NAME#N` at the
// N-th time (N >= 1), e.g. "append.before_commit#2" is the commit of the
// second append a command makes (a snapshot's SnapshotTaken after its
// SnapshotRequested). The count is per process and shared by every copy of
// CrashPoints, so it does not matter which layer holds which copy.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace via {

class CrashPoints {
 public:
  // Called at every point reached (library tests use it to land another
  // process's commit between two reads, e.g. at "tail.between_reads").
  using Callback = std::function<void(std::string_view name)>;

  CrashPoints() = default;
  explicit CrashPoints(std::string armed);
  // Points that call `callback` instead of crashing (tests only).
  static CrashPoints Calling(Callback callback);

  // Kills the process (SIGKILL) when `name` is the armed point and this is
  // the armed occurrence of it; calls the callback, if any, first.
  void At(std::string_view name) const;
  bool armed() const { return !armed_.empty() || callback_ != nullptr; }

 private:
  std::string armed_;           // the point's name, without "#N"
  std::uint64_t occurrence_ = 1;  // which time reaching it kills
  Callback callback_;
};

}  // namespace via
