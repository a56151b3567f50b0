// The private PostgreSQL cluster every integration test and `reprise-server --dev` rely on.

#include <chrono>
#include <csignal>
#include <fstream>
#include <iterator>
#include <string>

#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dev/cluster_watcher.hpp"
#include "dev/local_cluster.hpp"
#include "support/postgres_fixture.hpp"
#include "support/raw_sql.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace fs = std::filesystem;
using reprise::dev::ClusterWatcher;
using reprise::dev::LocalCluster;
using reprise::dev::LocalClusterOptions;
using reprise::test::query_value;
using reprise::test::TempDir;
using reprise::test::wait_until;
using namespace std::chrono_literals;

namespace {

bool server_running(const fs::path& data_dir) { return fs::exists(data_dir / "postmaster.pid"); }

pid_t postmaster_pid(const fs::path& data_dir) {
  pid_t pid = 0;
  std::ifstream(data_dir / "postmaster.pid") >> pid;
  return pid;
}

bool process_alive(pid_t pid) { return ::kill(pid, 0) == 0; }

}  // namespace

TEST_CASE("a cluster created in an empty directory accepts connections and runs queries", "[cluster]") {
  TempDir dir("cluster");
  auto cluster = LocalCluster::open({.data_dir = dir.path() / "pgdata"});

  CHECK(cluster.owns_server());
  CHECK(cluster.port() > 0);
  CHECK(cluster.connection_string() ==
        "host=127.0.0.1 port=" + std::to_string(cluster.port()) + " user=reprise dbname=postgres");
  CHECK(query_value(cluster.connection_string(), "SELECT 6 * 7") == "42");
  CHECK(query_value(cluster.connection_string(), "SHOW server_version_num").substr(0, 2) == "15");
  CHECK(query_value(cluster.connection_string(), "SELECT current_user") == "reprise");
  CHECK(fs::exists(dir.path() / "pgdata.log"));
}

TEST_CASE("a cluster stops when the object that started it is destroyed", "[cluster]") {
  TempDir dir("cluster");
  const auto data_dir = dir.path() / "pgdata";
  {
    auto cluster = LocalCluster::open({.data_dir = data_dir});
    REQUIRE(server_running(data_dir));
  }
  CHECK_FALSE(server_running(data_dir));
}

