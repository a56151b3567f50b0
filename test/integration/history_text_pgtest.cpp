// Every payload comes back from the history exactly as it was sent, whatever it contains
// (quotes, backslashes, text that looks like SQL array or JSON syntax, any Unicode).
#include <algorithm>

#include <catch2/catch.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;

TEST_CASE("payloads with quotes, backslashes, braces and non-ASCII text come back from the history unchanged",
          "[pg][history]") {
  ServerProcess server({.database_url = fresh_database("history_text")});
  RepriseApi api(server.port());
  api.start_ok("text-1", "T", "q");
  auto task = api.expect_workflow_task("q");
  REQUIRE(api.complete_workflow_task(task["task_token"], {}).status == 200);

  const json tricky = {{"quote", "say \"hi\""},
                       {"backslash", R"(C:\dir\file \" \\)"},
                       {"array_syntax", "{\"a\",\"b\"},{NULL}"},
                       {"lines", "one\ntwo\tthree"},
                       {"unicode", "naïve — 東京 🚀"},
                       {"empty", ""}};
  for (const auto& input : {tricky, json("\\"), json("\""), json("{}"), json("NULL")}) {
    REQUIRE(api.signal("text-1", {{"signal_name", "s"}, {"input", input}}).status == 200);
    auto events = history_events(api, "text-1");
    auto last_signal = std::find_if(events.rbegin(), events.rend(),
                                    [](const json& e) { return e["event_type"] == "WorkflowExecutionSignaled"; });
    REQUIRE(last_signal != events.rend());
    CHECK((*last_signal)["attributes"]["input"] == input);
  }
}
