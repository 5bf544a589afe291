// The remediation contract (DESIGN.md section 7, docs/cli.md "Remediation
// graph"), walked through the real `via` binary on real SQLite files: for
// every blocker and refusal code, produced by a real situation, paste the
// printed remediation until the add-on is usable or the remediation is null;
// no cycle, at most 3 steps, and no other add-on's binding or data changed.

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <nlohmann/json.hpp>

#include "domain/readiness.h"
#include "eventstore/event_log.h"
#include "serve_process.h"
#include "testing.h"

using namespace via;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Home {
  testing::TempDir dir;

  testing::CommandResult Run(const std::string& args, const std::string& env = "") {
    return testing::Run(env + (env.empty() ? "" : " ") + testing::ViaBinary() + " --home '" +
                        dir.path().string() + "' " + args + " </dev/null");
  }
  json Json(const std::string& args, const std::string& env = "") {
    auto r = Run("--json " + args, env);
    INFO(args << "\n" << r.out);
    return json::parse(r.out.empty() ? "null" : r.out, nullptr, false);
  }
  void Must(const std::string& args, const std::string& env = "") {
    auto r = Run(args, env);
    INFO(args << "\n" << r.out);
    REQUIRE(r.exit_code == 0);
  }
  std::string Id(const std::string& name) {
    return Json("addon status " + name)["addon"]["id"].get<std::string>();
  }
  fs::path Db(const std::string& id) { return dir.path() / "addons" / id / "data.sqlite"; }

  // Appends events straight to the log, as a newer or partly-run version would.
  void AppendRaw(std::vector<Event> events) {
    testing::FakeClock clock;
    testing::CountingIds ids;
    eventstore::EventLog::Options options;
    options.home = eventstore::Home{dir.path()};
    options.clock = &clock;
    options.ids = &ids;
    auto log = eventstore::EventLog::Open(options);
    REQUIRE(log.ok());
    eventstore::AppendRequest request;
    request.actor = "test";
    request.recorded_at_ms = clock.NowMs();
    request.events = std::move(events);
    REQUIRE((*log)->Append(request).ok());
  }

  // Every binding and the content of every add-on's database, except those
  // of `target`: what a remediation for `target` must leave alone.
  std::map<std::string, std::string> OthersFingerprint(const std::string& target_id) {
    std::map<std::string, std::string> out;
    json all = Json("addon list --all")["addons"];
    REQUIRE(all.is_array());  // {"addons":[…]}
    for (const auto& a : all) {
      const std::string id = a["id"];
      if (id == target_id) continue;
      out["bindings " + id] = a["bindings"].dump();
      out["state " + id] = a["state"].get<std::string>() + " gen " + a["generation"].dump();
      std::error_code ec;
      if (fs::exists(Db(id), ec)) {
        auto dump = testing::Run("sqlite3 -readonly '" + Db(id).string() + "' .dump");
        out["data " + id] = dump.out;
      }
    }
    return out;
  }
};

// What a document asks to do next: the refusal's fields when there is one,
// else the readiness blocker's.
struct Next {
  std::string code;  // "" when the document reports success
  json remediation;
  std::string owner;
};

Next NextOf(const json& doc) {
  if (doc.is_object() && doc.contains("error")) {
    const json& e = doc["error"];
    return {e["code"], e.value("remediation", json(nullptr)),
            e.value("owner", json(nullptr)).is_string() ? e["owner"].get<std::string>() : ""};
  }
  if (doc.is_object() && doc.contains("usable_by_app") && doc["usable_by_app"] == false) {
    return {doc["blocking"], doc["remediation"],
            doc["owner"].is_string() ? doc["owner"].get<std::string>() : ""};
  }
  return {"", nullptr, ""};
}

struct Walk {
  std::vector<std::string> codes;  // the chain, first to last
  std::vector<std::string> pasted;
  bool usable = false;             // ended usable (or the command succeeded)
  std::string final_owner;         // when it ended on a null remediation
};

