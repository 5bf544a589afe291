// `via addon rotate-credentials | revoke-credentials`, answered from this
// command's own events.

#include "commands/addon.h"

#include "commands/session.h"
#include "domain/decide.h"
#include "domain/reasons.h"

namespace via::commands {
namespace {

constexpr int kMaxRaceRetries = 200;

std::vector<std::uint32_t> ActiveGenerations(const AddonState& a) {
  std::vector<std::uint32_t> out;
  for (const auto& g : a.generations) {
    if (!g.revoked) out.push_back(g.number);
  }
  return out;
}

}  // namespace

Result<GenerationResult> RotateCredentials(const Context& ctx, const std::string& addon) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  std::string id;
  for (int attempt = 0; attempt < kMaxRaceRetries; ++attempt) {
    VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(AddonKeys(id.empty() ? addon : id)));
    const AddonState* a = id.empty() ? slice.first.FindAddon(addon) : slice.first.FindById(id);
    if (a == nullptr) {
      return NotFound("addon_not_found",
                      "no add-on named " + addon + " (via addon list --all lists every record)")
          .WithOwner("operator");
    }
    id = a->id;
    // The salt is bound to the generation it is made for: when another rotation
    // wins the race, decide again with a fresh salt for the next number.
    const std::uint32_t next = a->current_generation() + 1;
    VIA_ASSIGN_OR_RETURN(auto generation, NewGeneration(ctx, id, next));
    auto decided = DecideAndAppend(ctx, session, AddonKeys(id), [&](const State& s) -> Result<std::vector<Event>> {
      const AddonState* current = s.FindById(id);
      if (current && current->current_generation() + 1 != next) {
        return Aborted(reason::kStaleGeneration, "another rotation happened first");
      }
      return DecideRotate(s, id, generation.first, generation.second);
    });
    if (!decided.ok() && decided.status().reason() == reason::kStaleGeneration) continue;
    if (!decided.ok()) return decided.status();
    // The generation this command rotated, from its own event; then the
    // provider makes it usable (nothing to do for a proxied one).
    const auto& rotated = std::get<GenerationRotated>(decided->events.front());
    VIA_ASSIGN_OR_RETURN(auto provider, session.Provider(ctx, id));
    VIA_RETURN_IF_ERROR(provider->EnsureGeneration(id, rotated.generation));
    const State after = decided->After();
    return GenerationResult{id, rotated.generation, ActiveGenerations(*after.FindById(id)), {}};
  }
  return Unavailable("busy", "too many concurrent rotations; try again");
}

Result<GenerationResult> RevokeCredentials(const Context& ctx, const std::string& addon,
                                           std::uint32_t generation, bool force) {
  VIA_RETURN_IF_ERROR(RejectTombstone(addon));
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  auto more = [&](const State& s) {
    StateKeys keys;
    if (const AddonState* a = s.FindAddon(addon)) keys.deliveries_of.insert(a->id);
    return keys;
  };
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(
                                            ctx, session, AddonKeys(addon),
                                            [&](const State& s) {
                                              return DecideRevoke(s, addon, generation, force);
                                            },
                                            more));
  const auto& revoked = std::get<GenerationRevoked>(decided.events.front());
  // At once, open sessions included (the proxy refuses from the log; a
  // provider that apps reach directly does it here).
  VIA_ASSIGN_OR_RETURN(auto provider, session.Provider(ctx, revoked.addon_id));
  VIA_RETURN_IF_ERROR(provider->RevokeGeneration(revoked.addon_id, generation));
  const State after = decided.After();
  GenerationResult result{revoked.addon_id, generation,
                          ActiveGenerations(*after.FindById(revoked.addon_id)), {}};
  for (const auto& [addon_id, gen, app, release] : after.deliveries) {
    if (addon_id == revoked.addon_id && gen == generation) {
      result.served_to.push_back(app + "/" + release);
    }
  }
  return result;
}

}  // namespace via::commands
