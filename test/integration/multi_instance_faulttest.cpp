// Fault tests: several reprise-server instances on one database. Instances are stateless and
// coordinate only through PostgreSQL: no task is delivered twice, a poll on one instance is
// woken by work created on another (LISTEN/NOTIFY), and writers are fenced by the execution
// row, so a paused or racing instance can never append a second outcome.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <latch>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

namespace {

std::size_t count_events(const std::vector<std::string>& types, const std::string& type) {
  return static_cast<std::size_t>(std::count(types.begin(), types.end(), type));
}

/// Runs `sql` on `conninfo` and returns every row, each as its columns' text.
std::vector<std::vector<std::string>> query(const std::string& conninfo, const std::string& sql) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string error = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("cannot connect: " + error);
  }
  PGresult* res = PQexec(conn, sql.c_str());
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    std::string error = PQerrorMessage(conn);
    PQclear(res);
    PQfinish(conn);
    throw std::runtime_error("query failed: " + sql + ": " + error);
  }
  std::vector<std::vector<std::string>> rows;
  for (int i = 0; i < PQntuples(res); ++i) {
    std::vector<std::string> row;
    for (int j = 0; j < PQnfields(res); ++j) row.emplace_back(PQgetvalue(res, i, j));
    rows.push_back(std::move(row));
  }
  PQclear(res);
  PQfinish(conn);
  return rows;
}


}  // namespace

TEST_CASE("two server instances on one database deliver each of 200 workflow tasks exactly once to 16 pollers",
          "[fault][multi]") {
  constexpr int kWorkflows = 200;
  constexpr int kPollersPerInstance = 8;
  auto db = fresh_database("multi_exactly_once");
  ServerProcess a({.database_url = db});
  ServerProcess b({.database_url = db});
  const int ports[2] = {a.port(), b.port()};

  std::mutex mutex;
  std::set<std::string> tokens_seen;
  std::set<std::string> runs_seen;
  std::vector<std::string> problems;  // duplicates, 5xx, unexpected statuses, exceptions
  std::atomic<int> completed{0};
  std::atomic<int> completed_via[2] = {0, 0};
  std::atomic<bool> give_up{false};

  auto problem = [&](std::string what) {
    std::lock_guard lock(mutex);
    problems.push_back(std::move(what));
  };

  std::vector<std::thread> pollers;
  for (int i = 0; i < 2 * kPollersPerInstance; ++i) {
    pollers.emplace_back([&, i] {
      RepriseApi api(ports[i % 2]);
      api.http().set_timeout(20s);
      const auto target = api.path("/task-queues/shared/workflow-tasks/poll");
      const std::string identity = "poller-" + std::to_string(i);
      while (completed < kWorkflows && !give_up) {
        try {
          auto r = api.http().post_json(target, {{"identity", identity}, {"timeout", "1s"}});
          if (r.status != 200) {
            problem(identity + " poll: " + std::to_string(r.status) + " " + r.raw);
            continue;
          }
          if (r.body["task"].is_null()) continue;
          const auto task = r.body["task"];
          const std::string token = task["task_token"];
          const std::string run = task["run_id"];
          {
            std::lock_guard lock(mutex);
            if (!tokens_seen.insert(token).second) problems.push_back("token delivered twice: " + token);
            if (!runs_seen.insert(run).second) problems.push_back("run delivered twice: " + run);
          }
          auto done = api.complete_workflow_task(token, {RepriseApi::complete_workflow(identity)});
          if (done.status != 200) {
            problem(identity + " complete: " + std::to_string(done.status) + " " + done.raw);
            continue;
          }
          ++completed;
          ++completed_via[i % 2];
        } catch (const std::exception& e) {
          problem(identity + " error: " + e.what());
        }
      }
    });
  }

  std::vector<std::string> run_ids;
  try {
    RepriseApi starters[2] = {RepriseApi(a.port()), RepriseApi(b.port())};
    for (int i = 0; i < kWorkflows; ++i)
      run_ids.push_back(starters[i % 2].start_ok("many-" + std::to_string(i), "Quick", "shared"));
    wait_until([&] { return completed >= kWorkflows || !problems.empty(); }, 90s,
               "16 pollers complete 200 workflows");
  } catch (...) {
    give_up = true;
    for (auto& t : pollers) t.join();
    throw;
  }
  give_up = true;
  for (auto& t : pollers) t.join();

  INFO("instance A output:\n" << a.output() << "\ninstance B output:\n" << b.output());
  {
    std::string all;
    for (const auto& p : problems) all += p + "\n";
    INFO("problems seen by pollers:\n" << all);
    CHECK(problems.empty());
  }
  CHECK(completed == kWorkflows);
  // Both instances handed out work (each has 8 pollers; neither may starve).
  CHECK(completed_via[0] > 0);
  CHECK(completed_via[1] > 0);
  CHECK(tokens_seen.size() == kWorkflows);
  CHECK(runs_seen.size() == kWorkflows);
  CHECK(runs_seen == std::set<std::string>(run_ids.begin(), run_ids.end()));

  RepriseApi api(a.port());
  int not_completed = 0;
  for (int i = 0; i < kWorkflows; ++i) {
    const auto id = "many-" + std::to_string(i);
    auto described = api.describe(id);
    if (described.status != 200 || described.body["execution"]["status"] != "Completed") {
      ++not_completed;
      UNSCOPED_INFO(id << ": " << described.raw);
    }
    auto types = api.event_types(id);
    CHECK(types == std::vector<std::string>{"WorkflowExecutionStarted", "WorkflowTaskScheduled",
                                            "WorkflowTaskStarted", "WorkflowTaskCompleted",
                                            "WorkflowExecutionCompleted"});
  }
  CHECK(not_completed == 0);
}

