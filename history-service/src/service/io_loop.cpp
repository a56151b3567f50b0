#include "service/io_loop.hpp"

#include <boost/asio/io_context.hpp>

namespace reprise::service {

void run_io(boost::asio::io_context& io, std::chrono::microseconds idle_poll, const std::function<bool()>& may_poll) {
  if (idle_poll.count() <= 0) {
    io.run();
    return;
  }
  using Clock = std::chrono::steady_clock;
  while (!io.stopped()) {
    if (io.poll() > 0) continue;
    if (may_poll()) {
      const auto until = Clock::now() + idle_poll;
      bool ran = false;
      while (!ran && !io.stopped() && Clock::now() < until) ran = io.poll() > 0;
      if (ran) continue;
    }
    io.run_one();  // sleeps until the next handler; returns at once once io is stopped
  }
}

}  // namespace reprise::service