// Runs `start`, then pastes remediations. After a pasted command succeeds,
// the situation is looked at again with `recheck` (the start command itself,
// or the target's status); a pasted command that is refused is followed on.
Walk WalkFrom(Home& h, const std::string& start, const std::string& recheck,
              const std::string& target_id, const std::string& env = "") {
  auto before = h.OthersFingerprint(target_id);
  Walk walk;
  json doc = h.Json(start, env);
  std::set<std::string> seen;
  for (;;) {
    INFO("document: " << doc.dump());
    Next next = NextOf(doc);
    if (next.code.empty()) {
      walk.usable = doc.is_object() && (!doc.contains("usable_by_app") || doc["usable_by_app"] == true);
      break;
    }
    walk.codes.push_back(next.code);
    if (next.remediation.is_null()) {
      // No command: someone must decide, and the document says who.
      CHECK_FALSE(next.owner.empty());
      walk.final_owner = next.owner;
      break;
    }
    const std::string fix = next.remediation.get<std::string>();
    INFO("remediation: " << fix);
    REQUIRE(fix.rfind("via ", 0) == 0);
    CHECK(fix.find('<') == std::string::npos);
    CHECK(fix.find(" APP") == std::string::npos);
    // No cycle: the same code never asks for the same command twice.
    REQUIRE(seen.insert(next.code + " -> " + fix).second);
    walk.pasted.push_back(fix);
    REQUIRE(walk.pasted.size() <= 3);
    json out = h.Json("--yes " + fix.substr(4), env);
    doc = (out.is_object() && out.contains("error")) ? out : h.Json(recheck, env);
  }
  // What existed besides the target is as it was (new records may appear:
  // a remediation may create the target again).
  auto after = h.OthersFingerprint(target_id);
  for (const auto& [key, value] : before) {
    INFO(key);
    CHECK(after[key] == value);
  }
  return walk;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " | ") + s;
  return out;
}

// A home with a neighbour that must never be touched: `other` of app `api`
// bound as CACHE with a row of data, claimed by the app's release.
void Neighbour(Home& h) {
  h.Must("addon create sqlite other --app api --bind CACHE");
  h.Must("addon create sqlite web-db --app web --bind DATABASE");
  auto r = testing::Run("sqlite3 '" + h.Db(h.Id("other")).string() +
                        "' \"CREATE TABLE keep(x); INSERT INTO keep VALUES ('mine');\"");
  REQUIRE(r.exit_code == 0);
}

void Scribble(const fs::path& file) {
  std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(4096);
  std::string junk(4096 * 2, '\x5a');
  f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
}

void Fill(Home& h, const std::string& id) {
  auto r = testing::Run("sqlite3 '" + h.Db(id).string() +
                        "' \"CREATE TABLE t(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT "
                        "i+1 FROM c WHERE i<2000) INSERT INTO t SELECT randomblob(100) FROM c;\"");
  REQUIRE(r.exit_code == 0);
}

std::string ReadSource(const std::string& relative) {
  std::ifstream in(fs::path(VIA_SOURCE_DIR) / relative);
  REQUIRE(in.good());
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// The codes in the first column of docs/cli.md's "Refusals:" table.
std::set<std::string> DocumentedRefusals() {
  const std::string doc = ReadSource("docs/cli.md");
  const auto start = doc.find("\nRefusals:\n");
  REQUIRE(start != std::string::npos);
  const auto end = doc.find("\n## ", start);
  std::set<std::string> out;
  std::istringstream table(doc.substr(start, end - start));
  const std::regex code("`([a-z_]+)`");
  for (std::string line; std::getline(table, line);) {
    if (line.rfind("| `", 0) != 0 && line.rfind("| HTTP", 0) != 0) continue;
    const std::string first = line.substr(0, line.find(" | "));
    for (std::sregex_iterator it(first.begin(), first.end(), code), e; it != e; ++it) {
      out.insert((*it)[1]);
    }
  }
  REQUIRE(out.size() > 15);
  return out;
}

// The reason codes the deciders of domain/ refuse with.
std::set<std::string> DomainRefusals() {
  std::set<std::string> out;
  const std::regex code(
      R"re((FailedPrecondition|InvalidArgument|NotFound|AlreadyExists|DataLoss)\(\s*"([a-z_]+)")re");
  for (const char* file : {"domain/decide.cc", "domain/snapshots.cc", "domain/readiness.cc"}) {
    const std::string text = ReadSource(file);
    for (std::sregex_iterator it(text.begin(), text.end(), code), e; it != e; ++it) {
      out.insert((*it)[2]);
    }
  }
  REQUIRE(out.size() > 15);
  return out;
}

}  // namespace

