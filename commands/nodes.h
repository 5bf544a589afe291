#pragma once

// Several `via serve` nodes on one PostgreSQL log (docs/operations.md
// "Several nodes"): a node announces itself (NodeAnnounced: its name and
// public URL) and its home remembers its name (HOME/node), so that commands
// run with that home place new add-ons on it (AddonPlaced).

#include <optional>
#include <string>

#include "commands/context.h"
#include "domain/state.h"
#include "domain/status.h"
#include "eventstore/home.h"

namespace via::commands {

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
// home's node; "" when neither names one (a single node: not placed).
// Errors: FailedPrecondition "not_this_node" when `requested` is not the
// home's node: the add-on's files are made by the command, in this home, so
// it runs with the owner's home (docs/operations.md).
Result<std::string> PlacementNode(const Context& ctx, const std::string& requested);

// In the owner's `via serve`: takes the snapshot `snapshot_id` of `addon_id`
// that another node's home requested (SnapshotRequested under
// OwnerWorkCommandId), unless it is already finished; the provider appends
// SnapshotTaken or SnapshotFailed. Errors: as the provider's Snapshot;
// "owner_elsewhere" when this home does not own the add-on.
Result<SnapshotState> FinishOwnerSnapshot(const Context& ctx, const std::string& addon_id,
                                          const std::string& snapshot_id);

}  // namespace via::commands
