// Describe lists at most 1,000 pending activities and 1,000 pending timers, and says when a run
// has more: a run may have any number, and the answer must stay a size a client can read.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/cli_run.hpp"
#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;

namespace {

/// Activity "a<i>", pending for an hour once started.
json activity(int i) {
  return RepriseApi::schedule_activity("a" + std::to_string(i), "Work", {{"start_to_close_timeout", "1h"}});
}

/// Starts run `id` on `queue`, and completes its first workflow task with `commands`.
void start_with(RepriseApi& api, const std::string& id, const std::string& queue, const std::vector<json>& commands) {
  api.start_ok(id, "Pending", queue);
  auto task = api.expect_workflow_task(queue);
  auto completed = api.complete_workflow_task(task["task_token"], commands);
  INFO(completed.raw.substr(0, 500));
  REQUIRE(completed.status == 200);
}

}  // namespace

TEST_CASE("describe lists at most 1,000 pending activities and timers, and says there are more", "[pg][describe]") {
  ServerProcess server({.database_url = fresh_database("describe_limits")});
  RepriseApi api(server.port());
  constexpr int kEach = 1001;
  std::vector<json> commands;
  for (int i = 1; i <= kEach; ++i) {
    commands.push_back(activity(i));
    commands.push_back(RepriseApi::start_timer("t" + std::to_string(i), std::to_string(3600 + i) + "s"));
  }
  start_with(api, "many", "limits", commands);

  auto described = api.describe("many");
  REQUIRE(described.status == 200);
  const auto& activities = described.body["pending_activities"];
  REQUIRE(activities.size() == 1000);
  CHECK(described.body["pending_activities_truncated"] == true);
  CHECK(activities.front()["activity_id"] == "a1");  // the first scheduled come first
  CHECK(activities.back()["activity_id"] == "a1000");
  const auto& timers = described.body["pending_timers"];
  REQUIRE(timers.size() == 1000);
  CHECK(described.body["pending_timers_truncated"] == true);
  CHECK(timers.front()["timer_id"] == "t1");  // the soonest come first
  CHECK(timers.back()["timer_id"] == "t1000");

  // The CLI's reader is told too, after the last one it lists.
  auto cli = run_cli({"--address", "127.0.0.1:" + std::to_string(server.port()), "describe", "--id", "many"});
  INFO(cli.err);
  REQUIRE(cli.exit_code == 0);
  const auto last_activity = cli.out.find("id=a1000 ");
  const auto more_activities = cli.out.find("... more pending activities than describe lists");
  const auto last_timer = cli.out.find("timer         t1000 ");
  const auto more_timers = cli.out.find("... more timers than describe lists");
  REQUIRE(last_activity != std::string::npos);
  REQUIRE(more_activities != std::string::npos);
  REQUIRE(last_timer != std::string::npos);
  REQUIRE(more_timers != std::string::npos);
  CHECK(last_activity < more_activities);
  CHECK(last_timer < more_timers);
  CHECK(cli.out.find("id=a1001 ") == std::string::npos);

  // A run with few says so too.
  api.start_ok("few", "Few", "limits-few");
  auto few = api.describe("few");
  CHECK(few.body["pending_activities"].empty());
  CHECK(few.body["pending_activities_truncated"] == false);
  CHECK(few.body["pending_timers_truncated"] == false);
}

TEST_CASE("describe carries at most 4 MiB of heartbeat details and failures, and says whose it left out",
          "[pg][describe]") {
  ServerProcess server({.database_url = fresh_database("describe_details")});
  RepriseApi api(server.port());
  start_with(api, "beating", "details", {activity(1), activity(2), activity(3), activity(4)});  // a4 never heartbeats
  // Three activities heartbeat 1.5 MiB each: the first two fit the budget, the third does not.
  const std::string big(1536 * 1024, 'x');
  for (int i = 1; i <= 3; ++i) {
    auto activity = api.expect_activity_task("details");
    auto beat = api.heartbeat_activity(activity["task_token"], {{"n", activity["activity_id"]}, {"pad", big}});
    INFO(beat.raw.substr(0, 300));
    REQUIRE(beat.status == 200);
  }

  auto described = api.describe("beating");
  REQUIRE(described.status == 200);
  const auto& activities = described.body["pending_activities"];
  REQUIRE(activities.size() == 4);
  for (int i = 0; i < 2; ++i) {
    INFO("activity " << i);
    CHECK(activities[i]["details_omitted"] == false);
    CHECK(activities[i]["heartbeat_details"]["n"] == activities[i]["activity_id"]);
    CHECK(activities[i]["heartbeat_details"]["pad"].get<std::string>().size() == big.size());
  }
  CHECK(activities[2]["details_omitted"] == true);
  CHECK(activities[2]["heartbeat_details"].is_null());
  CHECK(activities[2]["last_failure"].is_null());
  CHECK(activities[2]["last_heartbeat_time"].is_string());  // the rest of it is there
  CHECK(activities[3]["details_omitted"] == false);  // nothing of it was left out
  CHECK(activities[3]["activity_id"] == "a4");
  CHECK(described.raw.size() < (4u << 20) + 64 * 1024);

  // The CLI says whose details it left out, under that activity alone.
  auto cli = run_cli({"--address", "127.0.0.1:" + std::to_string(server.port()), "describe", "--id", "beating"});
  INFO(cli.err);
  REQUIRE(cli.exit_code == 0);
  const std::string omitted = "  (last failure and heartbeat details left out";
  const auto line = cli.out.find(omitted);
  REQUIRE(line != std::string::npos);
  CHECK(cli.out.find(omitted, line + 1) == std::string::npos);
  const auto owner = cli.out.rfind("activity      ", line);
  REQUIRE(owner != std::string::npos);
  CHECK(cli.out.substr(owner, line - owner).find("id=" + activities[2]["activity_id"].get<std::string>() + " ") !=
        std::string::npos);
}
