#include "storage/sqlite_db.h"
#include "domain/reasons.h"

#include <sqlite3.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <system_error>
#include <thread>

namespace via::sql {

void ConnectionCloser::operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }

void StatementFinalizer::operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }

void BackupFinisher::operator()(sqlite3_backup* backup) const noexcept {
  sqlite3_backup_finish(backup);
}

Opened OpenHandle(const std::string& path, int flags, int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  Opened opened;
  opened.rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  opened.db.reset(raw);
  if (opened.rc == SQLITE_OK) {
    sqlite3_extended_result_codes(raw, 1);
    if (busy_timeout_ms > 0) sqlite3_busy_timeout(raw, busy_timeout_ms);
  }
  return opened;
}

Status CloseChecked(Connection db) {
  int rc = sqlite3_close(db.get());
  if (rc != SQLITE_OK) return Internal("close: " + ErrorText(db.get(), rc));
  (void)db.release();
  return Status::Ok();
}

std::string ErrorText(sqlite3* db, int rc) {
  std::string text;
  if (db != nullptr && sqlite3_extended_errcode(db) == rc) {
    text = sqlite3_errmsg(db);
  } else {
    text = sqlite3_errstr(rc);
  }
  text += " (code " + std::to_string(rc);
  int primary = rc & 0xff;
  if (db != nullptr && (primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN ||
                        primary == SQLITE_FULL || primary == SQLITE_PERM)) {
    if (int err = sqlite3_system_errno(db); err != 0) {
      text += ", " + std::system_category().message(err);
    }
  }
  return text + ")";
}

Stmt& Stmt::Bind(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_.get(), index, value);
  return *this;
}

Stmt& Stmt::Bind(int index, std::string_view text) {
  sqlite3_bind_text(stmt_.get(), index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::Bind(int index, ByteView blob) {
  sqlite3_bind_blob(stmt_.get(), index, blob.empty() ? "" : static_cast<const void*>(blob.data()),
                    static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::BindNull(int index) {
  sqlite3_bind_null(stmt_.get(), index);
  return *this;
}

namespace {

bool IsWriteAccessErrno(int err) { return err == EACCES || err == EROFS || err == EPERM; }

Status MapError(sqlite3* db, int rc, std::string_view what) {
  std::string message = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  const int err = db ? sqlite3_system_errno(db) : 0;
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLoss("storage_corrupt", message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable("busy", message);
    case SQLITE_CONSTRAINT:
      return FailedPrecondition("constraint", message);
    case SQLITE_FULL:
      return Status(StatusCode::kInternal, reason::kDiskFull, message);
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return Status(StatusCode::kInternal, reason::kHomeNotWritable, message);
    case SQLITE_IOERR:
      if (err == ENOSPC || err == EDQUOT) return Status(StatusCode::kInternal, reason::kDiskFull, message);
      if (IsWriteAccessErrno(err)) return Status(StatusCode::kInternal, reason::kHomeNotWritable, message);
      return Internal(message);
    case SQLITE_CANTOPEN:
      if (err == ENOSPC) return Status(StatusCode::kInternal, reason::kDiskFull, message);
      if (IsWriteAccessErrno(err)) return Status(StatusCode::kInternal, reason::kHomeNotWritable, message);
      return NotFound("cannot_open", message);
    default:
      return Internal(message);
  }
}

}  // namespace

Result<bool> Stmt::Step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return MapError(db_, rc, "sqlite step");
}

Status Stmt::Run() {
  while (true) {
    Result<bool> row = Step();
    if (!row.ok()) {
      Reset();
      return row.status();
    }
    if (!*row) break;
  }
  Reset();
  return Status::Ok();
}

void Stmt::Reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
}

std::int64_t Stmt::Int(int column) const { return sqlite3_column_int64(stmt_.get(), column); }

std::string Stmt::Text(int column) const {
  const unsigned char* p = sqlite3_column_text(stmt_.get(), column);
  int n = sqlite3_column_bytes(stmt_.get(), column);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)) : "";
}

ByteView Stmt::Blob(int column) const {
  const void* p = sqlite3_column_blob(stmt_.get(), column);
  int n = sqlite3_column_bytes(stmt_.get(), column);
  return p ? ByteView(static_cast<const std::uint8_t*>(p), static_cast<std::size_t>(n))
           : ByteView();
}

bool Stmt::IsNull(int column) const { return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL; }

Db::~Db() {
  cached_.clear();  // statements before their connection (db_ closes after)
}

namespace {

Connection OpenRaw(const std::string& path, int flags, bool uri, int* rc) {
  sqlite3* raw = nullptr;
  *rc = sqlite3_open_v2(path.c_str(), &raw, flags | (uri ? SQLITE_OPEN_URI : 0), nullptr);
  return Connection(raw);
}

// The file as a URI that opens it immutable (path characters that a URI
// gives a meaning are escaped).
std::string ImmutableUri(const std::string& path) {
  std::string uri = "file:";
  for (unsigned char c : std::filesystem::absolute(path).string()) {
    if (c == '%' || c == '?' || c == '#' || c < 0x20 || c >= 0x7f) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      uri += '%';
      uri += kHex[c >> 4];
      uri += kHex[c & 15];
    } else {
      uri += static_cast<char>(c);
    }
  }
  return uri + "?immutable=1";
}

