// `via audit timeline --html FILE` in headless Chromium (Debian `chromium`):
// the page loads from file://, its script runs and builds what the DOM dump
// shows (events, lifecycle spans, checkpoints and their verification, the
// filters read from the URL), a hostile log cannot inject markup or script,
// the page requests nothing, and a screenshot is saved in the build tree
// (tests/e2e/timeline*.png) for people to look at.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "cli/cli_home.h"
#include "eventstore/event_log.h"

using namespace via;
using via::testing::CliHome;
using via::testing::Run;
using via::testing::TempDir;

namespace {

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::size_t Count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Headless Chromium with its own profile, quiet on a closed network.
class Chromium {
 public:
  Chromium() {
    auto which = Run("command -v chromium");
    INFO("Chromium is needed for this test: run tools/setup.sh (Debian package chromium)");
    REQUIRE(which.exit_code == 0);
  }

  // The DOM after the page's script ran. `extra`: more flags.
  std::string DumpDom(const std::filesystem::path& page, const std::string& query = "",
                      const std::string& extra = "") {
    auto r = Run(Command(extra) + " --dump-dom '" + Url(page, query) + "' 2>/dev/null");
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.out.find("</html>") != std::string::npos);
    return r.out;
  }

  void Screenshot(const std::filesystem::path& page, const std::filesystem::path& png) {
    std::filesystem::remove(png);
    auto r = Run(Command("--window-size=1400,1000") + " --screenshot='" + png.string() + "' '" +
                 Url(page, "") + "' >/dev/null 2>&1");
    REQUIRE(r.exit_code == 0);
    const std::string bytes = ReadText(png);
    REQUIRE(bytes.size() > 10000);
    CHECK(bytes.substr(1, 3) == "PNG");
  }

 private:
  static std::string Url(const std::filesystem::path& page, const std::string& query) {
    return "file://" + std::filesystem::absolute(page).string() + query;
  }
  std::string Command(const std::string& extra) const {
    return "timeout 90 chromium --headless --no-sandbox --disable-gpu "
           "--disable-background-networking --disable-component-update --disable-sync "
           "--no-first-run --user-data-dir='" +
           profile_.path().string() + "' " + extra;
  }
  TempDir profile_;
};

// A proxy that answers nothing and notes the host of every request it gets.
class RecordingProxy {
 public:
  RecordingProxy() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 64) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~RecordingProxy() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string flag() const { return "--proxy-server=http://127.0.0.1:" + std::to_string(port_); }
  // Hosts asked for, except the browser's own services (updates, time, accounts),
  // which Chromium contacts on its own whatever the page holds.
  std::set<std::string> PageHosts() {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<std::string> out;
    for (const auto& host : hosts_) {
      auto ends = [&host](const std::string& suffix) {
        return host.size() >= suffix.size() &&
               host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0;
      };
      if (!ends(".google.com") && !ends(".googleapis.com") && !ends(".gstatic.com"))
        out.insert(host);
    }
    return out;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) continue;
      pollfd c{client, POLLIN, 0};
      char buf[1024];
      ssize_t n = ::poll(&c, 1, 2000) > 0 ? ::read(client, buf, sizeof buf) : 0;
      ::close(client);
      if (n <= 0) continue;
      // "GET http://host/path HTTP/1.1" or "CONNECT host:443 HTTP/1.1"
      std::istringstream line(std::string(buf, static_cast<std::size_t>(n)));
      std::string method, target;
      line >> method >> target;
      if (target.rfind("http://", 0) == 0) target = target.substr(7);
      target = target.substr(0, target.find_first_of("/:"));
      std::lock_guard<std::mutex> lock(mu_);
      hosts_.insert(target);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::set<std::string> hosts_;
};

constexpr const char* kScriptName = "</script><script>document.title='pwned'</script>";
constexpr const char* kImgApp = "<img src=x onerror=\"document.title='pwned'\">";
constexpr const char* kSvgActor = "\"><svg onload=\"document.title='pwned'\">";

// A home with a whole lifecycle done through `via`, then records written
// straight into the log with hostile names (as someone holding the log key,
// or a future bug, could).
struct TimelineHome : CliHome {
  std::string app_db;
  std::size_t records = 0;

