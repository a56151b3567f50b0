#include "pg/database.hpp"

namespace reprise::pg {
namespace {
thread_local std::unique_ptr<Connection> t_connection;
}

Database::Database(std::string conninfo, int threads, std::chrono::milliseconds longest_commit_queue_wait)
    : conninfo_(std::move(conninfo)), commits_(longest_commit_queue_wait) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

Database::~Database() { stop(); }

void Database::post(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

Connection& Database::connection() {
  if (!t_connection || t_connection->broken()) {
    t_connection.reset();
    t_connection = std::make_unique<Connection>(conninfo_);
    t_connection->commit_with(&commits_);
  }
  return *t_connection;
}

void Database::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void Database::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) break;  // stopping, and everything queued has run
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
  t_connection.reset();
}

}  // namespace reprise::pg
