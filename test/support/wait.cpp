#include "support/wait.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>

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

bool has_established_connection(int port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  char wanted[16];
  std::snprintf(wanted, sizeof wanted, ":%04X", port);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (state == "01" && local.size() > 5 && local.substr(local.size() - 5) == wanted) return true;
  }
  return false;
}

}  // namespace reprise::test
