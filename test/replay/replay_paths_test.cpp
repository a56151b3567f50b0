// The replayer's ways in (a JSON document, a ParsedHistory read from text, a file whole or
// streamed) give the same result for every golden and bad history; and replaying costs the
// same per event whatever the history's length (counted in allocations, not time).
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <sstream>

#include <catch2/catch.hpp>
#include <reprise/replayer.hpp>
#include <reprise/testing.hpp>

#include "e2e/e2e_workflows.hpp"
#include "order.hpp"
#include "many_steps_workflow.hpp"

using reprise::ParsedHistory;
using reprise::Replayer;
namespace fs = std::filesystem;
using json = nlohmann::json;

// Counts this test binary's allocations while `g_counting` is set. (GCC takes the replaced
// operator delete's free() for a mismatch with the inlined new expressions that call it.)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
std::atomic<bool> g_counting{false};
std::atomic<std::size_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

const fs::path kHistories = REPRISE_HISTORIES_DIR;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void check_same(const reprise::ReplayResult& a, const reprise::ReplayResult& b) {
  CHECK(a.ok() == b.ok());
  CHECK(a.code == b.code);
  CHECK(a.message == b.message);
  CHECK(a.event_id == b.event_id);
  CHECK(a.excerpt == b.excerpt);
  CHECK(a.workflow_id == b.workflow_id);
  CHECK(a.run_id == b.run_id);
  CHECK(a.workflow_type == b.workflow_type);
}


}  // namespace

using reprise::test::many_steps;
using reprise::test::step;

TEST_CASE("a history replays the same from JSON, from text read once, and from a file", "[replay][paths]") {
  reprise::Registry reg;
  e2e::register_all(reg);
  order_saga::register_order_saga(reg);
  Replayer replayer(reg);
  int files = 0, bad = 0;
  for (const auto& entry : fs::directory_iterator(kHistories)) {
    if (entry.path().extension() != ".json") continue;
    ++files;
    INFO(entry.path().filename().string());
    const auto text = read_text(entry.path());
    const auto document = json::parse(text);
    const auto parsed = ParsedHistory::parse(text);
    CHECK(parsed.size() == document["events"].size());
    for (auto mode : {Replayer::Mode::kWhole, Replayer::Mode::kTaskByTask}) {
      auto from_json = replayer.replay(document, mode);
      INFO(from_json.report());
      if (!from_json.ok()) ++bad;
      check_same(from_json, replayer.replay(parsed, mode));
      check_same(from_json, replayer.replay(ParsedHistory::from_json(document), mode));
      // A streamed file's excerpt shows the diverging task's events only.
      auto from_file = replayer.replay_file(entry.path(), mode);
      CHECK(from_file.code == from_json.code);
      CHECK(from_file.message == from_json.message);
      CHECK(from_file.event_id == from_json.event_id);
      if (mode == Replayer::Mode::kWhole) CHECK(from_file.excerpt == from_json.excerpt);
    }
    // Read once, replayed again: the same answer.
    check_same(replayer.replay(parsed), replayer.replay(parsed));
  }
  CHECK(files >= 17);
  CHECK(bad >= 10);  // the bad-* histories, both ways
}

TEST_CASE("an unreadable event fails the replay where the worker's path would, whatever the way in",
          "[replay][paths]") {
  reprise::Registry reg;
  e2e::register_all(reg);
  order_saga::register_order_saga(reg);
  Replayer replayer(reg);
  auto document = json::parse(read_text(kHistories / "timer.json"));
  auto& events = document["events"];
  REQUIRE(events.size() > 8);
  events[events.size() - 2]["event_type"] = "NoSuchEvent";
  auto message = [&](auto&& call) -> std::string {
    try {
      auto r = call();
      return "no exception: " + r.report();
    } catch (const std::exception& e) {
      return e.what();
    }
  };
  for (auto mode : {Replayer::Mode::kWhole, Replayer::Mode::kTaskByTask}) {
    auto expected = message([&] { return replayer.replay(document, mode); });
    CHECK_THAT(expected, Catch::Contains("unknown type NoSuchEvent"));
    CHECK(message([&] { return replayer.replay(ParsedHistory::parse(document.dump()), mode); }) == expected);
  }
  CHECK(replayer.replay(json::object()).message.starts_with("not a history document"));
  CHECK(replayer.replay(ParsedHistory::parse("[1, 2]")).message.starts_with("not a history document"));
  CHECK_THROWS(ParsedHistory::parse("{\"events\": ["));
}

TEST_CASE("replay costs the same per event at 2,000 and at 16,000 events (no quadratic work)", "[replay][scaling]") {
  reprise::testing::TestEnvironment env;
  env.registry().add_workflow("many_steps", many_steps);
  env.registry().add_activity("step", step);
  auto history_of = [&](int steps) {
    auto run = env.start("many_steps", steps);
    REQUIRE(run.result<int>() == steps);
    return run.history();
  };
  const auto small = history_of(333), large = history_of(2666);  // ~2,000 and ~16,000 events
  Replayer replayer(env.registry());
  // Allocations per event of each way to replay, which grow with the length if anything
  // copies or searches the history per event or per task.
  auto per_event = [&](const json& history, const std::function<void(const json&, const ParsedHistory&)>& replay) {
    auto parsed = ParsedHistory::from_json(history);
    g_allocations = 0;
    g_counting = true;
    replay(history, parsed);
    g_counting = false;
    return static_cast<double>(g_allocations.load()) / static_cast<double>(history["events"].size());
  };
  const std::vector<std::pair<std::string, std::function<void(const json&, const ParsedHistory&)>>> ways = {
      {"parsed, whole", [&](const json&, const ParsedHistory& p) { CHECK(replayer.replay(p).ok()); }},
      {"parsed, task by task",
       [&](const json&, const ParsedHistory& p) { CHECK(replayer.replay(p, Replayer::Mode::kTaskByTask).ok()); }},
      {"JSON, whole", [&](const json& h, const ParsedHistory&) { CHECK(replayer.replay(h).ok()); }},
      {"JSON, task by task",
       [&](const json& h, const ParsedHistory&) { CHECK(replayer.replay(h, Replayer::Mode::kTaskByTask).ok()); }},
      {"text", [&](const json& h, const ParsedHistory&) { CHECK(replayer.replay(ParsedHistory::parse(h.dump())).ok()); }},
  };
  for (const auto& [name, replay] : ways) {
    const double a = per_event(small, replay), b = per_event(large, replay);
    INFO(name << ": " << a << " allocations per event at " << small["events"].size() << " events, " << b << " at "
              << large["events"].size());
    CHECK(b <= a * 1.05 + 0.1);
    CHECK(b < 40);  // a replay of parsed events allocates ~7 per event (the workflow's own calls)
  }
}
