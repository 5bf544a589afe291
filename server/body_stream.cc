#include "server/body_stream.h"

#include <algorithm>
#include <utility>

namespace via::server {

void BodyStream::WakeLocked(std::function<void()>* out) {
  *out = std::move(wake_);
  wake_ = nullptr;
}

bool BodyStream::Write(std::string chunk) {
  if (chunk.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    return !abandoned_;
  }
  std::function<void()> wake;
  {
    std::unique_lock<std::mutex> lock(mu_);
    // One chunk may exceed the bound on its own; it waits for an empty buffer.
    const bool room = room_.wait_for(lock, max_wait_, [&] {
      return abandoned_ || buffered_ == 0 || buffered_ + chunk.size() <= max_buffered_;
    });
    if (!room) {
      abandoned_ = true;
      chunks_.clear();
      buffered_ = 0;
      wake_ = nullptr;
    }
    if (abandoned_) return false;
    buffered_ += chunk.size();
    peak_ = std::max(peak_, buffered_);
    chunks_.push_back(std::move(chunk));
    WakeLocked(&wake);
  }
  if (wake) wake();
  return true;
}

void BodyStream::Finish() {
  std::function<void()> wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    finished_ = true;
    WakeLocked(&wake);
  }
  if (wake) wake();
}

void BodyStream::Abandon() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    abandoned_ = true;
    chunks_.clear();
    buffered_ = 0;
    wake_ = nullptr;
  }
  room_.notify_all();
}

bool BodyStream::Read(std::string* chunk, bool* done, std::function<void()> wake) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (abandoned_ || (chunks_.empty() && finished_)) {
      *done = true;
      return false;
    }
    if (chunks_.empty()) {
      *done = false;
      wake_ = std::move(wake);
      return false;
    }
    *chunk = std::move(chunks_.front());
    chunks_.pop_front();
    buffered_ -= chunk->size();
  }
  room_.notify_all();
  return true;
}

std::size_t BodyStream::buffered_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return buffered_;
}

std::size_t BodyStream::peak_buffered_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_;
}

}  // namespace via::server
