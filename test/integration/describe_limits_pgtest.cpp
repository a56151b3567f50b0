// Describe lists at most 1,000 pending activities and 1,000 pending timers, and says when a run
// has more: a run may have any number, and the answer must stay a size a client can read.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;

TEST_CASE("describe lists at most 1,000 pending activities and timers, and says there are more", "[pg][describe]") {
  ServerProcess server({.database_url = fresh_database("describe_limits")});
  RepriseApi api(server.port());
  api.start_ok("many", "Many", "limits");
  auto task = api.expect_workflow_task("limits");
  constexpr int kEach = 1001;
  std::vector<json> commands;
  for (int i = 1; i <= kEach; ++i) {
    commands.push_back(RepriseApi::schedule_activity("a" + std::to_string(i), "Work",
                                                     {{"start_to_close_timeout", "1h"}}));
    commands.push_back(RepriseApi::start_timer("t" + std::to_string(i), std::to_string(3600 + i) + "s"));
  }
  auto completed = api.complete_workflow_task(task["task_token"], commands);
  INFO(completed.raw.substr(0, 500));
  REQUIRE(completed.status == 200);

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

  // A run with few says so too.
  api.start_ok("few", "Few", "limits-few");
  auto few = api.describe("few");
  CHECK(few.body["pending_activities"].empty());
  CHECK(few.body["pending_activities_truncated"] == false);
  CHECK(few.body["pending_timers_truncated"] == false);
}
