#include "providers/sqlite/fault_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string_view>

namespace via::providers::sqlite {
namespace {

constexpr std::string_view kFaultName = "snapshot_enospc";
constexpr std::string_view kLimitedSuffix = ".sqlite.tmp";
constexpr std::uint64_t kDefaultRoom = 65536;

std::atomic<std::uint64_t> g_room{kDefaultRoom};
std::atomic<std::uint64_t> g_refused{0};

sqlite3_vfs* g_real = nullptr;  // the VFS the shim wraps
sqlite3_vfs g_vfs;              // the shim
sqlite3_io_methods g_methods;   // the shim's file methods

// A file opened through the shim: our header, then the real VFS's file.
struct FaultFile {
  sqlite3_file base;  // pMethods: &g_methods, or null when the open failed
  sqlite3_file* real;
  bool limited;  // a snapshot temp file: writes past g_room fail
};

sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f)->real; }

int Close(sqlite3_file* f) { return Real(f)->pMethods->xClose(Real(f)); }
int Read(sqlite3_file* f, void* buf, int amt, sqlite3_int64 offset) {
  return Real(f)->pMethods->xRead(Real(f), buf, amt, offset);
}
int Write(sqlite3_file* f, const void* buf, int amt, sqlite3_int64 offset) {
  auto* file = reinterpret_cast<FaultFile*>(f);
  const std::uint64_t room = g_room.load();
  const auto end = static_cast<std::uint64_t>(offset) + static_cast<std::uint64_t>(amt);
  if (file->limited && end > room) {
    // A full file system takes what fits, then write(2) fails with ENOSPC.
    if (static_cast<std::uint64_t>(offset) < room) {
      int fits = static_cast<int>(room - static_cast<std::uint64_t>(offset));
      (void)file->real->pMethods->xWrite(file->real, buf, fits, offset);
    }
    g_refused.fetch_add(1);
    errno = ENOSPC;
    return SQLITE_FULL;
  }
  return file->real->pMethods->xWrite(file->real, buf, amt, offset);
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  return Real(f)->pMethods->xTruncate(Real(f), size);
}
int Sync(sqlite3_file* f, int flags) { return Real(f)->pMethods->xSync(Real(f), flags); }
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  return Real(f)->pMethods->xFileSize(Real(f), size);
}
int Lock(sqlite3_file* f, int level) { return Real(f)->pMethods->xLock(Real(f), level); }
int Unlock(sqlite3_file* f, int level) { return Real(f)->pMethods->xUnlock(Real(f), level); }
int CheckReservedLock(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}
int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
int ShmUnmap(sqlite3_file* f, int remove) { return Real(f)->pMethods->xShmUnmap(Real(f), remove); }
int Fetch(sqlite3_file* f, sqlite3_int64 offset, int amt, void** out) {
  return Real(f)->pMethods->xFetch(Real(f), offset, amt, out);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 offset, void* p) {
  return Real(f)->pMethods->xUnfetch(Real(f), offset, p);
}

int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* file = reinterpret_cast<FaultFile*>(f);
  file->base.pMethods = nullptr;
  file->real = reinterpret_cast<sqlite3_file*>(file + 1);
  std::string_view path = name ? std::string_view(name) : std::string_view();
  file->limited = (flags & SQLITE_OPEN_MAIN_DB) != 0 && path.ends_with(kLimitedSuffix);
  int rc = g_real->xOpen(g_real, name, file->real, flags, out_flags);
  if (file->real->pMethods == nullptr) return rc;  // nothing to close
  // The shim offers what the real file offers, up to version 3.
  g_methods.iVersion = std::min(file->real->pMethods->iVersion, 3);
  file->base.pMethods = &g_methods;
  return rc;
}

int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return g_real->xDelete(g_real, name, sync_dir);
}
int Access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_real->xAccess(g_real, name, flags, out);
}
int FullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_real->xFullPathname(g_real, name, n, out);
}
void* DlOpen(sqlite3_vfs*, const char* name) { return g_real->xDlOpen(g_real, name); }
void DlError(sqlite3_vfs*, int n, char* out) { g_real->xDlError(g_real, n, out); }
void (*DlSym(sqlite3_vfs*, void* handle, const char* symbol))(void) {
  return g_real->xDlSym(g_real, handle, symbol);
}
void DlClose(sqlite3_vfs*, void* handle) { g_real->xDlClose(g_real, handle); }
int Randomness(sqlite3_vfs*, int n, char* out) { return g_real->xRandomness(g_real, n, out); }
int Sleep(sqlite3_vfs*, int us) { return g_real->xSleep(g_real, us); }
int CurrentTime(sqlite3_vfs*, double* out) { return g_real->xCurrentTime(g_real, out); }
int GetLastError(sqlite3_vfs*, int n, char* out) {
  return g_real->xGetLastError(g_real, n, out);
}
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
  return g_real->xCurrentTimeInt64(g_real, out);
}

