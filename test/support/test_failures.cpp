#include "support/test_failures.hpp"

#include <atomic>

namespace reprise::test {
namespace {
std::atomic<std::size_t> failed{0};
}  // namespace

std::size_t failed_assertions() { return failed.load(); }

void count_failed_assertion() { failed.fetch_add(1); }

}  // namespace reprise::test
