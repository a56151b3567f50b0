// The history is stored as one row of events per transaction (store/history_batches.hpp):
// pages that start or end inside a row hold exactly their events, and migration 0012 turns
// the rows of the old one-row-per-event table into batches the service serves unchanged.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "pg/connection.hpp"
#include "store/migrations.hpp"
#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;

namespace {

/// Checks every page of the run's history, from each event and of several sizes, against
/// the whole of it.
void check_every_page(RepriseApi& api, const std::string& workflow_id, const json& all) {
  const auto n = static_cast<int>(all.size());
  for (int from = 1; from <= n + 1; ++from)
    for (int size : {1, 2, 3, 5, 1000}) {
      auto page = api.history(workflow_id, fmt::format("from_event_id={}&page_size={}", from, size));
      INFO("from_event_id=" << from << " page_size=" << size << ": " << page.raw);
      REQUIRE(page.status == 200);
      const int expected = std::max(0, std::min(size, n - from + 1));
      REQUIRE(page.body["events"].size() == static_cast<std::size_t>(expected));
      for (int i = 0; i < expected; ++i) CHECK(page.body["events"][i] == all[from - 1 + i]);
      CHECK(page.body["next_event_id"] == from + expected);
      CHECK(page.body["has_more"] == (from + expected <= n));
    }
}

}  // namespace

TEST_CASE("a history page that starts or ends inside a stored batch holds exactly its events", "[pg][history]") {
  ServerProcess server({.database_url = fresh_database("history_pages")});
  RepriseApi api(server.port());
  api.start_ok("pages-1", "T", "q");
  auto task = api.expect_workflow_task("q");
  // One transaction appends WorkflowTaskCompleted and four ActivityTaskScheduled: one batch of five.
  std::vector<json> commands;
  for (int i = 0; i < 4; ++i) commands.push_back(RepriseApi::schedule_activity(std::to_string(i), "A"));
  REQUIRE(api.complete_workflow_task(task["task_token"], commands).status == 200);
  REQUIRE(api.signal("pages-1", {{"signal_name", "s"}, {"input", "one"}}).status == 200);

  auto all = history_events(api, "pages-1");
  REQUIRE(all.size() == 10);  // started, wft scheduled/started/completed, 4 scheduled, signaled, wft scheduled
  for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i]["event_id"] == i + 1);
  check_every_page(api, "pages-1", all);

  // The first task of a run a worker does not hold is cut from the first batch on.
  auto next = api.expect_workflow_task("q");
  CHECK(next["history"].size() == all.size() + 1);  // and its WorkflowTaskStarted
}

TEST_CASE("a transaction that appends megabytes writes several batches, and pages cut across them",
          "[pg][history]") {
  const auto url = fresh_database("history_split");
  ServerProcess server({.database_url = url});
  RepriseApi api(server.port());
  api.start_ok("big-1", "T", "q");
  auto task = api.expect_workflow_task("q");
  // Two signals buffered while the task is in flight, and two activities the task schedules:
  // about 6 MiB appended by the completion's one transaction, over the 4 MiB of one batch.
  const std::string big(1'500'000, 'x');
  for (int i = 0; i < 2; ++i)
    REQUIRE(api.signal("big-1", {{"signal_name", "s"}, {"input", big + std::to_string(i)}}).status == 200);
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::schedule_activity("a", "A", {{"input", big + "a"}}),
                                                          RepriseApi::schedule_activity("b", "A", {{"input", big + "b"}})})
              .status == 200);
  reprise::pg::Connection db(url);
  CHECK(db.exec("split_rows",
                "SELECT count(*) FROM history_batches WHERE workflow_id = 'big-1' GROUP BY xmin::text "
                "ORDER BY count(*) DESC LIMIT 1", {})
            .i64(0, 0) >= 2);

  auto all = history_events(api, "big-1");
  const auto n = static_cast<int>(all.size());
  for (int i = 0; i < n; ++i) REQUIRE(all[i]["event_id"] == i + 1);
  // Pages of two from every event: each batch boundary falls inside one of them.
  for (int from = 1; from <= n; ++from) {
    auto page = api.history("big-1", fmt::format("from_event_id={}&page_size=2", from));
    REQUIRE(page.status == 200);
    const int expected = std::min(2, n - from + 1);
    REQUIRE(page.body["events"].size() == static_cast<std::size_t>(expected));
    for (int i = 0; i < expected; ++i) CHECK(page.body["events"][i] == all[from - 1 + i]);
  }
  REQUIRE(api.terminate("big-1", {{"reason", "done"}}).status == 200);
  CHECK(api.describe("big-1").body["close_event"]["event_type"] == "WorkflowExecutionTerminated");
}

