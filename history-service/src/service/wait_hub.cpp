#include "service/wait_hub.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace reprise::service {

struct WaitHub::Waiter {
  explicit Waiter(boost::asio::io_context& io) : timer(io) {}
  boost::asio::steady_timer timer;
  Callback done;
  bool woken = false;
};

WaitHub::WaitHub(boost::asio::io_context& io) : io_(io) {}
WaitHub::~WaitHub() = default;

std::uint64_t WaitHub::sequence(const std::string& key) {
  std::lock_guard lock(mutex_);
  return sequence_of(key);
}

void WaitHub::wait(const std::string& key, std::uint64_t seen, Clock::time_point deadline,
                   Callback done) {
  std::lock_guard lock(mutex_);
  if (sequence_of(key) != seen) {
    boost::asio::post(io_, [done = std::move(done)] { done(true); });
    return;
  }
  auto waiter = std::make_shared<Waiter>(io_);
  waiter->done = std::move(done);
  waiter->timer.expires_at(deadline);
  auto& list = waiters_[key];
  auto position = list.insert(list.end(), waiter);
  waiter->timer.async_wait([this, key, waiter, position](const boost::system::error_code&) {
    bool woken;
    {
      std::lock_guard lock(mutex_);
      woken = waiter->woken;
      if (!woken) {  // the deadline passed: leave the queue
        auto it = waiters_.find(key);
        it->second.erase(position);
        if (it->second.empty()) waiters_.erase(it);
      }
    }
    waiter->done(woken);
  });
}

void WaitHub::wake(const std::shared_ptr<Waiter>& waiter) {
  waiter->woken = true;
  waiter->timer.cancel();
}

void WaitHub::notify(const std::string& key, int count) {
  std::lock_guard lock(mutex_);
  ++sequence_of(key);
  auto it = waiters_.find(key);
  if (it == waiters_.end()) return;
  auto& list = it->second;
  while (!list.empty() && count != 0) {
    wake(list.front());
    list.pop_front();
    if (count > 0) --count;
  }
  if (list.empty()) waiters_.erase(it);
}

void WaitHub::notify_everyone() {
  std::lock_guard lock(mutex_);
  for (auto& sequence : sequences_) ++sequence;
  for (auto& [key, list] : waiters_)
    for (auto& w : list) wake(w);
  waiters_.clear();
}

std::size_t WaitHub::waiting() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (auto& [key, list] : waiters_) n += list.size();
  return n;
}

}  // namespace reprise::service
