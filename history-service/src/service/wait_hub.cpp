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
  auto it = slots_.find(key);
  return it == slots_.end() ? absent_sequence_ : it->second.sequence;
}

void WaitHub::forget_if_idle(std::unordered_map<std::string, Slot>::iterator it) {
  if (!it->second.waiters.empty()) return;
  slots_.erase(it);
  // Keys without a slot read as absent_sequence_; moving it on makes anyone who read the old
  // value before this erase see a change, so no notification is lost with the slot.
  absent_sequence_ = ++counter_;
}

void WaitHub::wait(const std::string& key, std::uint64_t seen, Clock::time_point deadline,
                   Callback done) {
  std::lock_guard lock(mutex_);
  auto found = slots_.find(key);
  if ((found == slots_.end() ? absent_sequence_ : found->second.sequence) != seen) {
    boost::asio::post(io_, [done = std::move(done)] { done(true); });
    return;
  }
  auto& slot = found != slots_.end() ? found->second : slots_[key];
  if (found == slots_.end()) slot.sequence = absent_sequence_;
  auto waiter = std::make_shared<Waiter>(io_);
  waiter->done = std::move(done);
  waiter->timer.expires_at(deadline);
  auto position = slot.waiters.insert(slot.waiters.end(), waiter);
  waiter->timer.async_wait([this, key, waiter, position](const boost::system::error_code&) {
    bool woken;
    {
      std::lock_guard lock(mutex_);
      woken = waiter->woken;
      if (!woken) {  // the deadline passed: leave the queue
        auto it = slots_.find(key);
        it->second.waiters.erase(position);
        forget_if_idle(it);
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
  auto it = slots_.try_emplace(key).first;
  auto& slot = it->second;
  slot.sequence = ++counter_;
  while (!slot.waiters.empty() && count != 0) {
    wake(slot.waiters.front());
    slot.waiters.pop_front();
    if (count > 0) --count;
  }
  forget_if_idle(it);
}

void WaitHub::notify_everyone() {
  std::lock_guard lock(mutex_);
  for (auto& [key, slot] : slots_)
    for (auto& w : slot.waiters) wake(w);
  slots_.clear();
  absent_sequence_ = ++counter_;
}

std::size_t WaitHub::waiting() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (auto& [key, slot] : slots_) n += slot.waiters.size();
  return n;
}

}  // namespace reprise::service