TEST_CASE("a poll waiting on instance A wakes when instance B creates the task", "[fault][multi][wakeup]") {
  auto db = fresh_database("multi_wakeup");
  ServerProcess a({.database_url = db});
  ServerProcess b({.database_url = db});
  RepriseApi via_b(b.port());

  for (int round = 0; round < 3; ++round) {
    const std::string id = "wake-" + std::to_string(round);
    std::atomic<bool> returned{false};
    std::string outcome;
    std::chrono::steady_clock::duration elapsed{};
    std::chrono::steady_clock::time_point started_at;
    std::thread poller([&] {
      RepriseApi via_a(a.port());
      via_a.http().set_timeout(30s);
      try {
        auto r = via_a.http().post_json(via_a.path("/task-queues/wake/workflow-tasks/poll"),
                                        {{"identity", "a-poller"}, {"timeout", "20s"}});
        outcome = r.raw;
      } catch (const std::exception& e) {
        outcome = std::string("error: ") + e.what();
      }
      returned = true;
    });
    try {
      wait_until([&] { return has_established_connection(a.port()); }, 10s, "the poll connects to instance A");
      started_at = std::chrono::steady_clock::now();
      via_b.start_ok(id, "Wake", "wake");
      wait_until([&] { return returned.load(); }, 25s, "the poll on A returns");
      elapsed = std::chrono::steady_clock::now() - started_at;
    } catch (...) {
      poller.join();
      throw;
    }
    poller.join();
    INFO("round " << round << ": " << outcome);
    auto body = json::parse(outcome, nullptr, false);
    REQUIRE(body.is_object());
    REQUIRE(body["task"].is_object());
    CHECK(body["task"]["workflow_id"] == id);
    CHECK(elapsed < 5s);
    REQUIRE(via_b.complete_workflow_task(body["task"]["task_token"], {RepriseApi::complete_workflow(round)}).status ==
            200);
  }
}

