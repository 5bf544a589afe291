// `via serve [--config FILE] [--listen 127.0.0.1:7600] [--node NAME --public-url URL]`: the config server,
// JWKS and Hrana SQL proxy (DESIGN.md section 8, docs/runtime.md). Runs until
// SIGTERM/SIGINT, drains, and exits 0.

#include <condition_variable>
#include <csignal>
#include <chrono>
#include <deque>
#include <map>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include "cli/help.h"
#include "cli/shell.h"
#include "eventstore/group_commit.h"
#include "server/access_log.h"
#include "server/api.h"
#include "commands/maintenance.h"
#include "commands/nodes.h"
#include "server/http_server.h"
#include "server/maintenance.h"
#include "server/sql_policy.h"
#include "server/systemd_notify.h"

namespace via::cli {
namespace {

struct ServeFlags {
  std::string config;  // a file of flags (ApplyConfigFile)
  std::string listen = "127.0.0.1:7600";
  std::string public_url;
  std::string node;  // several nodes on one PostgreSQL log: this node's name
  std::string forward_timeout = "30s";
  std::size_t forward_per_owner = 16;
  int forward_breaker_failures = 3;
  std::string forward_breaker_cooldown = "5s";
  std::string forward_ca_file;
  std::string access_log;
  std::string tls_cert;
  std::string tls_key;
  int threads = 0;  // 0: one per core
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_connections = 512;
  std::size_t max_streams = 1024;
  std::size_t max_streams_per_addon = 256;
  std::size_t pooled_connections = 32;
  std::size_t max_result_rows = 100000;
  std::size_t max_response_bytes = 16 << 20;
  std::string idle_timeout = "60s";
  std::string read_timeout = "30s";
  std::string stream_idle_timeout = "10s";
  std::string statement_timeout = "30s";
  std::string busy_timeout = "5s";
  std::string drain_timeout = "10s";
  std::string ready_max_lag = "5s";
  int sql_workers = 0;                    // 0: two per core, at least 4
  std::size_t per_addon_concurrency = 0;  // 0: half the SQL workers
  std::size_t sql_queue = 1024;
  std::int64_t sql_memory_limit = std::int64_t{1} << 30;
  // Snapshot upkeep in the background (server/maintenance.h).
  bool snapshot_maintenance = true;
  std::string maintenance_interval = "60s";
  std::size_t verify_per_pass = 1;
};

// One line on stderr in one write, so that concurrent lines do not interleave.
void ErrorLine(const std::string& line) {
  const std::string text = line + "\n";
  std::cerr.write(text.data(), static_cast<std::streamsize>(text.size()));
  std::cerr.flush();
}

// "host:port" or "[v6]:port".
Status SplitListen(const std::string& listen, std::string* host, std::uint16_t* port) {
  const Status bad = InvalidArgument("invalid_listen", "--listen must be HOST:PORT, e.g. 127.0.0.1:7600");
  std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) return bad;
  *host = listen.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  const std::string digits = listen.substr(colon + 1);
  if (digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos) return bad;
  const int value = std::stoi(digits);
  if (value > 65535 || host->empty()) return bad;
  *port = static_cast<std::uint16_t>(value);
  return Status::Ok();
}

// A CLI11 check for a duration ParseDurationMs() reads ("500ms", "30s", ...).
CLI::Validator Duration() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        auto ms = ParseDurationMs(text);
        if (!ms.ok()) return ms.status().message();
        return std::string();
      },
      "DURATION");
}

