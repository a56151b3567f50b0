#pragma once

#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include <sys/types.h>

#include "support/temp_dir.hpp"

namespace reprise::test {

/// How to run a reprise-server under test.
struct ServerOptions {
  /// libpq connection string passed as --database-url (e.g. from fresh_database()).
  std::string database_url;
  /// Appended after the standard arguments.
  std::vector<std::string> extra_args;
  /// The executable. Empty: $REPRISE_SERVER_BINARY, else the REPRISE_SERVER_BINARY the build
  /// compiled in ($<TARGET_FILE:reprise-server>).
  std::filesystem::path binary;
  /// How long the server may take to write its ready file.
  std::chrono::milliseconds start_timeout{std::chrono::seconds(20)};
};

/// A real reprise-server child process, started with
/// `--database-url <url> --port 0 --ready-file <file> [extra args...]`.
/// The constructor returns once the server has written the port it listens on to the ready
/// file; it throws, with the server's output, if the server exits first or takes longer than
/// start_timeout. stdout and stderr go to a file (see output()). The server is killed
/// (SIGKILL) and reaped on destruction, and also if the thread that started it exits
/// (PR_SET_PDEATHSIG), so a crashed test leaves no server behind: start servers from the
/// test's own thread. If an assertion failed while it existed, or it is destroyed by an
/// exception unwinding the test (a wait that timed out), the destructor prints the end of the
/// server's output and keeps the whole of it (the path is printed).
///
///     ServerProcess server({.database_url = fresh_database("restart")});
///     HttpClient http("127.0.0.1", server.port());
///     server.kill();     // crash it
///     server.restart();  // same arguments, new port
class ServerProcess {
 public:
  explicit ServerProcess(ServerOptions options);
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess();

  /// The port from the ready file of the current run.
  int port() const { return port_; }
  /// "http://127.0.0.1:<port>".
  std::string base_url() const;
  pid_t pid() const { return pid_; }
  /// True while the process has not exited (a stopped process is running).
  bool running();

  /// Sends `sig`. SIGKILL also reaps the process; any other signal (SIGSTOP/SIGCONT to pause
  /// and resume it, SIGTERM) is only sent.
  void kill(int sig = SIGKILL);
  /// SIGTERM (and SIGCONT, in case it is stopped), then waits up to `timeout` for it to exit.
  /// Returns the exit status like a shell (exit code, or 128 + signal). If it is still
  /// running after `timeout` it is killed and std::runtime_error is thrown with its output.
  int terminate(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Starts the server again with the same arguments; it gets a new port. A server still
  /// running is terminate()d first.
  void restart();

  /// Everything the server wrote to stdout and stderr so far, over all runs.
  std::string output() const;

 private:
  void start();
  /// Reaps the child if it has exited; returns true then (and sets exit_status_).
  bool try_reap();
  /// Prints the end of output() and keeps the output file.
  void show_output_after_failure() noexcept;

  ServerOptions options_;                 ///< what start() runs, kept for restart()
  TempDir dir_{"server"};                 ///< holds the ready file and the output file
  std::filesystem::path ready_file_;      ///< written by the server once it listens
  std::filesystem::path output_file_;     ///< the server's stdout and stderr, appended per run
  pid_t pid_ = -1;                        ///< -1 once reaped
  int port_ = 0;                          ///< from the ready file of the current run
  int exit_status_ = -1;                  ///< of the last run, once reaped
  std::size_t failures_before_;           ///< failed_assertions() when constructed
  int exceptions_before_;                 ///< std::uncaught_exceptions() when constructed
};

}  // namespace reprise::test
