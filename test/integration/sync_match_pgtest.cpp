// Sync match: a start hands the run's first workflow task to a poll already waiting on this
// instance, in the start's own transaction; the task table is only for backlog.
#include <chrono>
#include <future>
#include <set>

#include <catch2/catch.hpp>

#include "pg/connection.hpp"
#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

TEST_CASE("a start hands its first workflow task to a poll waiting on the queue", "[pg][sync-match]") {
  auto url = fresh_database("sync_match_start");
  ServerProcess server({.database_url = url});
  RepriseApi api(server.port());
  auto poll = poll_on_the_idle_list(api, server.port(), "matched", "waiting-worker");
  auto described = api.http().get_json(api.path("/task-queues/matched"));
  CHECK(described.body["waiting_polls"][0] == json({{"identity", "waiting-worker"}, {"kind", "workflow"}}));

  api.start_ok("sm-1", "Matched", "matched");
  // Started in the start's own transaction: the history has it as soon as the start returns.
  auto types = api.event_types("sm-1");
  REQUIRE(types.size() == 3);
  CHECK(types[2] == "WorkflowTaskStarted");
  CHECK(history_events(api, "sm-1")[2]["attributes"]["identity"] == "waiting-worker");

  auto task = poll.get();
  REQUIRE(task);
  CHECK((*task)["workflow_id"] == "sm-1");
  CHECK((*task)["history"] == history_events(api, "sm-1"));  // the start's events, from memory, as stored
  CHECK(api.http().get_json(api.path("/task-queues/matched")).body["waiting_polls"].empty());
  REQUIRE(api.complete_workflow_task((*task)["task_token"], {RepriseApi::complete_workflow(1)}).status == 200);
  CHECK(api.event_types("sm-1").back() == "WorkflowExecutionCompleted");
  // No task row was ever written: the table of a fresh database still has no page at all.
  reprise::pg::Connection db(url);
  CHECK(db.exec("tasks_size", "SELECT pg_relation_size('tasks')").i64(0, 0) == 0);
}

TEST_CASE("a start that fails leaves the waiting poll waiting for the next task", "[pg][sync-match]") {
  // Not held: a held start hands its task out before it knows it will be refused
  // (held_start_pgtest.cpp).
  ServerProcess server({.database_url = fresh_database("sync_match_release"), .extra_args = {"--first-task-hold", "0s"}});
  RepriseApi api(server.port());
  api.start_ok("sm-dup", "Matched", "matched");  // no poll waits: its task is queued
  CHECK(api.expect_workflow_task("matched")["workflow_id"] == "sm-dup");

  auto poll = poll_in_background(server.port(), "matched", "waiting-worker");
  wait_for_waiting_polls(api, "matched", 1);
  auto refused = api.start({{"workflow_id", "sm-dup"}, {"workflow_type", "Matched"}, {"task_queue", "matched"}});
  CHECK(refused.status == 409);
  // The poll went back to waiting, and the next start's task goes to it.
  wait_for_waiting_polls(api, "matched", 1);
  api.start_ok("sm-next", "Matched", "matched");
  auto task = poll.get();
  REQUIRE(task);
  CHECK((*task)["workflow_id"] == "sm-next");
}

TEST_CASE("a queue's waiting polls and backlog are listed, and only GET reads them", "[pg][sync-match]") {
  ServerProcess server({.database_url = fresh_database("sync_match_describe")});
  RepriseApi api(server.port());
  auto r = api.http().get_json(api.path("/task-queues/empty"));
  CHECK(r.status == 200);
  CHECK(r.body["task_queue"] == "empty");
  CHECK(r.body["waiting_polls"] == json::array());
  CHECK(r.body["backlog"] == json({{"workflow", 0}, {"activity", 0}}));
  // No poll waits: two starts leave two workflow tasks in the queue's backlog.
  api.start_ok("backlog-1", "Matched", "backed-up");
  api.start_ok("backlog-2", "Matched", "backed-up");
  r = api.http().get_json(api.path("/task-queues/backed-up"));
  CHECK(r.body["backlog"] == json({{"workflow", 2}, {"activity", 0}}));
  api.expect_workflow_task("backed-up");
  CHECK(api.http().get_json(api.path("/task-queues/backed-up")).body["backlog"]["workflow"] == 1);
  r = api.http().post_json(api.path("/task-queues/empty"), json::object());
  CHECK(r.status == 405);
}

TEST_CASE("polls waiting on a queue found empty still get task rows that came without a notification",
          "[pg][sync-match]") {
  // A poll trusts an empty queue without reading it while nothing was published there, but
  // only for a while: an instance that crashed between its commit and its NOTIFY leaves rows
  // nobody announced.
  auto url = fresh_database("sync_match_unannounced");
  ServerProcess server({.database_url = url});
  RepriseApi api(server.port());
  api.start_ok("quiet-1", "Matched", "quiet");  // no poll waits: the task rows are queued
  api.start_ok("quiet-2", "Matched", "quiet");
  reprise::pg::Connection db(url);
  db.exec_script("CREATE TABLE held AS SELECT * FROM tasks; DELETE FROM tasks");

  // Both answer before a claimed task's 10 s timeout could announce anything: a poll that waited
  // for an announcement would answer empty.
  auto reader = poll_in_background(server.port(), "quiet", "reader", "8s");  // reads the queue: empty
  wait_for_waiting_polls(api, "quiet", 1);
  auto truster = poll_in_background(server.port(), "quiet", "truster", "8s");  // waits without reading
  wait_for_waiting_polls(api, "quiet", 2);
  db.exec_script("INSERT INTO tasks SELECT * FROM held");  // the rows are back, unannounced
  std::set<std::string> claimed;
  for (auto* poll : {&reader, &truster}) {
    auto task = poll->get();
    REQUIRE(task);
    claimed.insert((*task)["workflow_id"].get<std::string>());
  }
  CHECK(claimed == std::set<std::string>{"quiet-1", "quiet-2"});
}

TEST_CASE("a poll that read its queue empty stays on the idle list while that is checked again",
          "[pg][sync-match]") {
  // The queue's emptiness is trusted for a second, then looked at again without claiming: a
  // poll that left the idle list for that look would miss a start arriving meanwhile.
  ServerProcess server({.database_url = fresh_database("sync_match_recheck")});
  RepriseApi api(server.port());
  auto poll = poll_in_background(server.port(), "lone", "lone-worker", "6s");  // reads the queue: empty
  wait_for_waiting_polls(api, "lone", 1);
  int looks = 0, missing = 0;
  for (auto until = std::chrono::steady_clock::now() + 3500ms; std::chrono::steady_clock::now() < until; ++looks)
    if (api.http().get_json(api.path("/task-queues/lone")).body["waiting_polls"].size() != 1) ++missing;
  CHECK(looks > 200);  // about three looks a millisecond at the server through three checks
  CHECK(missing == 0);

  api.start_ok("lone-1", "Matched", "lone");
  CHECK(api.event_types("lone-1").back() == "WorkflowTaskStarted");  // matched in the start's transaction
  auto task = poll.get();
  REQUIRE(task);
  CHECK((*task)["workflow_id"] == "lone-1");
}
