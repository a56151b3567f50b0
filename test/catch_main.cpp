// The one Catch2 main shared by every test executable (compiled once, as an object library).
//
// Logs below warn stay quiet: a failure must be the last thing a CI excerpt shows, not lost
// among a thousand "applying migration" lines. SPDLOG_LEVEL=info (or debug) brings them back.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <spdlog/cfg/env.h>
#include <spdlog/spdlog.h>

#include "support/test_failures.hpp"

namespace {

/// Counts failed assertions for fixtures that show what they saw when their test failed.
struct FailedAssertionCounter : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  bool assertionEnded(const Catch::AssertionStats& stats) override {
    if (!stats.assertionResult.isOk()) reprise::test::count_failed_assertion();
    return true;
  }
};

}  // namespace

CATCH_REGISTER_LISTENER(FailedAssertionCounter)

int main(int argc, char* argv[]) {
  spdlog::set_level(spdlog::level::warn);
  spdlog::cfg::load_env_levels();
  return Catch::Session().run(argc, argv);
}
