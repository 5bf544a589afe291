#pragma once

// The log backend the eventstore tests run against. The same test sources are
// built twice: eventstore_tests on the embedded SQLite log, and
// eventstore_pg_tests (VIA_TEST_LOG_BACKEND_PG) on PostgreSQL, each test's
// log in a database of its own on the throwaway cluster that ctest starts
// (tools/pg_cluster.sh, fixture "postgres", $VIA_TEST_PG_DIR). Without that
// cluster the PostgreSQL tests fail: they are never skipped.
//
// RawLog runs SQL on a home's log the way a tamperer would, with the
// append-only triggers switched off, in SQLite's dialect; on PostgreSQL it
// translates the few SQLite-only spellings the tests use.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sqlite3.h>

#include <catch2/catch.hpp>

#include "eventstore/event_log.h"
#include "eventstore/postgres/pg_log_store.h"
#include "eventstore/postgres/pq.h"
#include "testing.h"

namespace via::testing {

#ifdef VIA_TEST_LOG_BACKEND_PG
inline constexpr bool kPostgresLog = true;
#else
inline constexpr bool kPostgresLog = false;
#endif

// The cluster started by tools/pg_cluster.sh: its admin URL (database
// "postgres"); sets PGPASSFILE to the cluster's password file.
inline std::string PgClusterUrl() {
  const char* dir = std::getenv("VIA_TEST_PG_DIR");
  REQUIRE(dir != nullptr);  // ctest sets it (fixture "postgres")
  std::ifstream in(std::filesystem::path(dir) / "url");
  std::string url;
  std::getline(in, url);
  REQUIRE_FALSE(url.empty());
  ::setenv("PGPASSFILE", (std::filesystem::path(dir) / "pgpass").c_str(), 1);
  return url;
}

// `url` with its database replaced by `database`.
inline std::string WithDatabase(const std::string& url, const std::string& database) {
  return url.substr(0, url.rfind('/') + 1) + database;
}

// Creates a new empty database (as a copy of `template_db` when given) and
// returns its URL. TestDatabase drops it again.
inline std::string NewPgDatabase(const std::string& template_db = "") {
  static int counter = 0;
  const std::string admin = PgClusterUrl();
  const std::string name =
      "via_t" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
  auto conn = eventstore::postgres::Conn::Connect(admin);
  REQUIRE(conn.ok());
  std::string sql = "CREATE DATABASE " + name;
  if (!template_db.empty()) sql += " TEMPLATE " + template_db;
  Status created = conn->Exec(sql);
  INFO(created.ToString());
  REQUIRE(created.ok());
  return WithDatabase(admin, name);
}

// A test's log location: on PostgreSQL a new database, dropped with this
// object (its connections ended first); on SQLite empty (the home's file).
class TestLogDatabase {
 public:
  explicit TestLogDatabase(const std::string& template_db = "")
      : url_(kPostgresLog ? NewPgDatabase(template_db) : std::string()),
        admin_(kPostgresLog ? PgClusterUrl() : std::string()) {}
  // No Catch assertions here: static fixtures end after the test run.
  ~TestLogDatabase() {
    if (url_.empty()) return;
    auto conn = eventstore::postgres::Conn::Connect(admin_);
    if (conn.ok()) (void)conn->Exec("DROP DATABASE IF EXISTS " + name() + " WITH (FORCE)");
  }
  TestLogDatabase(const TestLogDatabase&) = delete;
  TestLogDatabase& operator=(const TestLogDatabase&) = delete;

  const std::string& url() const { return url_; }
  std::string name() const { return url_.substr(url_.rfind('/') + 1); }

 private:
  std::string url_;
  std::string admin_;
};

// Raw access to the log of a home (either backend).
class RawLog {
 public:
  explicit RawLog(const eventstore::Home& home) : home_(home) {
    auto url = home.LogUrl();
    REQUIRE(url.ok());
    if (*url) url_ = **url;
    REQUIRE(url_.empty() != kPostgresLog);
  }