// Reads `--config FILE` (CLI11's TOML/INI form: `key = value` lines, `#` or
// `;` comments, the keys in a [serve] section or in none) into the options of
// `serve` that the command line did not set: the command line wins. Every key
// is a flag of `via serve` without its dashes; an unknown key or section, a
// key given twice or a value the flag refuses is a usage error (CLI::ConfigError,
// exit 2) that names the file and the key.
void ApplyConfigFile(CLI::App& serve, const std::string& path) {
  const std::string where = "config file " + path;
  std::ifstream in(path);
  if (!in) throw CLI::ConfigError(where + ": cannot be read");
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_config(in);
  } catch (const CLI::Error& e) {
    throw CLI::ConfigError(where + ": " + e.what());
  }
  std::vector<std::string> keys;
  for (const CLI::Option* option : serve.get_options()) {
    const std::string& name = option->get_single_name();
    if (option->get_configurable() && !name.empty() && name != "help") keys.push_back(name);
  }
  std::set<std::string> seen;
  for (const CLI::ConfigItem& item : items) {
    if (!item.parents.empty() && !(item.parents.size() == 1 && item.parents[0] == "serve")) {
      std::string section;
      for (const auto& p : item.parents) section += (section.empty() ? "" : ".") + p;
      throw CLI::ConfigError(where + ": unknown section [" + section +
                             "]; the flags of `via serve` go in [serve]");
    }
    if (item.name == "--" || item.name == "++") continue;  // a section's end or start
    std::string key = item.name;
    if (key.rfind("--", 0) == 0) key = key.substr(2);
    CLI::Option* option = serve.get_option_no_throw("--" + key);
    if (option == nullptr || !option->get_configurable() || key == "help") {
      std::string message = where + ": unknown key '" + key + "'";
      if (auto close = ClosestMatch(key, keys)) message += "; did you mean '" + *close + "'?";
      throw CLI::ConfigError(message);
    }
    if (!seen.insert(key).second || item.inputs.size() != 1) {
      throw CLI::ConfigError(where + ": key '" + key + "' is given more than once");
    }
    if (option->count() > 0) continue;  // the command line wins
    try {
      option->add_result(item.inputs);
      option->run_callback();
    } catch (const CLI::Error& e) {
      throw CLI::ConfigError(where + ": " + key + " = \"" + item.inputs.front() + "\": " + e.what());
    }
  }
}

// Owner work that other nodes' homes asked this node for (several nodes:
// snapshots, restores, new add-ons' storage), carried out one command at a
// time on a thread of its own, each once (commands::RunOwnerWork). Work that
// failed for a reason that passes (Unavailable: the log or the storage's
// server away, a lock) is tried again after a pause (1 s doubling to 30 s),
// while the asker still waits; other failures are answered or logged once.
class OwnerWork {
 public:
  explicit OwnerWork(commands::Context ctx) : ctx_(std::move(ctx)) {}
  ~OwnerWork() { Stop(); }
  void Start() { thread_ = std::thread([this] { Run(); }); }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void Add(const std::string& command_id) {
    {
      std::lock_guard lock(mu_);
      if (!seen_.insert(command_id).second) return;
      queue_.push_back(command_id);
    }
    wake_.notify_one();
  }

 private:
  void Run() {
    using Clock = std::chrono::steady_clock;
    std::unique_lock lock(mu_);
    for (;;) {
      // Retries whose pause is over join the queue.
      while (!later_.empty() && later_.begin()->first <= Clock::now()) {
        queue_.push_back(later_.begin()->second);
        later_.erase(later_.begin());
      }
      if (queue_.empty()) {
        if (later_.empty()) {
          wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        } else {
          wake_.wait_until(lock, later_.begin()->first,
                           [this] { return stop_ || !queue_.empty(); });
        }
        if (stop_) return;
        continue;
      }
      if (stop_) return;
      const std::string command_id = queue_.front();
      queue_.pop_front();
      lock.unlock();
      auto done = commands::RunOwnerWork(ctx_, command_id);
      const bool again = !done.ok() && done.status().code() == StatusCode::kUnavailable;
      ErrorLine("via serve: owner work " + command_id + " for another node: " +
                (done.ok() ? *done
                           : done.status().ToString() + ": " + done.status().message() +
                                 (again ? " (trying again)" : "")));
      lock.lock();
      if (again) {
        int& tries = tries_[command_id];
        const auto pause = std::chrono::seconds(std::min(30, 1 << std::min(tries, 5)));
        ++tries;
        later_.emplace(Clock::now() + pause, command_id);
      } else {
        tries_.erase(command_id);
      }
    }
  }

  commands::Context ctx_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;
  std::multimap<std::chrono::steady_clock::time_point, std::string> later_;  // retries
  std::map<std::string, int> tries_;
  std::set<std::string> seen_;
  bool stop_ = false;
  std::thread thread_;
};

