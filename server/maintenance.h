#pragma once

// A background loop for `via serve`'s upkeep (snapshot schedules, retention,
// verification): one pass at a time on one thread of its own, at a low CPU
// priority, then a pause of `interval_ms` before the next, so that the jobs
// never run side by side and leave the cores to the apps. The pass itself is
// given by the composition root (cli/serve.cc runs commands/maintenance.h).

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace via::server {

struct MaintenanceOptions {
  std::int64_t interval_ms = 60 * 1000;  // pause between passes
  std::int64_t first_delay_ms = 5 * 1000;  // after start, before the first pass
  int nice = 10;                          // the thread's nice value
  std::function<void(const std::string&)> log;  // one line per job; may be null
};

class MaintenanceLoop {
 public:
  // `pass` runs once per round and returns the lines to log.
  using Pass = std::function<std::vector<std::string>()>;
  MaintenanceLoop(MaintenanceOptions options, Pass pass);
  ~MaintenanceLoop();  // Stop()
  MaintenanceLoop(const MaintenanceLoop&) = delete;
  MaintenanceLoop& operator=(const MaintenanceLoop&) = delete;

  void Start();
  // Waits for a pass in progress to end; no pass starts after.
  void Stop();
  std::uint64_t passes() const;

 private:
  void Run();

  MaintenanceOptions options_;
  Pass pass_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::uint64_t passes_ = 0;
  std::thread thread_;
};

}  // namespace via::server
