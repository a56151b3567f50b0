#include "pg/wakeup.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace reprise::pg {

namespace {

static_assert(sizeof(std::atomic<int>) == sizeof(int) && std::atomic<int>::is_always_lock_free,
              "the futex word must be a plain int");

int* word(std::atomic<int>& a) { return reinterpret_cast<int*>(&a); }

/// A futex call that fails other than as futex_wait expects (EAGAIN, EINTR, ETIMEDOUT) means a
/// broken futex word (a bad address or operation): waiting on would hang or spin, and there is
/// nobody to return an error to, so stop loudly.
[[noreturn]] void futex_failed(const char* operation) {
  std::fprintf(stderr, "reprise: pg::Wakeup: %s failed: %s\n", operation, std::strerror(errno));
  std::abort();
}

/// Sleeps while *addr == expected, until woken or `until` (CLOCK_MONOTONIC; null: no limit).
void futex_wait(std::atomic<int>& a, int expected, const timespec* until) {
  // FUTEX_WAIT_BITSET takes an absolute deadline, so a spurious return does not restart the
  // timeout. EAGAIN (the word changed first), EINTR and ETIMEDOUT all mean: look again.
  if (syscall(SYS_futex, word(a), FUTEX_WAIT_BITSET_PRIVATE, expected, until, nullptr, FUTEX_BITSET_MATCH_ANY) == -1 &&
      errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT)
    futex_failed("FUTEX_WAIT_BITSET");
}

void futex_wake_one(std::atomic<int>& a) {
  if (syscall(SYS_futex, word(a), FUTEX_WAKE_PRIVATE, 1) == -1) futex_failed("FUTEX_WAKE");
}

timespec monotonic_after(std::chrono::nanoseconds timeout) {
  // A century is "no limit" in practice, and keeps the sum below from overflowing.
  constexpr std::chrono::nanoseconds kLongest = std::chrono::hours(24 * 365 * 100);
  timeout = std::clamp(timeout, std::chrono::nanoseconds::zero(), kLongest);
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const auto total = std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec) + timeout;
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(total);
  return timespec{static_cast<time_t>(secs.count()), static_cast<long>((total - secs).count())};
}

bool passed(const timespec& deadline) {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec > deadline.tv_sec || (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec);
}

}  // namespace

void Wakeup::post() noexcept {
  if (state_.exchange(kPosted, std::memory_order_release) == kSleeping) futex_wake_one(state_);
}

bool Wakeup::take() noexcept {
  int posted = kPosted;
  return state_.compare_exchange_strong(posted, kIdle, std::memory_order_acquire);
}

void Wakeup::wait() noexcept {
  while (!take()) {
    int idle = kIdle;
    // Announce the sleep, so that post() knows to wake us; the word is kSleeping already after
    // a spurious return.
    if (state_.compare_exchange_strong(idle, kSleeping, std::memory_order_relaxed) || idle == kSleeping)
      futex_wait(state_, kSleeping, nullptr);
  }
}

bool Wakeup::wait_for(std::chrono::nanoseconds timeout) noexcept {
  const timespec deadline = monotonic_after(timeout);
  while (!take()) {
    if (passed(deadline)) {
      // Withdraw the announced sleep; a post that came first wins.
      int sleeping = kSleeping;
      if (state_.compare_exchange_strong(sleeping, kIdle, std::memory_order_relaxed) || sleeping == kIdle)
        return false;
      continue;  // posted meanwhile: take it
    }
    int idle = kIdle;
    if (state_.compare_exchange_strong(idle, kSleeping, std::memory_order_relaxed) || idle == kSleeping)
      futex_wait(state_, kSleeping, &deadline);
  }
  return true;
}

}  // namespace reprise::pg
