#pragma once
// Runs a helper program (initdb, pg_ctl, pg_config) to completion and captures its output.
// Private to the dev cluster: the rest of Reprise never forks.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace reprise::dev {

/// An unprivileged account to run a command as (PostgreSQL refuses to run as root).
struct RunAs {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;  ///< login name, for messages and $USER
  std::string home;  ///< home directory, for $HOME
};

/// What a finished command left behind.
struct CommandResult {
  /// The exit status like a shell reports it: the exit code, or 128 + signal number.
  int exit_status = 0;
  /// stdout and stderr, interleaved as the program wrote them.
  std::string output;
};

/// Runs `argv` (argv[0] is an absolute path; no shell, no PATH lookup) with stdin from
/// /dev/null, cwd "/", the locale forced to C (stable messages), PG* variables removed
/// (they would redirect the tools), and no inherited descriptors beyond 0-2, so a server it
/// starts never holds our sockets. As `run_as` when given. Waits at most `timeout`, then kills
/// the command and throws. Throws std::runtime_error when it cannot be started; a non-zero
/// exit is reported in the result, not thrown.
///
///     auto result = run_command({"/usr/bin/pg_config", "--bindir"}, std::nullopt, 10s);
CommandResult run_command(const std::vector<std::string>& argv, const std::optional<RunAs>& run_as,
                          std::chrono::milliseconds timeout);

/// `argv` joined by spaces, for error messages.
std::string describe_command(const std::vector<std::string>& argv);

}  // namespace reprise::dev
