#pragma once

#include <chrono>

namespace reprise::test {

/// CPU time the calling thread has used (CLOCK_THREAD_CPUTIME_ID): how a test tells a thread
/// that polls (busy while it waits) from one that sleeps.
std::chrono::nanoseconds thread_cpu_time();

}  // namespace reprise::test
