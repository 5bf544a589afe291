// An app that uses its DATABASE binding through Via with the C++ client
// (docs/apps.md, docs/client.md). Link the CMake target via_client; run with
//   VIA_CONFIG_URL=http://127.0.0.1:7600 VIA_WORKLOAD_TOKEN=$(via workload token --app notes --release n1) ./app

#include <chrono>
#include <iostream>
#include <thread>

#include "client/sql.h"

// Runs one statement. The client already renews a revoked credential (it
// fetches the descriptor again and retries once); this waits out what Via
// reports as brief (a restore or a repair: unavailable, with Retry-After).
via::SqlResult<via::SqlResultSet> Execute(via::Sql& db, const via::SqlStatement& statement) {
  for (int attempt = 1;; ++attempt) {
    auto result = db.Execute(statement);
    if (result.ok() || !result.error().retryable || attempt == 5) return result;
    std::this_thread::sleep_for(std::chrono::seconds(result.error().retry_after_s.value_or(1)));
  }
}

int main() {
  // Reads VIA_CONFIG_URL and VIA_WORKLOAD_TOKEN, fetches the descriptor.
  auto db = via::Sql::Connect("DATABASE");
  if (!db.ok()) {
    // unauthorized with server_code token_expired: the app needs a new token.
    std::cerr << db.error().ToString() << "\n";
    return 1;
  }
  for (const via::SqlStatement& statement :
       {via::SqlStatement("CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, at TEXT NOT NULL)"),
        via::SqlStatement("INSERT INTO visits (at) VALUES (datetime('now'))")}) {
    if (auto done = Execute(*db, statement); !done.ok()) {
      std::cerr << done.error().ToString() << "\n";
      return 1;
    }
  }
  auto count = Execute(*db, {"SELECT count(*) FROM visits"});
  if (!count.ok()) {
    std::cerr << count.error().ToString() << "\n";
    return 1;
  }
  std::cout << "visits: " << std::get<std::int64_t>(count->rows[0][0]) << " (add-on "
            << db->descriptor().addon_id << ", generation " << db->descriptor().generation << ")\n";
  return 0;
}
