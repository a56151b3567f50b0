#pragma once
// A private PostgreSQL 15 cluster managed from C++: `reprise-server --dev` keeps its data in
// one, and every integration test harness starts one in a temporary directory.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dev/run_command.hpp"

namespace reprise::dev {

/// Where a LocalCluster lives and how its server runs.
struct LocalClusterOptions {
  /// The cluster directory itself (PGDATA). Created, with its parents, when missing; must be
  /// empty or an existing cluster.
  std::filesystem::path data_dir;
  /// The superuser initdb creates; connection strings use it (trust auth, 127.0.0.1 only).
  std::string superuser = "reprise";
  /// The server log, which also receives initdb's and pg_ctl's output. Empty means
  /// `<data_dir>.log` next to data_dir: outside it, because initdb wants an empty directory,
  /// and named after it, so two clusters in one parent do not share a log.
  std::filesystem::path log_file;
  /// Extra server settings, each "name=value", passed as `-c name=value`
  /// (tests pass "fsync=off").
  std::vector<std::string> settings;
  /// Where initdb and pg_ctl are. Empty means: $REPRISE_PG_BIN_DIR, then
  /// /usr/lib/postgresql/15/bin, then `pg_config --bindir`, then PATH.
  std::filesystem::path bin_dir;
  /// Upper bound for initdb, for a start and for a stop.
  std::chrono::seconds timeout{60};
};

/// A PostgreSQL server on 127.0.0.1 (no Unix socket) for one data directory.
///
/// Opening creates the cluster on first use, reuses a server already running on it (say its
/// previous owner was killed with SIGKILL), or starts one on a free port. As root, initdb
/// and the server run as the `postgres` system user (else `nobody`): the data directory and
/// log are chowned to it and the directories above the data directory get the search
/// permission (o+x, not read) it needs.
///
///     auto cluster = LocalCluster::open({.data_dir = dir / "pgdata"});
///     auto conninfo = cluster.create_database("orders_test");
///     // "host=127.0.0.1 port=40123 user=reprise dbname=orders_test"
///
/// Every failure throws std::runtime_error naming the command, its exit status, its output
/// and the end of the server log.
class LocalCluster {
 public:
  /// Creates and/or starts the cluster, or attaches to the server already running on it.
  static LocalCluster open(LocalClusterOptions options);

  LocalCluster(LocalCluster&& other) noexcept;
  LocalCluster& operator=(LocalCluster&& other) noexcept;
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;
  /// Stops the server if this object started it and was not detached; never throws
  /// (a failure to stop is printed to stderr).
  ~LocalCluster();

  /// The TCP port the server listens on, on 127.0.0.1.
  int port() const { return port_; }
  /// True when this object started the server; false when it found it running.
  bool owns_server() const { return owns_server_; }
  const std::filesystem::path& data_dir() const { return options_.data_dir; }
  const std::filesystem::path& log_file() const { return options_.log_file; }

  /// A libpq keyword/value connection string, e.g.
  /// "host=127.0.0.1 port=5433 user=reprise dbname=postgres".
  std::string connection_string(std::string_view dbname = "postgres") const;

  /// Creates database `name` (any name; it is quoted) and returns its connection string.
  /// Throws if it exists.
  std::string create_database(std::string_view name) const;
  /// Drops database `name` if it exists, disconnecting its sessions first.
  void drop_database(std::string_view name) const;

  /// Stops the server (`pg_ctl stop -m fast -w`), whoever started it. No-op if it is not
  /// running.
  void stop();
  /// Leaves the server running when this object is destroyed; the next open() on the same
  /// data directory attaches to it.
  void detach() { stop_on_destroy_ = false; }

  /// The last `lines` lines of the server log, for error messages.
  std::string log_tail(std::size_t lines = 20) const;

 private:
  explicit LocalCluster(LocalClusterOptions options);
  void prepare_directories();
  void init_if_needed();
  bool attach_to_running_server();
  void start_server();
  void wait_until_accepting(std::chrono::steady_clock::time_point deadline);
  /// Runs one of the PostgreSQL tools from bin_dir_, as run_as_; throws on a non-zero exit.
  CommandResult run_tool(const std::string& tool, std::vector<std::string> args, std::string_view what,
                         std::uintmax_t log_offset = 0) const;
  std::string failure_message(std::string_view what, const std::vector<std::string>& argv,
                              const CommandResult& result, std::uintmax_t log_offset) const;

  LocalClusterOptions options_;        ///< data_dir and log_file are absolute once opened
  std::filesystem::path bin_dir_;      ///< where initdb, pg_ctl and postgres are
  std::optional<RunAs> run_as_;        ///< the unprivileged user when we are root
  int port_ = 0;                       ///< 0 until a server is known to listen
  bool owns_server_ = false;           ///< this object started the running server
  bool stop_on_destroy_ = true;        ///< false after detach() or a move-from
};

}  // namespace reprise::dev
