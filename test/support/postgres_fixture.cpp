#include "support/postgres_fixture.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dev/local_cluster.hpp"
#include "support/temp_dir.hpp"

extern char** environ;

namespace reprise::test {
namespace {

/// A /bin/sh process that waits for EOF on a pipe only we hold. The pipe closes however this
/// process ends, including SIGKILL; the watcher then stops the server (SIGQUIT: immediate
/// shutdown) and removes the directory, so a crashed test run leaks nothing.
class Watcher {
 public:
  Watcher(const std::filesystem::path& data_dir, const std::filesystem::path& remove_dir) {
    static constexpr const char* kScript =
        "read -r _\n"
        "pid=$(head -n 1 \"$1/postmaster.pid\" 2>/dev/null)\n"
        "if [ -n \"$pid\" ] && [ \"$(cat /proc/$pid/comm 2>/dev/null)\" = postgres ] && kill -QUIT \"$pid\"; then\n"
        "  i=0; while kill -0 \"$pid\" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done\n"
        "fi\n"
        "rm -rf \"$2\"\n";
    int fds[2];
    // Close-on-exec: no other child (a server under test, pg_ctl) may hold the write end.
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    write_end_ = fds[1];
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[0], 0);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // Its own process group: a Ctrl-C or a group kill aimed at the tests must not take it.
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    std::string data = data_dir.string(), remove = remove_dir.string();
    const char* argv[] = {"/bin/sh", "-c", kScript, "reprise-test-watcher", data.c_str(), remove.c_str(), nullptr};
    const int error = ::posix_spawn(&pid_, "/bin/sh", &actions, &attr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(fds[0]);
    if (error != 0) {
      ::close(write_end_);
      throw std::runtime_error(std::string("cannot start /bin/sh for the test cluster watcher: ") +
                               std::strerror(error));
    }
  }
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;
  ~Watcher() {
    ::close(write_end_);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }

 private:
  int write_end_ = -1;
  pid_t pid_ = -1;
};

struct SharedCluster {
  TempDir dir{"pg"};
  Watcher watcher{dir.path() / "pgdata", dir.path()};
  dev::LocalCluster cluster = dev::LocalCluster::open({
      .data_dir = dir.path() / "pgdata",
      .settings = {"fsync=off", "full_page_writes=off", "max_connections=300"},
  });
  // Destroyed in reverse: the cluster stops, then the watcher exits, then the directory goes.
};

std::string sanitize(std::string_view label) {
  std::string out;
  for (char c : label) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') {
      out += c;
    } else if (c >= 'A' && c <= 'Z') {
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += '_';
    }
  }
  return out;
}

}  // namespace

dev::LocalCluster& shared_cluster() {
  // Function-local static: started on first use, stopped by exit(), and a failed start is
  // retried by the next test rather than poisoning them all with one exception.
  static SharedCluster shared;
  return shared.cluster;
}

std::string fresh_database(std::string_view label) {
  static std::atomic<int> counter{0};
  std::string name = "t" + std::to_string(::getpid()) + "_" + std::to_string(++counter) + "_" + sanitize(label);
  name.resize(std::min<std::size_t>(name.size(), 63));  // PostgreSQL's identifier limit
  return shared_cluster().create_database(name);
}

}  // namespace reprise::test
