#include "support/cli_run.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <sys/wait.h>

#include "support/temp_dir.hpp"

namespace reprise::test {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

/// Single-quoted for /bin/sh, so JSON arguments pass through untouched.
std::string shell_quote(const std::string& arg) {
  std::string quoted = "'";
  for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

CliRun run_cli(const std::vector<std::string>& args) {
  TempDir dir("cli");
  std::string command = shell_quote(REPRISE_CLI_BINARY);
  for (const auto& arg : args) command += " " + shell_quote(arg);
  command += " >" + shell_quote(dir.path() / "out") + " 2>" + shell_quote(dir.path() / "err") + " </dev/null";
  int status = std::system(command.c_str());
  CliRun run;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = read_file(dir.path() / "out");
  run.err = read_file(dir.path() / "err");
  return run;
}

}  // namespace reprise::test
