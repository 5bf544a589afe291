#include "cli/timeline_html.h"

#include <algorithm>
#include <map>
#include <set>
#include <string_view>

#include "cli/event_text.h"
#include "crypto/crypto.h"

namespace via::cli {
namespace {

// Layout of the lanes (pixels).
constexpr int kLabelWidth = 240;
constexpr int kLaneHeight = 34;
constexpr int kAxisHeight = 42;
constexpr int kRightMargin = 110;  // room for the last time label

constexpr std::string_view kStyle = R"CSS(
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --soft: #f6f8fa;
        --ok: #1a7f37; --bad: #cf222e; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
       color: var(--fg); background: #fff; }
header { padding: 16px 24px 12px; border-bottom: 1px solid var(--line); }
h1 { font-size: 20px; margin: 0 0 2px; }
h2 { font-size: 16px; margin: 22px 24px 8px; }
code, .mono { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; }
.meta { color: var(--muted); margin: 0; }
#verdict { margin: 10px 0 6px; padding: 8px 12px; border-radius: 6px; font-weight: 600; }
#verdict.ok { background: #dafbe1; color: var(--ok); }
#verdict.bad { background: #ffebe9; color: var(--bad); }
#counts { margin: 0; color: var(--muted); }
#filters { position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; gap: 14px;
           align-items: center; padding: 8px 24px; background: var(--soft);
           border-bottom: 1px solid var(--line); }
#filters label { display: flex; gap: 6px; align-items: center; }
#filters select, #filters input { font: inherit; padding: 2px 4px; max-width: 260px; }
#shown { color: var(--muted); margin-left: auto; }
#lanes { overflow-x: auto; padding: 6px 24px 0; }
svg text { font: 12px system-ui, "DejaVu Sans", sans-serif; fill: var(--fg); }
svg text.sub { font-size: 10px; fill: var(--muted); }
svg text.tick { font-size: 10px; fill: var(--muted); }
.axis line { stroke: #eaeef2; }
.lane-bg { fill: var(--soft); }
.span { opacity: 0.35; }
.span.active, .span.provisioning { fill: #2da44e; }
.span.failed { fill: var(--bad); }
.span.destroyed { fill: #8c959f; }
.ev { cursor: pointer; }
.ev:hover { opacity: 0.6; }
.c-lifecycle { fill: #0969da; }
.c-binding { fill: #1b7c83; }
.c-release { fill: #8250df; }
.c-credential { fill: #bf8700; }
.c-revocation { stroke: var(--bad); stroke-width: 2.5; fill: none; }
.c-snapshot { fill: #2da44e; }
.c-restore { fill: #0550ae; }
.c-failure { fill: var(--bad); }
.c-token { fill: #8c959f; }
.c-log { fill: #57606a; }
.cp.verified { fill: var(--ok); }
.cp.failed { fill: var(--bad); }
.cp.not_reached { fill: #afb8c1; }
.off { display: none; }
#legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 6px 24px 0; color: var(--muted);
          font-size: 12px; }
#legend svg { vertical-align: middle; }
table { border-collapse: collapse; margin: 0 24px 24px; width: calc(100% - 48px); }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { background: var(--soft); position: sticky; top: 42px; }
td.summary { word-break: break-word; }
tr.flash td { background: #fff8c5; }
.badge { padding: 0 6px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.badge.verified { background: #dafbe1; color: var(--ok); }
.badge.failed { background: #ffebe9; color: var(--bad); }
.badge.not_reached { background: #eaeef2; color: var(--muted); }
)CSS";

constexpr std::string_view kScript = R"JS(
(function () {
  'use strict';
  var byId = function (id) { return document.getElementById(id); };
  var select = { addon: byId('f-addon'), app: byId('f-app'), type: byId('f-type') };
  var text = byId('f-q');
  var rows = Array.prototype.slice.call(document.querySelectorAll('tr[data-seq]'));
  var markers = Array.prototype.slice.call(document.querySelectorAll('g.ev[data-seq]'));
  var lanes = Array.prototype.slice.call(document.querySelectorAll('g.lane'));
  var svg = byId('lane-svg');
  var laneHeight = Number(svg.getAttribute('data-lane-height'));
  var top = Number(svg.getAttribute('data-top'));

  // A value from the URL that the list does not offer (an add-on id) joins it.
  function choose(sel, value) {
    var found = Array.prototype.some.call(sel.options, function (o) { return o.value === value; });
    if (!found) {
      var option = document.createElement('option');
      option.value = value;
      option.textContent = value;
      sel.appendChild(option);
    }
    sel.value = value;
  }
  var params = new URLSearchParams(window.location.search);
  Object.keys(select).forEach(function (key) {
    var value = params.get(key);
    if (value !== null && value !== '') choose(select[key], value);
  });
  if (params.get('q')) text.value = params.get('q');

  function has(list, value) { return (' ' + (list || '') + ' ').indexOf(' ' + value + ' ') >= 0; }

  function apply() {
    var f = { addon: select.addon.value, app: select.app.value, type: select.type.value,
              q: text.value.toLowerCase() };
    var visible = {};
    var shown = 0;
    rows.forEach(function (row) {
      var ok = (!f.addon || has(row.getAttribute('data-addon'), f.addon)) &&
               (!f.app || row.getAttribute('data-app') === f.app) &&
               (!f.type || row.getAttribute('data-type') === f.type) &&
               (!f.q || row.textContent.toLowerCase().indexOf(f.q) >= 0);
      row.classList.toggle('off', !ok);
      visible[row.getAttribute('data-seq')] = ok;
      if (ok) shown++;
    });
    markers.forEach(function (m) { m.classList.toggle('off', !visible[m.getAttribute('data-seq')]); });
    var y = top;
    lanes.forEach(function (lane) {
      var kind = lane.getAttribute('data-lane');
      var ok = kind === 'log' ||
               ((!f.addon || has(lane.getAttribute('data-addon'), f.addon)) &&
                (!f.app || lane.getAttribute('data-app') === f.app));
      lane.classList.toggle('off', !ok);
      if (ok) { lane.setAttribute('transform', 'translate(0,' + y + ')'); y += laneHeight; }
    });
    svg.setAttribute('height', String(y + 8));
    byId('shown').textContent = 'showing ' + shown + ' of ' + rows.length + ' events';
    document.body.setAttribute('data-shown', String(shown));
  }

  function remember() {
    var p = new URLSearchParams();
    Object.keys(select).forEach(function (key) { if (select[key].value) p.set(key, select[key].value); });
    if (text.value) p.set('q', text.value);
    try { window.history.replaceState(null, '', '?' + p.toString()); } catch (e) { /* file: URLs */ }
  }

  Object.keys(select).forEach(function (key) {
    select[key].addEventListener('change', function () { apply(); remember(); });
  });
  text.addEventListener('input', function () { apply(); remember(); });
  markers.forEach(function (m) {
    m.addEventListener('click', function () {
      var row = byId('e' + m.getAttribute('data-seq'));
      if (!row) return;
      row.scrollIntoView({ block: 'center' });
      row.classList.add('flash');
      setTimeout(function () { row.classList.remove('flash'); }, 1500);
    });
  });
  apply();
})();
)JS";

// "1 restore", "2 restores".
std::string Count(std::size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string CspHash(std::string_view text) {
  return "'sha256-" + crypto::Base64Encode(crypto::Sha256::Digest(text)) + "'";
}

// At most `max` code points of `text`, with an ellipsis when cut.
std::string Shorten(const std::string& text, std::size_t max) {
  std::size_t points = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && points++ == max) {
      return text.substr(0, i) + "\u2026";
    }
  }
  return text;
}

// Which family an event belongs to: its marker's colour and shape.
enum class Family {
  kLifecycle,
  kBinding,
  kRelease,
  kCredential,
  kRevocation,
  kSnapshot,
  kRestore,
  kFailure,
  kToken,
  kLog
};

Family FamilyOf(const Event& event) {
  return std::visit(
      [](const auto& e) -> Family {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, LogInitialized>) return Family::kLog;
        if constexpr (std::is_same_v<T, ProvisioningFailed> || std::is_same_v<T, SnapshotFailed> ||
                      std::is_same_v<T, RestoreFailed>) {
          return Family::kFailure;
        }
        if constexpr (std::is_same_v<T, BindingAttached> || std::is_same_v<T, BindingDetached>) {
          return Family::kBinding;
        }
        if constexpr (std::is_same_v<T, BindingSnapshotted>) return Family::kRelease;
        if constexpr (std::is_same_v<T, GenerationRotated> ||
                      std::is_same_v<T, GenerationDelivered>) {
          return Family::kCredential;
        }
        if constexpr (std::is_same_v<T, GenerationRevoked>) return Family::kRevocation;
        if constexpr (std::is_same_v<T, SnapshotRequested> || std::is_same_v<T, SnapshotTaken>) {
          return Family::kSnapshot;
        }
        if constexpr (std::is_same_v<T, RestoreRequested> || std::is_same_v<T, SnapshotRestored>) {
          return Family::kRestore;
        }
        if constexpr (std::is_same_v<T, WorkloadTokenIssued>) return Family::kToken;
        return Family::kLifecycle;
      },
      event);
}

const char* FamilyClass(Family family) {
  switch (family) {
    case Family::kLifecycle:
      return "c-lifecycle";
    case Family::kBinding:
      return "c-binding";
    case Family::kRelease:
      return "c-release";
    case Family::kCredential:
      return "c-credential";
    case Family::kRevocation:
      return "c-revocation";
    case Family::kSnapshot:
      return "c-snapshot";
    case Family::kRestore:
      return "c-restore";
    case Family::kFailure:
      return "c-failure";
    case Family::kToken:
      return "c-token";
    case Family::kLog:
      return "c-log";
  }
  return "c-lifecycle";
}

// The marker's shape, centred on (0, 0).
std::string Shape(const Event& event) {
  if (std::holds_alternative<GenerationRotated>(event)) {
    return "<polygon points=\"0,-6 6,0 0,6 -6,0\"/>";
  }
  if (std::holds_alternative<GenerationRevoked>(event)) {
    return "<path d=\"M-5,-5L5,5M5,-5L-5,5\"/>";
  }
  if (std::holds_alternative<SnapshotRequested>(event) ||
      std::holds_alternative<SnapshotTaken>(event) ||
      std::holds_alternative<SnapshotFailed>(event)) {
    return "<polygon points=\"0,-6 6,5 -6,5\"/>";
  }
  if (std::holds_alternative<RestoreRequested>(event) ||
      std::holds_alternative<SnapshotRestored>(event) ||
      std::holds_alternative<RestoreFailed>(event)) {
    return "<polygon points=\"0,6 6,-5 -6,-5\"/>";
  }
  if (std::holds_alternative<AddonCreated>(event) ||
      std::holds_alternative<AddonDestroyed>(event)) {
    return "<rect x=\"-5\" y=\"-5\" width=\"10\" height=\"10\"/>";
  }
  return "<circle r=\"4.5\"/>";
}

struct Lane {
  std::string kind;  // "log", "addon", "app"
  std::string key;   // add-on id or app
  std::string title;
  std::string subtitle;
  std::string addon_filter;  // data-addon: "ID NAME"
  std::string app;
  const commands::TimelineSpan* span = nullptr;
  std::string markers;
};

class Page {
 public:
  Page(const commands::Timeline& t, std::int64_t generated_at_ms, const std::string& version)
      : t_(t), generated_at_ms_(generated_at_ms), version_(version) {
    const std::uint64_t n = std::max<std::uint64_t>(t.size, 1);
    // Wide enough to tell records apart, never wider than needed.
    step_ = std::clamp(1100.0 / static_cast<double>(n), 3.0, 28.0);
  }

  std::string Render() {
    std::string body;
    body.reserve(4096 + t_.entries.size() * 700);
    Header(body);
    Filters(body);
    Lanes(body);
    Legend(body);
    Events(body);
    Checkpoints(body);

    std::string out;
    out.reserve(body.size() + kStyle.size() + kScript.size() + 1024);
    out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    // Nothing may be fetched; only this style and this script may apply.
    out += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src " +
           CspHash(kStyle) + "; script-src " + CspHash(kScript) +
           "; img-src data:; base-uri 'none'; form-action 'none'\">\n";
    out += "<meta name=\"referrer\" content=\"no-referrer\">\n";
    out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    out += "<title>via audit timeline: " + HtmlEscape(t_.origin) + "</title>\n";
    out += "<style>" + std::string(kStyle) + "</style>\n</head>\n<body>\n";
    out += body;
    out += "<script>" + std::string(kScript) + "</script>\n</body>\n</html>\n";
    return out;
  }

 private:
  double X(std::uint64_t seq) const {
    return kLabelWidth + 12 + (static_cast<double>(seq) - 1) * step_;
  }
  std::string Num(double v) const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
  }
  std::string Summary(const commands::TimelineEntry& e) const {
    return EventSummary(e.event, e.addon_names);
  }

  void Header(std::string& out) const {
    out += "<header>\n<h1>Audit timeline</h1>\n";
    out += "<p class=\"meta\">origin <code>" + HtmlEscape(t_.origin) +
           "</code> &middot; log <code>" + HtmlEscape(t_.log_id) + "</code> &middot; " +
           std::to_string(t_.size) + " records &middot; generated " + Rfc3339(generated_at_ms_) +
           " by via " + HtmlEscape(version_) + "</p>\n";
    const Status& v = t_.verify.status;
    std::size_t verified = 0;
    for (const auto& c : t_.checkpoints)
      verified += c.check == commands::CheckpointCheck::kVerified;
    if (v.ok()) {
      out += "<p id=\"verdict\" class=\"ok\" data-ok=\"true\">Verified: " +
             std::to_string(t_.verify.size) + " records, chain and Merkle tree intact, " +
             std::to_string(verified) + " of " + std::to_string(t_.checkpoints.size()) +
             " checkpoints verified (the checks of <code>via audit verify</code>)</p>\n";
    } else {
      out += "<p id=\"verdict\" class=\"bad\" data-ok=\"false\" data-first-bad-seq=\"" +
             std::to_string(t_.verify.first_bad_seq) +
             "\">Verification FAILED: " + HtmlEscape(v.message()) + " [" + HtmlEscape(v.reason()) +
             "]. " + std::to_string(verified) + " of " + std::to_string(t_.checkpoints.size()) +
             " checkpoints verified before it; see docs/operations.md, corruption.</p>\n";
    }
    if (!t_.decode_error.ok()) {
      out += "<p id=\"decode-error\" class=\"meta\">Records from here on are not shown: " +
             HtmlEscape(t_.decode_error.message()) + "</p>\n";
    }
    std::size_t destroyed = 0;
    for (const auto& s : t_.spans) destroyed += s.destroyed_seq != 0;
    std::map<std::string, std::size_t> count;
    for (const auto& e : t_.entries) ++count[EventTypeName(e.event)];
    out += "<p id=\"counts\">" + Count(t_.spans.size(), "add-on") + " (" +
           std::to_string(destroyed) + " destroyed) &middot; " + Count(t_.apps.size(), "app") +
           " &middot; " + Count(count["GenerationRotated"], "rotation") + " &middot; " +
           Count(count["GenerationRevoked"], "revocation") + " &middot; " +
           Count(count["SnapshotTaken"], "snapshot") + " &middot; " +
           Count(count["SnapshotRestored"], "restore") + " &middot; " +
           Count(t_.checkpoints.size(), "checkpoint") + "</p>\n</header>\n";
  }

  void Filters(std::string& out) const {
    out +=
        "<section id=\"filters\">\n<label>Add-on <select id=\"f-addon\"><option "
        "value=\"\">all</option>";
    std::map<std::string, std::size_t> incarnations;
    for (const auto& s : t_.spans) ++incarnations[s.name];
    for (const auto& [name, n] : incarnations) {
      out += "<option value=\"" + HtmlEscape(name) + "\">" + HtmlEscape(name) +
             (n > 1 ? " (" + std::to_string(n) + " incarnations)" : "") + "</option>";
    }
    out += "</select></label>\n<label>App <select id=\"f-app\"><option value=\"\">all</option>";
    for (const auto& app : t_.apps) {
      out += "<option value=\"" + HtmlEscape(app) + "\">" + HtmlEscape(app) + "</option>";
    }
    out += "</select></label>\n<label>Event <select id=\"f-type\"><option value=\"\">all</option>";
    std::set<std::string> types;
    for (const auto& e : t_.entries) types.insert(EventTypeName(e.event));
    for (const auto& type : types) out += "<option value=\"" + type + "\">" + type + "</option>";
    out +=
        "</select></label>\n<label>Text <input id=\"f-q\" type=\"search\" size=\"18\"></label>\n";
    out += "<span id=\"shown\"></span>\n</section>\n";
  }

  void Lanes(std::string& out) const {
    // Lanes: the log, then each add-on in creation order, then each app.
    std::vector<Lane> lanes;
    std::map<std::string, std::size_t> lane_of;  // "addon:ID" or "app:APP"
    Lane log;
    log.kind = "log";
    log.title = "log";
    log.subtitle = "records and checkpoints";
    lanes.push_back(log);
    for (const auto& span : t_.spans) {
      Lane lane;
      lane.kind = "addon";
      lane.key = span.addon_id;
      lane.title = span.name;
      lane.subtitle = span.addon_id + " \u00b7 " + span.app;
      lane.addon_filter = span.addon_id + " " + span.name;
      lane.app = span.app;
      lane.span = &span;
      lane_of["addon:" + span.addon_id] = lanes.size();
      lanes.push_back(lane);
    }
    // An app gets a lane for what is about the app alone (releases, tokens).
    std::set<std::string> app_lanes;
    for (const auto& e : t_.entries) {
      if (!e.app.empty() && !lane_of.count("addon:" + e.addon_id)) app_lanes.insert(e.app);
    }
    for (const auto& app : app_lanes) {
      Lane lane;
      lane.kind = "app";
      lane.key = app;
      lane.title = app;
      lane.subtitle = "app: releases and tokens";
      lane.app = app;
      lane_of["app:" + app] = lanes.size();
      lanes.push_back(lane);
    }
    for (const auto& e : t_.entries) {
      std::size_t index = 0;
      if (auto it = lane_of.find("addon:" + e.addon_id);
          !e.addon_id.empty() && it != lane_of.end()) {
        index = it->second;
      } else if (auto at = lane_of.find("app:" + e.app); !e.app.empty() && at != lane_of.end()) {
        index = at->second;
      }
      // A tooltip of two lines, each escaped.
      const std::string tip = HtmlEscape("seq " + std::to_string(e.seq) + " \u00b7 " +
                                         Rfc3339(e.recorded_at_ms) + " \u00b7 " + e.actor) +
                              "\n" +
                              HtmlEscape(std::string(EventTypeName(e.event)) + ": " + Summary(e));
      lanes[index].markers += "<g class=\"ev " + std::string(FamilyClass(FamilyOf(e.event))) +
                              "\" data-seq=\"" + std::to_string(e.seq) +
                              "\" transform=\"translate(" + Num(X(e.seq)) + "," +
                              std::to_string(kLaneHeight / 2) + ")\"><title>" + tip + "</title>" +
                              Shape(e.event) + "</g>";
    }
    for (const auto& c : t_.checkpoints) {
      const std::string tip = "checkpoint, size " + std::to_string(c.size) + ": " +
                              commands::CheckpointCheckName(c.check) + "\nroot " +
                              HtmlEscape(c.root_base64);
      lanes[0].markers += "<rect class=\"cp " +
                          std::string(commands::CheckpointCheckName(c.check)) +
                          "\" data-checkpoint=\"" + std::to_string(c.size) + "\" x=\"" +
                          Num(X(c.size) - 1.5) + "\" y=\"" + std::to_string(kLaneHeight / 2 - 11) +
                          "\" width=\"3\" height=\"8\"><title>" + tip + "</title></rect>";
    }

    const double width = X(std::max<std::uint64_t>(t_.size, 1)) + kRightMargin;
    const int height = kAxisHeight + static_cast<int>(lanes.size()) * kLaneHeight + 8;
    out += "<section id=\"lanes\">\n<svg id=\"lane-svg\" width=\"" + Num(width) + "\" height=\"" +
           std::to_string(height) + "\" data-lane-height=\"" + std::to_string(kLaneHeight) +
           "\" data-top=\"" + std::to_string(kAxisHeight) + "\">\n";
    Axis(out, height);
    for (const auto& lane : lanes) {
      out += "<g class=\"lane\" data-lane=\"" + lane.kind + "\" data-addon=\"" +
             HtmlEscape(lane.addon_filter) + "\" data-app=\"" + HtmlEscape(lane.app) +
             "\" transform=\"translate(0,0)\">";
      out += "<rect class=\"lane-bg\" x=\"0\" y=\"2\" width=\"" + Num(width) + "\" height=\"" +
             std::to_string(kLaneHeight - 4) + "\"/>";
      out += "<text x=\"6\" y=\"15\"><title>" + HtmlEscape(lane.title) + "</title>" +
             HtmlEscape(Shorten(lane.title, 30)) + "</text>";
      out += "<text class=\"sub\" x=\"6\" y=\"28\">" + HtmlEscape(Shorten(lane.subtitle, 40)) +
             "</text>";
      if (lane.span != nullptr) {
        const auto& s = *lane.span;
        const std::uint64_t end =
            s.destroyed_seq != 0 ? s.destroyed_seq : std::max(t_.size, s.created_seq);
        const char* phase = s.destroyed_seq != 0 ? "destroyed" : PhaseName(s.phase);
        out +=
            "<rect class=\"span " + std::string(phase) + "\" x=\"" + Num(X(s.created_seq)) +
            "\" y=\"" + std::to_string(kLaneHeight / 2 - 4) + "\" width=\"" +
            Num(std::max(X(end) - X(s.created_seq), 2.0)) + "\" height=\"8\"><title>" +
            HtmlEscape(
                s.name + " (" + s.addon_id + "): created at seq " + std::to_string(s.created_seq) +
                (s.destroyed_seq != 0 ? ", destroyed at seq " + std::to_string(s.destroyed_seq)
                                      : std::string(", ") + PhaseName(s.phase))) +
            "</title></rect>";
      }
      out += lane.markers;
      out += "</g>\n";
    }
    out += "</svg>\n</section>\n";
  }

  // Record numbers and times along the top, a tick every ~100 px.
  void Axis(std::string& out, int height) const {
    out += "<g class=\"axis\">";
    out +=
        "<text class=\"tick\" x=\"6\" y=\"14\">seq</text><text class=\"tick\" x=\"6\" "
        "y=\"28\">time (UTC)</text>";
    const std::uint64_t every =
        std::max<std::uint64_t>(1, static_cast<std::uint64_t>(120.0 / step_ + 0.999));
    std::map<std::uint64_t, std::int64_t> time_of;
    for (const auto& e : t_.entries) time_of[e.seq] = e.recorded_at_ms;
    std::string last_day;
    for (std::uint64_t seq = 1; seq <= t_.size; seq += every) {
      const double x = X(seq);
      out += "<line x1=\"" + Num(x) + "\" y1=\"32\" x2=\"" + Num(x) + "\" y2=\"" +
             std::to_string(height) + "\"/>";
      out += "<text class=\"tick\" x=\"" + Num(x + 2) + "\" y=\"14\">" + std::to_string(seq) +
             "</text>";
      if (auto it = time_of.find(seq); it != time_of.end()) {
        // 2026-01-15T10:20:30.123Z: the time, and the day when it changes.
        const std::string when = Rfc3339(it->second);
        const std::string day = when.substr(0, 10);
        out += "<text class=\"tick\" x=\"" + Num(x + 2) + "\" y=\"28\"><title>" + when +
               "</title>" + (day != last_day ? day.substr(5) + " " : "") + when.substr(11, 8) +
               "</text>";
        last_day = day;
      }
    }
    out += "</g>\n";
  }

  void Legend(std::string& out) const {
    struct Item {
      const char* cls;
      const char* shape;
      const char* label;
    };
    static constexpr Item kItems[] = {
        {"c-lifecycle", "<rect x=\"-5\" y=\"-5\" width=\"10\" height=\"10\"/>",
         "created / destroyed"},
        {"c-lifecycle", "<circle r=\"4.5\"/>", "provisioned, renamed, repaired"},
        {"c-binding", "<circle r=\"4.5\"/>", "binding attached / detached"},
        {"c-release", "<circle r=\"4.5\"/>", "release"},
        {"c-credential", "<polygon points=\"0,-6 6,0 0,6 -6,0\"/>", "rotation"},
        {"c-credential", "<circle r=\"4.5\"/>", "first delivery"},
        {"c-revocation", "<path d=\"M-5,-5L5,5M5,-5L-5,5\"/>", "revocation"},
        {"c-snapshot", "<polygon points=\"0,-6 6,5 -6,5\"/>", "snapshot"},
        {"c-restore", "<polygon points=\"0,6 6,-5 -6,-5\"/>", "restore"},
        {"c-failure", "<circle r=\"4.5\"/>", "failure"},
        {"c-token", "<circle r=\"4.5\"/>", "workload token"},
        {"cp verified", "<rect x=\"-1.5\" y=\"-4\" width=\"3\" height=\"8\"/>",
         "checkpoint verified"},
        {"cp failed", "<rect x=\"-1.5\" y=\"-4\" width=\"3\" height=\"8\"/>", "checkpoint failed"},
        {"cp not_reached", "<rect x=\"-1.5\" y=\"-4\" width=\"3\" height=\"8\"/>",
         "checkpoint not reached"},
    };
    out += "<div id=\"legend\">";
    for (const Item& item : kItems) {
      out += std::string("<span><svg width=\"14\" height=\"14\"><g class=\"") + item.cls +
             "\" transform=\"translate(7,7)\">" + item.shape + "</g></svg> " + item.label +
             "</span>";
    }
    out +=
        "<span>bars: an add-on's life (green: live, red: failed, grey: destroyed); x: records in "
        "seq order</span>";
    out += "</div>\n";
  }

  void Checkpoints(std::string& out) const {
    out +=
        "<h2>Checkpoints</h2>\n<table id=\"checkpoints\">\n<thead><tr><th>size</th><th>time</th>"
        "<th>verification</th><th>root</th></tr></thead>\n<tbody>\n";
    for (const auto& c : t_.checkpoints) {
      const std::string check = commands::CheckpointCheckName(c.check);
      std::string label = check == "not_reached" ? "not reached" : check;
      out += "<tr data-checkpoint=\"" + std::to_string(c.size) + "\" data-check=\"" + check +
             "\"><td>" + std::to_string(c.size) + "</td><td>" +
             (c.recorded_at_ms ? Rfc3339(c.recorded_at_ms) : "") + "</td><td><span class=\"badge " +
             check + "\">" + label + "</span></td><td class=\"mono\">" + HtmlEscape(c.root_base64) +
             "</td></tr>\n";
    }
    out += "</tbody>\n</table>\n";
  }

  void Events(std::string& out) const {
    out +=
        "<h2>Events</h2>\n<table id=\"events\">\n<thead><tr><th>seq</th><th>time (UTC)</th>"
        "<th>actor</th><th>event</th><th>add-on</th><th>app</th><th>summary</th></tr></"
        "thead>\n<tbody>\n";
    for (const auto& e : t_.entries) {
      std::string addons;
      std::string addon_cell;
      for (const auto& [id, name] : e.addon_names)
        addons += (addons.empty() ? "" : " ") + id + " " + name;
      if (!e.addon_id.empty()) {
        auto it = e.addon_names.find(e.addon_id);
        addon_cell = it != e.addon_names.end() ? it->second : e.addon_id;
        if (addons.empty()) addons = e.addon_id;
      }
      const std::string type = EventTypeName(e.event);
      out += "<tr id=\"e" + std::to_string(e.seq) + "\" data-seq=\"" + std::to_string(e.seq) +
             "\" data-type=\"" + type + "\" data-addon=\"" + HtmlEscape(addons) + "\" data-app=\"" +
             HtmlEscape(e.app) + "\" class=\"" + FamilyClass(FamilyOf(e.event)) + "\"><td>" +
             std::to_string(e.seq) + "</td><td class=\"mono\">" + Rfc3339(e.recorded_at_ms) +
             "</td><td>" + HtmlEscape(e.actor) + "</td><td>" + type + "</td><td>" +
             HtmlEscape(addon_cell) + "</td><td>" + HtmlEscape(e.app) +
             "</td><td class=\"summary\">" + HtmlEscape(Summary(e)) + "</td></tr>\n";
    }
    out += "</tbody>\n</table>\n";
  }

  const commands::Timeline& t_;
  std::int64_t generated_at_ms_;
  std::string version_;
  double step_ = 10;
};

}  // namespace

std::string HtmlEscape(std::string_view text) {
  const std::string safe = TerminalSafe(text);
  std::string out;
  out.reserve(safe.size() + 16);
  for (char c : safe) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string RenderTimelineHtml(const commands::Timeline& timeline, std::int64_t generated_at_ms,
                               const std::string& version) {
  return Page(timeline, generated_at_ms, version).Render();
}

}  // namespace via::cli
