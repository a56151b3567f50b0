#include "pg/commit_group.hpp"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <string>

#include "pg/connection.hpp"

namespace reprise::pg {

struct CommitGroup::Member {
  enum class Outcome { kPending, kCommitted, kAlone, kFailed };
  std::vector<Connection::Deferred> batch;
  std::string key;  // never two members with the same non-empty key in one group
  // Under the group's mutex: the verdict, or the call to lead the next group.
  Outcome outcome = Outcome::kPending;
  bool leads = false;
  std::condition_variable woken;        // each member is woken once, for its verdict or to lead
  Outcome settled = Outcome::kPending;  // the leader's verdict, published as `outcome`
  std::exception_ptr error;             // kFailed: rethrown by the member's own thread
};

void CommitGroup::commit(Connection& own) {
  // Shared, so that the leader can wake a member after letting go of the mutex (a member woken
  // while the mutex is held would only block on it again) without outliving it.
  auto me = std::make_shared<Member>();
  me->batch = std::exchange(own.deferred_, {});
  me->key = std::exchange(own.group_key_, {});
  own.begin_pending_ = false;
  std::unique_lock lock(mutex_);
  std::vector<std::shared_ptr<Member>> group;
  if (!leading_) {
    leading_ = true;  // nothing in flight: lead a group of one at once
    group.push_back(me);
  } else {
    waiting_.push_back(me);
    auto called = [&] { return me->leads || me->outcome != Member::Outcome::kPending; };
    // Still queued after a while: the group in flight is stuck (a row lock, say), commit alone.
    // Taken into a group meanwhile (no longer queued): its verdict comes, however long it takes.
    if (!me->woken.wait_for(lock, longest_queue_wait_, called) && std::erase(waiting_, me) > 0) {
      me->outcome = Member::Outcome::kAlone;
    } else {
      me->woken.wait(lock, called);
      if (me->leads) group = take_group();
    }
  }
  if (!group.empty()) {
    lock.unlock();
    lead(own, group);
    lock.lock();
    for (const auto& m : group) m->outcome = m->settled;
    if (group.size() > 1 && me->outcome == Member::Outcome::kCommitted) {
      counts_.grouped += static_cast<std::int64_t>(group.size());
      ++counts_.groups;
    }
    std::shared_ptr<Member> next;  // the first who queued meanwhile leads the next group
    if (waiting_.empty()) {
      leading_ = false;
    } else {
      next = waiting_.front();
      next->leads = true;
    }
    lock.unlock();
    for (const auto& m : group)
      if (m != me) m->woken.notify_one();
    if (next) next->woken.notify_one();
  } else {
    lock.unlock();
  }
  switch (me->outcome) {
    case Member::Outcome::kCommitted:
      return;
    case Member::Outcome::kFailed:
      std::rethrow_exception(me->error);
    default:
      own.commit_alone(me->batch);  // throws exactly what this transaction alone would
  }
}

std::vector<std::shared_ptr<CommitGroup::Member>> CommitGroup::take_group() {
  // Everyone who queued behind the last group, except a second transaction with a key already
  // taken: it touches the same run, would fail the first one's version fence and take the
  // whole group down with it. It waits for the next group instead, still first in line.
  std::vector<std::shared_ptr<Member>> group, later;
  std::vector<const std::string*> keys;
  for (auto& m : waiting_) {
    const bool clash = !m->key.empty() && std::any_of(keys.begin(), keys.end(), [&](const std::string* k) {
      return *k == m->key;
    });
    if (clash) {
      later.push_back(std::move(m));
      continue;
    }
    if (!m->key.empty()) keys.push_back(&m->key);
    group.push_back(std::move(m));
  }
  waiting_ = std::move(later);
  return group;
}

void CommitGroup::lead(Connection& leader, const std::vector<std::shared_ptr<Member>>& group) noexcept {
  auto settle = [&](Member::Outcome outcome) {
    for (const auto& m : group) m->settled = outcome;
  };
  auto everyone_alone = [&] {
    leader.roll_back_sent();
    settle(Member::Outcome::kAlone);
  };
  try {
    std::vector<const Connection::Deferred*> statements;
    for (const auto& m : group)
      for (const auto& d : m->batch) statements.push_back(&d);
    leader.pipeline(statements, /*with_begin=*/true, /*commit=*/true);
    settle(Member::Outcome::kCommitted);
  } catch (const PgError& e) {
    // Alone, the error is the member's own. An in-doubt COMMIT is every member's.
    if (group.size() > 1 && !e.in_doubt()) return everyone_alone();
    for (const auto& m : group) m->error = std::current_exception();
    settle(Member::Outcome::kFailed);
  } catch (...) {
    if (group.size() > 1) return everyone_alone();
    group.front()->error = std::current_exception();
    settle(Member::Outcome::kFailed);
  }
}

std::size_t CommitGroup::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_.size();
}

CommitGroup::Counts CommitGroup::counts() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

}  // namespace reprise::pg
