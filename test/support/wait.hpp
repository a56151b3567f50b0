#pragma once

#include <chrono>
#include <functional>
#include <string_view>

namespace reprise::test {

/// Calls `predicate` every `interval` until it returns true; throws std::runtime_error naming
/// `description` if `timeout` passes first. Exceptions from the predicate propagate. This is
/// how tests wait for an outcome: never by sleeping a fixed time.
///
///     wait_until([&] { return fs::exists(ready_file); }, 20s, "the server writes its ready file");
void wait_until(const std::function<bool()>& predicate, std::chrono::milliseconds timeout,
                std::string_view description, std::chrono::milliseconds interval = std::chrono::milliseconds(10));

/// Whether some TCP connection to 127.0.0.1:`port` is established (read from /proc/net/tcp):
/// how a test knows a client's long poll has reached the server before acting.
bool has_established_connection(int port);

}  // namespace reprise::test