TEST_CASE("reopening a stopped cluster keeps its data", "[cluster]") {
  TempDir dir("cluster");
  const LocalClusterOptions options{.data_dir = dir.path() / "pgdata"};
  {
    auto cluster = LocalCluster::open(options);
    query_value(cluster.connection_string(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')");
    cluster.stop();
    CHECK_FALSE(server_running(options.data_dir));
  }
  auto cluster = LocalCluster::open(options);
  CHECK(cluster.owns_server());
  CHECK(query_value(cluster.connection_string(), "SELECT v FROM kept") == "still here");
}

TEST_CASE("opening a cluster whose server is still running reuses that server", "[cluster]") {
  TempDir dir("cluster");
  const LocalClusterOptions options{.data_dir = dir.path() / "pgdata"};
  int first_port = 0;
  {
    // As if the previous owner had been killed: it goes away without stopping the server.
    auto cluster = LocalCluster::open(options);
    first_port = cluster.port();
    query_value(cluster.connection_string(), "CREATE TABLE seen (v int)");
    cluster.detach();
  }
  REQUIRE(server_running(options.data_dir));

  auto cluster = LocalCluster::open(options);
  CHECK_FALSE(cluster.owns_server());
  CHECK(cluster.port() == first_port);
  CHECK(query_value(cluster.connection_string(), "SELECT count(*) FROM seen") == "0");

  cluster.stop();  // it was not ours, so only an explicit stop ends it
  CHECK_FALSE(server_running(options.data_dir));
}

TEST_CASE("each created database is separate", "[cluster]") {
  TempDir dir("cluster");
  auto cluster = LocalCluster::open({.data_dir = dir.path() / "pgdata"});
  const auto first = cluster.create_database("first");
  const auto second = cluster.create_database("Second One");  // any name works: it is quoted

  query_value(first, "CREATE TABLE only_in_first (v int)");
  CHECK(query_value(first, "SELECT to_regclass('only_in_first') IS NOT NULL") == "t");
  CHECK(query_value(second, "SELECT to_regclass('only_in_first') IS NOT NULL") == "f");
  CHECK(query_value(second, "SELECT current_database()") == "Second One");
  CHECK_THROWS_WITH(cluster.create_database("first"), Catch::Contains("already exists"));

  cluster.drop_database("first");
  CHECK(query_value(cluster.connection_string(), "SELECT count(*) FROM pg_database WHERE datname = 'first'") == "0");
}

TEST_CASE("extra server settings are passed to the server", "[cluster]") {
  TempDir dir("cluster");
  auto cluster = LocalCluster::open({.data_dir = dir.path() / "pgdata",
                                     .settings = {"work_mem=7MB", "application_name=it's quoted"}});
  CHECK(query_value(cluster.connection_string(), "SHOW work_mem") == "7MB");
}

TEST_CASE("a cluster runs as an unprivileged user when the tests run as root", "[cluster]") {
  if (::geteuid() != 0) return;  // as an ordinary user the server simply runs as that user
  TempDir dir("cluster");  // mode 0700, which the server's user must still be able to traverse
  auto cluster = LocalCluster::open({.data_dir = dir.path() / "pgdata"});
  struct stat st {};
  REQUIRE(::stat((dir.path() / "pgdata").c_str(), &st) == 0);
  CHECK(st.st_uid != 0);
  CHECK(query_value(cluster.connection_string(), "SELECT 1") == "1");
}

TEST_CASE("missing PostgreSQL programs are reported with how to install them", "[cluster]") {
  TempDir dir("cluster");
  TempDir empty_bin("bin");
  CHECK_THROWS_WITH(LocalCluster::open({.data_dir = dir.path() / "pgdata", .bin_dir = empty_bin.path()}),
                    Catch::Contains("initdb") && Catch::Contains("apt-get install postgresql-15"));
}

TEST_CASE("a directory that is neither empty nor a cluster is refused", "[cluster]") {
  TempDir dir("cluster");
  fs::create_directories(dir.path() / "pgdata");
  std::ofstream(dir.path() / "pgdata" / "notes.txt") << "mine";
  CHECK_THROWS_WITH(LocalCluster::open({.data_dir = dir.path() / "pgdata"}),
                    Catch::Contains("neither empty nor a PostgreSQL cluster"));
}

TEST_CASE("the shared test cluster hands out a fresh database per call", "[cluster][fixture]") {
  const auto a = reprise::test::fresh_database("fresh a");
  const auto b = reprise::test::fresh_database("fresh b");
  CHECK(a != b);
  query_value(a, "CREATE TABLE t (v int)");
  CHECK(query_value(b, "SELECT to_regclass('t') IS NULL") == "t");
}

TEST_CASE("a cluster's watcher stops it and removes its directory when the owning process is killed", "[cluster]") {
  TempDir dir("watcher");
  const auto owned = dir.path() / "owned", data_dir = owned / "pgdata";
  fs::create_directories(owned);
  // The owner: a child that sets up the watcher, says so, and waits to be killed.
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t owner = ::fork();
  REQUIRE(owner >= 0);
  if (owner == 0) {
    ::close(ready[0]);
    try {
      ClusterWatcher watcher(data_dir, owned);
      const char byte = 1;
      if (::write(ready[1], &byte, 1) == 1)
        for (;;) ::pause();
    } catch (...) {
    }
    ::_exit(1);
  }
  // However this test ends, the owner goes, and with it (through its watcher) the cluster.
  struct KillOwner {
    pid_t pid;
    ~KillOwner() {
      if (::kill(pid, SIGKILL) == 0) ::waitpid(pid, nullptr, 0);
    }
  } kill_owner{owner};
  ::close(ready[1]);
  char byte = 0;
  REQUIRE(::read(ready[0], &byte, 1) == 1);
  ::close(ready[0]);
  const auto log_file = dir.path() / "server.log";  // outside what the watcher removes
  auto cluster = LocalCluster::open({.data_dir = data_dir, .log_file = log_file});
  cluster.detach();  // the cluster is the dead owner's to clean up
  const pid_t postmaster = postmaster_pid(data_dir);
  REQUIRE(process_alive(postmaster));

  ::kill(owner, SIGKILL);
  ::waitpid(owner, nullptr, 0);
  wait_until([&] { return !process_alive(postmaster) && !fs::exists(owned); }, 30s,
             "the watcher stops the server and removes its directory");
  CHECK(fs::exists(dir.path()));  // only what it was given
  // Stopped by the watcher, not by PostgreSQL noticing later that its directory is gone.
  std::ifstream log(log_file);
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  CHECK(text.find("received immediate shutdown request") != std::string::npos);
}

TEST_CASE("a watcher with no directory to remove stops the cluster and leaves the directory", "[cluster]") {
  TempDir dir("watcher");
  const auto data_dir = dir.path() / "pgdata";
  pid_t postmaster = 0;
  {
    ClusterWatcher watcher(data_dir, {});
    auto cluster = LocalCluster::open({.data_dir = data_dir});
    cluster.detach();
    postmaster = postmaster_pid(data_dir);
    REQUIRE(process_alive(postmaster));
  }  // the watcher has finished when its destructor returns
  CHECK_FALSE(process_alive(postmaster));
  CHECK(fs::exists(data_dir / "PG_VERSION"));
}

TEST_CASE("a kept cluster outlives its watcher", "[cluster]") {
  TempDir dir("watcher");
  const auto data_dir = dir.path() / "pgdata";
  {
    ClusterWatcher watcher(data_dir, dir.path());
    auto cluster = LocalCluster::open({.data_dir = data_dir});
    cluster.detach();
    watcher.keep();
    watcher.keep();  // twice is harmless
  }
  CHECK(server_running(data_dir));
  CHECK(process_alive(postmaster_pid(data_dir)));
  auto again = LocalCluster::open({.data_dir = data_dir});
  CHECK(query_value(again.connection_string(), "SELECT 1") == "1");
  again.stop();
  CHECK_FALSE(server_running(data_dir));
}