  // Runs `sql` (binding `blob` to ?1 when given) with the triggers off.
  // Returns whether it succeeded.
  bool Tamper(const std::string& sql, const Bytes* blob = nullptr) {
    if (kPostgresLog) {
      auto& conn = Connect();
      REQUIRE(conn.Exec("BEGIN").ok());
      REQUIRE(conn.Exec("SET LOCAL session_replication_role = replica").ok());
      const std::string translated = Translate(sql);
      auto r = blob ? conn.Query(translated.c_str(), {eventstore::postgres::Param::Bytea(*blob)})
                    : conn.Query(translated.c_str());
      INFO(r.status().ToString());
      if (!r.ok()) {
        (void)conn.Exec("ROLLBACK");
        return false;
      }
      return conn.Exec("COMMIT").ok();
    }
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(home_.log_db().c_str(), &raw) == SQLITE_OK);
    sqlite3_exec(raw,
                 "DROP TRIGGER IF EXISTS records_no_update;"
                 "DROP TRIGGER IF EXISTS records_no_delete;",
                 nullptr, nullptr, nullptr);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(raw, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    if (blob) {
      sqlite3_bind_blob(stmt, 1, blob->data(), static_cast<int>(blob->size()), SQLITE_TRANSIENT);
    }
    const bool ok = sqlite3_step(stmt) == SQLITE_DONE;
    sqlite3_finalize(stmt);
    sqlite3_close(raw);
    return ok;
  }

  // Runs `sql` as Via's own connection would: triggers on. Whether it succeeded.
  bool Exec(const std::string& sql) {
    if (kPostgresLog) return Connect().Exec(Translate(sql)).ok();
    sqlite3* raw = nullptr;
    sqlite3_open(home_.log_db().c_str(), &raw);
    int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(raw);
    return rc == SQLITE_OK;
  }

  // The first column of the first row of `sql`, as bytes (NULL: empty).
  Bytes Bytes1(const std::string& sql) {
    if (kPostgresLog) {
      auto& conn = Connect();
      // bytea and text arrive as their bytes; integers as text.
      auto r = conn.Query(Translate(sql).c_str());
      INFO(r.status().ToString());
      REQUIRE(r.ok());
      REQUIRE(r->rows() > 0);
      ByteView b = r->Bytes(0, 0);
      return Bytes(b.begin(), b.end());
    }
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(home_.log_db().c_str(), &raw) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(raw, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt, 0));
    Bytes out(p, p + sqlite3_column_bytes(stmt, 0));
    sqlite3_finalize(stmt);
    sqlite3_close(raw);
    return out;
  }

