#pragma once

#include <cstddef>

namespace reprise::test {

/// How many assertions have failed in this test process so far (counted by the listener in
/// catch_main.cpp; stays 0 in a process without it). A fixture compares it before and after
/// to tell whether the test that used it failed, and then shows what it saw (see
/// ServerProcess), so a failure in CI explains itself.
std::size_t failed_assertions();

/// Called by catch_main.cpp's listener for each failed assertion.
void count_failed_assertion();

}  // namespace reprise::test
