// reprise-server: the history service. See docs/architecture.md and docs/api.md.
#include <csignal>
#include <filesystem>
#include <chrono>
#include <iostream>

#include <CLI/CLI.hpp>
#include <reprise/protocol/duration.hpp>
#include <spdlog/spdlog.h>

#include "dev/local_cluster.hpp"
#include "pg/connection.hpp"
#include "service/server_app.hpp"

namespace {

/// The database for the dev server inside the private cluster; created on first use.
std::string ensure_dev_database(const reprise::dev::LocalCluster& cluster) {
  reprise::pg::Connection admin(cluster.connection_string("postgres"));
  auto r = admin.exec("dev_db_exists", "SELECT 1 FROM pg_database WHERE datname = 'reprise'");
  if (r.rows() == 0) admin.exec_script("CREATE DATABASE reprise");
  return cluster.connection_string("reprise");
}

/// Checks a duration option as CLI11 parses it, so a bad value is reported with the option's
/// name ("--idle-poll: invalid duration ...") rather than as a failure to start.
const CLI::Validator kDuration(
    [](std::string& text) {
      try {
        reprise::protocol::parse_duration(text);
        return std::string();
      } catch (const std::exception& e) {
        return std::string(e.what());
      }
    },
    "DURATION");

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"reprise-server: the Reprise history service (HTTP/JSON API over PostgreSQL)"};
  bool dev = false;
  std::string data_dir = ".reprise";
  reprise::service::ServerAppOptions options;
  std::string max_poll_wait = "60s";
  std::string first_task_hold = "10ms";
  std::string idle_poll = "0s";
  std::string log_level = "info";
  app.add_flag("--dev", dev,
               "Run with a private PostgreSQL cluster under --data-dir, created on first use");
  app.add_option("--data-dir", data_dir, "Where --dev keeps its PostgreSQL cluster")->capture_default_str();
  app.add_option("--database-url", options.database_url,
                 "libpq connection string of the PostgreSQL database (without --dev)");
  app.add_option("--listen-address", options.http.address, "Address to serve HTTP on")->capture_default_str();
  app.add_option("--port", options.http.port, "Port to serve HTTP on (0: any free port)")->capture_default_str();
  app.add_option("--ready-file", options.ready_file,
                 "Write the port here once serving (for scripts and tests)");
  app.add_option("--database-threads", options.database_threads, "Threads (and connections) for store work")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--io-threads", options.io_threads, "Threads serving HTTP")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--max-poll-wait", max_poll_wait, "The longest a task poll or history wait is held open")
      ->capture_default_str()
      ->check(kDuration);
  app.add_option("--first-task-hold", first_task_hold,
                 "How long a start whose first workflow task went to a waiting worker waits for that task's "
                 "completion, to commit both as one transaction (0s: never)")
      ->capture_default_str()
      ->check(kDuration);
  app.add_option("--idle-poll", idle_poll,
                 "How long an idle server polls for the next request, and a lone request for its database's "
                 "answer, before sleeping: lower latency under light load for CPU; whole milliseconds, at most 10ms (0s: never); "
                 "needs --io-threads 1")
      ->capture_default_str()
      ->check(kDuration);
  app.add_option("--synchronous-commit", options.synchronous_commit,
                 "PostgreSQL's synchronous_commit for the server's sessions (default: the database's, normally "
                 "on). off: faster, but a PostgreSQL crash can lose changes acknowledged in its last moments")
      ->check(CLI::IsMember({"on", "off", "local", "remote_write", "remote_apply"}));
  app.add_option("--max-payload-bytes", options.api.limits.max_payload_bytes, "Largest payload accepted")
      ->capture_default_str();
  app.add_option("--history-max-events", options.api.limits.history_max_events,
                 "Runs whose history would grow past this are terminated")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e level=%l %v");
  try {
    options.api.max_poll_wait = reprise::protocol::parse_duration(max_poll_wait);
    options.api.first_task_hold = reprise::protocol::parse_duration(first_task_hold);
    if (options.api.first_task_hold > std::chrono::seconds(10)) {
      std::cerr << "reprise-server: --first-task-hold " << first_task_hold
                << " is too long: a start's caller may wait that long for a worker's first task. Use a few "
                   "milliseconds, at most 10s (the default workflow task timeout); 0s turns holding off\n";
      return 2;
    }
    const auto poll = reprise::protocol::parse_duration(idle_poll);
    if (poll > std::chrono::milliseconds(10)) {
      std::cerr << "reprise-server: --idle-poll " << idle_poll
                << " is too long: an idle server keeps a core busy that long after each request. Use at most "
                   "10ms (about a commit's time is enough); 0s turns polling off\n";
      return 2;
    }
    if (poll.count() > 0 && options.io_threads > 1) {
      // A second io thread sleeps in epoll_wait holding the reactor, so the polling thread's
      // polls find nothing and every request still wakes a thread.
      std::cerr << "reprise-server: --idle-poll needs --io-threads 1: with more, requests wake a sleeping io "
                   "thread whatever the polling one does\n";
      return 2;
    }
    options.idle_poll = std::chrono::duration_cast<std::chrono::microseconds>(poll);
    options.http.max_body_bytes = options.api.limits.max_payload_bytes * 2 + 64 * 1024;
    std::unique_ptr<reprise::dev::LocalCluster> cluster;
    if (dev) {
      if (!options.database_url.empty()) {
        std::cerr << "reprise-server: --dev runs its own PostgreSQL; do not also pass --database-url\n";
        return 2;
      }
      auto dir = std::filesystem::absolute(data_dir) / "postgres";
      spdlog::info("msg=\"starting the private PostgreSQL cluster\" data_dir={}", dir.string());
      reprise::dev::LocalClusterOptions cluster_options;
      cluster_options.data_dir = dir;
      cluster = std::make_unique<reprise::dev::LocalCluster>(
          reprise::dev::LocalCluster::open(cluster_options));
      options.database_url = ensure_dev_database(*cluster);
    } else if (options.database_url.empty()) {
      std::cerr << "reprise-server: pass --database-url \"host=... dbname=...\", or --dev to run "
                   "with a private PostgreSQL\n";
      return 2;
    }
    int code = reprise::service::run_server(options);
    if (cluster) {
      spdlog::info("msg=\"stopping the private PostgreSQL cluster\"");
      cluster->stop();
    }
    return code;
  } catch (const std::exception& e) {
    spdlog::critical("msg=\"cannot start\" error=\"{}\"", e.what());
    return 1;
  }
}
