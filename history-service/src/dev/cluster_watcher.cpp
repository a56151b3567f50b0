#include "dev/cluster_watcher.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

#include <sys/socket.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace reprise::dev {

ClusterWatcher::ClusterWatcher(const std::filesystem::path& data_dir, const std::filesystem::path& remove_dir) {
  // A line "keep" before end of file: leave everything as it is.
  static constexpr const char* kScript =
      "read -r what\n"
      "[ \"$what\" = keep ] && exit 0\n"
      "pid=$(head -n 1 \"$1/postmaster.pid\" 2>/dev/null)\n"
      "if [ -n \"$pid\" ] && [ \"$(cat /proc/$pid/comm 2>/dev/null)\" = postgres ] && kill -QUIT \"$pid\"; then\n"
      "  i=0; while kill -0 \"$pid\" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done\n"
      "fi\n"
      "[ -z \"$2\" ] || rm -rf \"$2\"\n";
  int fds[2];
  // A socket rather than a pipe, so that keep() can write without risking SIGPIPE once the
  // watcher is gone (MSG_NOSIGNAL). Close-on-exec: no other child (a server, pg_ctl) may hold
  // this end open.
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
  write_end_ = fds[1];
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[0], 0);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  const std::string data = data_dir.string(), remove = remove_dir.string();
  const char* argv[] = {"/bin/sh", "-c", kScript, "reprise-cluster-watcher", data.c_str(), remove.c_str(), nullptr};
  const int error = ::posix_spawn(&pid_, "/bin/sh", &actions, &attr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[0]);
  if (error != 0) {
    ::close(write_end_);
    throw std::runtime_error(std::string("cannot start /bin/sh to watch the PostgreSQL cluster: ") + std::strerror(error));
  }
}

void ClusterWatcher::keep() {
  static constexpr char kKeep[] = "keep\n";
  if (write_end_ < 0) return;
  // Failing means the watcher is gone already: nothing is left that would clean up.
  (void)::send(write_end_, kKeep, sizeof kKeep - 1, MSG_NOSIGNAL);
  ::close(std::exchange(write_end_, -1));
}

ClusterWatcher::~ClusterWatcher() {
  if (write_end_ >= 0) ::close(write_end_);
  int status;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace reprise::dev
