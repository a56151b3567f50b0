// A long history of large events is read and handed out in pages of at most
// store::kMostHistoryPageBytes (4 MiB; at least one event): a history read says has_more, and a
// workflow task whose history does not fit says where the rest starts (next_page_event_id).
#include <catch2/catch.hpp>

#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"

using namespace reprise::test;

namespace {

constexpr std::size_t kSignalBytes = 1536 * 1024;  // three of them: more than one page holds
constexpr std::size_t kPageBytes = 4 << 20;

}  // namespace

TEST_CASE("a history over the page budget is read in pages, and a workflow task says where its rest starts",
          "[pg][history]") {
  ServerProcess server({.database_url = fresh_database("history_pages")});
  RepriseApi api(server.port());
  api.start_ok("big", "Big", "pages");
  for (char c : {'a', 'b', 'c'}) {
    auto r = api.signal("big", {{"signal_name", "chunk"}, {"input", std::string(kSignalBytes, c)}});
    REQUIRE(r.status == 200);
  }
  const auto last_event = api.describe("big").body["execution"]["history_length"].get<std::int64_t>();
  REQUIRE(last_event >= 5);  // started, task scheduled, three signals

  auto first = api.history("big", "page_size=1000");
  REQUIRE(first.status == 200);
  const auto& events = first.body["events"];
  CHECK(first.body["has_more"] == true);
  CHECK(first.body.dump().size() < kPageBytes + 64 * 1024);
  REQUIRE(!events.empty());
  const auto next = first.body["next_event_id"].get<std::int64_t>();
  CHECK(next == 1 + static_cast<std::int64_t>(events.size()));
  CHECK(next <= last_event);

  auto rest = api.history("big", "page_size=1000&from_event_id=" + std::to_string(next));
  REQUIRE(rest.status == 200);
  CHECK(rest.body["has_more"] == false);
  std::int64_t expected = 1;
  for (const auto* page : {&first, &rest})
    for (const auto& e : page->body["events"]) CHECK(e["event_id"] == expected++);
  CHECK(expected == last_event + 1);

  // The task's history stops where the budget does, and says where the rest starts.
  auto task = api.expect_workflow_task("pages");
  REQUIRE(task.contains("next_page_event_id"));
  const auto rest_from = task["next_page_event_id"].get<std::int64_t>();
  const auto& history = task["history"];
  REQUIRE(!history.empty());
  CHECK(history.back()["event_id"].get<std::int64_t>() == rest_from - 1);
  CHECK(rest_from <= task["started_event_id"].get<std::int64_t>());
  CHECK(task.dump().size() < kPageBytes + 64 * 1024);
}

TEST_CASE("a short history comes whole, with no next page", "[pg][history]") {
  ServerProcess server({.database_url = fresh_database("history_pages_short")});
  RepriseApi api(server.port());
  api.start_ok("small", "Small", "pages");
  auto task = api.expect_workflow_task("pages");
  CHECK_FALSE(task.contains("next_page_event_id"));
  CHECK(task["history"].back()["event_id"] == task["started_event_id"]);
  CHECK(api.history("small").body["has_more"] == false);
}
