#include "support/server_process.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/test_failures.hpp"

extern char** environ;

namespace reprise::test {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr auto kPollInterval = 10ms;

fs::path server_binary(const fs::path& configured) {
  if (!configured.empty()) return configured;
  if (const char* env = std::getenv("REPRISE_SERVER_BINARY"); env != nullptr && *env != '\0') return env;
#ifdef REPRISE_SERVER_BINARY
  return REPRISE_SERVER_BINARY;
#else
  throw std::runtime_error(
      "no reprise-server binary to test: set ServerOptions::binary or $REPRISE_SERVER_BINARY (test/CMakeLists.txt "
      "compiles REPRISE_SERVER_BINARY in when the reprise-server target exists)");
#endif
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

/// The port in a ready file, or 0 while it is missing or incomplete.
int read_port(const fs::path& file) {
  std::ifstream in(file);
  int port = 0;
  if (in >> port && port > 0 && port < 65536) return port;
  return 0;
}

int open_or_throw(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + path.string() + ": " + std::strerror(errno));
  return fd;
}

}  // namespace

ServerProcess::ServerProcess(ServerOptions options)
    : options_(std::move(options)),
      ready_file_(dir_.path() / "ready"),
      output_file_(dir_.path() / "output.log"),
      failures_before_(failed_assertions()),
      exceptions_before_(std::uncaught_exceptions()) {
  options_.binary = server_binary(options_.binary);
  start();
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  // An exception that is not an assertion's (a wait_until timing out) is reported to Catch only
  // after the test has unwound, so it is seen here as an exception in flight.
  if (failed_assertions() > failures_before_ || std::uncaught_exceptions() > exceptions_before_)
    show_output_after_failure();
}

void ServerProcess::show_output_after_failure() noexcept try {
  constexpr std::size_t kLastLines = 60;
  const std::string text = output();
  std::size_t from = text.size(), lines = 0;
  while (from > 0 && !(text[from - 1] == '\n' && ++lines > kLastLines)) --from;
  const auto kept = dir_.release() / output_file_.filename();
  std::cout << "--- a test failed while this reprise-server ran; the end of its output (all of it: " << kept.string()
            << ")\n"
            << std::string_view(text).substr(from) << "--- end of reprise-server output\n"
            << std::flush;
} catch (...) {
  // Showing the output is a courtesy; a destructor must not throw.
}

std::string ServerProcess::base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

bool ServerProcess::try_reap() {
  if (pid_ <= 0) return true;
  int status;
  pid_t got;
  while ((got = ::waitpid(pid_, &status, WNOHANG)) < 0 && errno == EINTR) {
  }
  if (got != pid_) return false;
  exit_status_ = decode_status(status);
  pid_ = -1;
  return true;
}

bool ServerProcess::running() { return !try_reap(); }

void ServerProcess::kill(int sig) {
  if (pid_ <= 0) return;
  ::kill(pid_, sig);
  if (sig != SIGKILL) return;
  int status;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_status_ = decode_status(status);
  pid_ = -1;
}

int ServerProcess::terminate(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_status_;
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!try_reap()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(SIGKILL);
      throw std::runtime_error("reprise-server did not exit within " + std::to_string(timeout.count()) +
                               " ms of SIGTERM and was killed; its output:\n" + output());
    }
    std::this_thread::sleep_for(kPollInterval);  // a child's exit cannot be waited on with a timeout
  }
  return exit_status_;
}

void ServerProcess::restart() {
  if (pid_ > 0) terminate();
  start();
}

std::string ServerProcess::output() const {
  std::ifstream in(output_file_, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void ServerProcess::start() {
  std::error_code ignored;
  fs::remove(ready_file_, ignored);
  port_ = 0;
  exit_status_ = -1;

  std::vector<std::string> args = {options_.binary.string(), "--database-url", options_.database_url, "--port", "0",
                                   "--ready-file", ready_file_.string()};
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  std::string command_line;
  for (const auto& arg : args) command_line += (command_line.empty() ? "" : " ") + arg;
  std::ofstream(output_file_, std::ios::app) << "=== starting: " << command_line << "\n";

  const int output_fd = open_or_throw(output_file_, O_WRONLY | O_CREAT | O_APPEND);
  const int devnull = open_or_throw("/dev/null", O_RDONLY);
  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) {
    ::close(output_fd);
    ::close(devnull);
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The child of a possibly multi-threaded process: async-signal-safe calls only.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);  // the parent died before prctl took effect
    ::dup2(devnull, 0);
    ::dup2(output_fd, 1);
    ::dup2(output_fd, 2);
    ::dup2(status_pipe[1], 3);  // close-on-exec: EOF in the parent means exec succeeded
    ::fcntl(3, F_SETFD, FD_CLOEXEC);
    ::closefrom(4);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv.data(), environ);
    const int error = errno;
    [[maybe_unused]] auto written = ::write(3, &error, sizeof error);
    ::_exit(127);
  }
  const int fork_error = errno;
  ::close(output_fd);
  ::close(devnull);
  ::close(status_pipe[1]);
  if (pid < 0) {
    ::close(status_pipe[0]);
    throw std::runtime_error(std::string("cannot start reprise-server: fork: ") + std::strerror(fork_error));
  }
  pid_ = pid;
  int exec_error = 0;
  ssize_t got;
  while ((got = ::read(status_pipe[0], &exec_error, sizeof exec_error)) < 0 && errno == EINTR) {
  }
  ::close(status_pipe[0]);
  if (got == static_cast<ssize_t>(sizeof exec_error)) {
    kill(SIGKILL);
    throw std::runtime_error("cannot execute " + options_.binary.string() + ": " + std::strerror(exec_error) +
                             "; build it first (cmake --build <build dir> --target reprise-server)");
  }

  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  while ((port_ = read_port(ready_file_)) == 0) {
    if (try_reap()) {
      throw std::runtime_error("reprise-server exited with status " + std::to_string(exit_status_) +
                               " before writing its ready file; its output:\n" + output());
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(SIGKILL);
      throw std::runtime_error("reprise-server did not write its ready file " + ready_file_.string() + " within " +
                               std::to_string(options_.start_timeout.count()) + " ms; its output:\n" + output());
    }
    std::this_thread::sleep_for(kPollInterval);  // the ready file is the server's only signal
  }
}

}  // namespace reprise::test
