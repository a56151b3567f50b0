#include "engine/workflow_task_handler.hpp"

#include <utility>

#include <fmt/format.h>

namespace reprise::detail {

using nlohmann::json;

std::vector<HistoryEvent> parse_events(const json& events) {
  std::vector<HistoryEvent> out;
  out.reserve(events.size());
  for (const auto& e : events) out.push_back(HistoryEvent::from_json(e));
  return out;
}

std::vector<HistoryEvent> parse_events(json&& events) {
  std::vector<HistoryEvent> out;
  out.reserve(events.size());
  for (auto& e : events) out.push_back(HistoryEvent::from_json(std::move(e)));
  return out;
}

namespace {

WorkflowInfo info_of(const json& task) {
  WorkflowInfo info;
  info.ns = task.value("namespace", "default");
  info.workflow_id = task.value("workflow_id", "");
  info.run_id = task.value("run_id", "");
  info.workflow_type = task.value("workflow_type", "");
  info.task_queue = task.value("task_queue", "");
  return info;
}

}  // namespace

TaskAnswer WorkflowTaskHandler::handle(const json& task, const FetchHistory& fetch_history) {
  if (task.contains("query")) return answer_query(task, fetch_history);
  auto info = info_of(task);
  if (task.contains("next_page_event_id")) {
    // A history too long for one answer: the whole of it, read as history pages (the run is
    // rebuilt from it, whatever is warm here).
    auto events = fetch_history(info.workflow_id, info.run_id);
    return handle(info, 1, events, fetch_history);
  }
  std::int64_t from = task.value("history_from_event_id", std::int64_t{1});
  auto events = parse_events(task.at("history"));
  return handle(info, from, events, fetch_history);
}

TaskAnswer WorkflowTaskHandler::handle(const WorkflowInfo& info, std::int64_t from, std::span<const HistoryEvent> events,
                                       const FetchHistory& fetch_history) {
  std::vector<HistoryEvent> fetched;
  run_ = cache_.take(info.run_id);
  if (from == 1 || !run_ || run_->next_event_id() != from) {
    // Not warm here (or not where this history starts): rebuild from the whole history.
    run_ = std::make_unique<WorkflowRun>(registry_, stacks_, info);
    if (from != 1) {
      fetched = fetch_history(info.workflow_id, info.run_id);
      events = fetched;
    }
  }
  try {
    auto commands = run_->apply(events);
    return {TaskAnswer::Kind::kComplete, {{"commands", commands}}, "", ""};
  } catch (const NonDeterminismError& e) {
    run_.reset();  // its state no longer matches anything
    if (fail_on_nondeterminism_)
      return {TaskAnswer::Kind::kComplete,
              {{"commands", json::array({{{"command_type", "FailWorkflowExecution"},
                                          {"attributes", {{"failure", {{"message", e.what()}, {"type", "NonDeterminismError"}, {"non_retryable", true}}}}}}})}},
              e.what(), e.code(), e.event_id()};
    return {TaskAnswer::Kind::kFail,
            {{"cause", "NonDeterministicError"}, {"failure", {{"message", e.what()}, {"type", "NonDeterminismError"}}}},
            e.what(), e.code(), e.event_id()};
  } catch (const std::exception& e) {
    run_.reset();
    return {TaskAnswer::Kind::kFail,
            {{"cause", "WorkflowWorkerError"}, {"failure", {{"message", e.what()}, {"type", "WorkflowTaskError"}}}},
            e.what(), ""};
  } catch (...) {
    run_.reset();
    const char* what = "the workflow code threw something that is not a std::exception";
    return {TaskAnswer::Kind::kFail,
            {{"cause", "WorkflowWorkerError"}, {"failure", {{"message", what}, {"type", "WorkflowTaskError"}}}},
            what, ""};
  }
}

void WorkflowTaskHandler::finished(std::unique_ptr<WorkflowRun> run, bool accepted) {
  if (!run || !accepted || run->closed() || run->finished()) return;  // destroyed here: its fibers unwind
  for (auto& evicted : cache_.put(std::move(run))) evicted.reset();
}

TaskAnswer WorkflowTaskHandler::answer_query(const json& task, const FetchHistory& fetch_history) {
  // A query gets a run of its own, rebuilt from the history: the warm run belongs to the
  // workflow task that may be running it right now.
  auto info = info_of(task);
  const auto& q = task.at("query");
  try {
    WorkflowRun run(registry_, stacks_, info);
    // A history that did not fit one answer (next_page_event_id), or only its end (a sticky
    // queue's task), is read whole as history pages.
    const bool whole = task.value("history_from_event_id", std::int64_t{1}) == 1 && !task.contains("next_page_event_id");
    auto events = whole ? parse_events(task.at("history")) : fetch_history(info.workflow_id, info.run_id);
    // A task in flight (another worker's, right now) is not the run's state yet: answering
    // from it would run its code live here (side effects, new versions) and show state that
    // may never be committed.
    if (!events.empty() && events.back().type == protocol::EventType::kWorkflowTaskStarted) events.pop_back();
    run.apply(events);
    return {TaskAnswer::Kind::kQuery, {{"result", run.query(q.value("query_type", ""), q.value("args", json()))}}, "", ""};
  } catch (const std::exception& e) {
    return {TaskAnswer::Kind::kQuery, {{"failure", {{"message", e.what()}}}}, e.what(), ""};
  } catch (...) {
    return {TaskAnswer::Kind::kQuery, {{"failure", {{"message", "the query failed with a non-std exception"}}}}, "", ""};
  }
}

}  // namespace reprise::detail
