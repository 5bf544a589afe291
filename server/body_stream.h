#pragma once

// A response body produced while it is sent: a worker thread writes chunks
// (Write), the HTTP server's connection reads them (Read) and sends each as
// an HTTP/1.1 chunk. The buffer between them is bounded: Write blocks while
// more than `max_buffered_bytes` wait to be sent, so a slow reader slows the
// writer down instead of growing the server's memory. When the connection
// fails or times out, the server calls Abandon(): a blocked or later Write
// returns false at once and the writer stops. A Write that finds no room for
// `max_wait` also abandons the body: the reader is stuck or gone without
// saying so (for instance the server stopped its I/O threads at the end of a
// drain), and the writer must not wait for it forever.
//
// Thread-safety: every method may be called from any thread; one writer and
// one reader.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

namespace via::server {

class BodyStream {
 public:
  explicit BodyStream(std::size_t max_buffered_bytes,
                      std::chrono::milliseconds max_wait = std::chrono::seconds(60))
      : max_buffered_(max_buffered_bytes), max_wait_(max_wait) {}

  // Appends `chunk` (ignored when empty), first waiting while the buffer is
  // over its bound. False when the reader abandoned the body.
  bool Write(std::string chunk);
  // No more chunks: the reader ends the body after the buffered ones.
  // Idempotent.
  void Finish();
  // The reader is gone (write error, timeout, shutdown). Idempotent.
  void Abandon();

  // Reader: the next chunk into `chunk` and true; or false with `*done` true
  // when the body is complete (or abandoned); or false with `*done` false
  // when nothing is ready yet: `wake` is kept and called once (from the
  // writer's thread) when that changes.
  bool Read(std::string* chunk, bool* done, std::function<void()> wake);

  // Bytes written and not yet read, and the most there ever were (tests).
  std::size_t buffered_bytes() const;
  std::size_t peak_buffered_bytes() const;

 private:
  void WakeLocked(std::function<void()>* out);

  const std::size_t max_buffered_;
  const std::chrono::milliseconds max_wait_;
  mutable std::mutex mu_;
  std::condition_variable room_;
  std::deque<std::string> chunks_;
  std::size_t buffered_ = 0;
  std::size_t peak_ = 0;
  bool finished_ = false;
  bool abandoned_ = false;
  std::function<void()> wake_;
};

}  // namespace via::server