  TimelineHome() {
    REQUIRE(Run("--actor alice init").exit_code == 0);
    REQUIRE(Run("--actor alice addon create sqlite app-db --app api --bind DATABASE").exit_code ==
            0);
    REQUIRE(Run("--actor alice addon create sqlite cache-db --app api --bind CACHE").exit_code ==
            0);
    REQUIRE(Run("--actor alice release create --app api").exit_code == 0);
    REQUIRE(Run("--actor bob addon rotate-credentials app-db").exit_code == 0);
    REQUIRE(Run("--actor bob --yes addon revoke-credentials app-db --generation 1").exit_code == 0);
    auto snap = Json("--actor carol addon snapshot app-db --label '<b>nightly</b>'");
    REQUIRE(snap.contains("id"));
    REQUIRE(
        Run("--actor carol --yes addon restore app-db --snapshot " + snap["id"].get<std::string>())
            .exit_code == 0);
    REQUIRE(Run("--actor dave addon unbind cache-db --app api --bind CACHE").exit_code == 0);
    REQUIRE(Run("--actor dave --yes addon destroy cache-db --force").exit_code == 0);
    REQUIRE(Run("--actor erin workload token --app api --release v1").exit_code == 0);
    REQUIRE(Run("--actor erin addon create sqlite web-db --app web --bind DATABASE").exit_code ==
            0);
    app_db = Id("app-db");

    testing::FakeClock clock;
    testing::CountingIds ids;
    eventstore::EventLog::Options options;
    options.home = eventstore::Home{dir.path()};
    options.clock = &clock;
    options.ids = &ids;
    auto log = eventstore::EventLog::Open(options);
    REQUIRE(log.ok());
    eventstore::AppendRequest request;
    request.actor = kSvgActor;
    request.recorded_at_ms = clock.NowMs();
    request.events.push_back(
        AddonCreated{"ad_hostile", kScriptName, "sqlite", kImgApp, "DATABASE"});
    request.events.push_back(SnapshotRequested{"ad_hostile", "sn_hostile", kScriptName});
    REQUIRE((*log)->Append(request).ok());
    records = Records().size();
  }

  std::filesystem::path Page(const std::string& name = "timeline.html") {
    return dir.path() / name;
  }

  // Flips one byte in the middle of record `seq` (the table's triggers dropped).
  void FlipByte(std::uint64_t seq) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(eventstore::Home{dir.path()}.log_db().c_str(), &db) == SQLITE_OK);
    sqlite3_exec(db, "DROP TRIGGER IF EXISTS records_no_update", nullptr, nullptr, nullptr);
    sqlite3_stmt* read = nullptr;
    sqlite3_prepare_v2(db, "SELECT record FROM records WHERE seq = ?", -1, &read, nullptr);
    sqlite3_bind_int64(read, 1, static_cast<sqlite3_int64>(seq));
    REQUIRE(sqlite3_step(read) == SQLITE_ROW);
    const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(read, 0));
    std::string bytes(reinterpret_cast<const char*>(p),
                      static_cast<std::size_t>(sqlite3_column_bytes(read, 0)));
    sqlite3_finalize(read);
    bytes[bytes.size() / 2] ^= 0x01;
    sqlite3_stmt* write = nullptr;
    sqlite3_prepare_v2(db, "UPDATE records SET record = ? WHERE seq = ?", -1, &write, nullptr);
    sqlite3_bind_blob(write, 1, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(write, 2, static_cast<sqlite3_int64>(seq));
    REQUIRE(sqlite3_step(write) == SQLITE_DONE);
    sqlite3_finalize(write);
    sqlite3_close(db);
  }
};

// Attributes that load or link something (src, href, action, ...), as
// "tag attribute", found by reading every start tag's attributes.
std::vector<std::string> UrlAttributes(const std::string& html) {
  static const std::regex tag(
      R"re(<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s=>/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*)\s*/?>)re");
  static const std::regex attribute(R"re(\s+([^\s=>/]+)(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)re");
  std::vector<std::string> out;
  for (std::sregex_iterator t(html.begin(), html.end(), tag), end; t != end; ++t) {
    const std::string attributes = (*t)[2];
    for (std::sregex_iterator a(attributes.begin(), attributes.end(), attribute); a != end; ++a) {
      const std::string name = (*a)[1];
      if (name == "src" || name == "href" || name == "action" || name == "srcset" ||
          name == "xlink:href" || name == "poster" || name == "data" || name.rfind("on", 0) == 0) {
        out.push_back((*t)[1].str() + " " + name);
      }
    }
  }
  return out;
}