bool HasWalContent(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path + "-wal", ec);
  return !ec && size > 0;
}

}  // namespace

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, const OpenOptions& options) {
  int flags = SQLITE_OPEN_NOMUTEX;
  if (options.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (options.create) flags |= SQLITE_OPEN_CREATE;
  }
  int rc = SQLITE_OK;
  std::unique_ptr<Db> db(new Db(OpenRaw(path, flags, false, &rc)));
  if (rc != SQLITE_OK) return MapError(db->raw(), rc, "open " + path);
  sqlite3_busy_timeout(db->raw(), options.busy_timeout_ms);
  sqlite3_extended_result_codes(db->raw(), 1);
  // Closing the last connection neither checkpoints nor deletes the WAL:
  // every `via` process would otherwise pay a checkpoint (and its fsyncs) on
  // exit, and the next one recreate the WAL and its index. The WAL is
  // checkpointed as it grows (wal_autocheckpoint), and a reader finds the
  // -shm in place even where it could not create one.
  sqlite3_db_config(db->raw(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  db->busy_timeout_ms_ = options.busy_timeout_ms;
  if (!options.read_only && options.wal_truncate_frames > 0) {
    db->wal_truncate_frames_ = options.wal_truncate_frames;
    sqlite3_wal_hook(db->raw(), &Db::WalHook, db.get());  // replaces the auto-checkpoint
  }
  if (!options.read_only && sqlite3_db_readonly(db->raw(), "main") == 1) {
    // SQLite falls back to reading a file it cannot write (a read-only mount
    // or file): for a writer that is a fault of the machine, named as such.
    return Status(StatusCode::kInternal, reason::kHomeNotWritable,
                  "open " + path + ": the file or its directory cannot be written");
  }
  if (options.read_only && options.immutable_fallback) {
    // A WAL database opens read-only only where its -shm exists or can be
    // created; in a read-only directory without one, the first read fails.
    // Nothing can write such a file, so reading it as immutable is exact,
    // unless a WAL with content is there (then the error stands).
    int probe = sqlite3_exec(db->raw(), "SELECT 1 FROM sqlite_schema LIMIT 1", nullptr, nullptr,
                             nullptr);
    int primary = probe & 0xff;
    if ((primary == SQLITE_CANTOPEN || primary == SQLITE_READONLY) && !HasWalContent(path)) {
      db.reset(new Db(OpenRaw(ImmutableUri(path), flags, true, &rc)));
      if (rc != SQLITE_OK) return MapError(db->raw(), rc, "open " + path);
      sqlite3_busy_timeout(db->raw(), options.busy_timeout_ms);
      sqlite3_extended_result_codes(db->raw(), 1);
    }
  }
  return db;
}

Status Db::Exec(std::string_view sql) {
  std::string text(sql);
  int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return MapError(db_.get(), rc, "sqlite exec");
  return Status::Ok();
}

Status Db::ExecRetryingLocks(std::string_view sql) {
  // Sleeps of 2, 4, ... ms add up to about 5 s.
  constexpr int kAttempts = 70;
  for (int attempt = 1;; ++attempt) {
    Status s = Exec(sql);
    if (s.ok() || s.reason() != "busy" || attempt == kAttempts) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(2 * attempt));
  }
}

int Db::WalHook(void* self, sqlite3* db, const char* name, int frames) {
  auto* me = static_cast<Db*>(self);
  if (frames < me->wal_truncate_frames_) return SQLITE_OK;
  // The commit is done; this only tidies. No busy waiting: where a reader or
  // another checkpoint holds the WAL, the pages copied so far stay copied and
  // a later commit truncates.
  sqlite3_busy_timeout(db, 0);
  sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  sqlite3_busy_timeout(db, me->busy_timeout_ms_);
  return SQLITE_OK;
}

Result<Stmt*> Db::Cached(std::string_view sql) {
  // Looked up by the view: a call with a literal builds no string.
  auto it = cached_.find(sql);
  if (it == cached_.end()) {
    VIA_ASSIGN_OR_RETURN(Stmt stmt, Prepare(sql));
    it = cached_.emplace(std::string(sql), std::move(stmt)).first;
  }
  return &it->second;
}

bool Db::InTransaction() const { return sqlite3_get_autocommit(db_.get()) == 0; }

Result<Stmt> Db::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return MapError(db_.get(), rc, "sqlite prepare");
  return Stmt(stmt, db_.get());
}

std::int64_t Db::Changes() const { return sqlite3_changes64(db_.get()); }

Status Db::Error(int rc, std::string_view what) const { return MapError(db_.get(), rc, what); }

Result<Transaction> Transaction::BeginImmediate(Db& db) {
  VIA_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  return Transaction(&db);
}

Result<Transaction> Transaction::BeginDeferred(Db& db) {
  VIA_RETURN_IF_ERROR(db.Exec("BEGIN"));
  return Transaction(&db);
}

Result<ReadTransaction> ReadTransaction::Begin(Db& db) {
  if (db.InTransaction()) return ReadTransaction(nullptr);
  VIA_RETURN_IF_ERROR(db.Exec("BEGIN"));
  return ReadTransaction(&db);
}

ReadTransaction::~ReadTransaction() {
  // Nothing was written: COMMIT only ends the snapshot (and cannot fail in a
  // way that matters; ROLLBACK would do the same).
  if (db_) (void)db_->Exec("COMMIT");
  if (end_) end_();
}

Transaction::~Transaction() {
  if (db_) (void)db_->Exec("ROLLBACK");
}

Status Transaction::Commit() {
  Status s = db_->Exec("COMMIT");
  if (s.ok()) db_ = nullptr;
  return s;
}

}  // namespace via::sql
