#pragma once
/// How long the client asks the server to hold a wait for a run's close.

#include <chrono>

namespace reprise::detail {

/// The longest wait asked of the server at once; it caps waits at its --max-poll-wait anyway.
inline constexpr std::chrono::milliseconds kLongestWait = std::chrono::seconds(60);
/// Time for an answer to travel on top of the wait the server holds the call for.
inline constexpr std::chrono::milliseconds kAnswerSlack = std::chrono::seconds(15);

}  // namespace reprise::detail
