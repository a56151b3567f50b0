#include "pg/database.hpp"

#include <stdexcept>
#include <utility>

namespace reprise::pg {
thread_local Database::Held* Database::current_ = nullptr;
thread_local Database* Database::running_here_ = nullptr;

std::chrono::nanoseconds long_wait_patience() noexcept {
  return Database::running_here_ ? std::chrono::nanoseconds(Database::running_here_->options_.lone_request_patience)
                                 : std::chrono::nanoseconds::max();
}

void report_long_wait() {
  if (Database::running_here_) Database::running_here_->stall_here();
}

void Database::stall_here() {
  if (!std::exchange(here_stalled_, true) && stall_began_) stall_began_();
}

Database::Database(std::string conninfo, Options options)
    : conninfo_(std::move(conninfo)), options_(std::move(options)), commits_(options_.commits) {
  for (int i = 0; i < options_.threads; ++i) {
    places_.push_back(std::make_unique<IdleThread>());
    threads_.emplace_back([this, place = places_.back().get()] { run(*place); });
  }
}

Database::~Database() { stop(); }

void Database::post(std::function<void()> job) {
  // An empty job would reach a thread as "nothing handed to you": it would go back to sleep
  // off the idle list and never wake again.
  if (!job) throw std::invalid_argument("pg::Database::post: the job is empty");
  IdleThread* woken = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (idle_.empty()) jobs_.push_back(std::move(job));
    else woken = hand_to_idle_thread(std::move(job));
  }
  if (woken) woken->wake.post();
}

Database::IdleThread* Database::hand_to_idle_thread(std::function<void()> job) {
  IdleThread* thread = idle_.back();
  idle_.pop_back();
  thread->job = std::move(job);
  return thread;
}

bool Database::run_here_if_idle(const std::function<void()>& job) {
  IdleThread* opener = nullptr;
  {
    std::lock_guard lock(mutex_);
    // A database thread calling is busy, so the pool is not idle; a job already running here
    // holds here_busy_.
    if (stopping_ || here_busy_ || threads_.empty() || !jobs_.empty() || idle_.size() != threads_.size())
      return false;
    here_busy_ = true;
    if (!here_.connection || here_.connection->broken() || here_.losses_seen != sessions_lost() ||
        std::chrono::steady_clock::now() - here_.last_used >= options_.check_after_idle) {
      // Opened, or checked after a long idle, by a database thread: a connect or a ping to a
      // server that went away may take seconds, and the caller serves every connection.
      opener = hand_to_idle_thread([this] {
        ReleaseHere release{*this};
        try {
          open_or_check(here_);
        } catch (...) {
          // Not open: the next lone request asks again; its own job reports why.
        }
      });
    }
  }
  if (opener) {
    opener->wake.post();
    return false;
  }
  ReleaseHere release{*this};
  RunningHere running_here{*this};
  run_with(here_, job);
  return true;
}

void Database::on_lone_request_stall(std::function<void()> began, std::function<void()> ended) {
  stall_began_ = std::move(began);
  stall_ended_ = std::move(ended);
}

void Database::run_with(Held& held, const std::function<void()>& job) {
  struct Restore {
    Held* previous;
    ~Restore() { current_ = previous; }
  } restore{std::exchange(current_, &held)};
  job();
}

void Database::open_or_check(Held& held) {
  const auto now = std::chrono::steady_clock::now();
  // Another connection found lost since this one was last used: PostgreSQL may have restarted,
  // ending every session at once. Checked first, so that the request does not find out.
  const bool others_lost = held.losses_seen != sessions_lost();
  if (held.connection && !held.connection->broken() && (others_lost || now - held.last_used >= options_.check_after_idle)) {
    try {
      held.connection->exec("reprise_ping", "SELECT 1");
    } catch (const PgError&) {
      held.connection.reset();  // closed meanwhile (the others are told: it is counted lost); connect again below
    }
  }
  held.losses_seen = sessions_lost();  // its own loss, if any, is no news to it
  held.last_used = now;
  if (!held.connection || held.connection->broken()) {
    held.connection.reset();
    held.connection = std::make_unique<Connection>(conninfo_, options_.session_settings);
    held.connection->commit_with(&commits_);
    if (&held == &here_) held.connection->set_result_spin(options_.lone_request_spin);
  }
}

Connection& Database::connection() {
  if (!current_) throw std::logic_error("pg::Database::connection() called outside a job of the pool");
  if (current_ != &here_) {
    open_or_check(*current_);
  } else if (!here_.connection || here_.connection->broken()) {
    // Lost during this job: reconnecting would block the io thread. A database thread
    // reopens it before the next lone request runs here (run_here_if_idle).
    throw PgError("the connection was lost during the request", "08006", /*connection_lost=*/true);
  } else {
    here_.last_used = std::chrono::steady_clock::now();
  }
  return *current_->connection;
}

std::size_t Database::idle_threads() {
  std::lock_guard lock(mutex_);
  return idle_.size();
}

bool Database::all_idle() {
  std::lock_guard lock(mutex_);
  return !here_busy_ && jobs_.empty() && idle_.size() == threads_.size();
}

void Database::stop() {
  std::vector<IdleThread*> idle;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    idle = std::exchange(idle_, {});  // taken off the list, so that nothing hands them a job
  }
  for (IdleThread* thread : idle) thread->wake.post();
  for (auto& t : threads_) t.join();
}

void Database::run(IdleThread& self) {
  Held mine;
  // Opened before the first job, not on demand: a commit group does not carry a transaction
  // that began before its leader's session opened (commit_group.cpp), so a connection opened
  // under load would commit alone what it found queued. Later openings are reconnections.
  try {
    open_or_check(mine);
  } catch (const PgError&) {
    // The first job connects again, and reports why it cannot.
  }
  for (;;) {
    std::function<void()> job;
    {
      std::lock_guard lock(mutex_);
      if (!jobs_.empty()) {
        job = std::move(jobs_.front());
        jobs_.pop_front();
      } else if (stopping_) {
        break;  // everything queued has run
      } else {
        idle_.push_back(&self);
      }
    }
    if (!job) {
      // Whoever took this thread off the idle list set its job (none: stop()) before posting,
      // and nobody touches it afterwards, so it is read without the mutex.
      self.wake.wait();
      job = std::exchange(self.job, nullptr);
      if (!job) continue;
    }
    run_with(mine, job);
  }
}

}  // namespace reprise::pg
