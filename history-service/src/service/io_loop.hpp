#pragma once
/// How an io thread waits for work.

#include <chrono>
#include <functional>

namespace boost::asio {
class io_context;
}

namespace reprise::service {

/// Runs `io` until it stops, as io_context::run() does, except that when it runs out of ready
/// work and `may_poll()` allows it, it keeps polling for up to `idle_poll` before it sleeps in
/// epoll_wait: a request that arrives meanwhile is taken without a thread wake-up
/// (docs/architecture.md, "Idle polling"). Zero sleeps at once, as run() does.
void run_io(boost::asio::io_context& io, std::chrono::microseconds idle_poll, const std::function<bool()>& may_poll);

}  // namespace reprise::service
