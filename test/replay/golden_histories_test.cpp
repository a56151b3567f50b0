// Every golden history replays against the current code, fed whole (a worker without the run
// cached) and task by task (a worker with it cached); every bad history fails with its
// documented code and message. Re-record with: build/test/reprise-e2e-tests "[.record]".
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>
#include <reprise/catch2.hpp>
#include <reprise/replayer.hpp>
#include <reprise/testing.hpp>

#include "e2e/e2e_workflows.hpp"
#include "order.hpp"
#include "many_steps_workflow.hpp"

using reprise::Replayer;
namespace fs = std::filesystem;

namespace {

const fs::path kHistories = REPRISE_HISTORIES_DIR;

reprise::Registry registry() {
  reprise::Registry r;
  e2e::register_all(r);
  order_saga::register_order_saga(r);
  return r;
}

std::vector<fs::path> histories(bool bad) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(kHistories))
    if (entry.path().extension() == ".json" && entry.path().filename().string().starts_with("bad-") == bad)
      out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("every golden history replays, whole and task by task", "[replay][golden]") {
  auto reg = registry();
  Replayer replayer(reg);
  auto files = histories(false);
  REQUIRE(files.size() >= 12);
  for (const auto& file : files) {
    INFO(file.filename().string());
    REPRISE_REQUIRE_REPLAYS(replayer, file);
  }
}

TEST_CASE("every bad history fails with its code, the event, and the call site", "[replay][golden][bad]") {
  struct Expected {
    const char* code;
    const char* fragment;
  };
  const std::map<std::string, Expected> expected = {
      {"bad-renamed-activity.json", {"RPR1101", "activity_type=renamed_activity"}},
      {"bad-removed-timer.json", {"RPR1102", "StartTimer(timer_id=1)"}},
      {"bad-changed-child-type.json", {"RPR1101", "workflow_type=other_child"}},
      {"bad-missing-version-marker.json", {"RPR1101", "ActivityTaskScheduled(activity_type=square"}},
      {"bad-reordered-commands.json", {"RPR1101", "does not match what the code did"}},
  };
  auto reg = registry();
  Replayer replayer(reg);
  auto files = histories(true);
  REQUIRE(files.size() == expected.size());
  for (const auto& file : files)
    for (auto mode : {Replayer::Mode::kWhole, Replayer::Mode::kTaskByTask}) {
      auto result = replayer.replay_file(file, mode);
      auto name = file.filename().string();
      INFO(name << "\n" << result.report());
      REQUIRE(expected.contains(name));
      CHECK_FALSE(result.ok());
      CHECK(result.code == expected.at(name).code);
      CHECK_THAT(result.message, Catch::Contains(expected.at(name).fragment));
      CHECK_THAT(result.message, Catch::Contains("e2e_workflows.cpp:"));  // the diverging call
      CHECK(result.event_id > 0);
      CHECK_THAT(result.excerpt, Catch::Contains("> "));
    }
}

using reprise::test::many_steps;
using reprise::test::step;

TEST_CASE("a history of 50,000 events streams through the replayer task by task", "[replay][large]") {
  reprise::testing::TestEnvironment env;
  env.registry().add_workflow("many_steps", many_steps);
  env.registry().add_activity("step", step);
  auto run = env.start("many_steps", 8400);
  CHECK(run.result<int>() == 8400);
  auto history = run.history();
  REQUIRE(history["events"].size() >= 50'000);

  auto file = fs::temp_directory_path() / "reprise-large-history.json";
  std::ofstream(file) << history.dump();
  Replayer replayer(env.registry());
  auto result = replayer.replay_file(file, Replayer::Mode::kTaskByTask);
  INFO(result.report());
  CHECK(result.ok());
  fs::remove(file);
}
