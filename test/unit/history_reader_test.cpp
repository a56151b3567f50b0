// The streaming history reader (sdk/src/replay/history_reader.*): it must read every event
// exactly as HistoryEvent::from_json reads the same event from a JSON tree, fail on the same
// events with the same messages, and keep the document's other fields.
#include <catch2/catch.hpp>
#include <reprise/protocol/timestamp.hpp>

#include "replay/history_reader.hpp"

using namespace reprise;
using detail::HistoryEvent;
using detail::HistorySax;
using detail::ReadEvent;
using json = nlohmann::json;

namespace {

std::vector<ReadEvent> read(const std::string& text, json* header = nullptr, bool* document = nullptr) {
  std::vector<ReadEvent> out;
  HistorySax sax([&](ReadEvent&& e) { out.push_back(std::move(e)); });
  json::sax_parse(text, &sax);
  if (header) *header = sax.header;
  if (document) *document = sax.is_document();
  return out;
}

std::string message_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

/// What from_json makes of `event`: the event, or its error message.
std::string expected_error(const json& event) {
  try {
    HistoryEvent::from_json(event);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("the streaming reader reads events as from_json does, whatever the fields' order and content",
          "[unit][replay][reader]") {
  json events = json::array({
      {{"event_id", 1}, {"event_type", "WorkflowExecutionStarted"}, {"event_time", "2026-11-29T23:09:47.123Z"},
       {"attributes", {{"workflow_type", "w"}, {"input", {{"list", {1, -2, 3.5, true, nullptr, "é\"\\n"}},
                                                          {"nested", {{"a", json::array({json::object(), json::array()})}}}}},
                       {"big", 18446744073709551615ULL}}}},
      // attributes first, an unknown field, no fraction in the time
      {{"attributes", json::object()}, {"extra", {{"ignored", {1, 2}}}}, {"event_time", "2026-11-29T23:09:48Z"},
       {"event_type", "WorkflowTaskScheduled"}, {"event_id", 2}},
      // no attributes at all
      {{"event_id", 3}, {"event_type", "WorkflowTaskStarted"}, {"event_time", "2026-11-29T23:09:48.5Z"}},
      // attributes that are not an object are kept as they are
      {{"event_id", 4}, {"event_type", "WorkflowTaskCompleted"}, {"event_time", "2026-11-29T23:09:49.000Z"},
       {"attributes", nullptr}},
  });
  json document = {{"format", "reprise-history"}, {"events", events}, {"workflow_id", "w-1"},
                   {"meta", {{"deep", {1, {{"x", "y"}}}}}}};
  json header;
  bool is_document = false;
  auto read_events = read(document.dump(), &header, &is_document);
  CHECK(is_document);
  CHECK(header == json({{"format", "reprise-history"}, {"workflow_id", "w-1"}, {"meta", {{"deep", {1, {{"x", "y"}}}}}}}));
  REQUIRE(read_events.size() == events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    INFO(events[i].dump());
    auto expected = HistoryEvent::from_json(events[i]);
    const auto& got = read_events[i];
    CHECK_FALSE(got.error);
    CHECK(got.event.id == expected.id);
    CHECK(got.event.type == expected.type);
    CHECK(got.event.time == expected.time);
    CHECK(got.event.attributes == expected.attributes);
    CHECK(got.starts_task == (events[i]["event_type"] == "WorkflowTaskScheduled"));
  }
}

TEST_CASE("an event the reader cannot read fails with from_json's own message", "[unit][replay][reader]") {
  const json bad = json::array({
      {{"event_type", "TimerFired"}, {"event_time", "2026-11-29T23:09:47.123Z"}},                     // no id
      {{"event_id", "7"}, {"event_type", "TimerFired"}, {"event_time", "2026-11-29T23:09:47.123Z"}},  // id a string
      {{"event_id", 7}, {"event_type", "TimerExploded"}, {"event_time", "2026-11-29T23:09:47.123Z"}},
      {{"event_id", 7}, {"event_type", 12}, {"event_time", "2026-11-29T23:09:47.123Z"}},
      {{"event_id", 7}, {"event_type", "WorkflowTaskScheduled"}, {"event_time", "2026-02-30T00:00:00.000Z"}},
      {{"event_id", 7}, {"event_type", "TimerFired"}, {"event_time", "yesterday"}},
      {{"event_id", 7}, {"event_type", "TimerFired"}},
  });
  for (const auto& event : bad) {
    INFO(event.dump());
    auto events = read(json({{"events", {event}}}).dump());
    REQUIRE(events.size() == 1);
    REQUIRE(events[0].error);
    auto expected = expected_error(event);
    REQUIRE_FALSE(expected.empty());
    CHECK(message_of(events[0].error) == expected);
    CHECK(events[0].starts_task == (event["event_type"] == "WorkflowTaskScheduled"));
  }
  // An array where an event belongs is an unreadable event; a scalar there is passed over.
  auto events = read(R"({"events": [[1, 2], 3]})");
  REQUIRE(events.size() == 1);
  CHECK(events[0].error);
}

TEST_CASE("the reader tells a history document from other JSON, and reports bad JSON as json::parse does",
          "[unit][replay][reader]") {
  bool document = true;
  read(R"({"events": {"not": "an array"}})", nullptr, &document);
  CHECK_FALSE(document);
  read(R"([{"events": []}])", nullptr, &document);
  CHECK_FALSE(document);
  read(R"({"events": []})", nullptr, &document);
  CHECK(document);

  const std::string broken = R"({"events": [{"event_id": 1,}]})";
  std::string expected;
  try {
    auto parsed = json::parse(broken);
    CHECK(parsed.is_null());  // not reached
  } catch (const json::parse_error& e) {
    expected = e.what();
  }
  REQUIRE_FALSE(expected.empty());
  CHECK_THROWS_WITH(read(broken), expected);
}

TEST_CASE("a header-only pass skips the events", "[unit][replay][reader]") {
  int seen = 0;
  HistorySax sax([&](ReadEvent&&) { ++seen; }, /*skip_events=*/true);
  json::sax_parse(std::string(R"({"events": [{"event_id": 1}, {"event_id": 2}], "run_id": "r"})"), &sax);
  CHECK(seen == 0);
  CHECK(sax.is_document());
  CHECK(sax.header == json({{"run_id", "r"}}));
}

TEST_CASE("timestamps in the common shape read the same as through the general path", "[unit][timestamp]") {
  using protocol::parse_timestamp;
  using std::chrono::milliseconds;
  // 2026-11-29T23:09:47.123Z
  const protocol::Timestamp t{milliseconds{1'795'993'787'123}};
  CHECK(parse_timestamp("2026-11-29T23:09:47.123Z") == t);
  CHECK(parse_timestamp("2026-11-29T23:09:47Z") == t - milliseconds{123});
  CHECK(parse_timestamp("1970-01-01T00:00:00.000Z") == protocol::Timestamp{});
  CHECK(parse_timestamp("2024-02-29T12:00:00.001Z") == protocol::Timestamp{milliseconds{1'709'208'000'001}});
  CHECK(parse_timestamp("2026-11-29T23:09:60Z") == t - milliseconds{123} + std::chrono::seconds{13});  // leap second
  CHECK_THROWS_WITH(parse_timestamp("2026-11-29T24:00:00.000Z"), Catch::Contains("no such time of day"));
  CHECK_THROWS_WITH(parse_timestamp("2026-13-01T00:00:00.000Z"), Catch::Contains("no such date"));
  CHECK_THROWS_WITH(parse_timestamp("2026-11-29T23:09:47.12XZ"), Catch::Contains("must end in Z"));
  CHECK_THROWS_WITH(parse_timestamp("2026-11-29 23:09:47.123Z"), Catch::Contains("RFC 3339"));
}

TEST_CASE("a page's header is read up to its events, and no further", "[unit][history-reader]") {
  using detail::header_before_events;
  // What follows "events" is never read: here it is not even JSON.
  auto h = header_before_events(
      R"({"run_id":"r-1","created":false,"next_event_id":10001,"has_more":true,"closed":false,"events":[{"event_id": oops)");
  CHECK(h == json{{"run_id", "r-1"}, {"created", false}, {"next_event_id", 10001}, {"has_more", true}, {"closed", false}});
  // Fields after the events (as older servers wrote them) are not part of it, and neither are
  // nested values.
  h = header_before_events(R"({"run_id":"r-2","x":{"has_more":true},"events":[],"has_more":true})");
  CHECK(h == json{{"run_id", "r-2"}});
  CHECK(header_before_events(R"([1,2,3])") == json::object());
  CHECK(header_before_events("not json") == json::object());
  CHECK(header_before_events("") == json::object());
}
