// A burst of timers due together is fired by several threads at once, each exactly once.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

TEST_CASE("two hundred timers due at once each fire exactly once, into a new workflow task", "[pg][timer]") {
  ServerProcess server({.database_url = fresh_database("timer_burst")});
  RepriseApi api(server.port());
  constexpr int kRuns = 200;
  for (int i = 0; i < kRuns; ++i) api.start_ok(fmt::format("burst-{}", i), "Sleeper", "burst");
  for (int i = 0; i < kRuns; ++i) {
    auto task = api.expect_workflow_task("burst");
    REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::start_timer("nap", "300ms")}).status == 200);
  }
  // Every run gets its TimerFired and a workflow task to see it.
  int fired_tasks = 0;
  wait_until([&] {
    while (auto task = api.poll_workflow_task("burst", "100ms")) {
      CHECK(task->at("history").back()["event_type"] == "WorkflowTaskStarted");
      ++fired_tasks;
    }
    return fired_tasks == kRuns;
  }, 60s, "every run's timer fired and its workflow task was handed out");
  for (int i = 0; i < kRuns; ++i) {
    auto types = api.event_types(fmt::format("burst-{}", i));
    INFO("run " << i);
    CHECK(count_of(types, "TimerStarted") == 1);
    CHECK(count_of(types, "TimerFired") == 1);
    CHECK(count_of(types, "WorkflowTaskScheduled") == 2);
  }
}
