#include "server/maintenance.h"

#include <chrono>
#include <vector>

#include "server/thread_priority.h"

namespace via::server {

MaintenanceLoop::MaintenanceLoop(MaintenanceOptions options, Pass pass)
    : options_(std::move(options)), pass_(std::move(pass)) {}

MaintenanceLoop::~MaintenanceLoop() { Stop(); }

void MaintenanceLoop::Start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
}

void MaintenanceLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t MaintenanceLoop::passes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return passes_;
}

void MaintenanceLoop::Run() {
  (void)SetCurrentThreadNice(options_.nice);  // best effort: lower is always allowed
  std::int64_t wait_ms = options_.first_delay_ms;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, std::chrono::milliseconds(wait_ms), [this] { return stopping_; });
      if (stopping_) return;
    }
    std::vector<std::string> lines = pass_();
    if (options_.log) {
      for (const std::string& line : lines) options_.log("via serve: maintenance: " + line);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++passes_;
    }
    wait_ms = options_.interval_ms;
  }
}

}  // namespace via::server
