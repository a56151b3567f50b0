#include "pg/database.hpp"

#include <utility>

namespace reprise::pg {
namespace {
thread_local std::unique_ptr<Connection> t_connection;
thread_local std::chrono::steady_clock::time_point t_last_used;
}

Database::Database(std::string conninfo, int threads, CommitGroup::Options commits,
                   std::chrono::milliseconds check_after_idle)
    : conninfo_(std::move(conninfo)), commits_(commits), check_after_idle_(check_after_idle) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

Database::~Database() { stop(); }

void Database::post(std::function<void()> job) {
  std::lock_guard lock(mutex_);
  if (idle_.empty()) {
    jobs_.push_back(std::move(job));
    return;
  }
  IdleThread* thread = idle_.back();
  idle_.pop_back();
  thread->job = std::move(job);
  thread->wake.notify_one();
}

Connection& Database::connection() {
  const auto now = std::chrono::steady_clock::now();
  if (t_connection && !t_connection->broken() && now - t_last_used >= check_after_idle_) {
    try {
      t_connection->exec("reprise_ping", "SELECT 1");
    } catch (const PgError&) {
      t_connection.reset();  // closed meanwhile: connect again below
    }
  }
  t_last_used = now;
  if (!t_connection || t_connection->broken()) {
    t_connection.reset();
    t_connection = std::make_unique<Connection>(conninfo_);
    t_connection->commit_with(&commits_);
  }
  return *t_connection;
}

std::size_t Database::idle_threads() {
  std::lock_guard lock(mutex_);
  return idle_.size();
}

void Database::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  {
    std::lock_guard lock(mutex_);
    for (IdleThread* thread : idle_) thread->wake.notify_one();
  }
  for (auto& t : threads_) t.join();
}

void Database::run() {
  IdleThread self;
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      if (!jobs_.empty()) {
        job = std::move(jobs_.front());
        jobs_.pop_front();
      } else if (stopping_) {
        break;  // everything queued has run
      } else {
        idle_.push_back(&self);
        self.wake.wait(lock, [&] { return self.job || stopping_; });
        if (!self.job) {  // stopping: post() no longer hands out jobs to this thread
          std::erase(idle_, &self);
          continue;
        }
        job = std::exchange(self.job, nullptr);
      }
    }
    job();
  }
  t_connection.reset();
}

}  // namespace reprise::pg
