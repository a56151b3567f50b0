#pragma once
/// A workflow of `steps` sequential activities: long histories for the replay tests.
#include <chrono>

#include <reprise/workflow.hpp>

namespace reprise::test {

inline int step(reprise::ActivityContext&, int i) { return i + 1; }

inline int many_steps(reprise::WorkflowContext& ctx, int steps) {
  int value = 0;
  for (int i = 0; i < steps; ++i)
    value = ctx.execute_activity(step, value, {.start_to_close_timeout = std::chrono::seconds(10)});
  return value;
}

}  // namespace reprise::test