TEST_CASE("walker: every readiness blocker converges", "[cli][walker]") {
  struct Scenario {
    std::string name;
    std::string expect_first;  // the code the situation must produce
    bool expect_usable;        // ends usable (else on a null remediation)
    // Sets the situation up; returns (start command, recheck command, target id).
    std::function<std::tuple<std::string, std::string, std::string>(Home&)> setup;
    std::string env;
  };
  std::vector<Scenario> scenarios = {
      {"release claim missing after create", "release_claim_missing", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         return std::make_tuple("addon status app-db", "addon status app-db", h.Id("app-db"));
       }},
      {"bound after the latest release", "release_claim_missing", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api");
         h.Must("release create --app api");
         h.Must("addon bind app-db --app api --bind DATABASE");
         return std::make_tuple("addon status app-db", "addon status app-db", h.Id("app-db"));
       }},
      {"unknown name, no app", "addon_not_found", false,
       [](Home& h) { return std::make_tuple("addon status nope", "addon status nope", ""); }},
      {"destroyed name", "addon_destroyed", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         h.Must("addon unbind app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         h.Must("--yes addon destroy app-db");
         return std::make_tuple("addon status app-db", "addon status app-db", std::string());
       }},
      {"failed create without SQLite bytes", "provisioning_failed", true,
       [](Home& h) {
         auto r = h.Run("addon create sqlite app-db --app api --bind DATABASE",
                        "VIA_TEST_FAULT=provision_fail");
         REQUIRE(r.exit_code == 3);
         return std::make_tuple("addon status app-db", "addon status app-db", h.Id("app-db"));
       }},
      {"failed create with SQLite bytes", "provisioning_failed", true,
       [](Home& h) {
         auto r = h.Run("addon create sqlite app-db --app api --bind DATABASE",
                        "VIA_TEST_FAULT=provision_fail_after_create");
         REQUIRE(r.exit_code == 3);
         std::string id = h.Id("app-db");
         return std::make_tuple("addon status app-db", "addon status app-db", id);
       }},
      {"retired failed record", "provisioning_failed", false,
       [](Home& h) {
         REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE",
                       "VIA_TEST_FAULT=provision_fail")
                     .exit_code == 3);
         std::string failed = h.Id("app-db");
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         return std::make_tuple("addon status " + failed, "addon status " + failed, failed);
       }},
      {"ensure for another app", "metadata_conflict", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         return std::make_tuple("addon ensure sqlite app-db --app web2 --bind DATABASE",
                                "addon ensure sqlite app-db --app web2 --bind DATABASE",
                                h.Id("app-db"));
       }},
      {"unknown provider", "unknown_provider", false,
       [](Home& h) {
         h.AppendRaw({AddonCreated{"ad_future", "queue", "rabbitmq", "api", ""}});
         return std::make_tuple("addon status queue", "addon status queue", "ad_future");
       }},
      {"missing storage, no snapshot", "storage_missing", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         for (const char* s : {"", "-wal", "-shm"}) fs::remove(h.Db(h.Id("app-db")).string() + s);
         return std::make_tuple("addon status app-db", "addon status app-db", h.Id("app-db"));
       }},
      {"missing storage, snapshot restores", "storage_missing", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         Fill(h, h.Id("app-db"));
         h.Must("addon snapshot app-db");
         for (const char* s : {"", "-wal", "-shm"}) fs::remove(h.Db(h.Id("app-db")).string() + s);
         return std::make_tuple("addon status app-db", "addon status app-db", h.Id("app-db"));
       }},
      {"missing storage, damaged snapshot", "storage_missing", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         std::string id = h.Id("app-db");
         Fill(h, id);
         h.Must("addon snapshot app-db");
         for (const auto& f : fs::directory_iterator(h.dir.path() / "snapshots" / id)) {
           std::ofstream(f.path(), std::ios::app) << "tampered";
         }
         for (const char* s : {"", "-wal", "-shm"}) fs::remove(h.Db(id).string() + s);
         return std::make_tuple("addon status app-db", "addon status app-db", id);
       }},
      {"corrupt storage found by a full check", "storage_corrupt", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         std::string id = h.Id("app-db");
         Fill(h, id);
         Scribble(h.Db(id));
         REQUIRE(h.Run("addon check app-db").exit_code == 3);
         return std::make_tuple("addon status app-db", "addon status app-db", id);
       }},
      {"unreadable storage", "storage_unreadable", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         std::string id = h.Id("app-db");
         for (const char* s : {"", "-wal", "-shm"}) fs::remove(h.Db(id).string() + s);
         fs::create_directory(h.Db(id));
         return std::make_tuple("addon status app-db", "addon status app-db", id);
       }},
      {"restore left in flight", "restore_in_progress", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         std::string id = h.Id("app-db");
         h.AppendRaw({RestoreRequested{id, "sn_1", "sn_2"}});
         return std::make_tuple("addon status app-db", "addon status app-db", id);
       }},
      {"created without a binding", "binding_missing", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api");
         return std::make_tuple("addon status app-db", "addon status app-db", h.Id("app-db"));
       }},
      {"its binding was detached", "binding_missing", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         h.Must("addon unbind app-db --app api --bind DATABASE");
         return std::make_tuple("addon status app-db", "addon status app-db", h.Id("app-db"));
       }},
      {"ensure meets a binding of another add-on", "binding_conflict", false,
       [](Home& h) {
         h.Must("addon create sqlite one --app api --bind DATABASE");
         h.Must("addon create sqlite two --app api");
         return std::make_tuple("addon ensure sqlite two --app api --bind DATABASE",
                                "addon ensure sqlite two --app api --bind DATABASE", h.Id("two"));
       }},
      {"every generation revoked", "no_active_generation", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         h.Must("addon revoke-credentials app-db --generation 1 --force");
         return std::make_tuple("addon status app-db", "addon status app-db", h.Id("app-db"));
       }},
      {"credentials key missing", "credentials_key_missing", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         fs::remove(h.dir.path() / "keys" / "credentials.key");
         return std::make_tuple("addon status app-db", "addon status app-db", h.Id("app-db"));
       }},
  };
  // Every code the evaluator can name has a real situation here, but
  // storage_unreachable, whose situation needs a PostgreSQL server
  // (tests/providers/postgres, on the test cluster).
  std::set<std::string> covered = {"storage_unreachable"};
  for (const auto& sc : scenarios) covered.insert(sc.expect_first);
  CHECK(covered == std::set<std::string>(BlockerCodes().begin(), BlockerCodes().end()));
  for (auto& sc : scenarios) {
    SECTION(sc.name) {
      Home h;
      h.Must("init");
      Neighbour(h);
      auto [start, recheck, target] = sc.setup(h);
      Walk w = WalkFrom(h, start, recheck, target, sc.env);
      INFO(sc.name << ": " << Join(w.codes) << " / pasted: " << Join(w.pasted));
      REQUIRE_FALSE(w.codes.empty());
      CHECK(w.codes.front() == sc.expect_first);
      CHECK(w.usable == sc.expect_usable);
    }
  }
}

