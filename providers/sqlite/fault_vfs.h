#pragma once

// Test-only: a full disk for snapshot files, injected below SQLite.
//
// ArmTestFault("snapshot_enospc[:BYTES]") registers, as the process's default
// SQLite VFS, a shim over the platform VFS ("unix") that behaves like a file
// system with BYTES (default 65536) bytes of room for each snapshot temp file
// (a main database file whose name ends in ".sqlite.tmp"): a write that
// would make such a file larger than BYTES writes what fits, sets errno to
// ENOSPC and fails with SQLITE_FULL, exactly what the unix VFS reports when
// write(2) fails with ENOSPC. Every other file passes through untouched.
// Connections opened before arming keep the VFS they were opened with.
//
// Any other fault name (or an empty one) does nothing. Production never sets
// $VIA_TEST_FAULT (docs/operations.md).

#include <cstdint>
#include <string>

#include "domain/status.h"

namespace via::providers::sqlite {

// Arms the shim when `test_fault` names it; idempotent (a second call only
// changes the limit). InvalidArgument for a malformed BYTES; Internal when
// SQLite refuses the VFS.
Status ArmTestFault(const std::string& test_fault);

// How many writes the shim refused so far (for tests of the shim itself).
std::uint64_t DiskFullWritesRefused();

}  // namespace via::providers::sqlite
