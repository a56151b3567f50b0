// The `reprise` command-line client, run as a process against a real reprise-server.
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "support/cli_run.hpp"
#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

using namespace reprise::test;

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
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

TEST_CASE("the CLI registers and lists namespaces, a page at a time", "[pg][cli][namespace]") {
  ServerProcess server({.database_url = fresh_database("cli_namespaces")});
  const std::string address = "127.0.0.1:" + std::to_string(server.port());

  // A namespace not registered yet: the error says how to register it.
  auto unknown = run_cli({"--address", address, "-n", "shop", "list"});
  CHECK(unknown.exit_code == 1);
  CHECK_THAT(unknown.err, Catch::Contains("namespace \"shop\" is not registered") &&
                              Catch::Contains("reprise namespace create shop"));

  auto created = run_cli({"--address", address, "namespace", "create", "shop", "--description", "the shop"});
  INFO(created.err);
  REQUIRE(created.exit_code == 0);
  CHECK(created.out == "registered namespace shop\n");
  REQUIRE(run_cli({"--address", address, "namespace", "create", "archive"}).exit_code == 0);
  // Now it can be used.
  REQUIRE(run_cli({"--address", address, "-n", "shop", "start", "-t", "T", "-w", "s-1", "-q", "q"}).exit_code == 0);

  auto again = run_cli({"--address", address, "namespace", "create", "shop"});
  CHECK(again.exit_code == 1);
  CHECK(again.err == "reprise: namespace \"shop\" already exists (AlreadyExists)\n");
  CHECK(run_cli({"--address", address, "namespace", "create"}).exit_code == 2);  // the name is required

  auto listed = run_cli({"--address", address, "namespace", "list"});
  REQUIRE(listed.exit_code == 0);
  CHECK(listed.out == "archive\ndefault  created by the first migration\nshop  the shop\n");
  CHECK(listed.err.empty());

  // Two at a time: the token leads to the rest, and the last page has none.
  auto first = run_cli({"--address", address, "namespace", "list", "--page-size", "2", "--json"});
  REQUIRE(first.exit_code == 0);
  auto page = json::parse(first.out);
  REQUIRE(page["namespaces"].size() == 2);
  CHECK(page["namespaces"][0]["name"] == "archive");
  CHECK(page["namespaces"][1]["name"] == "default");
  REQUIRE(page["next_page_token"].is_string());
  auto second = run_cli({"--address", address, "namespace", "list", "--page-size", "2", "--page-token",
                         page["next_page_token"].get<std::string>(), "--json"});
  REQUIRE(second.exit_code == 0);
  page = json::parse(second.out);
  REQUIRE(page["namespaces"].size() == 1);
  CHECK(page["namespaces"][0] == json{{"name", "shop"}, {"description", "the shop"}});
  CHECK(page["next_page_token"].is_null());

  auto text_page = run_cli({"--address", address, "namespace", "list", "--page-size", "1"});
  REQUIRE(text_page.exit_code == 0);
  CHECK(text_page.out == "archive\n");
  CHECK(text_page.err == "more namespaces: add --page-token archive\n");

  auto bad = run_cli({"--address", address, "namespace", "list", "--page-size", "1001"});
  CHECK(bad.exit_code == 2);  // refused before any call
  CHECK_THAT(bad.err, Catch::Contains("--page-size") && Catch::Contains("1000"));

  // A name a shell would split is quoted in the hints a user copies.
  REQUIRE(run_cli({"--address", address, "namespace", "create", "a b"}).exit_code == 0);  // first by name
  auto quoted = run_cli({"--address", address, "namespace", "list", "--page-size", "1"});
  REQUIRE(quoted.exit_code == 0);
  CHECK(quoted.out == "a b\n");
  CHECK(quoted.err == "more namespaces: add --page-token 'a b'\n");
  auto unknown_spaced = run_cli({"--address", address, "-n", "it's", "list"});
  CHECK_THAT(unknown_spaced.err, Catch::Contains("reprise namespace create 'it'\\''s'"));
}

TEST_CASE("the CLI's describe says why an activity retries", "[pg][cli]") {
  ServerProcess server({.database_url = fresh_database("cli_describe_failure")});
  RepriseApi api(server.port());
  const std::string address = "127.0.0.1:" + std::to_string(server.port());

  api.start_ok("pay-1", "Pay", "q");
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(task["task_token"],
                                     {RepriseApi::schedule_activity("charge", "Charge",
                                                                    {{"retry_policy", {{"initial_interval", "1h"}}}})})
              .status == 200);
  auto attempt = api.expect_activity_task("q");
  REQUIRE(api.fail_activity(attempt["task_token"], {{"message", "card declined"}, {"type", "Declined"}}).status == 200);

  auto described = run_cli({"--address", address, "describe", "-w", "pay-1"});
  INFO(described.err);
  REQUIRE(described.exit_code == 0);
  CHECK_THAT(described.out, Catch::Contains("activity      Charge id=charge Scheduled attempt=2\n"
                                            "  last failure Declined: card declined\n"));
  CHECK_THAT(described.out, !Catch::Contains("left out"));
}
