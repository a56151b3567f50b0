// A burst of timers due together is fired by several threads at once, each exactly once.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <functional>

#include "pg/connection.hpp"
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

namespace {

/// Every stored event, one row each, with the transaction that wrote it (`tx`): the history
/// is stored as one row of events per transaction (history_batches.hpp).
const std::string kEvents =
    "(SELECT workflow_id, xmin::text AS tx, e->>'event_type' AS event_type FROM history_batches, "
    "jsonb_array_elements(('[' || events || ']')::jsonb) e) stored_events";

/// The first column of the first row of `sql`, as text.
std::string scalar(reprise::pg::Connection& conn, const std::string& sql) {
  // Statements are prepared by name: one name for each text.
  return std::string(conn.exec("test_" + std::to_string(std::hash<std::string>{}(sql)), sql, {}).text(0, 0));
}

/// Starts `runs` runs on `queue`, each completing its first workflow task with `commands(i)`.
void start_runs(RepriseApi& api, const std::string& prefix, int runs, const std::function<std::vector<json>(int)>& commands) {
  for (int i = 0; i < runs; ++i) api.start_ok(fmt::format("{}-{}", prefix, i), "Sleeper", prefix);
  for (int i = 0; i < runs; ++i) {
    auto task = api.expect_workflow_task(prefix);
    const std::string id = task["workflow_id"];
    const int n = std::stoi(id.substr(prefix.size() + 1));
    REQUIRE(api.complete_workflow_task(task["task_token"], commands(n)).status == 200);
  }
}

}  // namespace

TEST_CASE("timers overdue together fire in batches, one timer of a run per batch", "[pg][timer]") {
  auto url = fresh_database("timer_batches");
  reprise::pg::Connection db(url);
  constexpr int kRuns = 100;  // the even ones start two timers
  {
    ServerProcess first({.database_url = url});
    RepriseApi api(first.port());
    start_runs(api, "batch", kRuns, [](int i) {
      std::vector<json> timers{RepriseApi::start_timer("a", "2s")};
      if (i % 2 == 0) timers.push_back(RepriseApi::start_timer("b", "2s"));
      return timers;
    });
    first.kill();  // before most have fired: they will all be overdue at once for the next one
  }
  wait_until([&] { return scalar(db, "SELECT count(*) FROM timers WHERE fire_at > now()") == "0"; }, 10s,
             "every timer is due");
  const int due = std::stoi(scalar(db, "SELECT count(*) FROM timers WHERE kind = 'user_timer'"));
  REQUIRE(due > kRuns);  // the first server fired few of them, if any

  ServerProcess second({.database_url = url});
  wait_until([&] {
    return scalar(db, "SELECT count(*) FROM " + kEvents + " WHERE event_type = 'TimerFired'") == std::to_string(kRuns * 3 / 2);
  }, 30s, "every timer fires");
  // Each transaction that fired timers wrote its TimerFired rows with its own xmin: one a
  // timer, before batching.
  const int transactions = std::stoi(
      scalar(db, "SELECT count(DISTINCT tx) FROM " + kEvents + " WHERE event_type = 'TimerFired'"));
  INFO(due << " timers were due at once; " << transactions << " transactions fired them");
  CHECK(transactions <= due / 4);
  // Never two timers of one run in one transaction: they would fail each other's fence.
  CHECK(scalar(db, "SELECT count(*) FROM (SELECT workflow_id FROM " + kEvents +
                       " WHERE event_type = 'TimerFired' GROUP BY workflow_id HAVING count(DISTINCT tx) <> "
                       "count(*)) two_in_one") == "0");
  RepriseApi api(second.port());
  for (int i = 0; i < kRuns; ++i) {
    auto types = api.event_types(fmt::format("batch-{}", i));
    INFO("run " << i);
    CHECK(count_of(types, "TimerFired") == (i % 2 == 0 ? 2 : 1));
  }
}

TEST_CASE("a timer that fails every time is postponed a minute, and the timers of its batch fire",
          "[pg][timer]") {
  auto url = fresh_database("timer_poison");
  reprise::pg::Connection db(url);
  {
    ServerProcess first({.database_url = url});
    RepriseApi api(first.port());
    start_runs(api, "fine", 10, [](int) { return std::vector<json>{RepriseApi::start_timer("a", "2s")}; });
    api.start_ok("poison", "Sleeper", "poison");
    auto task = api.expect_workflow_task("poison");
    REQUIRE(api.complete_workflow_task(task["task_token"],
                                       {RepriseApi::schedule_activity("act", "Never",
                                                                      {{"schedule_to_start_timeout", "2s"}})})
                .status == 200);
    first.kill();
  }
  // The activity's row is damaged: its schedule-to-start timeout cannot fire.
  db.exec("damage", "UPDATE activities SET retry_policy = 'not json' WHERE workflow_id = 'poison'", {});
  wait_until([&] { return scalar(db, "SELECT count(*) FROM timers WHERE fire_at > now()") == "0"; }, 10s,
             "every timer is due");

  ServerProcess second({.database_url = url});
  wait_until([&] {
    return scalar(db, "SELECT count(*) FROM " + kEvents + " WHERE event_type = 'TimerFired'") == "10";
  }, 30s, "the healthy timers fire");
  wait_until([&] {
    return scalar(db, "SELECT count(*) FROM timers WHERE workflow_id = 'poison' AND fire_at > now() + interval '30 seconds'") == "1";
  }, 30s, "the failing timer is postponed");
}