TEST_CASE("walker: every refusal converges", "[cli][walker]") {
  struct Scenario {
    std::string name;
    std::string expect_first;
    bool expect_success;  // ends with the command done (else on a null remediation)
    std::function<std::tuple<std::string, std::string, std::string>(Home&)> setup;
  };
  std::vector<Scenario> scenarios = {
      {"create of a taken name", "name_taken", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api");
         return std::make_tuple("addon create sqlite app-db --app api",
                                "addon create sqlite app-db --app api", h.Id("app-db"));
       }},
      {"create over a failed record with SQLite bytes", "name_blocked_by_failed", true,
       [](Home& h) {
         REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE",
                       "VIA_TEST_FAULT=provision_fail_after_create")
                     .exit_code == 3);
         h.Must("release create --app api");
         return std::make_tuple("addon create sqlite app-db --app api --bind DATABASE",
                                "addon status app-db", h.Id("app-db"));
       }},
      {"bind of a binding another add-on holds", "binding_conflict", false,
       [](Home& h) {
         h.Must("addon create sqlite one --app api --bind DATABASE");
         h.Must("addon create sqlite two --app api");
         return std::make_tuple("addon bind two --app api --bind DATABASE",
                                "addon bind two --app api --bind DATABASE", h.Id("two"));
       }},
      {"create of a binding another add-on holds", "binding_conflict", false,
       [](Home& h) {
         h.Must("addon create sqlite one --app api --bind DATABASE");
         return std::make_tuple("addon create sqlite two --app api --bind DATABASE",
                                "addon create sqlite two --app api --bind DATABASE", "");
       }},
      {"unbind of another add-on's binding", "binding_of_another_addon", false,
       [](Home& h) {
         h.Must("addon create sqlite one --app api --bind DATABASE");
         h.Must("addon create sqlite two --app api");
         return std::make_tuple("addon unbind two --app api --bind DATABASE",
                                "addon unbind two --app api --bind DATABASE", h.Id("two"));
       }},
      {"a tombstone name", "tombstone_name", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api");
         std::string id = h.Id("app-db");
         h.Must("--yes addon destroy app-db");
         h.Must("addon create sqlite app-db --app api");
         return std::make_tuple("addon status 'app-db#destroyed#" + id + "'",
                                "addon status " + id, id);
       }},
      {"bind of a destroyed add-on", "addon_destroyed", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api");
         std::string id = h.Id("app-db");
         h.Must("--yes addon destroy app-db");
         return std::make_tuple("addon bind " + id + " --app api --bind DATABASE",
                                "addon bind " + id + " --app api --bind DATABASE", id);
       }},
      {"bind of an unknown add-on", "addon_not_found", false,
       [](Home& h) {
         return std::make_tuple("addon bind nope --app api --bind DATABASE",
                                "addon bind nope --app api --bind DATABASE", "");
       }},
      {"destroy while bound and claimed", "addon_bound", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         return std::make_tuple("--yes addon destroy app-db", "--yes addon destroy app-db",
                                h.Id("app-db"));
       }},
      {"destroy while claimed by the latest release", "claimed_by_release", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         h.Must("addon unbind app-db --app api --bind DATABASE");
         return std::make_tuple("--yes addon destroy app-db", "--yes addon destroy app-db",
                                h.Id("app-db"));
       }},
      {"revoke of the last active generation", "last_active_generation", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         return std::make_tuple("addon revoke-credentials app-db --generation 1",
                                "addon revoke-credentials app-db --generation 1", h.Id("app-db"));
       }},
      {"revoke of a revoked generation, another active", "generation_already_revoked", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("addon rotate-credentials app-db");
         h.Must("addon revoke-credentials app-db --generation 1");
         return std::make_tuple("addon revoke-credentials app-db --generation 1",
                                "addon revoke-credentials app-db --generation 1", h.Id("app-db"));
       }},
      {"revoke of a revoked generation, none active", "generation_already_revoked", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         h.Must("addon revoke-credentials app-db --generation 1 --force");
         return std::make_tuple("addon revoke-credentials app-db --generation 1",
                                "addon status app-db", h.Id("app-db"));
       }},
      {"revoke of an unknown generation", "generation_not_found", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api");
         return std::make_tuple("addon revoke-credentials app-db --generation 9",
                                "addon revoke-credentials app-db --generation 9", h.Id("app-db"));
       }},
      {"restore of an unknown snapshot", "snapshot_not_found", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api");
         return std::make_tuple("--yes addon restore app-db --snapshot sn_nope",
                                "--yes addon restore app-db --snapshot sn_nope", h.Id("app-db"));
       }},
      {"restore of a tampered snapshot, an older one intact", "snapshot_hash_mismatch", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         h.Must("addon snapshot app-db --label old");
         json taken = h.Json("addon snapshot app-db --label new");
         std::string id = h.Id("app-db");
         std::string sn = taken["id"];
         // Verified before the damage: the restore's hash check refuses it.
         h.Must("addon snapshots verify app-db --snapshot " + sn);
         std::ofstream(h.dir.path() / "snapshots" / id / (sn + ".sqlite"), std::ios::app)
             << "tampered";
         return std::make_tuple("--yes addon restore app-db --snapshot " + sn,
                                "addon status app-db", id);
       }},
      {"restore of a tampered, never verified snapshot, an older one intact",
       "snapshot_verification_failed", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         h.Must("addon snapshot app-db --label old");
         json taken = h.Json("addon snapshot app-db --label new");
         std::string id = h.Id("app-db");
         std::string sn = taken["id"];
         std::ofstream(h.dir.path() / "snapshots" / id / (sn + ".sqlite"), std::ios::app)
             << "tampered";
         return std::make_tuple("--yes addon restore app-db --snapshot " + sn,
                                "addon status app-db", id);
       }},
      {"restore of another add-on's snapshot", "snapshot_of_another_addon", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api");
         json taken = h.Json("addon snapshot other");
         const std::string sn = taken["id"];
         return std::make_tuple("--yes addon restore app-db --snapshot " + sn,
                                "--yes addon restore app-db --snapshot " + sn, h.Id("app-db"));
       }},
      {"snapshot while a restore is in flight", "restore_in_progress", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         std::string id = h.Id("app-db");
         h.AppendRaw({RestoreRequested{id, "sn_1", "sn_2"}});
         return std::make_tuple("addon snapshot app-db", "addon snapshot app-db", id);
       }},
      {"create without the credentials key", "credentials_key_missing", false,
       [](Home& h) {
         fs::remove(h.dir.path() / "keys" / "credentials.key");
         return std::make_tuple("addon create sqlite app-db --app api",
                                "addon create sqlite app-db --app api", "");
       }},
      {"destroy while a release with a live token claims it", "claimed_by_release", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         h.Must("workload token --app api --release v1 --ttl 10m");
         h.Must("addon unbind app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         return std::make_tuple("--yes addon destroy app-db", "--yes addon destroy app-db",
                                h.Id("app-db"));
       }},
      {"release id taken", "release_exists", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api --id v1");
         return std::make_tuple("release create --app api --id v1",
                                "release create --app api --id v1", h.Id("app-db"));
       }},
      {"restore of a snapshot that failed", "snapshot_not_taken", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         // A snapshot cut off by a crash before its file, settled as failed.
         REQUIRE(h.Run("addon snapshot app-db", "VIA_CRASH_AT=snapshot.before_file").exit_code != 0);
         h.Must("recover");
         json list = h.Json("addon snapshots app-db")["snapshots"];
         REQUIRE(list.size() == 1);
         REQUIRE(list[0]["status"] == "failed");
         const std::string sn = list[0]["id"];
         return std::make_tuple("--yes addon restore app-db --snapshot " + sn,
                                "--yes addon restore app-db --snapshot " + sn, h.Id("app-db"));
       }},
      {"restore of a deleted snapshot", "snapshot_deleted", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         const std::string sn = h.Json("addon snapshot app-db")["id"];
         h.Must("--yes addon snapshot delete " + sn);
         return std::make_tuple("--yes addon restore app-db --snapshot " + sn,
                                "--yes addon restore app-db --snapshot " + sn, h.Id("app-db"));
       }},
      {"restore of a snapshot whose file is gone, an older one intact", "snapshot_file_missing",
       true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         h.Must("addon snapshot app-db --label old");
         const std::string sn = h.Json("addon snapshot app-db --label new")["id"];
         h.Must("addon snapshots verify app-db");
         const std::string id = h.Id("app-db");
         fs::remove(h.dir.path() / "snapshots" / id / (sn + ".sqlite"));
         return std::make_tuple("--yes addon restore app-db --snapshot " + sn,
                                "addon status app-db", id);
       }},
      {"delete of a snapshot still being taken", "snapshot_in_use", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         // SnapshotRequested without its completion: the crash left it in flight.
         REQUIRE(h.Run("addon snapshot app-db", "VIA_CRASH_AT=snapshot.before_file").exit_code != 0);
         json list = h.Json("addon snapshots app-db")["snapshots"];
         REQUIRE(list.size() == 1);
         REQUIRE(list[0]["status"] == "requested");
         const std::string sn = list[0]["id"];
         return std::make_tuple("--yes addon snapshot delete " + sn,
                                "--yes addon snapshot delete " + sn, h.Id("app-db"));
       }},
      {"delete of the newest verified snapshot", "newest_verified_snapshot", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         const std::string sn = h.Json("addon snapshot app-db")["id"];
         h.Must("addon snapshots verify app-db");
         // Once deleted, the same delete is snapshot_deleted: look at the add-on.
         return std::make_tuple("--yes addon snapshot delete " + sn, "addon status app-db",
                                h.Id("app-db"));
       }},
      {"create from a deleted snapshot", "snapshot_not_usable", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         const std::string sn = h.Json("addon snapshot app-db")["id"];
         h.Must("--yes addon snapshot delete " + sn);
         return std::make_tuple("addon create sqlite copy --app api --from-snapshot " + sn,
                                "addon create sqlite copy --app api --from-snapshot " + sn,
                                std::string());
       }},
      {"full check of an add-on whose create failed", "addon_not_active", true,
       [](Home& h) {
         REQUIRE(h.Run("addon create sqlite app-db --app api --bind DATABASE",
                       "VIA_TEST_FAULT=provision_fail")
                     .exit_code == 3);
         return std::make_tuple("addon check app-db", "addon status app-db", h.Id("app-db"));
       }},
      {"a schedule without retention", "policy_keeps_nothing", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         return std::make_tuple("addon snapshots policy app-db --every 1h",
                                "addon snapshots policy app-db --every 1h", h.Id("app-db"));
       }},
      {"a snapshot label too long", "label_too_long", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         const std::string cmd = "addon snapshot app-db --label " + std::string(201, 'x');
         return std::make_tuple(cmd, cmd, h.Id("app-db"));
       }},
      {"create on a node that never announced itself", "unknown_node", false,
       [](Home& h) {
         // The home says it is node n1's, but no `via serve --node n1` ran.
         std::ofstream(h.dir.path() / "node") << "n1\n";
         return std::make_tuple("addon create sqlite db-n --app api",
                                "addon create sqlite db-n --app api", std::string());
       }},
      {"create with a provider this build does not run", "unknown_provider", false,
       [](Home& h) {
         return std::make_tuple("addon create rabbitmq queue --app api",
                                "addon create rabbitmq queue --app api", std::string());
       }},
      {"repair of storage that cannot be read", "storage_unreadable", false,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         std::string id = h.Id("app-db");
         for (const char* s : {"", "-wal", "-shm"}) fs::remove(h.Db(id).string() + s);
         fs::create_directory(h.Db(id));
         return std::make_tuple("addon ensure sqlite app-db --app api --repair",
                                "addon ensure sqlite app-db --app api --repair", id);
       }},
      {"repair that would install an empty database", "repair_needs_allow_empty", true,
       [](Home& h) {
         h.Must("addon create sqlite app-db --app api --bind DATABASE");
         h.Must("release create --app api");
         std::string id = h.Id("app-db");
         Fill(h, id);
         Scribble(h.Db(id));
         REQUIRE(h.Run("addon check app-db").exit_code == 3);
         return std::make_tuple("addon ensure sqlite app-db --app api --repair",
                                "addon ensure sqlite app-db --app api --repair", id);
       }},
  };
  // Every refusal code of the graph in docs/cli.md and every refusal the
  // domain's deciders name has a real situation here (the HTTP 403 has its
  // own case below).
  std::set<std::string> covered{"binding_not_claimed"};
  for (const auto& sc : scenarios) covered.insert(sc.expect_first);
  for (const auto& code : DocumentedRefusals()) {
    INFO("docs/cli.md refusal without a walk: " << code);
    CHECK(covered.count(code) == 1);
  }
  for (const auto& code : DomainRefusals()) {
    INFO("domain refusal without a walk: " << code);
    CHECK(covered.count(code) == 1);
  }
  for (auto& sc : scenarios) {
    SECTION(sc.name) {
      Home h;
      h.Must("init");
      Neighbour(h);
      auto [start, recheck, target] = sc.setup(h);
      Walk w = WalkFrom(h, start, recheck, target);
      INFO(sc.name << ": " << Join(w.codes) << " / pasted: " << Join(w.pasted));
      REQUIRE_FALSE(w.codes.empty());
      CHECK(w.codes.front() == sc.expect_first);
      CHECK(w.usable == sc.expect_success);
    }
  }
}

