#pragma once
/// The service's PostgreSQL access: a fixed set of threads, each owning one connection, that
/// run blocking store work. HTTP threads post here; the one exception is `run_here_if_idle`.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pg/commit_group.hpp"
#include "pg/connection.hpp"
#include "pg/long_wait.hpp"
#include "pg/wakeup.hpp"

namespace reprise::pg {

class Database {
 public:
  struct Options {
    /// Database threads, each with one connection.
    int threads = 4;
    /// See CommitGroup.
    CommitGroup::Options commits;
    /// A connection unused for this long is checked with a round trip before it is used. The
    /// pool hands work to the thread that idled last, so under light load most connections sit
    /// unused for long, and a server's idle_session_timeout or a proxy may close them
    /// meanwhile; a transaction sent whole would otherwise find out only at its COMMIT, as an
    /// in-doubt failure.
    std::chrono::milliseconds check_after_idle = std::chrono::seconds(30);
    /// How long the connection of `run_here_if_idle` polls for results before sleeping
    /// (Connection::set_result_spin; --idle-poll).
    std::chrono::microseconds lone_request_spin{};
    /// How long a job running here (run_here_if_idle) waits for its database's answer before
    /// the caller's other work is handed on (on_lone_request_stall).
    std::chrono::milliseconds lone_request_patience{20};
    /// See Connection (--synchronous-commit).
    std::string session_settings;
  };
  /// Each thread opens its connection as it starts, and takes jobs after that.
  Database(std::string conninfo, Options options);
  ~Database();

  /// Runs `job` on a database thread. Inside it, `connection()` is that thread's connection.
  /// Throws std::invalid_argument when `job` is empty.
  void post(std::function<void()> job);
  /// Runs `job` on the calling thread, with a connection kept for that, when every database
  /// thread is idle, nothing is queued and no other job runs this way; returns false, leaving
  /// `job` to the caller, otherwise. For a lone request on the io thread: handing it to a
  /// database thread would cost a thread wake-up (docs/architecture.md, "A lone short
  /// write"). A database thread, or a job already running here, is always refused. So is a
  /// caller while that connection is not open, or unused for `check_after_idle`: a database
  /// thread opens or checks it, so a slow connect or a ping to a vanished server never blocks
  /// the caller; a job here whose connection is lost fails rather than reconnect.
  bool run_here_if_idle(const std::function<void()>& job);
  /// `began` runs on the caller's thread when a job running here has waited longer than
  /// Options::lone_request_patience (a row lock held elsewhere, a slow statement; pg/long_wait.hpp),
  /// and `ended` once that job is over: the io thread hands its connections to a standby
  /// thread meanwhile (service::IoStandby), since the job cannot move. Set before the first
  /// job runs here.
  void on_lone_request_stall(std::function<void()> began, std::function<void()> ended);
  /// The connection of the job running on the calling thread, (re)connected on demand.
  /// Throws PgError; std::logic_error outside a job of this pool.
  Connection& connection();
  /// A new connection owned by the caller (listeners, the timer loop, migrations).
  std::unique_ptr<Connection> connect() const { return std::make_unique<Connection>(conninfo_, options_.session_settings); }
  void stop();
  /// Threads waiting for a job.
  std::size_t idle_threads();
  /// True when no job runs or waits, here or on a database thread.
  bool all_idle();
  /// Where the pool's transactions sent whole are committed together (see CommitGroup).
  const CommitGroup& commit_group() const { return commits_; }

 private:
  /// A database thread's place to wait for work, with the job handed to it (under mutex_).
  /// Owned by the pool, not the thread's stack, so that a post() racing the thread's exit at
  /// stop() never touches freed memory.
  struct IdleThread {
    Wakeup wake;
    std::function<void()> job;
  };
  /// A connection, and when a job last used it.
  struct Held {
    std::unique_ptr<Connection> connection;
    std::chrono::steady_clock::time_point last_used;
    std::uint64_t losses_seen = 0;  // sessions_lost() when this connection was last checked or opened
  };

  /// Clears here_busy_ when the job that set it is over.
  struct ReleaseHere {
    Database& db;
    ~ReleaseHere() {
      std::lock_guard lock(db.mutex_);
      db.here_busy_ = false;
    }
  };
  /// Marks the calling thread as running a job here (long_wait_patience), and ends the job's
  /// stall, if it stalled, when it is over.
  struct RunningHere {
    Database& db;
    Database* previous = std::exchange(running_here_, &db);
    ~RunningHere() {
      running_here_ = previous;
      if (std::exchange(db.here_stalled_, false) && db.stall_ended_) db.stall_ended_();
    }
  };

  friend std::chrono::nanoseconds long_wait_patience() noexcept;
  friend void report_long_wait();
  /// The job running here stalled: its caller is told, once per job.
  void stall_here();
  void run(IdleThread& self);
  /// Gives `job` to the thread that idled last; the caller holds mutex_ and saw one idle.
  /// Returns where to post its wake-up, once the caller has let go of mutex_.
  IdleThread* hand_to_idle_thread(std::function<void()> job);
  /// Runs `job` with `held` as the calling thread's connection.
  void run_with(Held& held, const std::function<void()>& job);
  /// Opens `held`'s connection, or, unused for check_after_idle_ or with another connection
  /// lost since its last use, checks it with a round trip and reopens it if it was closed
  /// meanwhile. Throws PgError.
  void open_or_check(Held& held);

  std::string conninfo_;
  const Options options_;
  CommitGroup commits_;  // shared by the pool's connections
  std::mutex mutex_;
  std::deque<std::function<void()>> jobs_;  // waiting for a free database thread
  // Most recently idle last. A job goes to the thread that idled last: with little load the
  // same few threads, and their PostgreSQL backends, do all the work with warm caches, instead
  // of every request waking the thread (and backend) that has slept longest.
  std::vector<IdleThread*> idle_;
  bool stopping_ = false;
  static thread_local Held* current_;  // the connection of the job running on this thread
  static thread_local Database* running_here_;  // the pool whose job runs here on this thread
  Held here_;               // run_here_if_idle's connection
  bool here_busy_ = false;  // a job runs with here_, or a database thread is opening it
  bool here_stalled_ = false;  // the job running with here_ waited too long (touched by that job's thread only)
  std::function<void()> stall_began_, stall_ended_;
  std::vector<std::unique_ptr<IdleThread>> places_;  // one per thread
  std::vector<std::thread> threads_;
};

/// Runs `body(conn)` in a transaction, retrying it on write conflicts, serialization failures
/// and deadlocks. A COMMIT whose outcome is unknown is not retried: it surfaces as in_doubt.
template <class Body>
auto in_transaction(Connection& conn, Body&& body) -> decltype(body(conn)) {
  for (int attempt = 1;; ++attempt) {
    conn.begin();
    try {
      if constexpr (std::is_void_v<decltype(body(conn))>) {
        body(conn);
        conn.commit();
        return;
      } else {
        auto result = body(conn);
        conn.commit();
        return result;
      }
    } catch (const WriteConflict&) {
      conn.rollback();
      if (attempt >= 20) throw PgError("the run kept changing under this request; try again", "40001", false);
    } catch (const PgError& e) {
      if (e.in_doubt()) throw;
      conn.rollback();
      if (!e.retryable() || attempt >= 20) throw;
    } catch (...) {
      conn.rollback();
      throw;
    }
  }
}

}  // namespace reprise::pg
