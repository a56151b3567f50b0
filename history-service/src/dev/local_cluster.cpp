#include "dev/local_cluster.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <libpq-fe.h>

namespace reprise::dev {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kInstallHint =
    "install PostgreSQL 15 (Debian/Ubuntu: `apt-get install postgresql-15`) or point "
    "LocalClusterOptions::bin_dir or $REPRISE_PG_BIN_DIR at the directory holding initdb and pg_ctl";

bool is_executable(const fs::path& file) { return ::access(file.c_str(), X_OK) == 0 && fs::is_regular_file(file); }

bool has_tools(const fs::path& dir) {
  return !dir.empty() && is_executable(dir / "initdb") && is_executable(dir / "pg_ctl") &&
         is_executable(dir / "postgres");
}

std::optional<fs::path> find_on_path(std::string_view program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && is_executable(fs::path(dir) / program)) return fs::path(dir) / program;
  }
  return std::nullopt;
}

/// The first directory with initdb, pg_ctl and postgres, in the documented order.
fs::path find_bin_dir(const fs::path& configured) {
  if (!configured.empty()) {
    if (has_tools(configured)) return configured;
    throw std::runtime_error(fmt::format("PostgreSQL server programs not found: {} lacks initdb, pg_ctl or postgres; {}",
                                         configured.string(), kInstallHint));
  }
  std::vector<std::string> tried;
  if (const char* env = std::getenv("REPRISE_PG_BIN_DIR"); env != nullptr && *env != '\0') {
    if (has_tools(env)) return env;
    tried.push_back(fmt::format("$REPRISE_PG_BIN_DIR={}", env));
  }
  const fs::path debian = "/usr/lib/postgresql/15/bin";
  if (has_tools(debian)) return debian;
  tried.push_back(debian.string());
  if (auto pg_config = find_on_path("pg_config")) {
    try {
      auto result = run_command({pg_config->string(), "--bindir"}, std::nullopt, 10s);
      std::string dir = result.output.substr(0, result.output.find('\n'));
      if (result.exit_status == 0 && has_tools(dir)) return dir;
      tried.push_back(fmt::format("`pg_config --bindir` ({})", dir));
    } catch (const std::exception& e) {
      tried.push_back(fmt::format("`pg_config --bindir` ({})", e.what()));
    }
  } else {
    tried.push_back("pg_config (not on PATH)");
  }
  if (auto initdb = find_on_path("initdb"); initdb && has_tools(initdb->parent_path())) return initdb->parent_path();
  tried.push_back("PATH");
  std::string where;
  for (const auto& t : tried) where += (where.empty() ? "" : ", ") + t;
  throw std::runtime_error(
      fmt::format("PostgreSQL server programs (initdb, pg_ctl, postgres) not found; looked in {}; {}", where, kInstallHint));
}

/// PostgreSQL refuses to run as root; Debian's package creates `postgres`, `nobody` always exists.
RunAs unprivileged_user() {
  for (const char* name : {"postgres", "nobody"}) {
    if (const passwd* pw = ::getpwnam(name)) return RunAs{pw->pw_uid, pw->pw_gid, pw->pw_name, pw->pw_dir};
  }
  throw std::runtime_error(
      "running as root, and PostgreSQL refuses to: no `postgres` or `nobody` user to run it as; "
      "create one (`apt-get install postgresql-15` creates `postgres`) or run as an ordinary user");
}

void chown_path(const fs::path& path, const RunAs& user) {
  if (::lchown(path.c_str(), user.uid, user.gid) != 0) {
    throw std::runtime_error(fmt::format("cannot give {} to user {} (chown): {}", path.string(), user.name,
                                         std::strerror(errno)));
  }
}

void chown_tree(const fs::path& root, const RunAs& user) {
  chown_path(root, user);
  for (const auto& entry : fs::recursive_directory_iterator(root)) chown_path(entry.path(), user);
}

/// Gives `user` the search permission on every directory above `path` that lacks it (e.g. a
/// mkdtemp directory, mode 0700): search only, the listing stays private.
void make_ancestors_traversable(const fs::path& path, const RunAs& user) {
  for (fs::path dir = path.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) break;
    const bool can_search = st.st_uid == user.uid   ? (st.st_mode & S_IXUSR) != 0
                            : st.st_gid == user.gid ? (st.st_mode & S_IXGRP) != 0
                                                    : (st.st_mode & S_IXOTH) != 0;
    if (!can_search && ::chmod(dir.c_str(), (st.st_mode & 07777) | S_IXOTH) != 0) {
      throw std::runtime_error(fmt::format("user {} cannot reach {}: adding o+x to {} failed: {}; pick a data "
                                           "directory outside it",
                                           user.name, path.string(), dir.string(), std::strerror(errno)));
    }
    if (dir == dir.root_path()) break;
  }
}

