// Held starts: a start that hands its run's first workflow task to a poll waiting here waits to
// commit until that task's completion arrives, and the two commit as one transaction. A lone
// workflow so costs one commit fewer, and the worker's first task runs while nothing waits on
// the database. Nothing is acknowledged before its commit: the start's caller is answered only
// once the start has committed, with the completion or, after `first_task_hold`, alone.
// See docs/architecture.md, "Held starts".
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "api/api_internal.hpp"
#include "pg/database.hpp"
#include "pg/long_wait.hpp"
#include "service/change_feed.hpp"
#include "store/run_state.hpp"
#include "store/uuid.hpp"

namespace reprise::api {

void Api::hold_start(store::StartRequest start, std::shared_ptr<PollState> poll, StartAnswer answer,
                     http::Respond respond) {
  if (start.run_id.empty()) start.run_id = store::new_uuid();
  start.start_time = store::now();
  std::shared_ptr<HeldStart> held;
  std::shared_ptr<boost::asio::steady_timer> timer;
  std::string task;
  try {
    task = store::held_first_task(db_.connection(), start, poll->identity, signer_);
    held = std::make_shared<HeldStart>(HeldStart{std::move(start), poll->identity, std::move(answer), std::move(respond)});
    timer = std::make_shared<boost::asio::steady_timer>(io_, options_.first_task_hold);
  } catch (...) {
    settle_reserved_poll(poll, {});
    throw;  // nothing is held: the caller hears the error
  }
  bool draining;
  {
    std::lock_guard lock(held_mutex_);
    held_starts_[held->key()] = held;
    draining = draining_;  // set under this lock by begin_drain, which then ends every hold
  }
  // From here on the held start answers its caller: nothing may throw past this point.
  try {
    settle_reserved_poll(poll, std::move(task));  // its completion may arrive from now on
    if (draining) return end_hold(held);
    timer->async_wait([this, held, timer](const boost::system::error_code&) { end_hold(held); });
  } catch (...) {
    end_hold(held);
  }
}

void Api::end_hold(const std::shared_ptr<HeldStart>& held) {
  {
    std::lock_guard lock(held_mutex_);
    if (held->phase != HeldStart::Phase::kHeld) return;  // taken, or ended already
    held->phase = HeldStart::Phase::kHoldEnded;
  }
  // Taken by the job, or by the task's completion if that comes first: whichever takes it
  // commits it, so no thread ever waits for a job still queued behind it.
  db_.post([this, held] {
    {
      std::lock_guard lock(held_mutex_);
      if (held->phase == HeldStart::Phase::kTaken) return;
      held->phase = HeldStart::Phase::kTaken;
    }
    commit_held_start_alone(held);
  });
}

void Api::begin_drain() {
  std::vector<std::shared_ptr<HeldStart>> held;
  {
    std::lock_guard lock(held_mutex_);
    draining_ = true;  // a start held from now on ends its hold at once (hold_start)
    for (const auto& [key, h] : held_starts_) held.push_back(h);
  }
  for (const auto& h : held) end_hold(h);  // shutting down: commit them now
}

std::shared_ptr<Api::HeldStart> Api::take_held_start(const store::RunKey& run) {
  std::unique_lock lock(held_mutex_);
  if (held_starts_.empty()) return nullptr;
  const auto key = store::to_string(run);
  // A running thread commits it, and the task is answered after that; a lone request on the io
  // thread waiting that out for long has the io thread's other work served meanwhile.
  pg::LongWait long_wait;
  for (;;) {
    auto it = held_starts_.find(key);
    if (it == held_starts_.end()) return nullptr;
    auto held = it->second;
    if (held->phase != HeldStart::Phase::kTaken) {
      held->phase = HeldStart::Phase::kTaken;
      return held;
    }
    if (!long_wait.pending()) held_settled_.wait(lock);
    else if (held_settled_.wait_until(lock, long_wait.report_at()) == std::cv_status::timeout) long_wait.report();
  }
}

void Api::finish_held_start(const std::shared_ptr<HeldStart>& held,
                            std::variant<store::StartResult, std::exception_ptr> outcome) {
  {
    std::lock_guard lock(held_mutex_);
    auto it = held_starts_.find(held->key());
    if (it != held_starts_.end() && it->second == held) held_starts_.erase(it);
  }
  held_settled_.notify_all();
  http::Response response;
  try {
    if (auto* error = std::get_if<std::exception_ptr>(&outcome)) std::rethrow_exception(*error);
    response = held->answer(std::get<store::StartResult>(outcome));
  } catch (...) {
    response = error_response(std::current_exception());
  }
  if (!response.body.empty()) held->respond(std::move(response));  // else the wait it set up answers
}

void Api::commit_held_start_alone(const std::shared_ptr<HeldStart>& held) {
  std::variant<store::StartResult, std::exception_ptr> outcome;
  try {
    store::Effects effects;
    // Recorded started by the worker it went to, at the same instant: the task it holds.
    store::WaitingPoller poller{held->identity, &signer_, {}};
    outcome = store::start_workflow(db_.connection(), held->start, effects, &poller);
    feed_.publish(effects);
  } catch (...) {
    outcome = std::current_exception();
  }
  finish_held_start(held, std::move(outcome));
}

http::Response Api::complete_held_start(const std::shared_ptr<HeldStart>& held, const store::TaskToken& token,
                                        const store::WorkflowTaskCompletion& completion) {
  // Taken while still held (its hold may have ended with the job that would commit it alone
  // still queued): the two go together if they can.
  store::Effects effects;
  std::optional<store::CompletionReply> reply;
  try {
    reply = store::start_with_completed_first_task(db_.connection(), held->start, held->identity, token, completion,
                                                   options_.limits, signer_, effects);
  } catch (const pg::PgError& e) {
    if (e.in_doubt()) {  // both may or may not have committed: each caller hears so
      finish_held_start(held, std::current_exception());
      throw;
    }
  } catch (const store::HeldStartRefused&) {
    // The task closes the run, or the start would not create it: the start alone says which.
  } catch (const std::exception& e) {
    spdlog::debug("msg=\"held start commits alone\" run_id={} reason=\"{}\"", held->start.run_id, e.what());
  } catch (...) {
    // CancelRacedOutcome, HistoryLimitExceeded: the completion alone deals with them too.
  }
  if (!reply) {
    // Nothing was written: the start alone, then the completion as usual, which reports
    // whatever was wrong with it.
    commit_held_start_alone(held);
    return complete_workflow_task(token, completion);
  }
  feed_.publish(effects);
  finish_held_start(held, store::StartResult{held->start.run_id, true});
  return {200, completion_json(*reply)};
}

}  // namespace reprise::api
