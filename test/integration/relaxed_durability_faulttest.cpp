// PostgreSQL crashes under a server with and without --synchronous-commit off. With it, a
// change acknowledged in the database's last moments may be lost: that is the mode's price,
// and the check that it was lost shows the flag reached the store's sessions. What the server
// must not do is go on believing the lost change: what it remembers of its own commits is
// forgotten once it meets the database again, and the run goes on from what survived. Without
// the flag, the same crash loses nothing.
#include <csignal>
#include <memory>
#include <string>

#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include "dev/cluster_watcher.hpp"
#include "dev/local_cluster.hpp"
#include "support/raw_sql.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

namespace {

using Connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;

Connection connect(const std::string& conninfo) { return {PQconnectdb(conninfo.c_str()), &PQfinish}; }

/// Crashes PostgreSQL as a failing backend does: one session is killed with SIGKILL, so the
/// postmaster ends every other session and recovers from the WAL on disk, without the WAL
/// buffers nobody had written yet. Returns once the crash has ended the sessions open before it
/// and the database accepts connections again; true if the WAL up to `lsn` was not yet flushed
/// when the session was killed (what was committed up to there is then lost, when async).
bool crash_postgres(const std::string& conninfo, const std::string& lsn = "0/0") {
  auto witness = connect(conninfo);
  REQUIRE(PQstatus(witness.get()) == CONNECTION_OK);
  bool unflushed = false;
  {
    auto victim = connect(conninfo);
    REQUIRE(PQstatus(victim.get()) == CONNECTION_OK);
    const auto pid = std::stoi(query_value(victim.get(), "SELECT pg_backend_pid()"));
    unflushed = query_value(victim.get(), "SELECT pg_current_wal_flush_lsn() < '" + lsn + "'::pg_lsn") == "t";
    REQUIRE(::kill(pid, SIGKILL) == 0);
  }
  // The postmaster learns of the death asynchronously: until it ends the other sessions, a new
  // connection could still reach the old server.
  wait_until(
      [&] {
        std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(witness.get(), "SELECT 1"), &PQclear);
        return PQresultStatus(r.get()) != PGRES_TUPLES_OK;
      },
      30s, "the crash ends the sessions open before it");
  wait_until([&] { return PQping(conninfo.c_str()) == PQPING_OK; }, 60s,
             "PostgreSQL accepts connections again after its crash");
  return unflushed;
}

/// The run's event types, read through a server whose connections PostgreSQL's crash ended. The
/// first request finds its connection dead and fails (Unavailable); it tells the pool, which
/// checks every other connection before its next job, so no later request fails.
std::vector<std::string> event_types_after_crash(RepriseApi& api, const std::string& workflow_id) {
  auto first = api.history(workflow_id);
  INFO(first.raw);
  CHECK((first.status == 200 || first.status == 503));
  return api.event_types(workflow_id);
}

std::string wal_insert_lsn(const std::string& conninfo) {
  auto conn = connect(conninfo);
  return query_value(conn.get(), "SELECT pg_current_wal_insert_lsn()");
}

void checkpoint(const std::string& conninfo) {
  auto conn = connect(conninfo);
  query_value(conn.get(), "CHECKPOINT");
}

/// A cluster of the test's own, since it is crashed, whose WAL writer waits 10 s between
/// writes and which nothing else flushes meanwhile (no autovacuum, no background writer), so
/// that a commit acknowledged without a flush is still unwritten when the crash comes.
struct CrashableDatabase {
  TempDir dir{"relaxed-durability"};
  reprise::dev::ClusterWatcher watcher{dir.path() / "pgdata", {}};
  reprise::dev::LocalCluster cluster = reprise::dev::LocalCluster::open(
      {.data_dir = dir.path() / "pgdata",
       .settings = {"wal_writer_delay=10000ms", "autovacuum=off", "bgwriter_lru_maxpages=0"}});
  std::string url = cluster.create_database("relaxed");
};

}  // namespace

TEST_CASE("with --synchronous-commit off a PostgreSQL crash loses the last close, and the server forgets it too",
          "[fault][relaxed-durability]") {
  CrashableDatabase db;
  ServerProcess server({.database_url = db.url, .extra_args = {"--synchronous-commit", "off"}});
  CHECK(server.output().find("synchronous_commit is off") != std::string::npos);
  RepriseApi api(server.port());
  // The WAL writer still flushes every 10 s: a close it happened to flush before the crash is
  // not lost, and another run is tried. With the flag not applied, every close would be.
  for (int attempt = 1;; ++attempt) {
    const std::string id = "relaxed-" + std::to_string(attempt);
    api.start_ok(id, "Relaxed", "relaxed");
    const auto task = api.expect_workflow_task("relaxed");
    checkpoint(db.url);  // everything so far is durable, so that only what follows can be lost
    auto closed = api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("done")});
    INFO(closed.raw);
    REQUIRE(closed.status == 200);
    // The server knows the run closed: it answers a result wait from what it committed.
    REQUIRE(api.history(id, "wait=close&timeout=1s").body.at("closed") == true);

    if (!crash_postgres(db.url, wal_insert_lsn(db.url))) {
      INFO("attempt " << attempt << ": the close was flushed before the crash");
      REQUIRE(attempt < 3);
      event_types_after_crash(api, id);  // lets the server find its connections dead
      continue;
    }
    // The close was acknowledged and is gone: the price of the mode, and proof that it applied.
    const std::vector<std::string> before_close = {"WorkflowExecutionStarted", "WorkflowTaskScheduled",
                                                   "WorkflowTaskStarted"};
    REQUIRE(event_types_after_crash(api, id) == before_close);
    // The server no longer answers with the close it remembered: the run is open.
    auto wait = api.history(id, "wait=close&timeout=1s");
    INFO(wait.raw);
    REQUIRE(wait.status == 200);
    CHECK(wait.body.at("closed") == false);
    // The run goes on from what survived: its task is still in flight, and completing it again
    // closes the run once.
    auto again = api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("done")});
    INFO(again.raw);
    REQUIRE(again.status == 200);
    CHECK(api.event_types(id) == std::vector<std::string>{"WorkflowExecutionStarted", "WorkflowTaskScheduled",
                                                          "WorkflowTaskStarted", "WorkflowTaskCompleted",
                                                          "WorkflowExecutionCompleted"});
    break;
  }
}

TEST_CASE("by default a PostgreSQL crash loses nothing acknowledged", "[fault][relaxed-durability]") {
  CrashableDatabase db;
  ServerProcess server({.database_url = db.url});
  CHECK(server.output().find("synchronous_commit is off") == std::string::npos);
  RepriseApi api(server.port());
  api.start_ok("durable-1", "Durable", "durable");
  const auto task = api.expect_workflow_task("durable");
  checkpoint(db.url);
  REQUIRE(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("done")}).status == 200);

  crash_postgres(db.url);

  CHECK(event_types_after_crash(api, "durable-1") ==
        std::vector<std::string>{"WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted",
                                 "WorkflowTaskCompleted", "WorkflowExecutionCompleted"});
  // The task was completed: its token is stale now.
  CHECK(api.complete_workflow_task(task["task_token"], {RepriseApi::complete_workflow("done")}).status == 409);
}