/// A port nobody listens on right now; the caller retries if it is taken before use.
int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot find a free port: socket: {}", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int error = errno;
  ::close(fd);
  if (!ok) throw std::runtime_error(fmt::format("cannot find a free port on 127.0.0.1: {}", std::strerror(error)));
  return ntohs(addr.sin_port);
}

/// The lines of postmaster.pid that matter: 1 pid, 4 port, 8 status.
struct PostmasterPid {
  pid_t pid = 0;
  int port = 0;
  std::string status;  // "starting", "ready", "stopping", "standby"; empty while being written
};

std::optional<PostmasterPid> read_postmaster_pid(const fs::path& data_dir) {
  std::ifstream in(data_dir / "postmaster.pid");
  if (!in) return std::nullopt;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  PostmasterPid info;
  try {
    if (lines.size() >= 1) info.pid = static_cast<pid_t>(std::stol(lines[0]));
    if (lines.size() >= 4) info.port = std::stoi(lines[3]);
  } catch (const std::exception&) {
    return PostmasterPid{};  // half written: the server is starting
  }
  if (lines.size() >= 8) info.status = lines[7].substr(0, lines[7].find_last_not_of(' ') + 1);
  return info;
}

/// True when `pid` is a live postgres process (not a recycled pid of something else).
bool postmaster_alive(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  std::ifstream comm(fmt::format("/proc/{}/comm", pid));
  std::string name;
  if (comm && std::getline(comm, name)) return name == "postgres" || name == "postmaster";
  return true;  // no /proc: trust kill()
}

/// Single-quotes `value` for libpq's keyword/value syntax when it needs it.
std::string conninfo_value(std::string_view value) {
  const bool plain = !value.empty() && value.find_first_of(" '\\\t\n=") == std::string_view::npos;
  if (plain) return std::string(value);
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

/// Single-quotes `value` for /bin/sh: pg_ctl hands its -o string to a shell.
std::string shell_quote(std::string_view value) {
  std::string out = "'";
  for (char c : value) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

using PgConn = std::unique_ptr<PGconn, decltype(&PQfinish)>;

PgConn connect(const std::string& conninfo) {
  PgConn conn(PQconnectdb(conninfo.c_str()), &PQfinish);
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error(fmt::format("cannot connect to {}: {}", conninfo,
                                         conn ? PQerrorMessage(conn.get()) : "out of memory"));
  }
  return conn;
}

void exec_sql(PGconn* conn, const std::string& sql) {
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn, sql.c_str()), &PQclear);
  const auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error(fmt::format("`{}` failed: {}", sql, PQerrorMessage(conn)));
  }
}

std::string quote_identifier(PGconn* conn, std::string_view name) {
  std::unique_ptr<char, decltype(&PQfreemem)> quoted(PQescapeIdentifier(conn, name.data(), name.size()), &PQfreemem);
  if (!quoted) throw std::runtime_error(fmt::format("invalid database name '{}': {}", name, PQerrorMessage(conn)));
  return quoted.get();
}

std::uintmax_t file_size_or_zero(const fs::path& file) {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  return ec ? 0 : size;
}

/// The log from `offset` on (what this attempt wrote), or all of it if it shrank.
std::string read_log_from(const fs::path& file, std::uintmax_t offset) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uintmax_t>(in.tellg());
  in.seekg(static_cast<std::streamoff>(offset <= size ? offset : 0));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string last_lines(const std::string& text, std::size_t lines) {
  std::size_t start = text.size();
  if (start > 0 && text[start - 1] == '\n') --start;
  for (std::size_t found = 0; start > 0; --start) {
    if (text[start - 1] == '\n' && ++found == lines) break;
  }
  return text.substr(start);
}

}  // namespace

LocalCluster LocalCluster::open(LocalClusterOptions options) {
  LocalCluster cluster(std::move(options));
  cluster.prepare_directories();
  cluster.init_if_needed();
  if (!cluster.attach_to_running_server()) cluster.start_server();
  return cluster;
}

LocalCluster::LocalCluster(LocalClusterOptions options) : options_(std::move(options)) {
  if (options_.data_dir.empty()) throw std::invalid_argument("LocalClusterOptions::data_dir is empty; name a directory");
  if (options_.superuser.empty()) throw std::invalid_argument("LocalClusterOptions::superuser is empty");
  // Absolute, because the tools run with cwd "/"; no trailing slash, so filename() is the dir.
  fs::path dir = fs::absolute(options_.data_dir).lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();
  options_.data_dir = dir;
  if (options_.log_file.empty()) options_.log_file = dir.parent_path() / (dir.filename().string() + ".log");
  options_.log_file = fs::absolute(options_.log_file).lexically_normal();
  bin_dir_ = find_bin_dir(options_.bin_dir);
  if (::geteuid() == 0) run_as_ = unprivileged_user();
}