// The rows of the events table that the filters left visible: their types.
std::vector<std::string> VisibleTypes(const std::string& dom) {
  std::vector<std::string> out;
  const std::regex row(R"re(<tr id="e\d+" data-seq="\d+" data-type="(\w+)"[^>]*class="([^"]*)")re");
  for (std::sregex_iterator it(dom.begin(), dom.end(), row), end; it != end; ++it) {
    const std::string classes = (*it)[2];
    if (classes.find("off") == std::string::npos) out.push_back((*it)[1]);
  }
  return out;
}

}  // namespace

TEST_CASE("the timeline page shows the log's events, spans and verified checkpoints",
          "[e2e][timeline]") {
  TimelineHome home;
  Chromium chromium;
  auto r = home.Run("audit timeline --html '" + home.Page().string() + "'");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("wrote "));

  const std::string dom = chromium.DumpDom(home.Page());
  // The script ran: it counts what the filters show.
  CHECK(dom.find("showing " + std::to_string(home.records) + " of " + std::to_string(home.records) +
                 " events") != std::string::npos);
  CHECK(Count(dom, "<tr id=\"e") == home.records);
  CHECK(dom.find("id=\"verdict\" class=\"ok\"") != std::string::npos);
  for (const char* type :
       {"AddonCreated", "GenerationRotated", "GenerationRevoked", "SnapshotTaken",
        "SnapshotRestored", "AddonDestroyed", "BindingSnapshotted", "WorkloadTokenIssued"}) {
    INFO(type);
    CHECK(dom.find("data-type=\"" + std::string(type) + "\"") != std::string::npos);
  }
  // Lifecycle spans: cache-db destroyed, app-db live.
  CHECK(Count(dom, "class=\"span destroyed\"") == 1);
  CHECK(Count(dom, "class=\"span active\"") == 2);
  CHECK(dom.find("app-db (" + home.app_db + ") generation 1 revoked") != std::string::npos);
  // Every checkpoint verified, in the table and on the log lane.
  const std::size_t checkpoints = Count(dom, "<tr data-checkpoint=");
  CHECK(checkpoints > 10);
  CHECK(Count(dom, "data-check=\"verified\"") == checkpoints);
  CHECK(Count(dom, "<rect class=\"cp verified\" data-checkpoint=") == checkpoints);

  chromium.Screenshot(home.Page(), std::string(VIA_BINARY_DIR) + "/tests/e2e/timeline.png");
}

TEST_CASE("the timeline page filters by event type, add-on and app from its URL",
          "[e2e][timeline]") {
  TimelineHome home;
  Chromium chromium;
  REQUIRE(home.Run("audit timeline --html '" + home.Page().string() + "'").exit_code == 0);

  auto rotated = VisibleTypes(chromium.DumpDom(home.Page(), "?type=GenerationRotated"));
  CHECK(rotated == std::vector<std::string>(4, "GenerationRotated"));  // 3 creates + 1 rotation

  const std::string by_addon = chromium.DumpDom(home.Page(), "?addon=cache-db&type=AddonDestroyed");
  CHECK(VisibleTypes(by_addon) == std::vector<std::string>{"AddonDestroyed"});
  CHECK(by_addon.find("showing 1 of ") != std::string::npos);
  // The other lanes are hidden (app-db, web-db, the hostile add-on, and app
  // api, the one app with events of its own); the log lane and cache-db's stay.
  CHECK(Count(by_addon, "<g class=\"lane off\"") == 4);
  CHECK(Count(by_addon, "<g class=\"lane\"") == 2);

  const std::string by_id =
      chromium.DumpDom(home.Page(), "?addon=" + home.app_db + "&type=GenerationRevoked");
  CHECK(VisibleTypes(by_id) == std::vector<std::string>{"GenerationRevoked"});

  auto web = VisibleTypes(chromium.DumpDom(home.Page(), "?app=web"));
  CHECK(web == std::vector<std::string>{"AddonCreated", "GenerationRotated", "BindingAttached",
                                        "StorageProvisioned"});
  auto text = VisibleTypes(chromium.DumpDom(home.Page(), "?q=nightly"));
  CHECK(text == std::vector<std::string>{"SnapshotRequested"});
}

