#pragma once
/// One-line replay assertions for Catch2 tests. Include after <catch2/catch.hpp>.
///
///     reprise::Replayer replayer(registry);
///     REPRISE_REQUIRE_REPLAYS(replayer, "test/histories/order-completed.json");

#include <reprise/replayer.hpp>

/// Fails the test, with the replay report (event, both sides, call site, excerpt), unless the
/// history replays cleanly, fed whole and fed task by task.
#define REPRISE_REQUIRE_REPLAYS(replayer, path)                                                   \
  do {                                                                                           \
    for (auto reprise_mode_ : {::reprise::Replayer::Mode::kWhole, ::reprise::Replayer::Mode::kTaskByTask}) { \
      auto reprise_result_ = (replayer).replay_file((path), reprise_mode_);                      \
      INFO(reprise_result_.report());                                                            \
      REQUIRE(reprise_result_.ok());                                                             \
    }                                                                                            \
  } while (false)