LocalCluster::LocalCluster(LocalCluster&& other) noexcept
    : options_(std::move(other.options_)),
      bin_dir_(std::move(other.bin_dir_)),
      run_as_(std::move(other.run_as_)),
      port_(other.port_),
      owns_server_(other.owns_server_),
      stop_on_destroy_(std::exchange(other.stop_on_destroy_, false)) {
  other.owns_server_ = false;
}

LocalCluster& LocalCluster::operator=(LocalCluster&& other) noexcept {
  if (this == &other) return *this;
  if (owns_server_ && stop_on_destroy_) {
    try {
      stop();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "reprise: could not stop the PostgreSQL server in %s: %s\n", options_.data_dir.c_str(),
                   e.what());
    }
  }
  options_ = std::move(other.options_);
  bin_dir_ = std::move(other.bin_dir_);
  run_as_ = std::move(other.run_as_);
  port_ = other.port_;
  owns_server_ = std::exchange(other.owns_server_, false);
  stop_on_destroy_ = std::exchange(other.stop_on_destroy_, false);
  return *this;
}

LocalCluster::~LocalCluster() {
  if (!owns_server_ || !stop_on_destroy_) return;
  try {
    stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reprise: could not stop the PostgreSQL server in %s: %s\n", options_.data_dir.c_str(),
                 e.what());
  }
}

void LocalCluster::prepare_directories() {
  const fs::path& dir = options_.data_dir;
  fs::create_directories(dir.parent_path());
  fs::create_directories(options_.log_file.parent_path());
  if (fs::create_directory(dir)) fs::permissions(dir, fs::perms::owner_all);
  // The log exists before the server starts so that, as root, it can be handed to the
  // server's user without making its directory writable.
  if (int fd = ::open(options_.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600); fd >= 0) {
    ::close(fd);
  } else {
    throw std::runtime_error(fmt::format("cannot create the PostgreSQL log {}: {}", options_.log_file.string(),
                                         std::strerror(errno)));
  }
  if (!run_as_) return;
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0 && st.st_uid != run_as_->uid) chown_tree(dir, *run_as_);
  chown_path(options_.log_file, *run_as_);
  make_ancestors_traversable(dir, *run_as_);
  make_ancestors_traversable(options_.log_file, *run_as_);
}

void LocalCluster::init_if_needed() {
  const fs::path& dir = options_.data_dir;
  if (fs::exists(dir / "PG_VERSION")) return;
  if (!fs::is_empty(dir)) {
    throw std::runtime_error(fmt::format("{} is neither empty nor a PostgreSQL cluster (no PG_VERSION); point the "
                                         "data directory at a new or empty directory",
                                         dir.string()));
  }
  // --locale=C: containers often lack the locale of $LANG; --no-sync: the OS flush is not
  // what makes a throwaway or dev cluster durable, and it costs seconds.
  auto result = run_tool("initdb",
                         {"-D", dir.string(), "-U", options_.superuser, "--auth=trust", "-E", "UTF8", "--locale=C",
                          "--no-instructions", "--no-sync"},
                         "initdb");
  std::ofstream(options_.log_file, std::ios::app) << result.output;
}

bool LocalCluster::attach_to_running_server() {
  const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  for (;;) {
    auto pid_file = read_postmaster_pid(options_.data_dir);
    if (!pid_file) return false;
    if (pid_file->pid != 0 && !postmaster_alive(pid_file->pid)) return false;  // stale: postgres cleans it up
    if (pid_file->status == "ready" && pid_file->port > 0) {
      port_ = pid_file->port;
      owns_server_ = false;
      wait_until_accepting(deadline);
      return true;
    }
    // Starting (another process is bringing it up) or stopping (a previous owner is shutting
    // it down): wait until it is ready or gone.
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error(fmt::format(
          "a PostgreSQL server (pid {}) for {} stayed in state '{}' for {} s; stop it with `{}/pg_ctl stop -D {} -m "
          "immediate` and retry. Last lines of {}:\n{}",
          pid_file->pid, options_.data_dir.string(), pid_file->status, options_.timeout.count(), bin_dir_.string(),
          options_.data_dir.string(), options_.log_file.string(), log_tail()));
    }
    std::this_thread::sleep_for(20ms);  // polling a file another process owns: nothing to wait on
  }
}