TEST_CASE("a result wait on a newly started instance wakes when an instance that was alone closes the run",
          "[fault][multi][wakeup]") {
  auto db = fresh_database("multi_alone");
  ServerProcess a({.database_url = db});
  RepriseApi via_a(a.port());
  // A, alone, tells nobody what it commits; it counts its peers once a second.
  via_a.start_ok("was-alone", "Wake", "alone");
  auto task = via_a.expect_workflow_task("alone");

  ServerProcess b({.database_url = db});
  // B's listener is up, so B's own start-up wake-up of its waiters is past.
  wait_until([&] {
    return query(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND application_name = 'reprise-listener'")[0][0] == "2";
  }, 10s, "both instances listen");
  std::atomic<bool> returned{false};
  std::string outcome;
  std::thread waiter([&] {
    RepriseApi via_b(b.port());
    via_b.http().set_timeout(40s);
    try {
      outcome = via_b.history("was-alone", "wait=close&timeout=30s").raw;
    } catch (const std::exception& e) {
      outcome = std::string("error: ") + e.what();
    }
    returned = true;
  });
  std::chrono::steady_clock::duration elapsed{};
  try {
    wait_until([&] { return has_established_connection(b.port()); }, 10s, "the wait connects to instance B");
    const auto closed_at = std::chrono::steady_clock::now();
    REQUIRE(via_a.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("done")}).status == 200);
    wait_until([&] { return returned.load(); }, 35s, "the wait on B returns");
    elapsed = std::chrono::steady_clock::now() - closed_at;
  } catch (...) {
    waiter.join();
    throw;
  }
  waiter.join();
  INFO(outcome);
  auto body = json::parse(outcome, nullptr, false);
  REQUIRE(body.is_object());
  CHECK(body["closed"] == true);
  CHECK(elapsed < 5s);  // not the wait's 30 s timeout: A told B, or told it to look again
}

TEST_CASE("the same workflow task completed concurrently through two instances succeeds exactly once",
          "[fault][multi][fencing]") {
  constexpr int kRounds = 10;
  auto db = fresh_database("multi_race");
  ServerProcess a({.database_url = db});
  ServerProcess b({.database_url = db});
  RepriseApi api(a.port());

  for (int round = 0; round < kRounds; ++round) {
    const std::string id = "race-" + std::to_string(round);
    api.start_ok(id, "Race", "race");
    auto task = api.expect_workflow_task("race");
    REQUIRE(task["workflow_id"] == id);
    const std::string token = task["task_token"];

    std::latch go(2);
    HttpResponse results[2];
    std::string errors[2];
    std::thread racers[2];
    const int ports[2] = {a.port(), b.port()};
    for (int i = 0; i < 2; ++i) {
      racers[i] = std::thread([&, i] {
        RepriseApi racer(ports[i]);
        go.arrive_and_wait();
        try {
          // Different results, so the history shows whose completion was appended.
          results[i] = racer.complete_workflow_task(token, {RepriseApi::complete_workflow(i)});
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      });
    }
    for (auto& t : racers) t.join();
    INFO("round " << round << ": A answered " << results[0].status << " " << results[0].raw << errors[0]
                  << "; B answered " << results[1].status << " " << results[1].raw << errors[1]);
    REQUIRE(errors[0].empty());
    REQUIRE(errors[1].empty());
    const int winners = (results[0].status == 200) + (results[1].status == 200);
    CHECK(winners == 1);
    for (const auto& r : results) {
      if (r.status != 200) {
        CHECK(r.status == 409);
        CHECK(r.body["error"]["code"] == "StaleTaskToken");
      }
    }
    auto types = api.event_types(id);
    CHECK(count_events(types, "WorkflowTaskCompleted") == 1);
    CHECK(count_events(types, "WorkflowExecutionCompleted") == 1);
    CHECK(types.back() == "WorkflowExecutionCompleted");
    auto described = api.describe(id);
    const int winner = results[0].status == 200 ? 0 : 1;
    CHECK(described.body["close_event"]["attributes"]["result"] == winner);
  }
}

TEST_CASE("a completion held by a paused (SIGSTOPped) instance is rejected after the task moved on",
          "[fault][multi][fencing]") {
  auto db = fresh_database("multi_paused");
  ServerProcess a({.database_url = db});
  ServerProcess b({.database_url = db});
  RepriseApi via_b(b.port());

  auto run_id = via_b.start_ok("paused-1", "Stale", "stale", {{"workflow_task_timeout", "1s"}});
  std::string old_token;
  {
    RepriseApi via_a(a.port());
    auto task = via_a.expect_workflow_task("stale");
    old_token = task["task_token"];
  }

  // A stops; a completion of the old task is sent to it and waits in its socket.
  a.kill(SIGSTOP);
  std::atomic<bool> answered{false};
  HttpResponse stale_answer;
  std::string stale_error;
  std::thread stale_writer([&] {
    RepriseApi via_a(a.port());
    via_a.http().set_timeout(60s);
    try {
      stale_answer = via_a.complete_workflow_task(old_token, {RepriseApi::complete_workflow("stale")});
    } catch (const std::exception& e) {
      stale_error = e.what();
    }
    answered = true;
  });

  try {
    // Meanwhile the task times out and B hands it out again; the new attempt completes.
    auto task = via_b.expect_workflow_task("stale", "20s");
    CHECK(task["run_id"] == run_id);
    CHECK(task["task_token"] != old_token);
    auto r = via_b.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("fresh")});
    INFO(r.raw);
    CHECK(r.status == 200);
    CHECK_FALSE(answered);  // A really was paused all along
  } catch (...) {
    a.kill(SIGCONT);
    stale_writer.join();
    throw;
  }

  a.kill(SIGCONT);
  stale_writer.join();
  INFO("stale completion through A: " << stale_answer.status << " " << stale_answer.raw << stale_error);
  REQUIRE(stale_error.empty());
  CHECK(stale_answer.status == 409);
  CHECK(stale_answer.body["error"]["code"] == "StaleTaskToken");

  auto described = via_b.describe("paused-1");
  CHECK(described.body["execution"]["status"] == "Completed");
  CHECK(described.body["close_event"]["attributes"]["result"] == "fresh");
  auto types = via_b.event_types("paused-1");
  CHECK(count_events(types, "WorkflowTaskCompleted") == 1);
  CHECK(count_events(types, "WorkflowExecutionCompleted") == 1);
  CHECK(count_events(types, "WorkflowTaskTimedOut") == 1);
}

