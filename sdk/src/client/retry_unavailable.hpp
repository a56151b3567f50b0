#pragma once
/// Retrying calls that carry a request id when the server is unavailable.

#include <chrono>
#include <thread>

#include <reprise/errors.hpp>

namespace reprise::detail {

/// Runs `call` and, while it throws ServiceError "Unavailable" (server unreachable, database
/// down, or a COMMIT whose outcome is unknown), runs it again after 100, 200, 400 ms; the last
/// error propagates. Only for calls that resend the same request_id each time: the server then
/// applies the change exactly once however many of the tries reached it.
template <class Call>
auto retry_unavailable(Call&& call) {
  constexpr int kTries = 4;
  auto backoff = std::chrono::milliseconds(100);
  for (int attempt = 1;; ++attempt) {
    try {
      return call();
    } catch (const ServiceError& e) {
      if (e.code() != "Unavailable" || attempt == kTries) throw;
    }
    std::this_thread::sleep_for(backoff);
    backoff *= 2;
  }
}

}  // namespace reprise::detail
