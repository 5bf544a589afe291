#include "commands/nodes.h"

#include "commands/session.h"
#include "domain/names.h"

namespace via::commands {

Result<std::optional<std::string>> HomeNode(const eventstore::Home& home) {
  auto bytes = eventstore::ReadFile(home.node_file(), 4096);
  if (!bytes.ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) return std::optional<std::string>();
    return bytes.status();
  }
  std::string name(bytes->begin(), bytes->end());
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
  if (!ValidateNodeName(name).ok()) {
    return InvalidArgument("bad_node_file", home.node_file().string() + " does not hold a node name")
        .WithRemediation("write this home's node name into " + home.node_file().string() +
                         " (or delete it: the next `via serve --node NAME` writes it)");
  }
  return std::optional<std::string>(name);
}

Result<AnnounceResult> AnnounceNode(const Context& ctx, const std::string& node,
                                    const std::string& public_url) {
  VIA_RETURN_IF_ERROR(ValidateNodeName(node));
  VIA_RETURN_IF_ERROR(ValidatePublicUrl(public_url));
  VIA_ASSIGN_OR_RETURN(std::optional<std::string> home_node, HomeNode(ctx.home));
  if (home_node && *home_node != node) {
    return FailedPrecondition("node_mismatch", "this home is node " + *home_node + "'s, not " + node)
        .WithRemediation("via serve --node " + *home_node + " (a home serves one node; a new node "
                         "gets a home of its own)");
  }
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  VIA_ASSIGN_OR_RETURN(
      Decided decided,
      DecideAndAppend(ctx, session, StateKeys{}, [&](const State& s) -> Result<std::vector<Event>> {
        auto it = s.nodes.find(node);
        if (it != s.nodes.end() && it->second == public_url) return std::vector<Event>{};
        return std::vector<Event>{NodeAnnounced{node, public_url}};
      }));
  if (!home_node) {
    const std::string line = node + "\n";
    VIA_RETURN_IF_ERROR(
        eventstore::WriteFileAtomically(ctx.home.node_file(), AsBytes(line), 0644));
  }
  AnnounceResult result;
  result.node = node;
  result.public_url = public_url;
  result.announced = !decided.events.empty() && !decided.replayed;
  result.seq = decided.appended.last_seq;
  return result;
}

Result<std::string> PlacementNode(const Context& ctx, const std::string& requested) {
  VIA_ASSIGN_OR_RETURN(std::optional<std::string> home_node, HomeNode(ctx.home));
  if (requested.empty()) return home_node.value_or("");
  VIA_RETURN_IF_ERROR(ValidateNodeName(requested));
  if (!home_node || *home_node != requested) {
    return FailedPrecondition("not_this_node",
                              "add-on files are made by the command in its own home, which is " +
                                  (home_node ? "node " + *home_node + "'s" : std::string("no node's")) +
                                  ", not node " + requested + "'s")
        .WithRemediation("run the command with --home of node " + requested +
                         " (its home's `node` file names it)");
  }
  return requested;
}

Result<SnapshotState> FinishOwnerSnapshot(const Context& ctx, const std::string& addon_id,
                                          const std::string& snapshot_id) {
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  StateKeys keys = AddonKeys(addon_id);
  keys.snapshots.insert(snapshot_id);
  VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(keys));
  auto it = slice.first.snapshots.find(snapshot_id);
  if (it == slice.first.snapshots.end()) {
    return NotFound("snapshot_not_found", "no snapshot " + snapshot_id);
  }
  if (it->second.status != SnapshotStatus::kRequested) return it->second;  // done already
  VIA_ASSIGN_OR_RETURN(auto provider, session.OwnedProvider(ctx, addon_id));
  VIA_ASSIGN_OR_RETURN(SnapshotTaken taken, provider->Snapshot(addon_id, snapshot_id, nullptr));
  SnapshotState done = it->second;
  done.status = SnapshotStatus::kTaken;
  done.sha256 = taken.sha256;
  done.bytes = taken.bytes;
  done.page_count = taken.page_count;
  return done;
}

}  // namespace via::commands