  // An integer result (the query is cast to bigint on PostgreSQL).
  std::int64_t Int(const std::string& sql) {
    if (kPostgresLog) {
      auto& conn = Connect();
      auto r = conn.Query(("SELECT (" + Translate(sql) + ")::bigint").c_str());
      INFO(r.status().ToString());
      REQUIRE(r.ok());
      REQUIRE(r->rows() > 0);
      return r->Int8(0, 0);
    }
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(home_.log_db().c_str(), &raw) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(raw, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    auto value = static_cast<std::int64_t>(sqlite3_column_int64(stmt, 0));
    sqlite3_finalize(stmt);
    sqlite3_close(raw);
    return value;
  }

  const std::string& url() const { return url_; }

 private:
  // One connection per RawLog, opened on first use.
  eventstore::postgres::Conn& Connect() {
    if (!conn_) {
      auto conn = eventstore::postgres::Conn::Connect(url_);
      REQUIRE(conn.ok());
      REQUIRE(conn->Exec("SET search_path = via").ok());
      conn_ = std::move(conn).value();
    }
    return *conn_;
  }

  // SQLite spellings the tests use, in PostgreSQL's.
  static std::string Translate(std::string sql) {
    auto replace = [&](const std::string& from, const std::string& to) {
      for (std::size_t at = sql.find(from); at != std::string::npos;
           at = sql.find(from, at + to.size())) {
        sql.replace(at, from.size(), to);
      }
    };
    replace("CAST(?1 AS TEXT)", "convert_from($1, 'UTF8')");
    replace("?1", "$1");
    replace("zeroblob(32)", "decode(repeat('00', 32), 'hex')");
    replace("PRAGMA user_version", "SELECT format FROM log_meta");
    replace("checkpoint IS NOT NULL FROM", "(checkpoint IS NOT NULL)::int FROM");
    return sql;
  }

  eventstore::Home home_;
  std::string url_;
  std::optional<eventstore::postgres::Conn> conn_;
};

// An EventLog of a home at `root`, with a test clock and ids, actor
// "tester": its log is the PostgreSQL database at `url`, or the home's SQLite
// file when `url` is empty.
// Releases v1..vN of app "api" on `home` and a workload token for each (30
// minutes): the first descriptor request of each release makes `via serve`
// append a GenerationDelivered.
inline std::vector<std::string> ReleaseTokens(const std::filesystem::path& home, int releases) {
  std::vector<std::string> tokens;
  for (int r = 1; r <= releases; ++r) {
    REQUIRE(Via(home, "release create --app api >/dev/null 2>&1").exit_code == 0);
    auto token = Via(home, "workload token --app api --release v" + std::to_string(r) +
                               " --ttl 30m 2>/dev/null");
    REQUIRE(token.exit_code == 0);
    while (!token.out.empty() && token.out.back() == '\n') token.out.pop_back();
    tokens.push_back(token.out);
  }
  return tokens;
}

inline std::unique_ptr<eventstore::EventLog> OpenTestEventLog(const std::filesystem::path& root,
                                                            const std::string& url,
                                                            FakeClock& clock, CountingIds& ids,
                                                            CrashPoints crash = {}) {
  eventstore::EventLog::Options options;
  options.home = eventstore::Home{root};
  options.clock = &clock;
  options.ids = &ids;
  options.actor = "tester";
  options.log_url = url;
  options.crash = std::move(crash);
  auto log = eventstore::EventLog::Open(options);
  INFO(log.status().ToString());
  REQUIRE(log.ok());
  return std::move(log).value();
}

// The head guard's first body (logs made before 2026-12-06), as SQL that
// puts it back, and a clause only it holds: the guard-upgrade tests start
// from it.
inline constexpr const char* kFirstHeadGuardSql = R"sql(CREATE OR REPLACE FUNCTION via.check_head_move() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.seq <= OLD.seq OR NEW.hash IS DISTINCT FROM
      (SELECT hash FROM via.records WHERE seq = NEW.seq) OR
      EXISTS (SELECT 1 FROM via.records WHERE seq > NEW.seq) THEN
    RAISE EXCEPTION 'the event log head only moves forward to its newest record'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$)sql";
inline constexpr const char* kFirstHeadGuardClause =
    "EXISTS (SELECT 1 FROM via.records WHERE seq > NEW.seq)";

// The body of via.check_head_move on the log at `url`.
inline std::string HeadGuardBody(const std::string& url) {
  auto conn = eventstore::postgres::Conn::Connect(url);
  REQUIRE(conn.ok());
  auto r = conn->Query("SELECT prosrc FROM pg_proc WHERE oid = 'via.check_head_move()'::regprocedure");
  REQUIRE(r.ok());
  return std::string(r->Text(0, 0));
}

// SQL that makes `role` the service role of docs/operations.md "Privileges":
// what appends need, no UPDATE, DELETE or TRUNCATE of records, no ownership.
inline std::string ServiceRoleSql(const std::string& role) {
  return "DROP ROLE IF EXISTS " + role + "; CREATE ROLE " + role +
         " NOLOGIN; GRANT USAGE ON SCHEMA via TO " + role + "; GRANT SELECT, INSERT ON via.records TO " +
         role + "; GRANT SELECT, UPDATE ON via.head TO " + role +
         "; GRANT SELECT ON via.log_meta TO " + role;
}

}  // namespace via::testing
