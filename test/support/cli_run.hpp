#pragma once
/// Runs the built `reprise` command-line client as a process (for the integration tests that
/// check what a user reads).
#include <string>
#include <vector>

namespace reprise::test {

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// Runs `reprise` with `args` (no shell parsing: each is one argument), capturing its exit
/// code, stdout and stderr.
CliRun run_cli(const std::vector<std::string>& args);

}  // namespace reprise::test
