// The `reprise` command-line client, run as a process against a real reprise-server.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <sys/wait.h>

#include <catch2/catch.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

using namespace reprise::test;

namespace {

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

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

/// Runs the built `reprise` with `args`, capturing its exit code, stdout and stderr.
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

}  // namespace

TEST_CASE("the CLI starts a workflow, describes it and exports its history", "[pg][cli]") {
  ServerProcess server({.database_url = fresh_database("cli")});
  const std::string address = "127.0.0.1:" + std::to_string(server.port());

  auto started = run_cli({"--address", address, "start", "--type", "Order", "--id", "order-9", "--task-queue",
                          "orders", "--input", R"({"amount": 5})", "--execution-timeout", "1h", "--json"});
  INFO(started.err);
  REQUIRE(started.exit_code == 0);
  auto start_answer = json::parse(started.out);
  CHECK(start_answer["workflow_id"] == "order-9");
  const auto run_id = start_answer["run_id"].get<std::string>();

  auto described = run_cli({"describe", "--id", "order-9", "--address", address, "--json"});
  INFO(described.err);
  REQUIRE(described.exit_code == 0);
  auto execution = json::parse(described.out)["execution"];
  CHECK(execution["status"] == "Running");
  CHECK(execution["run_id"] == run_id);
  CHECK(execution["workflow_type"] == "Order");

  TempDir dir("cli_export");
  const auto file = dir.path() / "history.json";
  auto exported = run_cli({"--address", address, "history", "export", "--id", "order-9", "--output", file.string()});
  INFO(exported.err);
  REQUIRE(exported.exit_code == 0);
  auto history = json::parse(read_file(file));
  CHECK(history["workflow_id"] == "order-9");
  CHECK(history["run_id"] == run_id);
  REQUIRE(history["events"].size() == 2);
  CHECK(history["events"][0]["event_type"] == "WorkflowExecutionStarted");
  CHECK(history["events"][0]["attributes"]["input"]["amount"] == 5);

  auto to_stdout = run_cli({"--address", address, "history", "export", "-w", "order-9"});
  REQUIRE(to_stdout.exit_code == 0);
  CHECK(json::parse(to_stdout.out) == history);

  auto shown = run_cli({"--address", address, "history", "show", "-w", "order-9"});
  REQUIRE(shown.exit_code == 0);
  CHECK_THAT(shown.out, Catch::Contains("    1  WorkflowExecutionStarted  ") &&
                            Catch::Contains("workflow_type=Order") &&
                            Catch::Contains("    2  WorkflowTaskScheduled"));
}

TEST_CASE("the CLI signals, lists, terminates and prints a result", "[pg][cli]") {
  ServerProcess server({.database_url = fresh_database("cli_ops")});
  RepriseApi api(server.port());
  const std::string address = "127.0.0.1:" + std::to_string(server.port());
  ::setenv("REPRISE_ADDRESS", address.c_str(), 1);  // the environment names the server here

  REQUIRE(run_cli({"start", "-t", "Sum", "-w", "sum-1", "-q", "q"}).exit_code == 0);
  REQUIRE(run_cli({"signal", "-w", "sum-1", "--name", "add", "--input", "3"}).exit_code == 0);
  CHECK(api.event_types("sum-1").back() == "WorkflowExecutionSignaled");

  auto listed = run_cli({"list", "--status", "Running", "--json"});
  REQUIRE(listed.exit_code == 0);
  CHECK(json::parse(listed.out)["workflows"][0]["workflow_id"] == "sum-1");

  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow({{"total", 3}})}).status ==
          200);
  auto result = run_cli({"result", "-w", "sum-1", "--timeout", "20s"});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(json::parse(result.out)["total"] == 3);

  REQUIRE(run_cli({"start", "-t", "Sum", "-w", "sum-2", "-q", "q"}).exit_code == 0);
  REQUIRE(run_cli({"terminate", "-w", "sum-2", "--reason", "test"}).exit_code == 0);
  auto failed = run_cli({"result", "-w", "sum-2"});
  CHECK(failed.exit_code == 1);
  CHECK_THAT(failed.err, Catch::Contains("was terminated: test"));
  ::unsetenv("REPRISE_ADDRESS");
}

TEST_CASE("the CLI exits 2 on a bad command line and 1 with one line on stderr when the call fails",
          "[pg][cli]") {
  ServerProcess server({.database_url = fresh_database("cli_errors")});
  const std::string address = "127.0.0.1:" + std::to_string(server.port());

  CHECK(run_cli({"--address", address, "describe"}).exit_code == 2);  // --id is required
  CHECK(run_cli({"--address", address, "no-such-command"}).exit_code == 2);
  CHECK(run_cli({"--address", address, "start", "-t", "T", "-w", "w", "-q", "q", "--input", "{not json"}).exit_code ==
        2);
  CHECK(run_cli({"--address", address, "start", "-t", "T", "-w", "w", "-q", "q", "--run-timeout", "10"}).exit_code ==
        2);

  auto missing = run_cli({"--address", address, "describe", "--id", "ghost"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.out.empty());
  CHECK(missing.err == "reprise: workflow \"ghost\" in namespace \"default\" not found (NotFound)\n");

  auto down = run_cli({"--address", "127.0.0.1:1", "describe", "--id", "ghost"});
  CHECK(down.exit_code == 1);
  CHECK_THAT(down.err, Catch::StartsWith("reprise: cannot reach reprise-server at 127.0.0.1:1"));
}
