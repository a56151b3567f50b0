#pragma once
/// A lone request's long waits. A job the io thread runs itself (Database::run_here_if_idle)
/// holds up every connection that thread serves while it waits; each of its waits (for a
/// pipeline's results, a statement's outside one, a commit group, a held start) reports itself
/// once it has lasted the patience, and the Database has the io thread's other work served
/// meanwhile (Database::on_lone_request_stall). On any other thread there is nothing to report.

#include <chrono>
#include <utility>

namespace reprise::pg {

/// How long the calling thread's job may wait before report_long_wait(): the Database's
/// lone_request_patience on a job running here, nanoseconds::max() on any other thread.
std::chrono::nanoseconds long_wait_patience() noexcept;
/// Tells the Database whose job runs here on the calling thread that the job has waited its
/// patience. Nothing on any other thread.
void report_long_wait();

/// One wait, reported once when it has lasted the patience. A waiter waits until report_at()
/// while pending(), calls report() if that passed, and then waits on as it would have:
///
///     LongWait long_wait;
///     if (long_wait.pending() && !ready_by(long_wait.report_at())) long_wait.report();
///     wait_for_ever();
class LongWait {
 public:
  using Clock = std::chrono::steady_clock;
  /// Begun now; the clock is read only where there is something to report.
  LongWait() {
    if (const auto patience = long_wait_patience(); patience != std::chrono::nanoseconds::max())
      report_at_ = Clock::now() + patience;
  }
  explicit LongWait(Clock::time_point began) {
    if (const auto patience = long_wait_patience(); patience != std::chrono::nanoseconds::max())
      report_at_ = began + patience;
  }
  /// A report is to come: on the io thread, and not made yet.
  bool pending() const { return report_at_ != kNever; }
  /// When the wait becomes long; only while pending().
  Clock::time_point report_at() const { return report_at_; }
  /// The wait lasted past report_at(): reported, once.
  void report() {
    if (std::exchange(report_at_, kNever) != kNever) report_long_wait();
  }

 private:
  static constexpr Clock::time_point kNever = Clock::time_point::max();
  Clock::time_point report_at_ = kNever;
};

}  // namespace reprise::pg
