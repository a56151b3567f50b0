#include "service/io_standby.hpp"

#include <chrono>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace reprise::service {

IoStandby::IoStandby(boost::asio::io_context& io) : io_(io), thread_([this] { run(); }) {}

IoStandby::~IoStandby() { stop(); }

void IoStandby::stop() {
  {
    std::lock_guard lock(mutex_);
    quitting_ = true;
  }
  changed_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void IoStandby::cover() {
  {
    std::lock_guard lock(mutex_);
    covering_ = true;
  }
  spdlog::debug("msg=\"io thread held up by a lone request's database wait; a standby thread serves meanwhile\"");
  changed_.notify_one();
}

void IoStandby::release() {
  std::lock_guard lock(mutex_);
  covering_ = false;
}

void IoStandby::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return quitting_ || (covering_ && !io_.stopped()); });
    if (quitting_) return;
    lock.unlock();
    // Handler by handler, so that a release() is seen soon: within 10 ms with nothing to serve.
    while (keep_serving()) {
      try {
        io_.run_one_for(std::chrono::milliseconds(10));
      } catch (const std::exception& e) {
        spdlog::error("msg=\"a handler failed on the io standby thread\" error=\"{}\"", e.what());
      }
    }
    // The io_context is told it has one thread (concurrency hint 1), so asio wakes nobody when
    // this thread leaves with the reactor, or with handlers, queued: the io thread may sleep on
    // its condition variable meanwhile. A post from outside the io_context always wakes it.
    boost::asio::post(io_, [] {});
    lock.lock();
  }
}

bool IoStandby::keep_serving() {
  std::lock_guard lock(mutex_);
  return covering_ && !quitting_ && !io_.stopped();
}

}  // namespace reprise::service
