#include "dev/run_command.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

extern char** environ;

namespace reprise::dev {
namespace {

/// Closes a descriptor once; -1 means nothing to close.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

/// What the child reports through the status pipe when it fails before exec.
struct ChildFailure {
  int stage;  // index into kStages
  int error;  // errno
};
constexpr std::array<const char*, 4> kStages = {"redirect its descriptors", "switch to the unprivileged user",
                                                "change directory to /", "execute"};

std::vector<std::string> child_environment(const std::optional<RunAs>& run_as) {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view var(*entry);
    // PGDATA, PGPORT, PGHOST... would silently point the tools elsewhere; LC_* and LANG could
    // name locales the container lacks, which makes initdb fail.
    if (var.starts_with("PG") || var.starts_with("LC_") || var.starts_with("LANG=")) continue;
    if (run_as && (var.starts_with("HOME=") || var.starts_with("USER=") || var.starts_with("LOGNAME="))) continue;
    env.emplace_back(var);
  }
  env.emplace_back("LC_ALL=C");
  if (run_as) {
    env.push_back("HOME=" + run_as->home);
    env.push_back("USER=" + run_as->name);
    env.push_back("LOGNAME=" + run_as->name);
  }
  return env;
}

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

/// Runs in the forked child, which may be a copy of a multi-threaded process: only
/// async-signal-safe calls until execve.
[[noreturn]] void exec_child(int devnull, int output, int status, const std::optional<RunAs>& run_as, char** argv,
                             char** envp) {
  auto fail = [status](int stage) {
    ChildFailure failure{stage, errno};
    [[maybe_unused]] auto written = ::write(status, &failure, sizeof failure);
    ::_exit(127);
  };
  // Status pipe to fd 3 so that closefrom(4) keeps it; it is close-on-exec, so a successful
  // exec closes it and the parent reads EOF.
  if (::dup2(devnull, 0) < 0 || ::dup2(output, 1) < 0 || ::dup2(output, 2) < 0) fail(0);
  if (status != 3) {
    if (::dup2(status, 3) < 0) fail(0);
    status = 3;
  }
  ::fcntl(3, F_SETFD, FD_CLOEXEC);
  ::closefrom(4);
  if (run_as) {
    gid_t groups[] = {run_as->gid};
    if (::setgroups(1, groups) != 0 || ::setgid(run_as->gid) != 0 || ::setuid(run_as->uid) != 0) fail(1);
  }
  // initdb and pg_ctl stat their working directory; an unprivileged user cannot enter /root.
  if (::chdir("/") != 0) fail(2);
  ::execve(argv[0], argv, envp);
  fail(3);
  ::_exit(127);  // unreachable: fail() exits
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::string describe_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) {
    if (!out.empty()) out += ' ';
    // Quoted like a shell would need it, so the line can be pasted to reproduce a failure.
    if (!arg.empty() && arg.find_first_of(" '\"\\$`") == std::string::npos) {
      out += arg;
      continue;
    }
    out += '\'';
    for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

CommandResult run_command(const std::vector<std::string>& argv, const std::optional<RunAs>& run_as,
                          std::chrono::milliseconds timeout) {
  if (argv.empty()) throw std::invalid_argument("run_command: empty argv");
  // Everything the child needs is built before fork: it must not allocate.
  const auto env = child_environment(run_as);
  auto c_argv = c_strings(argv);
  auto c_env = c_strings(env);

  int output_pipe[2];
  int status_pipe[2];
  if (::pipe2(output_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error(fmt::format("cannot run {}: pipe: {}", argv[0], std::strerror(errno)));
  }
  Fd output_read(output_pipe[0]), output_write(output_pipe[1]);
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error(fmt::format("cannot run {}: pipe: {}", argv[0], std::strerror(errno)));
  }
  Fd status_read(status_pipe[0]), status_write(status_pipe[1]);
  Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));

  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("cannot run {}: fork: {}", argv[0], std::strerror(errno)));
  if (pid == 0) exec_child(devnull.get(), output_write.get(), status_write.get(), run_as, c_argv.data(), c_env.data());

  output_write.reset();
  status_write.reset();
  ChildFailure failure{};
  ssize_t got;
  do {
    got = ::read(status_read.get(), &failure, sizeof failure);
  } while (got < 0 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof failure)) {
    wait_for(pid);
    std::string who = run_as ? fmt::format(" as user {} (uid {})", run_as->name, run_as->uid) : std::string();
    throw std::runtime_error(fmt::format("cannot run {}{}: could not {}: {}", argv[0], who,
                                         kStages.at(static_cast<std::size_t>(failure.stage)),
                                         std::strerror(failure.error)));
  }

  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      wait_for(pid);
      throw std::runtime_error(fmt::format("{} did not finish within {} ms and was killed; its output:\n{}",
                                           describe_command(argv), timeout.count(), result.output));
    }
    pollfd p{output_read.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = ::read(output_read.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the command and everything it forked closed the pipe
    result.output.append(buffer, static_cast<std::size_t>(n));
  }
  result.exit_status = wait_for(pid);
  return result;
}

}  // namespace reprise::dev