void LocalCluster::start_server() {
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    const int port = free_local_port();
    std::string server_options = fmt::format("-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''", port);
    for (const auto& setting : options_.settings) server_options += " -c " + shell_quote(setting);
    const auto log_offset = file_size_or_zero(options_.log_file);
    std::vector<std::string> args = {"start",
                                     "-w",
                                     "-t",
                                     std::to_string(options_.timeout.count()),
                                     "-D",
                                     options_.data_dir.string(),
                                     "-l",
                                     options_.log_file.string(),
                                     "-o",
                                     server_options};
    try {
      run_tool("pg_ctl", args, "pg_ctl start", log_offset);
    } catch (const std::runtime_error&) {
      // Someone else may have started it meanwhile (two processes opening one directory).
      if (attach_to_running_server()) return;
      const std::string log = read_log_from(options_.log_file, log_offset);
      const bool port_taken = log.find("could not bind") != std::string::npos ||
                              log.find("Address already in use") != std::string::npos;
      if (!port_taken || attempt == kAttempts) throw;
      continue;
    }
    port_ = port;
    owns_server_ = true;  // from here on, a failure unwinds through ~LocalCluster, which stops it
    stop_on_destroy_ = true;
    wait_until_accepting(std::chrono::steady_clock::now() + options_.timeout);
    return;
  }
}

void LocalCluster::wait_until_accepting(std::chrono::steady_clock::time_point deadline) {
  const std::string conninfo = connection_string("postgres") + " connect_timeout=5";
  for (;;) {
    const PGPing ping = PQping(conninfo.c_str());
    if (ping == PQPING_OK) break;
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error(fmt::format("the PostgreSQL server for {} does not accept connections on 127.0.0.1:{}; "
                                           "stop it with `{}/pg_ctl stop -D {}` and retry. Last lines of {}:\n{}",
                                           options_.data_dir.string(), port_, bin_dir_.string(),
                                           options_.data_dir.string(), options_.log_file.string(), log_tail()));
    }
    std::this_thread::sleep_for(20ms);  // PQping has no way to wait for readiness
  }
  // A real session: catches a cluster created with another superuser, with a clear message.
  try {
    exec_sql(connect(connection_string("postgres")).get(), "SELECT 1");
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("the PostgreSQL server for {} accepts connections, but not as superuser '{}' "
                                         "(was the cluster created with another superuser?): {}",
                                         options_.data_dir.string(), options_.superuser, e.what()));
  }
}

void LocalCluster::stop() {
  auto pid_file = read_postmaster_pid(options_.data_dir);
  if (!pid_file || (pid_file->pid != 0 && !postmaster_alive(pid_file->pid))) {
    owns_server_ = false;
    return;
  }
  run_tool("pg_ctl",
           {"stop", "-w", "-m", "fast", "-t", std::to_string(options_.timeout.count()), "-D",
            options_.data_dir.string()},
           "pg_ctl stop", file_size_or_zero(options_.log_file));
  owns_server_ = false;
}

std::string LocalCluster::connection_string(std::string_view dbname) const {
  return fmt::format("host=127.0.0.1 port={} user={} dbname={}", port_, conninfo_value(options_.superuser),
                     conninfo_value(dbname));
}

std::string LocalCluster::create_database(std::string_view name) const {
  auto conn = connect(connection_string("postgres"));
  exec_sql(conn.get(), "CREATE DATABASE " + quote_identifier(conn.get(), name));
  return connection_string(name);
}

void LocalCluster::drop_database(std::string_view name) const {
  auto conn = connect(connection_string("postgres"));
  exec_sql(conn.get(), "DROP DATABASE IF EXISTS " + quote_identifier(conn.get(), name) + " WITH (FORCE)");
}

std::string LocalCluster::log_tail(std::size_t lines) const {
  return last_lines(read_log_from(options_.log_file, 0), lines);
}

CommandResult LocalCluster::run_tool(const std::string& tool, std::vector<std::string> args, std::string_view what,
                                     std::uintmax_t log_offset) const {
  std::vector<std::string> argv{(bin_dir_ / tool).string()};
  argv.insert(argv.end(), std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
  // pg_ctl has its own timeout (-t); this one only catches a tool that hangs outright.
  auto result = run_command(argv, run_as_, options_.timeout + 30s);
  if (result.exit_status != 0) throw std::runtime_error(failure_message(what, argv, result, log_offset));
  return result;
}

std::string LocalCluster::failure_message(std::string_view what, const std::vector<std::string>& argv,
                                          const CommandResult& result, std::uintmax_t log_offset) const {
  std::string message = fmt::format("{} failed with exit status {}: {}", what, result.exit_status,
                                    describe_command(argv));
  if (run_as_) message += fmt::format(" (as user {})", run_as_->name);
  if (!result.output.empty()) message += "\nIts output:\n" + last_lines(result.output, 20);
  std::string log = last_lines(read_log_from(options_.log_file, log_offset), 20);
  if (!log.empty()) message += fmt::format("\nLast lines of {}:\n{}", options_.log_file.string(), log);
  return message;
}

}  // namespace reprise::dev
