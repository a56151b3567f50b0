#include "support/wait.hpp"

#include <stdexcept>
#include <string>
#include <thread>

namespace reprise::test {

void wait_until(const std::function<bool()>& predicate, std::chrono::milliseconds timeout,
                std::string_view description, std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      throw std::runtime_error("timed out after " + std::to_string(timeout.count()) + " ms waiting until " +
                               std::string(description));
    }
    std::this_thread::sleep_for(interval);
  }
}

}  // namespace reprise::test