TEST_CASE("two instances starting at the same time on a fresh database apply each migration once and share "
          "the task token secret",
          "[fault][multi][migrations]") {
  auto db = fresh_database("multi_migrations");
  TempDir dir("multi-migrations");
  // Both processes are started before either is waited for, so they race on the schema.
  SpawnedServer first({"--database-url", db, "--port", "0", "--ready-file", (dir.path() / "ready-1").string()},
                      dir.path() / "output-1.log");
  SpawnedServer second({"--database-url", db, "--port", "0", "--ready-file", (dir.path() / "ready-2").string()},
                       dir.path() / "output-2.log");
  const int port1 = first.wait_ready(dir.path() / "ready-1", 30s);
  const int port2 = second.wait_ready(dir.path() / "ready-2", 30s);
  INFO("first:\n" << first.output() << "\nsecond:\n" << second.output());

  auto rows = query(db, "SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version");
  REQUIRE_FALSE(rows.empty());
  for (const auto& row : rows) CHECK(row[1] == "1");
  auto total = query(db, "SELECT count(*), count(DISTINCT version) FROM schema_migrations");
  CHECK(total[0][0] == total[0][1]);
  CHECK(query(db, "SELECT count(*) FROM cluster_metadata WHERE key = 'task_token_secret'")[0][0] == "1");

  // A token handed out by one instance is accepted by the other: they sign with one secret.
  RepriseApi via_first(port1);
  RepriseApi via_second(port2);
  via_first.start_ok("shared-secret", "Secret", "secret");
  auto task = via_first.expect_workflow_task("secret");
  auto r = via_second.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("ok")});
  INFO(r.raw);
  CHECK(r.status == 200);
  CHECK(via_second.describe("shared-secret").body["execution"]["status"] == "Completed");

  first.signal(SIGTERM);
  second.signal(SIGTERM);
  CHECK(first.wait_exit(10s) == 0);
  CHECK(second.wait_exit(10s) == 0);
}
