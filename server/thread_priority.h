#pragma once

// CPU priority of the calling thread (Linux: a thread's nice value, set per
// thread with setpriority(PRIO_PROCESS, tid)). Raising the nice value (lower
// priority) is always allowed; lowering it again needs CAP_SYS_NICE or a
// raised RLIMIT_NICE, so code that lowers a thread's priority must expect
// that it cannot undo it (WorkPool then replaces the thread).

namespace via::server {

// The calling thread's nice value (-20..19).
int CurrentThreadNice();

// Sets the calling thread's nice value; false when the system refuses.
bool SetCurrentThreadNice(int nice);

}  // namespace via::server
