#pragma once

// Reason codes that code branches on, as named constants (issue 15). They compare
// by value, not identity: a reason is a string in every Status and in the
// JSON contract, and a pointer compare would miss a code read back from JSON.
//
// A reason code is part of the CLI's and the HTTP API's contract (docs/cli.md,
// docs/runtime.md), so it is a string in a Status. Where a program decides
// something from a reason (retry a lost race, settle a failed snapshot, count a
// revocation), the place that raises it and the place that tests it name the
// same constant here, so a misspelt or renamed code fails to compile instead
// of silently never matching.
//
// Codes that are only raised and printed (most of them) stay string literals
// at their one site; add a constant here when a second site starts to test one.


namespace via::reason {

// The retryable failure of a PostgreSQL log (eventstore/postgres/pq.cc); a
// command stops deciding again on it (commands/session.cc).
inline constexpr char kLogUnreachable[] = "log_unreachable";
// The log holds fewer records than a home or node has already applied
// (projections/read_model.cc, server/api.cc): an integrity failure, exit 6.
inline constexpr char kLogShorterThanSeen[] = "log_shorter_than_seen";
// The home cannot be written (permissions, read-only file system) and the disk
// is full: both are reported with their own remediation (commands/context.cc).
inline constexpr char kHomeNotWritable[] = "home_not_writable";
inline constexpr char kDiskFull[] = "disk_full";
// A rotation lost the race with another one; the rotation decides again.
inline constexpr char kStaleGeneration[] = "stale_generation";
// The add-on is placed on another node (commands/session.cc, snapshot.cc).
inline constexpr char kOwnerElsewhere[] = "owner_elsewhere";
// pg_dump/pg_restore are not installed (providers/postgres).
inline constexpr char kPgClientMissing[] = "pg_client_missing";
// A credential whose generation is revoked (server/, client/).
inline constexpr char kCredentialRevoked[] = "credential_revoked";
// A restore holds the add-on (domain/decide.cc, domain/readiness.cc, server/).
inline constexpr char kRestoreInProgress[] = "restore_in_progress";

}  // namespace via::reason
