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
// $VIA_TEST_FAULT (docs/operations.md), and only the CLI of a build with test
// hooks (VIA_TEST_HOOKS) calls TestFaultsFromSpec, so a release binary links
// none of this.

#include <cstdint>
#include <memory>
#include <string>

#include "domain/status.h"
#include "providers/provider.h"

namespace via::providers::sqlite {

// Arms the shim when `test_fault` names it; idempotent (a second call only
// changes the limit). InvalidArgument for a malformed BYTES; Internal when
// SQLite refuses the VFS.
Status ArmTestFault(const std::string& test_fault);

// The fault object of a $VIA_TEST_FAULT value (providers::TestFaults):
//   provision_fail               provision.before_file fails
//   provision_fail_after_create  provision.after_file fails
//   snapshot_enospc[:BYTES]      snapshot.before_file arms the shim above
//                                (a malformed BYTES fails there with
//                                InvalidArgument "bad_test_fault")
// Any other value injects nothing.
std::unique_ptr<TestFaults> TestFaultsFromSpec(std::string spec);

// How many writes the shim refused so far (for tests of the shim itself).
std::uint64_t DiskFullWritesRefused();

}  // namespace via::providers::sqlite