int RunServe(Shell& shell, const ServeFlags& f) {
  // Until the server catches it, SIGHUP is ignored rather than fatal.
  std::signal(SIGHUP, SIG_IGN);
  server::HttpServerOptions http;
  if (Status s = SplitListen(f.listen, &http.host, &http.port); !s.ok()) return shell.Fail(s);
  VIA_ASSIGN_OR_RETURN_EXIT(http.idle_timeout_ms, ParseDurationMs(f.idle_timeout), shell);
  VIA_ASSIGN_OR_RETURN_EXIT(http.read_timeout_ms, ParseDurationMs(f.read_timeout), shell);
  VIA_ASSIGN_OR_RETURN_EXIT(http.drain_timeout_ms, ParseDurationMs(f.drain_timeout), shell);
  http.threads = std::clamp(
      f.threads > 0 ? f.threads : static_cast<int>(std::thread::hardware_concurrency()), 1, 256);
  http.max_header_bytes = f.max_header_bytes;
  http.max_body_bytes = f.max_body_bytes;
  http.max_connections = f.max_connections;
  http.error_log = ErrorLine;
  if (f.tls_cert.empty() != f.tls_key.empty()) {
    return shell.Fail(InvalidArgument("usage", "--tls-cert and --tls-key go together"));
  }
  http.tls_cert_file = f.tls_cert;
  http.tls_key_file = f.tls_key;
  const std::string scheme = f.tls_cert.empty() ? "http://" : "https://";

  VIA_ASSIGN_OR_RETURN_EXIT(commands::Context ctx, shell.MakeContext(), shell);
  // A home without its keys is refused before anything opens the log: a
  // writable open makes a missing home (as any command may), and via serve
  // never makes one (docs/runtime.md).
  if (auto keys = server::ReadServeKeys(ctx.home); !keys.ok()) return shell.Fail(keys.status());
  // Several nodes: announce this one (NodeAnnounced) before serving, so that
  // its own state already knows it; a home that is a node's serves as it.
  std::string node = f.node;
  if (!node.empty()) {
    if (f.public_url.empty()) {
      return shell.Fail(InvalidArgument("usage", "--node needs --public-url, the URL other nodes "
                                                 "and apps reach this node at"));
    }
    commands::Context announce_ctx = ctx;
    if (announce_ctx.actor.empty()) announce_ctx.actor = "via-serve";
    VIA_ASSIGN_OR_RETURN_EXIT(commands::AnnounceResult announced,
                              commands::AnnounceNode(announce_ctx, node, f.public_url), shell);
    ErrorLine("via serve: node " + node + " at " + f.public_url +
              (announced.announced ? " (announced at seq " + std::to_string(announced.seq) + ")"
                                   : " (already announced)"));
  } else {
    VIA_ASSIGN_OR_RETURN_EXIT(std::optional<std::string> home_node, commands::HomeNode(ctx.home),
                              shell);
    node = home_node.value_or("");
  }
  server::ApiOptions api_options;
  api_options.node = node;
  VIA_ASSIGN_OR_RETURN_EXIT(api_options.forward_timeout_ms, ParseDurationMs(f.forward_timeout),
                            shell);
  api_options.forward_per_owner = f.forward_per_owner;
  api_options.forward_breaker_failures = f.forward_breaker_failures;
  VIA_ASSIGN_OR_RETURN_EXIT(api_options.forward_breaker_cooldown_ms,
                            ParseDurationMs(f.forward_breaker_cooldown), shell);
  api_options.forward_ca_file = f.forward_ca_file;
  api_options.home = ctx.home;
  api_options.providers = ctx.providers;
  api_options.actor = ctx.actor.empty() ? "via-serve" : ctx.actor;
  api_options.clock = ctx.clock;
  api_options.ids = ctx.ids;
  api_options.public_url = f.public_url;
  api_options.hrana.max_body_bytes = f.max_body_bytes;
  api_options.hrana.max_streams = f.max_streams;
  api_options.hrana.max_streams_per_database = f.max_streams_per_addon;
  api_options.hrana.pooled_connections = f.pooled_connections;
  api_options.hrana.max_result_rows = f.max_result_rows;
  api_options.hrana.max_response_bytes = f.max_response_bytes;
  VIA_ASSIGN_OR_RETURN_EXIT(api_options.hrana.stream_idle_timeout_ms,
                            ParseDurationMs(f.stream_idle_timeout), shell);
  VIA_ASSIGN_OR_RETURN_EXIT(api_options.hrana.statement_timeout_ms,
                            ParseDurationMs(f.statement_timeout), shell);
  VIA_ASSIGN_OR_RETURN_EXIT(std::int64_t busy_ms, ParseDurationMs(f.busy_timeout), shell);
  api_options.sqlite_busy_timeout_ms = static_cast<int>(std::min<std::int64_t>(busy_ms, 600000));
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  api_options.sql_workers =
      std::clamp(f.sql_workers > 0 ? f.sql_workers : std::max(4, 2 * cores), 1, 1024);
  api_options.per_addon_concurrency =
      f.per_addon_concurrency > 0
          ? f.per_addon_concurrency
          : static_cast<std::size_t>(std::max(1, api_options.sql_workers / 2));
  api_options.sql_queue = f.sql_queue;
  // Statements past 100 ms go on at nice +10 (docs/runtime.md "Where work runs").
  api_options.hrana.long_statement_ms = 100;
  api_options.error_log = ErrorLine;
  VIA_ASSIGN_OR_RETURN_EXIT(api_options.ready_max_lag_ms, ParseDurationMs(f.ready_max_lag), shell);
  // Counted by the HTTP server and the API, shown at GET /metrics.
  server::Metrics metrics;
  api_options.metrics = &metrics;
  http.metrics = &metrics;
  // Process-wide: every SQLite connection of this process (server/sql_policy.h).
  server::hrana::LimitSqliteHeap(f.sql_memory_limit);
  // Everything via serve appends goes through one group committer on a
  // connection of its own (eventstore/group_commit.h): deliveries, owner
  // work and scheduled snapshot work that arrive together share a
  // transaction. Declared before the workers that use it: it outlives them.
  VIA_ASSIGN_OR_RETURN_EXIT(std::unique_ptr<eventstore::EventLog> append_log, ctx.OpenLog(),
                            shell);
  append_log->store().set_retry_policy(server::ServeRetryPolicy());
  eventstore::GroupCommitter committer(append_log->store(), append_log->signer());
  api_options.committer = &committer;
  commands::Context owner_ctx = ctx;
  owner_ctx.actor = api_options.actor;
  owner_ctx.progress = nullptr;
  owner_ctx.committer = &committer;
  OwnerWork owner_work(owner_ctx);
  owner_work.Start();
  api_options.on_owner_work = [&owner_work](const std::string& command_id) {
    owner_work.Add(command_id);
  };
  VIA_ASSIGN_OR_RETURN_EXIT(auto api, server::Api::Open(api_options), shell);

  VIA_ASSIGN_OR_RETURN_EXIT(std::unique_ptr<server::AccessLog> access_log,
                            server::AccessLog::Open(f.access_log), shell);
  http.access_log = access_log.get();
  // SIGHUP (`systemctl reload via`, logrotate's postrotate): the access log
  // is opened again at its path.
  http.on_drain = [] { server::NotifySystemd("STOPPING=1\nSTATUS=draining", ErrorLine); };
  http.on_reload = [log = access_log.get()]() {
    Status reopened = log->Reopen();
    ErrorLine(reopened.ok() ? "via serve: SIGHUP: access log reopened"
                            : "via serve: SIGHUP: " + reopened.message() + " (still writing the old file)");
  };

  // Scheduled snapshots, retention and verification: one job at a time on a
  // low-priority thread of its own, between passes a pause.
  server::MaintenanceOptions upkeep;
  VIA_ASSIGN_OR_RETURN_EXIT(upkeep.interval_ms, ParseDurationMs(f.maintenance_interval), shell);
  upkeep.first_delay_ms = std::min<std::int64_t>(upkeep.interval_ms, 5000);
  upkeep.log = ErrorLine;
  commands::Context upkeep_ctx = ctx;
  upkeep_ctx.actor = api_options.actor;
  upkeep_ctx.progress = nullptr;
  upkeep_ctx.committer = &committer;
  commands::MaintenanceOptions jobs;
  jobs.max_verifications = f.verify_per_pass;
  server::MaintenanceLoop maintenance(upkeep, [upkeep_ctx, jobs]() {
    std::vector<std::string> lines;
    auto report = commands::MaintainSnapshots(upkeep_ctx, jobs);
    if (!report.ok()) return std::vector<std::string>{"error: " + report.status().message()};
    lines = report->done;
    for (const auto& e : report->errors) lines.push_back("error: " + e);
    return lines;
  });
  if (f.snapshot_maintenance) maintenance.Start();

  server::Api* api_ptr = api.get();
  Status run = Status::Ok();
  {
  server::HttpServer server(
      http,
      [api_ptr](server::HttpRequest r, server::Responder respond) {
        api_ptr->Handle(std::move(r), std::move(respond));
      },
      [&](const std::string& address) {
        if (f.public_url.empty()) api_ptr->set_public_url(scheme + address);
        // One write, so that a script tailing stderr never reads half the
        // address (std::cerr is unbuffered: each << would be a write).
        const std::string line = "via serve: listening on " + scheme + address + " (log seq " +
                                 std::to_string(api_ptr->seq()) + ")\n";
        std::cerr.write(line.data(), static_cast<std::streamsize>(line.size()));
        std::cerr.flush();
        // Type=notify: systemd counts the service as started from here.
        server::NotifySystemd("READY=1\nSTATUS=listening on " + scheme + address, ErrorLine);
      });
  run = server.Run();
  maintenance.Stop();
  // The workers stop (and drop what still waits) before the server, whose
  // io_context their responders post to, is destroyed.
  api->Shutdown();
  owner_work.Stop();
  }
  // The server caught SIGHUP while it existed; from here until exit the
  // signal is ignored, so a late reload never ends the process with 129.
  std::signal(SIGHUP, SIG_IGN);
  if (!run.ok()) return shell.Fail(run);
  std::cerr << "via serve: drained, exiting" << std::endl;
  return 0;
}

}  // namespace

