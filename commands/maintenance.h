#pragma once

// One pass of the snapshot upkeep that `via serve` runs in the background
// (cli/serve.cc drives it through server/maintenance.h): scheduled
// snapshots, pruning by each add-on's retention policy, and verification of
// unverified snapshots, one job at a time. Every step is an ordinary command
// with its events (SnapshotRequested/Taken, SnapshotDeleted, SnapshotVerified),
// so a pass interrupted anywhere is finished by the next pass or `via recover`.

#include <cstddef>
#include <string>
#include <vector>

#include "commands/context.h"

namespace via::commands {

struct MaintenanceOptions {
  bool schedule = true;  // take the snapshots that policies with --every ask for
  bool prune = true;     // apply retention policies
  bool verify = true;    // verify unverified snapshots
  std::size_t max_verifications = 1;  // per pass, oldest first
};

// What one pass did, one line per job ("snapshot sn_… of ad_…", "verified
// sn_…: ok", "pruned 2 snapshots of ad_…"), and the first error of a job
// that failed (the pass goes on with the other jobs).
struct MaintenanceReport {
  std::vector<std::string> done;
  std::vector<std::string> errors;
};

Result<MaintenanceReport> MaintainSnapshots(const Context& ctx, const MaintenanceOptions& options);

}  // namespace via::commands
