// `via release create | list`: an app's bindings snapshotted as a release.

#include "commands/addon.h"

#include "commands/session.h"
#include "domain/decide.h"
#include "domain/names.h"

namespace via::commands {

Result<ReleaseResult> CreateRelease(const Context& ctx, const std::string& app,
                                    const std::string& release_id) {
  VIA_ASSIGN_OR_RETURN(Session session, Session::Open(ctx));
  StateKeys keys;
  keys.bindings_for_app.insert(app);
  keys.releases_of.insert(app);
  VIA_ASSIGN_OR_RETURN(Decided decided, DecideAndAppend(ctx, session, keys, [&](const State& s) {
                         return DecideRelease(s, app, release_id);
                       }));
  const auto& snapped = std::get<BindingSnapshotted>(decided.events.front());
  ReleaseResult result;
  result.release = ReleaseState{app, snapped.release_id, snapped.claims, ctx.clock->NowMs(),
                                decided.appended.last_seq};
  for (const auto& claim : snapped.claims) {
    VIA_ASSIGN_OR_RETURN(auto slice, ReportSlice(session, claim.addon_id, app, claim.binding));
    const AddonState* a = slice.first.FindById(claim.addon_id);
    VIA_ASSIGN_OR_RETURN(ReadinessReport report, Report(ctx, session, slice.first, claim.addon_id,
                                                        a, app, claim.binding));
    if (!report.readiness.usable_by_app) {
      result.warnings.push_back(claim.binding + " -> " + claim.addon_id + " is not usable now (" +
                                *report.readiness.blocking + ")");
    }
  }
  return result;
}

Result<std::vector<ReleaseState>> ListReleases(const Context& ctx, const std::string& app) {
  VIA_RETURN_IF_ERROR(ValidateAppName(app));
  VIA_ASSIGN_OR_RETURN(Session session, Session::OpenForReading(ctx));
  StateKeys keys;
  keys.releases_of.insert(app);
  VIA_ASSIGN_OR_RETURN(auto slice, session.Slice(keys));
  auto it = slice.first.releases.find(app);
  if (it == slice.first.releases.end()) return std::vector<ReleaseState>{};
  return it->second;
}

}  // namespace via::commands
