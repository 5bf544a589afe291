#pragma once

// Several `via serve` nodes on one PostgreSQL log (docs/operations.md
// "Several nodes"): a node announces itself (NodeAnnounced: its name and
// public URL) and its home remembers its name (HOME/node), so that commands
// run with that home place new add-ons on it (AddonPlaced).

#include <functional>
#include <optional>
#include <string>

#include "commands/context.h"
#include "domain/state.h"
#include "domain/status.h"
#include "eventstore/home.h"

namespace via::commands {

class Session;

// The node whose home this is (HOME/node), or nullopt for a home that is no
// node's. Errors: as ReadFile; InvalidArgument "bad_node_file" for a file
// that does not hold one valid node name.
Result<std::optional<std::string>> HomeNode(const eventstore::Home& home);

struct AnnounceResult {
  std::string node;
  std::string public_url;
  bool announced = false;  // false: the log already said exactly this
  std::uint64_t seq = 0;   // the NodeAnnounced record, when announced
};

// `via serve --node NAME --public-url URL`: appends NodeAnnounced unless the
// log already holds this node at this URL, then writes HOME/node. Errors:
// InvalidArgument "invalid_name" / "invalid_public_url"; FailedPrecondition
// "node_mismatch" when the home is already another node's (a home serves one
// node).
Result<AnnounceResult> AnnounceNode(const Context& ctx, const std::string& node,
                                    const std::string& public_url);

// The node a new add-on goes on: `requested` (`addon create --node`) or the
// home's node; "" when neither names one (a single node: not placed). A node
// other than the home's provisions the add-on itself (owner work): the
// command appends AddonCreated under OwnerWorkCommandId and waits.
// Errors: InvalidArgument "invalid_name" for a bad node name.
Result<std::string> PlacementNode(const Context& ctx, const std::string& requested);

// True when `node` is set and is not this home's node (HOME/node).
Result<bool> IsOtherNode(const Context& ctx, const std::string& node);

// Owner work (docs/operations.md "Several nodes"). File work on an add-on
// placed on another node than this home's is that node's: the command appends
// its intent under OwnerWorkCommandId (domain/names.h) and waits for the
// completion the owner's `via serve` appends (AwaitOwner); the owner's serve
// runs RunOwnerWork for every such command it reads, and at start for those
// still pending.

// Waits until `finished` (called on a fresh read of the log every 100 ms)
// answers true or an error, for at most ctx.owner_timeout_ms. Errors: the
// error `finished` answered; Unavailable "owner_timeout" naming `node`,
// `what` ("restore sn_… of ad_…") and, in its remediation, `shows` (the
// command that shows the outcome later).
Status AwaitOwner(const Context& ctx, const std::string& node, const std::string& what,
                  const std::string& shows, const std::function<Result<bool>(Session&)>& finished);

// The outcome of file work asked of the owner with OwnerWorkRequested
// (repair, check, verify: work without an intent event of its own).
struct OwnerWorkOutcome {
  OwnerWorkFinished finished;     // finished.code "" when the work was done
  std::string done_command_id;    // OwnerWorkDoneCommandId of the request
  std::uint64_t requested_seq = 0;
  std::uint64_t finished_seq = 0;
};

// Appends OwnerWorkRequested{addon_id, work, argument} under
// OwnerWorkCommandId ("owner/<--command-id or a new id>/<work>") and waits
// (AwaitOwner, `shows` for its remediation) for the owner's
// OwnerWorkFinished. A work the owner could not do is no error here:
// OwnerWorkError(outcome.finished) is. Errors: as AwaitOwner;
// FailedPrecondition "addon_destroyed" when the add-on is gone.
Result<OwnerWorkOutcome> AskOwner(const Context& ctx, Session& session,
                                  const std::string& addon_id, const std::string& node,
                                  const std::string& work, const std::string& argument,
                                  const std::string& shows);

// Ok for a finished work, else the error it records (its class from
// `status`, so the exit code is the one the owner's home would give).
Status OwnerWorkError(const OwnerWorkFinished& finished);

// OwnerWorkFinished messages of a repair without a warning (a warning is
// the message otherwise).
inline constexpr const char* kRepairedMessage = "repaired";
inline constexpr const char* kNothingToRepairMessage = "nothing to repair";

// What a storage repair did (`ensure --repair`), on the owner's home.
struct StorageRepair {
  bool changed = false;
  std::string warning;
  std::string restored_from;
  Status refusal;  // a refusal (repair_needs_allow_empty, storage_unreadable)
};
// Probes the add-on's storage and repairs it when it is missing, corrupt, a
// current check found damage, or a failed record's file holds data
// (commands/addon.cc). Errors: "owner_elsewhere"; as the provider.
Result<StorageRepair> RepairStorage(const Context& ctx, Session& session, const AddonState& addon,
                                    bool allow_empty);

// In the owner's `via serve`: carries out the intent appended under
// `command_id` (an owner-work command id) unless it is finished already:
//   SnapshotRequested alone              the snapshot (SnapshotTaken/Failed)
//   SnapshotRequested + RestoreRequested the safety snapshot, the snapshot's
//                                        checks, the restore (SnapshotRestored
//                                        or RestoreFailed "CODE: message")
//   AddonCreated                         the storage (StorageProvisioned or
//                                        ProvisioningFailed)
//   OwnerWorkRequested                   the repair, check or verification,
//                                        with their events, then
//                                        OwnerWorkFinished
// Answers one line for the server's error log. Errors: NotFound
// "owner_work_not_found"; "owner_elsewhere" when this home does not own the
// add-on; as the provider.
Result<std::string> RunOwnerWork(const Context& ctx, const std::string& command_id);

// The failure a RestoreFailed reason written by RunOwnerWork stands for
// ("CODE: message" with a restore refusal's code keeps that code and its
// exit status; anything else is "restore_failed").
Status RemoteRestoreFailure(const std::string& node, const std::string& snapshot_id,
                            const std::string& reason);

}  // namespace via::commands
