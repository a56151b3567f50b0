// A lone request runs its transaction on the io thread that read it (Api::run_here_if_alone).
// When that transaction waits for a row lock, the server still serves every other connection:
// a standby thread takes the io thread's work meanwhile (service::IoStandby).
#include <algorithm>
#include <future>
#include <memory>

#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include "support/postgres_fixture.hpp"
#include "support/raw_sql.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

TEST_CASE("a lone request waiting for a row lock does not hold up the server's other requests", "[pg][race]") {
  const auto db = fresh_database("lone_request_stall");
  ServerProcess server({.database_url = db});  // one io thread, the default
  RepriseApi api(server.port());
  const auto run = api.start_ok("locked", "Waits", "stall");

  std::future<HttpResponse> signaled;  // declared before the holder: a failed check lets go of the row first
  std::unique_ptr<PGconn, decltype(&PQfinish)> holder(PQconnectdb(db.c_str()), &PQfinish);
  REQUIRE(PQstatus(holder.get()) == CONNECTION_OK);
  query_value(holder.get(), "BEGIN; SELECT 1 FROM executions WHERE run_id = '" + run + "' FOR UPDATE");

  // Alone, so it runs on the io thread, and waits there for the row.
  signaled = std::async(std::launch::async, [&] {
    RepriseApi client(server.port());
    return client.signal("locked", {{"signal_name", "go"}, {"input", 1}});
  });
  wait_until([&] {
    return std::stoi(query_value(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND wait_event_type = 'Lock'")) >= 1;
  }, 10s, "the signal waits for the run's row");

  // Meanwhile other requests are read and answered: a start, and a read.
  auto others = std::async(std::launch::async, [&] {
    RepriseApi client(server.port());
    client.start_ok("free", "Waits", "stall");
    return client.describe("free");
  });
  const bool answered_while_held = others.wait_for(10s) == std::future_status::ready;
  query_value(holder.get(), "COMMIT");
  REQUIRE(answered_while_held);
  auto described = others.get();
  CHECK(described.status == 200);

  auto signal_answer = signaled.get();
  INFO(signal_answer.body.dump());
  REQUIRE(signal_answer.status == 200);
  auto events = api.event_types("locked", run);
  CHECK(std::find(events.begin(), events.end(), "WorkflowExecutionSignaled") != events.end());
}
