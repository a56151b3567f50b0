#pragma once
// The workflows and activities the benchmark runs (reprise-bench-worker serves them; the
// driver registers them too, to record and replay histories in process for B5 warm).
#include <reprise/registry.hpp>

namespace reprise_bench {

/// Registers: "Empty" (returns its input), "Steps" (n sequential Echo activities), "FanOut"
/// (n Echo activities in parallel, then joins), "Sleep" (sleeps ms, returns its lateness as the
/// workflow saw it, in ms), "Park" (sleeps an hour), "Loop" (k sequential activities, in blocks
/// of 100 that may take turns with a partner run; returns when each block started and ended,
/// on the workflow clock), and the "Echo" activity.
void register_bench(reprise::Registry& registry);

}  // namespace reprise_bench
