#include "service/io_standby.hpp"

#include <chrono>

#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

namespace reprise::service {

IoStandby::IoStandby(boost::asio::io_context& io) : io_(io), thread_([this] { run(); }) {}

IoStandby::~IoStandby() {
  {
    std::lock_guard lock(mutex_);
    quitting_ = true;
  }
  changed_.notify_one();
  thread_.join();
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
    // A bounded wait, so that a release() is seen soon even with nothing to serve. Leaving
    // with the reactor in hand, asio wakes another thread (the io thread) to take it.
    io_.run_one_for(std::chrono::milliseconds(10));
    lock.lock();
  }
}

}  // namespace reprise::service
