#pragma once
/// Warm runs, least recently used first out. A run is taken out while a thread works on it
/// and put back after, so no two threads ever touch one run.

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/workflow_run.hpp"

namespace reprise::detail {

class RunCache {
 public:
  explicit RunCache(std::size_t capacity) : capacity_(capacity) {}

  /// Removes and returns the run, if cached.
  std::unique_ptr<WorkflowRun> take(const std::string& run_id) {
    std::lock_guard lock(mutex_);
    auto it = index_.find(run_id);
    if (it == index_.end()) return nullptr;
    auto run = std::move(*it->second);
    lru_.erase(it->second);
    index_.erase(it);
    return run;
  }
  /// Caches the run; returns the runs pushed out, for the caller to destroy (unwinding their
  /// fibers) outside the lock.
  std::vector<std::unique_ptr<WorkflowRun>> put(std::unique_ptr<WorkflowRun> run) {
    std::vector<std::unique_ptr<WorkflowRun>> evicted;
    if (capacity_ == 0) {
      evicted.push_back(std::move(run));
      return evicted;
    }
    std::lock_guard lock(mutex_);
    auto id = run->info().run_id;
    if (auto old = index_.find(id); old != index_.end()) {  // rebuilt meanwhile: the newer one stays
      evicted.push_back(std::move(*old->second));
      lru_.erase(old->second);
      index_.erase(old);
    }
    lru_.push_front(std::move(run));
    index_[id] = lru_.begin();
    while (lru_.size() > capacity_) {
      index_.erase(lru_.back()->info().run_id);
      evicted.push_back(std::move(lru_.back()));
      lru_.pop_back();
    }
    return evicted;
  }
  /// Empties the cache; returns the runs.
  std::vector<std::unique_ptr<WorkflowRun>> clear() {
    std::lock_guard lock(mutex_);
    std::vector<std::unique_ptr<WorkflowRun>> out;
    for (auto& r : lru_) out.push_back(std::move(r));
    lru_.clear();
    index_.clear();
    return out;
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return lru_.size();
  }
  std::size_t capacity() const { return capacity_; }

 private:
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::list<std::unique_ptr<WorkflowRun>> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<std::unique_ptr<WorkflowRun>>::iterator> index_;
};

}  // namespace reprise::detail
