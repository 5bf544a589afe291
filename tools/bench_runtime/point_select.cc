// via_point_select DB_FILE --threads N --seconds S --rows R
//
// The baseline of tools/bench_runtime/run.sh: each thread opens its own
// read-only connection to DB_FILE, prepares `SELECT v FROM t WHERE id = ?`
// once, and runs it with a random id in 1..R (bind, step every row, reset)
// for S seconds, timing every query. Prints one line:
//   ops=N seconds=S ops_per_s=X p50_us=A p99_us=B errors=E
// Exit 1 when any query failed or returned no row (so the bench's smoke test
// notices a broken pipeline).

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Worker {
  std::vector<std::uint32_t> latencies_ns;
  std::uint64_t errors = 0;
};

void Run(const char* path, int rows, Clock::time_point end, unsigned seed, Worker* out) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "via_point_select: cannot open %s: %s\n", path, sqlite3_errmsg(db));
    ++out->errors;
    sqlite3_close_v2(db);
    return;
  }
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db, "SELECT v FROM t WHERE id = ?", -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                         nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "via_point_select: prepare: %s\n", sqlite3_errmsg(db));
    ++out->errors;
    sqlite3_close_v2(db);
    return;
  }
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pick(1, rows);
  out->latencies_ns.reserve(1 << 20);
  std::size_t checksum = 0;
  for (;;) {
    const auto start = Clock::now();
    if (start >= end) break;
    sqlite3_bind_int64(stmt, 1, pick(rng));
    int found = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      const unsigned char* v = sqlite3_column_text(stmt, 0);
      checksum += v ? std::strlen(reinterpret_cast<const char*>(v)) : 0;
      ++found;
    }
    sqlite3_reset(stmt);
    const auto stop = Clock::now();
    if (rc != SQLITE_DONE || found != 1) ++out->errors;
    out->latencies_ns.push_back(static_cast<std::uint32_t>(
        std::min<long long>(std::chrono::duration_cast<std::chrono::nanoseconds>(stop - start).count(),
                            0xffffffffLL)));
  }
  if (checksum == 0) ++out->errors;  // every row has a non-empty v
  sqlite3_finalize(stmt);
  sqlite3_close_v2(db);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: via_point_select DB_FILE [--threads N] [--seconds S] [--rows R]\n");
    return 2;
  }
  const char* path = argv[1];
  int threads = 2, rows = 10000;
  double seconds = 5;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--threads") threads = std::max(1, std::atoi(argv[i + 1]));
    else if (flag == "--seconds") seconds = std::atof(argv[i + 1]);
    else if (flag == "--rows") rows = std::max(1, std::atoi(argv[i + 1]));
    else {
      std::fprintf(stderr, "via_point_select: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  std::vector<Worker> workers(threads);
  std::vector<std::thread> pool;
  const auto begin = Clock::now();
  const auto end = begin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back(Run, path, rows, end, 12345u + t, &workers[t]);
  }
  for (auto& t : pool) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  std::vector<std::uint32_t> all;
  std::uint64_t errors = 0;
  for (auto& w : workers) {
    all.insert(all.end(), w.latencies_ns.begin(), w.latencies_ns.end());
    errors += w.errors;
  }
  if (all.empty()) {
    std::printf("ops=0 seconds=%.3f ops_per_s=0 p50_us=0 p99_us=0 errors=%llu\n", elapsed,
                static_cast<unsigned long long>(errors));
    return 1;
  }
  auto quantile = [&all](double q) {
    std::size_t k = static_cast<std::size_t>(q * static_cast<double>(all.size() - 1));
    std::nth_element(all.begin(), all.begin() + k, all.end());
    return all[k] / 1000.0;
  };
  const double p50 = quantile(0.50), p99 = quantile(0.99);
  std::printf("ops=%zu seconds=%.3f ops_per_s=%.0f p50_us=%.1f p99_us=%.1f errors=%llu\n", all.size(),
              elapsed, all.size() / elapsed, p50, p99, static_cast<unsigned long long>(errors));
  return errors == 0 ? 0 : 1;
}