TEST_CASE("walker: HTTP 403 binding_not_claimed from via serve converges", "[cli][walker]") {
  Home h;
  h.Must("init");
  Neighbour(h);
  h.Must("release create --app api");  // v1 claims CACHE only
  h.Must("addon create sqlite app-db --app api --bind DATABASE");
  const std::string target = h.Id("app-db");
  const std::string v1_token = h.Json("workload token --app api --release v1")["token"];
  auto before = h.OthersFingerprint(target);

  testing::ServeProcess serve(h.dir.path());
  REQUIRE_FALSE(serve.url().empty());
  // A real HTTP client: the status on the last line, the body before it.
  auto get = [&](const std::string& token, const std::string& binding) {
    auto r = testing::Run("curl -s -w '\\n%{http_code}' -H 'Authorization: Bearer " + token +
                          "' " + serve.url() + "/v1/descriptors/" + binding);
    REQUIRE(r.exit_code == 0);
    const auto cut = r.out.rfind('\n');
    return std::make_pair(std::stoi(r.out.substr(cut + 1)),
                          json::parse(r.out.substr(0, cut), nullptr, false));
  };
  auto [status, body] = get(v1_token, "DATABASE");
  INFO(body.dump());
  REQUIRE(status == 403);
  Next next = NextOf(body);
  REQUIRE(next.code == "binding_not_claimed");
  CHECK(next.owner == "app_developer");
  REQUIRE(next.remediation.is_string());
  const std::string fix = next.remediation.get<std::string>();
  CHECK(fix == "via release create --app api");

  // Paste it: one step, and the add-on is usable by the release it made.
  json release = h.Json(fix.substr(4));
  REQUIRE(release["release"] == "v2");
  json doc = h.Json("addon status app-db");
  CHECK(doc["usable_by_app"] == true);
  CHECK(NextOf(doc).code.empty());
  // The app deploys that release: its workload's token now gets the
  // descriptor (once the server's tailer has read the release; bounded).
  const std::string v2_token = h.Json("workload token --app api --release v2")["token"];
  int v2_status = 0;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);;) {
    auto [s, b] = get(v2_token, "DATABASE");
    v2_status = s;
    if (!(s == 401 && b["error"]["code"] == "unknown_release")) break;
    if (std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(v2_status == 200);
  // v1's workloads still get the same 403 and the same fix: no other path.
  CHECK(get(v1_token, "DATABASE").first == 403);

  auto after = h.OthersFingerprint(target);
  for (const auto& [key, value] : before) {
    INFO(key);
    CHECK(after[key] == value);
  }
}