TEST_CASE("migration 0012 serves the events of the old per-event table unchanged, and the run goes on",
          "[pg][history][migration]") {
  const auto url = fresh_database("history_migration");
  {
    reprise::pg::Connection db(url);
    // The schema as the previous version left it, with a run it wrote.
    db.exec_script("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
                   "applied_at timestamptz NOT NULL DEFAULT now())");
    for (const auto& m : reprise::store::embedded_migrations()) {
      if (m.version >= 12) break;
      db.exec_script(m.sql);
      db.exec("record", "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)",
              {std::to_string(m.version), m.name});
    }
    db.exec_script(R"(
      INSERT INTO executions (namespace, workflow_id, run_id, first_run_id, workflow_type, task_queue, status,
                              next_event_id, start_time, workflow_task_timeout_ms)
      VALUES ('default', 'old-1', '6f2b6c86-58c1-4b8e-9d5e-0d1c1f1e8a01', '6f2b6c86-58c1-4b8e-9d5e-0d1c1f1e8a01',
              'T', 'q', 'Running', 4, '2026-11-29T23:09:47.123Z', 10000);
      INSERT INTO history_events (namespace, workflow_id, run_id, event_id, event_type, event_time, attributes) VALUES
        ('default', 'old-1', '6f2b6c86-58c1-4b8e-9d5e-0d1c1f1e8a01', 1, 'WorkflowExecutionStarted',
         '2026-11-29T23:09:47.123Z', '{"input":{"say":"naïve \"quoted\" — 東京"},"task_queue":"q","workflow_type":"T"}'),
        ('default', 'old-1', '6f2b6c86-58c1-4b8e-9d5e-0d1c1f1e8a01', 2, 'WorkflowTaskScheduled',
         '2026-11-29T23:09:47.123Z', E'{"attempt":1,\n"start_to_close_timeout":"10s","task_queue":"q"}'),
        ('default', 'old-1', '6f2b6c86-58c1-4b8e-9d5e-0d1c1f1e8a01', 3, 'WorkflowTaskTimedOut',
         '2026-11-29T23:09:57.009Z', '{"scheduled_event_id":2,"started_event_id":0,"timeout_type":"ScheduleToStart"}');
      -- A closed run whose closing event holds a raw newline (whitespace in JSON).
      INSERT INTO executions (namespace, workflow_id, run_id, first_run_id, workflow_type, task_queue, status,
                              next_event_id, start_time, close_time, workflow_task_timeout_ms)
      VALUES ('default', 'old-2', '6f2b6c86-58c1-4b8e-9d5e-0d1c1f1e8a02', '6f2b6c86-58c1-4b8e-9d5e-0d1c1f1e8a02',
              'T', 'q', 'Completed', 3, '2026-11-29T23:09:47.123Z', '2026-11-29T23:09:48Z', 10000);
      INSERT INTO history_events (namespace, workflow_id, run_id, event_id, event_type, event_time, attributes) VALUES
        ('default', 'old-2', '6f2b6c86-58c1-4b8e-9d5e-0d1c1f1e8a02', 1, 'WorkflowExecutionStarted',
         '2026-11-29T23:09:47.123Z', '{"input":null,"task_queue":"q","workflow_type":"T"}'),
        ('default', 'old-2', '6f2b6c86-58c1-4b8e-9d5e-0d1c1f1e8a02', 2, 'WorkflowExecutionTerminated',
         '2026-11-29T23:09:48Z', E'{"reason":"stop",\n"identity":"ops"}');
    )");
  }
  ServerProcess server({.database_url = url});  // applies 0012
  RepriseApi api(server.port());
  auto events = history_events(api, "old-1");
  REQUIRE(events.size() == 3);
  CHECK(events[0] == json::parse(R"({"event_id":1,"event_type":"WorkflowExecutionStarted",
      "event_time":"2026-11-29T23:09:47.123Z",
      "attributes":{"input":{"say":"naïve \"quoted\" — 東京"},"task_queue":"q","workflow_type":"T"}})"));
  CHECK(events[1]["attributes"]["start_to_close_timeout"] == "10s");  // its newline was whitespace
  CHECK(events[2]["event_time"] == "2026-11-29T23:09:57.009Z");
  CHECK(events[2]["attributes"]["timeout_type"] == "ScheduleToStart");

  auto closed = api.describe("old-2");
  REQUIRE(closed.status == 200);
  CHECK(closed.body["close_event"]["attributes"] == json({{"reason", "stop"}, {"identity", "ops"}}));
  CHECK(history_events(api, "old-2").back()["attributes"]["identity"] == "ops");

  // The run goes on: its new events follow the migrated ones.
  REQUIRE(api.signal("old-1", {{"signal_name", "s"}, {"input", 1}}).status == 200);
  events = history_events(api, "old-1");
  REQUIRE(events.size() == 5);
  CHECK(events[3]["event_type"] == "WorkflowExecutionSignaled");
  CHECK(events[4]["event_id"] == 5);
  check_every_page(api, "old-1", events);
  auto task = api.expect_workflow_task("q");
  REQUIRE(task["history"].size() == 6);
  CHECK(task["history"][0]["attributes"]["input"]["say"] == "naïve \"quoted\" — 東京");
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("done")}).status == 200);
  auto described = api.describe("old-1");
  REQUIRE(described.status == 200);
  CHECK(described.body["close_event"]["event_type"] == "WorkflowExecutionCompleted");
  CHECK(described.body["close_event"]["attributes"]["result"] == "done");
}
