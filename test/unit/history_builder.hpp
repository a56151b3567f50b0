#pragma once
// Builds histories by hand for replay unit tests: events get contiguous ids and the
// attributes the service writes.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <reprise/protocol/event_type.hpp>

#include "engine/history_event.hpp"

namespace reprise::test {

class HistoryBuilder {
 public:
  using json = nlohmann::json;
  HistoryBuilder& add(protocol::EventType type, json attributes = json::object()) {
    detail::HistoryEvent e;
    e.id = static_cast<std::int64_t>(events_.size()) + 1;
    e.type = type;
    e.time = protocol::Timestamp(std::chrono::milliseconds(1'800'000'000'000 + e.id * 1000));
    e.attributes = std::move(attributes);
    events_.push_back(e);
    return *this;
  }
  HistoryBuilder& started(const std::string& type, json input) {
    return add(protocol::EventType::kWorkflowExecutionStarted,
               {{"workflow_type", type}, {"task_queue", "q"}, {"input", std::move(input)}, {"attempt", 1}});
  }
  /// Scheduled + Started (+ Completed when `completed`).
  HistoryBuilder& task(bool completed = true) {
    add(protocol::EventType::kWorkflowTaskScheduled);
    add(protocol::EventType::kWorkflowTaskStarted);
    if (completed) add(protocol::EventType::kWorkflowTaskCompleted);
    return *this;
  }
  HistoryBuilder& activity_scheduled(const std::string& type, const std::string& id) {
    return add(protocol::EventType::kActivityTaskScheduled, {{"activity_type", type}, {"activity_id", id}});
  }
  HistoryBuilder& activity_completed(std::int64_t scheduled, json result) {
    add(protocol::EventType::kActivityTaskStarted, {{"scheduled_event_id", scheduled}});
    return add(protocol::EventType::kActivityTaskCompleted, {{"scheduled_event_id", scheduled}, {"result", std::move(result)}});
  }
  HistoryBuilder& activity_failed(std::int64_t scheduled, json failure) {
    add(protocol::EventType::kActivityTaskStarted, {{"scheduled_event_id", scheduled}});
    return add(protocol::EventType::kActivityTaskFailed,
               {{"scheduled_event_id", scheduled}, {"failure", std::move(failure)}, {"retry_state", "MaximumAttemptsReached"}});
  }
  HistoryBuilder& timer_started(const std::string& id) {
    return add(protocol::EventType::kTimerStarted, {{"timer_id", id}});
  }
  HistoryBuilder& timer_fired(const std::string& id) {
    return add(protocol::EventType::kTimerFired, {{"timer_id", id}});
  }
  HistoryBuilder& signaled(const std::string& name, json input) {
    return add(protocol::EventType::kWorkflowExecutionSignaled, {{"signal_name", name}, {"input", std::move(input)}});
  }
  std::int64_t last_id() const { return static_cast<std::int64_t>(events_.size()); }
  const std::vector<detail::HistoryEvent>& events() const { return events_; }
  std::vector<detail::HistoryEvent> slice(std::size_t from, std::size_t to) const {
    return {events_.begin() + from, events_.begin() + to};
  }

 private:
  std::vector<detail::HistoryEvent> events_;
};

}  // namespace reprise::test
