#pragma once
/// A thread that serves the io_context while the io thread is held up in one handler.
///
/// A lone request runs its transaction on the io thread that read it (pg::Database::
/// run_here_if_idle): handing it to a database thread would cost a thread wake-up. If that
/// transaction waits for a row lock (held by another instance, the timer loop, an operator's
/// session) or a slow statement, every connection the io thread serves would wait with it. The
/// job cannot move to another thread halfway, so the io thread's other work moves instead:
/// `cover()` has this thread run the io_context beside it until `release()`.

#include <condition_variable>
#include <mutex>
#include <thread>

namespace boost::asio {
class io_context;
}

namespace reprise::service {

class IoStandby {
 public:
  explicit IoStandby(boost::asio::io_context& io);
  /// stop()s.
  ~IoStandby();
  IoStandby(const IoStandby&) = delete;
  IoStandby& operator=(const IoStandby&) = delete;

  /// Starts serving the io_context beside the calling thread, which is held up.
  void cover();
  /// Stops once the handler it runs (if any) returns.
  void release();
  /// Waits for the handler it runs, if any, and ends the thread: before what handlers use goes.
  void stop();

 private:
  void run();
  /// Covering, not quitting, and the io_context not stopped.
  bool keep_serving();

  boost::asio::io_context& io_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool covering_ = false;
  bool quitting_ = false;
  std::thread thread_;
};

}  // namespace reprise::service
