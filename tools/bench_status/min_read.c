/* The baseline of the status benchmark: a minimal program that opens a SQLite
 * file and reads one row. Usage: via_min_read DB */
#include <sqlite3.h>
#include <stdio.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  sqlite3* db = NULL;
  if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return 1;
  sqlite3_stmt* stmt = NULL;
  if (sqlite3_prepare_v2(db, "SELECT name FROM addons LIMIT 1", -1, &stmt, NULL) != SQLITE_OK) {
    return 1;
  }
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) fputs((const char*)sqlite3_column_text(stmt, 0), stdout);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return rc == SQLITE_ROW ? 0 : 1;
}