TEST_CASE("names from a hostile log cannot inject markup or script into the timeline",
          "[e2e][timeline]") {
  TimelineHome home;
  Chromium chromium;
  REQUIRE(home.Run("audit timeline --html '" + home.Page().string() + "'").exit_code == 0);
  const std::string html = ReadText(home.Page());
  // One script element, the page's own; the hostile text only escaped.
  CHECK(Count(html, "<script") == 1);
  CHECK(html.find("<img") == std::string::npos);
  CHECK(html.find("<svg onload") == std::string::npos);
  CHECK(html.find("&lt;/script&gt;&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;") !=
        std::string::npos);
  CHECK(html.find("&lt;b&gt;nightly&lt;/b&gt;") != std::string::npos);

  const std::string dom = chromium.DumpDom(home.Page());
  CHECK(dom.find("<title>via audit timeline: ") != std::string::npos);
  CHECK(dom.find("pwned</title>") == std::string::npos);
  CHECK(dom.find("<img") == std::string::npos);
  CHECK(dom.find("<b>nightly") == std::string::npos);
  CHECK(UrlAttributes(dom).empty());
  // It is shown as text, in the table and as a lane.
  CHECK(dom.find("<td>&lt;img src=x onerror=\"document.title='pwned'\"&gt;</td>") !=
        std::string::npos);
}

TEST_CASE("the timeline page requests nothing over the network", "[e2e][timeline]") {
  TimelineHome home;
  Chromium chromium;
  REQUIRE(home.Run("audit timeline --html '" + home.Page().string() + "'").exit_code == 0);
  const std::string html = ReadText(home.Page());
  CHECK(html.find("default-src 'none'") != std::string::npos);
  for (const char* url : {"http:", "https:", "url(", "@import", "fetch(", "XMLHttpRequest",
                          "WebSocket", "<link", "<iframe", "<object", "<embed"}) {
    INFO(url);
    CHECK(html.find(url) == std::string::npos);
  }
  // No element has an attribute that loads or links anything (the log's
  // text holds "src=", escaped inside values).
  CHECK(UrlAttributes(html).empty());

  RecordingProxy proxy;
  chromium.DumpDom(home.Page(), "", proxy.flag());
  CHECK(proxy.PageHosts().empty());

  // Both checks see a page that asks for something.
  const std::string probe_html =
      "<!DOCTYPE html><html><body><img alt=\"a b\" src=\"http://timeline-probe.invalid/x.png\">"
      "</body></html>";
  CHECK(UrlAttributes(probe_html) == std::vector<std::string>{"img src"});
  const auto probe = home.dir.path() / "probe.html";
  std::ofstream(probe) << probe_html;
  chromium.DumpDom(probe, "", proxy.flag());
  CHECK(proxy.PageHosts() == std::set<std::string>{"timeline-probe.invalid"});
}

TEST_CASE("a tampered log gives a page that shows where verification failed, and exit 6",
          "[e2e][timeline]") {
  TimelineHome home;
  Chromium chromium;
  const std::uint64_t bad = 12;
  home.FlipByte(bad);
  auto r = home.Run("--json audit timeline --html '" + home.Page().string() + "'");
  CHECK(r.exit_code == 6);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["ok"] == false);
  CHECK(j["first_bad_seq"] == bad);
  CHECK(j["error"]["code"] == "hash_mismatch");

  const std::string dom = chromium.DumpDom(home.Page());
  CHECK(dom.find("id=\"verdict\" class=\"bad\" data-ok=\"false\" data-first-bad-seq=\"12\"") !=
        std::string::npos);
  const std::regex checkpoint(R"re(<tr data-checkpoint="(\d+)" data-check="(\w+)")re");
  int verified = 0, not_reached = 0;
  for (std::sregex_iterator it(dom.begin(), dom.end(), checkpoint), end; it != end; ++it) {
    const std::uint64_t size = std::stoull((*it)[1]);
    const std::string check = (*it)[2];
    INFO(size << " " << check);
    if (size < bad) {
      CHECK(check == "verified");
      ++verified;
    } else if (size == bad) {
      CHECK(check == "failed");
    } else {
      CHECK(check == "not_reached");
      ++not_reached;
    }
  }
  CHECK(verified > 0);
  CHECK(not_reached > 0);
  chromium.Screenshot(home.Page(),
                      std::string(VIA_BINARY_DIR) + "/tests/e2e/timeline-tampered.png");
}
