#pragma once
/// One thread sleeps until another wakes it: a database thread waiting for its next job, a
/// transaction waiting for its commit group's verdict. A Linux futex word, so that
///  - the woken thread returns without taking any lock. With std::condition_variable it takes
///    the mutex back first, and a pool's mutex is usually held by then (a commit group's leader
///    wakes every member at once): it sleeps a second time and costs another wake-up (measured
///    under load: a third of the server's futex calls were those mutex hand-backs);
///  - a wake-up costs the waker one system call, and none when the sleeper has not gone to
///    sleep yet;
///  - there is no spinning or sched_yield before sleeping (std::binary_semaphore's wait does
///    both in libstdc++ 12, and on two cores spinning takes the CPU the waker needs).
/// Posts do not accumulate: a wait consumes every post made since the last one.
/// One waiter at a time; any number of posting threads.

#include <atomic>
#include <chrono>

namespace reprise::pg {

class Wakeup {
 public:
  /// Wakes the waiter, or lets its next wait return at once.
  void post() noexcept;
  /// Sleeps until posted, then consumes the post.
  void wait() noexcept;
  /// As wait(), for at most `timeout`; false when it passed without a post.
  bool wait_for(std::chrono::nanoseconds timeout) noexcept;

 private:
  enum : int { kIdle = 0, kPosted = 1, kSleeping = 2 };
  /// Consumes a post if there is one.
  bool take() noexcept;
  std::atomic<int> state_{kIdle};
};

}  // namespace reprise::pg