void RegisterServe(CLI::App& app, Shell& shell) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* serve = app.add_subcommand(
      "serve", "run the config server, JWKS and Hrana SQL proxy (see docs/runtime.md)");
  serve->add_option("--config", f->config,
                    "read flags from FILE (TOML/INI: `key = value` in [serve]; the command line wins)")
      ->type_name("FILE")
      ->configurable(false);
  serve->add_option("--listen", f->listen, "HOST:PORT to listen on (port 0: any free port)");
  serve->add_option("--public-url", f->public_url,
                    "base URL put in descriptors (default http://LISTEN, https:// with TLS)");
  serve->add_option("--node", f->node,
                    "this node's name on a shared PostgreSQL log (needs --public-url; see "
                    "docs/operations.md \"Several nodes\")");
  serve->add_option("--forward-timeout", f->forward_timeout,
                    "a Hrana request forwarded to the add-on's owning node (default 30s)")
      ->check(Duration());
  serve->add_option("--forward-per-owner", f->forward_per_owner,
                    "requests forwarded to one owning node at once; more get 503 forward_busy "
                    "(default 16)")
      ->check(WholeNumber(1, 100000));
  serve->add_option("--forward-breaker-failures", f->forward_breaker_failures,
                    "consecutive failures to reach an owning node after which its requests fail "
                    "at once for the cool-down (default 3, 0: never)")
      ->check(WholeNumber(0, 1000000));
  serve->add_option("--forward-breaker-cooldown", f->forward_breaker_cooldown,
                    "how long requests for an unreachable owning node fail at once before one "
                    "is tried again (default 5s)")
      ->check(Duration());
  serve->add_option("--forward-ca-file", f->forward_ca_file,
                    "PEM CA certificates that https:// owning nodes' certificates must chain to "
                    "(default: the system's store)")
      ->type_name("FILE");
  serve->add_option("--access-log", f->access_log, "JSON-lines access log file (default stdout)");
  serve->add_option("--tls-cert", f->tls_cert,
                    "serve HTTPS/WSS with this PEM certificate chain (with --tls-key; SIGHUP reloads)")
      ->type_name("FILE");
  serve->add_option("--tls-key", f->tls_key, "the PEM private key of --tls-cert")
      ->type_name("FILE");
  serve->add_option("--threads", f->threads, "I/O threads (default: one per core)")
      ->check(WholeNumber(0, 1024));
  serve->add_option("--max-header-bytes", f->max_header_bytes, "request header limit (default 16384)")
      ->check(WholeNumber(1024, 1ULL << 20));
  serve->add_option("--max-body-bytes", f->max_body_bytes, "request body limit (default 1048576)")
      ->check(WholeNumber(1024, 1ULL << 30));
  serve->add_option("--max-connections", f->max_connections, "open connections limit (default 512)")
      ->check(WholeNumber(1, 1000000));
  serve->add_option("--max-streams", f->max_streams, "open Hrana streams limit (default 1024)")
      ->check(WholeNumber(1, 1000000));
  serve->add_option("--max-streams-per-addon", f->max_streams_per_addon,
                    "open Hrana streams of one add-on generation (default 256)")
      ->check(WholeNumber(1, 1000000));
  serve->add_option("--pooled-connections", f->pooled_connections,
                    "idle SQLite connections kept per add-on generation for new streams (default 32, 0: none)")
      ->check(WholeNumber(0, 100000));
  serve->add_option("--max-result-rows", f->max_result_rows, "rows per statement (default 100000)")
      ->check(WholeNumber(1, 1ULL << 40));
  serve->add_option("--max-response-bytes", f->max_response_bytes, "rows per pipeline, in bytes (default 16 MiB)")
      ->check(WholeNumber(1024, 1ULL << 40));
  serve->add_option("--idle-timeout", f->idle_timeout, "keep-alive idle timeout (default 60s)")
      ->check(Duration());
  serve->add_option("--read-timeout", f->read_timeout, "time to receive a body / send a response (default 30s)")
      ->check(Duration());
  serve->add_option("--stream-idle-timeout", f->stream_idle_timeout, "Hrana stream (baton) idle timeout (default 10s)")
      ->check(Duration());
  serve->add_option("--statement-timeout", f->statement_timeout, "one SQL statement (default 30s)")
      ->check(Duration());
  serve->add_option("--busy-timeout", f->busy_timeout, "wait for a database lock (default 5s)")
      ->check(Duration());
  serve->add_option("--drain-timeout", f->drain_timeout, "grace for requests in flight at SIGTERM (default 10s)")
      ->check(Duration());
  serve->add_option("--ready-max-lag", f->ready_max_lag,
                    "/readyz fails when the last log catch-up began longer ago (default 5s)")
      ->check(Duration());
  serve->add_option("--sql-workers", f->sql_workers,
                    "threads that run SQL (default: 2 per core, at least 4)")
      ->check(WholeNumber(0, 1024));
  serve->add_option("--per-addon-concurrency", f->per_addon_concurrency,
                    "SQL pipelines of one add-on running at once (default: half the SQL workers)")
      ->check(WholeNumber(0, 1024));
  serve->add_option(
      "--sql-queue", f->sql_queue,
      "SQL pipelines waiting for a worker, all add-ons together (default 1024; beyond: 503)")
      ->check(WholeNumber(0, 1000000));
  serve->add_option("--sql-memory-limit", f->sql_memory_limit,
                    "bytes of memory for SQLite in this process (default 1 GiB; 0: no limit)")
      ->check(WholeNumber(0, 1ULL << 50));
  serve->add_option("--snapshot-maintenance", f->snapshot_maintenance,
                    "scheduled snapshots, pruning and verification in the background (default true)");
  serve->add_option("--maintenance-interval", f->maintenance_interval,
                    "pause between background passes (default 60s)")
      ->check(Duration());
  serve->add_option("--verify-per-pass", f->verify_per_pass,
                    "snapshots verified per background pass (default 1)")
      ->check(WholeNumber(0, 1000));
  serve->callback([&shell, f, serve]() {
    if (!f->config.empty()) ApplyConfigFile(*serve, f->config);
    shell.action = [&shell, f]() { return RunServe(shell, *f); };
  });
}

}  // namespace via::cli
