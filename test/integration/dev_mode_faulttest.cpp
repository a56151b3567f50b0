// Fault tests for `reprise-server --dev`: the server creates and runs its own PostgreSQL
// cluster under --data-dir, stops it on SIGTERM, and on the next start reuses the cluster,
// attaching to a PostgreSQL a SIGKILLed predecessor left running.
#include <csignal>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>

#include <catch2/catch.hpp>

#include "dev/local_cluster.hpp"
#include "support/http_client.hpp"
#include "support/reprise_api.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// initdb on a busy 2-core machine takes a while; attaching or restarting is quicker.
constexpr auto kDevStartTimeout = std::chrono::milliseconds(90s);
constexpr auto kStopTimeout = std::chrono::milliseconds(30s);

/// One --dev data directory, and the reprise-server processes started on it one after another.
/// On destruction a PostgreSQL still running there (a failed test) is stopped.
class DevDir {
 public:
  DevDir() : dir_("dev-mode") {}
  DevDir(const DevDir&) = delete;
  DevDir& operator=(const DevDir&) = delete;
  ~DevDir() {
    server_.reset();
    if (!fs::exists(pid_file())) return;
    try {
      reprise::dev::LocalCluster::open({.data_dir = pg_dir()}).stop();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "could not stop the --dev PostgreSQL in %s: %s\n", pg_dir().c_str(), e.what());
    }
  }

  fs::path data_dir() const { return dir_.path() / "data"; }
  fs::path pg_dir() const { return data_dir() / "postgres"; }
  fs::path pid_file() const { return pg_dir() / "postmaster.pid"; }

  /// Starts `reprise-server --dev` on the directory and waits until it serves; returns its port.
  int start() {
    ++runs_;
    const auto ready = dir_.path() / ("ready-" + std::to_string(runs_));
    server_.reset();
    server_.emplace(std::vector<std::string>{"--dev", "--data-dir", data_dir().string(), "--port", "0",
                                             "--ready-file", ready.string()},
                    dir_.path() / "output.log");
    return server_->wait_ready(ready, kDevStartTimeout);
  }
  SpawnedServer& server() { return *server_; }
  std::string output() const {
    std::ifstream in(dir_.path() / "output.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  /// The postmaster's pid from postmaster.pid, or 0 when there is none.
  pid_t postgres_pid() const {
    std::ifstream in(pid_file());
    pid_t pid = 0;
    in >> pid;
    return pid;
  }

 private:
  TempDir dir_;
  std::optional<SpawnedServer> server_;
  int runs_ = 0;
};

/// True while process `pid` exists and is not a zombie (an orphaned postmaster's parent may
/// be slow to reap it).
bool process_alive(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

/// pg_ctl's stop returns once the postmaster has removed its pid file, which it does just
/// before it exits: the process itself may take a moment longer to go.
void expect_exits(pid_t pid) {
  CHECK_NOTHROW(wait_until([&] { return !process_alive(pid); }, 10s, "the PostgreSQL process exits"));
}

void expect_healthy(int port) {
  HttpClient http("127.0.0.1", port);
  auto r = http.get_json("/healthz");
  INFO(r.raw);
  REQUIRE(r.status == 200);
  CHECK(r.body == json{{"status", "ok"}});
}

}  // namespace

TEST_CASE("reprise-server --dev creates its cluster in an empty directory, stops it on SIGTERM and reuses it",
          "[fault][dev]") {
  DevDir dir;
  REQUIRE_FALSE(fs::exists(dir.data_dir()));

  int port = dir.start();
  INFO(dir.output());
  CHECK(fs::exists(dir.pg_dir() / "PG_VERSION"));
  const pid_t postgres = dir.postgres_pid();
  CHECK(process_alive(postgres));
  expect_healthy(port);
  std::string run_id;
  {
    RepriseApi api(port);
    run_id = api.start_ok("dev-1", "Dev", "dev", {{"input", "kept"}});
  }

  dir.server().signal(SIGTERM);
  CHECK(dir.server().wait_exit(kStopTimeout) == 0);
  // The server stopped its PostgreSQL too.
  CHECK_FALSE(fs::exists(dir.pid_file()));
  expect_exits(postgres);

  // Second start on the same directory: the same cluster, with the run started before.
  port = dir.start();
  expect_healthy(port);
  {
    RepriseApi api(port);
    auto described = api.describe("dev-1");
    INFO(described.raw);
    REQUIRE(described.status == 200);
    CHECK(described.body["execution"]["run_id"] == run_id);
    CHECK(described.body["execution"]["status"] == "Running");
    auto task = api.expect_workflow_task("dev");
    CHECK(task["history"][0]["attributes"]["input"] == "kept");
    REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("done")}).status == 200);
  }
  const pid_t second_postgres = dir.postgres_pid();
  dir.server().signal(SIGTERM);
  CHECK(dir.server().wait_exit(kStopTimeout) == 0);
  CHECK_FALSE(fs::exists(dir.pid_file()));
  expect_exits(second_postgres);
}

TEST_CASE("reprise-server --dev started after its predecessor was SIGKILLed reuses the cluster and stops cleanly",
          "[fault][dev]") {
  DevDir dir;
  int port = dir.start();
  INFO(dir.output());
  {
    RepriseApi api(port);
    api.start_ok("dev-crash", "Dev", "dev");
  }
  dir.server().kill();
  // SIGKILL gives the server no chance to stop its PostgreSQL: it is still running.
  const pid_t orphan = dir.postgres_pid();
  CHECK(process_alive(orphan));

  port = dir.start();
  expect_healthy(port);
  {
    RepriseApi api(port);
    auto described = api.describe("dev-crash");
    INFO(described.raw);
    REQUIRE(described.status == 200);
    CHECK(described.body["execution"]["status"] == "Running");
    api.start_ok("dev-after", "Dev", "dev");
    CHECK(api.describe("dev-after").status == 200);
  }
  const pid_t postgres = dir.postgres_pid();
  dir.server().signal(SIGTERM);
  CHECK(dir.server().wait_exit(kStopTimeout) == 0);
  CHECK_FALSE(fs::exists(dir.pid_file()));
  expect_exits(postgres);
  expect_exits(orphan);
}