Status Register() {
  g_real = sqlite3_vfs_find(nullptr);
  if (g_real == nullptr) return Internal("no default SQLite VFS to wrap");
  g_methods = sqlite3_io_methods{};
  g_methods.iVersion = 3;
  g_methods.xClose = Close;
  g_methods.xRead = Read;
  g_methods.xWrite = Write;
  g_methods.xTruncate = Truncate;
  g_methods.xSync = Sync;
  g_methods.xFileSize = FileSize;
  g_methods.xLock = Lock;
  g_methods.xUnlock = Unlock;
  g_methods.xCheckReservedLock = CheckReservedLock;
  g_methods.xFileControl = FileControl;
  g_methods.xSectorSize = SectorSize;
  g_methods.xDeviceCharacteristics = DeviceCharacteristics;
  g_methods.xShmMap = ShmMap;
  g_methods.xShmLock = ShmLock;
  g_methods.xShmBarrier = ShmBarrier;
  g_methods.xShmUnmap = ShmUnmap;
  g_methods.xFetch = Fetch;
  g_methods.xUnfetch = Unfetch;

  g_vfs = sqlite3_vfs{};
  g_vfs.iVersion = 2;
  g_vfs.szOsFile = static_cast<int>(sizeof(FaultFile)) + g_real->szOsFile;
  g_vfs.mxPathname = g_real->mxPathname;
  g_vfs.zName = "via-test-disk-full";
  g_vfs.xOpen = Open;
  g_vfs.xDelete = Delete;
  g_vfs.xAccess = Access;
  g_vfs.xFullPathname = FullPathname;
  g_vfs.xDlOpen = DlOpen;
  g_vfs.xDlError = DlError;
  g_vfs.xDlSym = DlSym;
  g_vfs.xDlClose = DlClose;
  g_vfs.xRandomness = Randomness;
  g_vfs.xSleep = Sleep;
  g_vfs.xCurrentTime = CurrentTime;
  g_vfs.xGetLastError = GetLastError;
  g_vfs.xCurrentTimeInt64 = CurrentTimeInt64;
  int rc = sqlite3_vfs_register(&g_vfs, /*makeDflt=*/1);
  if (rc != SQLITE_OK) {
    return Internal(std::string("register the test disk-full VFS: ") + sqlite3_errstr(rc));
  }
  return Status::Ok();
}

}  // namespace

Status ArmTestFault(const std::string& test_fault) {
  std::string_view fault = test_fault;
  if (!fault.starts_with(kFaultName)) return Status::Ok();
  std::string_view rest = fault.substr(kFaultName.size());
  std::uint64_t room = kDefaultRoom;
  if (!rest.empty()) {
    if (rest.front() != ':' || rest.size() == 1 || rest.size() > 16) {
      return InvalidArgument("bad_test_fault", "expected snapshot_enospc or snapshot_enospc:BYTES, "
                                               "got " + test_fault);
    }
    room = 0;
    for (char c : rest.substr(1)) {
      if (c < '0' || c > '9') {
        return InvalidArgument("bad_test_fault", "expected snapshot_enospc:BYTES, got " + test_fault);
      }
      room = room * 10 + static_cast<std::uint64_t>(c - '0');
    }
  }
  g_room.store(room);
  static std::once_flag once;
  static Status registered;
  std::call_once(once, [] { registered = Register(); });
  return registered;
}

namespace {

class SpecFaults final : public TestFaults {
 public:
  explicit SpecFaults(std::string spec) : spec_(std::move(spec)) {}
  Status At(std::string_view point) override {
    if (point == "provision.before_file" && spec_ == "provision_fail") {
      return Internal("injected failure (test)");
    }
    if (point == "provision.after_file" && spec_ == "provision_fail_after_create") {
      return Internal("injected failure after the file was created (test)");
    }
    if (point == "snapshot.before_file") return ArmTestFault(spec_);
    return Status::Ok();
  }

 private:
  const std::string spec_;
};

}  // namespace

std::unique_ptr<TestFaults> TestFaultsFromSpec(std::string spec) {
  return std::make_unique<SpecFaults>(std::move(spec));
}

std::uint64_t DiskFullWritesRefused() { return g_refused.load(); }

}  // namespace via::providers::sqlite
