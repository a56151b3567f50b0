#include "pg/commit_group.hpp"

#include <algorithm>
#include <exception>
#include <string>

#include "pg/connection.hpp"
#include "pg/long_wait.hpp"
#include "pg/wakeup.hpp"

namespace reprise::pg {

struct CommitGroup::Member {
  enum class Outcome { kPending, kCommitted, kAlone, kFailed };
  std::vector<Connection::Deferred> batch;
  std::string key;  // never two members with the same non-empty key in one group
  // session_generation() when its transaction began. A member that began before the leader's
  // session opened may have decided on rows the database has since lost (committed_state.hpp):
  // a leader on a session that met the database again does not carry it.
  std::uint64_t began = 0;
  // Under the group's mutex: the verdict, or the call to lead the next group. Set before
  // `woken` is posted, so a woken member reads them without the mutex.
  Outcome outcome = Outcome::kPending;
  bool leads = false;
  Wakeup woken;                         // posted once, for its verdict or to lead
  Outcome settled = Outcome::kPending;  // the leader's verdict, published as `outcome`
  std::exception_ptr error;             // kFailed: rethrown by the member's own thread
};

void CommitGroup::commit(Connection& own) {
  // Shared, so that the leader can wake a member after letting go of the mutex (a member woken
  // while the mutex is held would only block on it again) without outliving it.
  auto me = std::make_shared<Member>();
  me->batch = std::exchange(own.deferred_, {});
  me->key = std::exchange(own.group_key_, {});
  me->began = own.began_generation_;
  own.begin_pending_ = false;
  std::unique_lock lock(mutex_);
  std::vector<std::shared_ptr<Member>> group, alone;
  if (in_flight_ == 0) {
    fly_key(me->key);  // nothing in flight: lead a group of one at once
    ++in_flight_;
    group.push_back(me);
  } else {
    waiting_.push_back(me);
    // Enough queued for a group beside the one in flight: this thread leads it, as it is
    // running already; unless an earlier transaction of its run is queued or in flight.
    auto leader = call_leader(me);
    if (leader != me) {
      lock.unlock();
      if (leader) leader->woken.post();
      // Still queued after a while: the groups in flight are stuck (a row lock, say), commit
      // alone. Taken into a group meanwhile (no longer queued): its verdict comes, however
      // long it takes. Woken, the verdict or the call to lead is read without the mutex.
      if (!wait_reporting_stall(me->woken, options_.longest_queue_wait)) {
        lock.lock();
        const bool called = me->leads || me->outcome != Member::Outcome::kPending;
        const bool taken = !called && std::erase(waiting_, me) == 0;
        if (!called && !taken) me->outcome = Member::Outcome::kAlone;
        if (taken) {
          lock.unlock();
          wait_reporting_stall(me->woken, std::chrono::nanoseconds::max());
        }
      }
      if (me->leads && !lock.owns_lock()) lock.lock();
    }
    if (me->leads) group = take_group(me, own.opened_generation_, alone);
  }
  if (!group.empty()) {
    lock.unlock();
    for (const auto& m : alone) m->woken.post();
    lead(own, group);
    lock.lock();
    for (const auto& m : group) {
      m->outcome = m->settled;
      std::erase(keys_in_flight_, &m->key);
    }
    if (group.size() > 1 && me->outcome == Member::Outcome::kCommitted) {
      counts_.grouped += static_cast<std::int64_t>(group.size());
      ++counts_.groups;
    }
    --in_flight_;
    auto next = call_leader();
    lock.unlock();
    for (const auto& m : group)
      if (m != me) m->woken.post();
    if (next) next->woken.post();
  } else if (lock.owns_lock()) {
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

bool CommitGroup::wait_reporting_stall(Wakeup& woken, std::chrono::nanoseconds timeout) {
  using Clock = LongWait::Clock;
  const auto forever = timeout == std::chrono::nanoseconds::max();
  const auto wait = [&] {
    if (forever) woken.wait();
    return forever || woken.wait_for(timeout);
  };
  LongWait long_wait;  // pending only for a lone request on the io thread
  if (!long_wait.pending()) return wait();
  const auto now = Clock::now();
  const auto until = forever ? Clock::time_point::max() : now + timeout;
  if (long_wait.report_at() >= until) return wait();
  if (woken.wait_for(long_wait.report_at() - now)) return true;
  long_wait.report();  // its group waits (a row lock, say): the io thread's other work moves on
  if (forever) return wait();
  return woken.wait_for(std::max(until - Clock::now(), Clock::duration(0)));
}

bool CommitGroup::key_in_flight(const std::string& key) const {
  return !key.empty() && std::any_of(keys_in_flight_.begin(), keys_in_flight_.end(),
                                     [&](const std::string* k) { return *k == key; });
}

void CommitGroup::fly_key(const std::string& key) {
  if (!key.empty()) keys_in_flight_.push_back(&key);
}

std::shared_ptr<CommitGroup::Member> CommitGroup::call_leader(const std::shared_ptr<Member>& newcomer) {
  if (in_flight_ >= options_.most_in_flight) return nullptr;
  if (in_flight_ > 0 && waiting_.size() < options_.next_group_size) return nullptr;
  if (std::any_of(waiting_.begin(), waiting_.end(), [](const auto& m) { return m->leads; })) return nullptr;
  std::shared_ptr<Member> leader;
  if (newcomer && !key_in_flight(newcomer->key) &&
      std::none_of(waiting_.begin(), waiting_.end(), [&](const auto& m) {
        return m != newcomer && !m->key.empty() && m->key == newcomer->key;
      }))
    leader = newcomer;
  for (auto it = waiting_.begin(); !leader && it != waiting_.end(); ++it)
    if (!key_in_flight((*it)->key)) leader = *it;
  if (!leader) return nullptr;
  fly_key(leader->key);  // now, so that no other group takes its run meanwhile
  ++in_flight_;
  leader->leads = true;
  return leader;
}

std::vector<std::shared_ptr<CommitGroup::Member>> CommitGroup::take_group(const std::shared_ptr<Member>& leader,
                                                                          std::uint64_t leader_opened,
                                                                          std::vector<std::shared_ptr<Member>>& alone) {
  // The leader, then everyone queued except a transaction whose run is taken (by an earlier
  // member of this group, or by the group in flight): it would fail the first one's version
  // fence and take the whole group down with it. It waits for a later group instead, still
  // first in line.
  std::vector<std::shared_ptr<Member>> group{leader}, later;
  group.reserve(waiting_.size());
  later.reserve(waiting_.size());
  for (auto& m : waiting_) {
    if (m == leader) continue;
    if (m->began < leader_opened) {
      m->outcome = Member::Outcome::kAlone;
      alone.push_back(m);
      continue;
    }
    if (key_in_flight(m->key)) {
      later.push_back(m);
      continue;
    }
    fly_key(m->key);
    group.push_back(m);
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
