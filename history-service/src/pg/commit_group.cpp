#include "pg/commit_group.hpp"

#include <exception>

#include "pg/connection.hpp"

namespace reprise::pg {

struct CommitGroup::Member {
  enum class Outcome { kPending, kCommitted, kAlone, kFailed };
  std::vector<Connection::Deferred> batch;
  Outcome outcome = Outcome::kPending;  // read and written under the group's mutex
  Outcome settled = Outcome::kPending;  // the leader's verdict, published as `outcome`
  std::exception_ptr error;             // kFailed: rethrown by the member's own thread
};

void CommitGroup::commit(Connection& own) {
  Member me{std::exchange(own.deferred_, {})};
  own.begin_pending_ = false;
  std::unique_lock lock(mutex_);
  waiting_.push_back(&me);
  while (me.outcome == Member::Outcome::kPending) {
    if (leading_) {
      settled_.wait(lock);
      continue;
    }
    leading_ = true;
    const auto group = std::exchange(waiting_, {});
    lock.unlock();
    lead(own, group);
    lock.lock();
    for (Member* m : group) m->outcome = m->settled;
    leading_ = false;
    if (group.size() > 1 && me.outcome == Member::Outcome::kCommitted) {
      counts_.grouped += static_cast<std::int64_t>(group.size());
      ++counts_.groups;
    }
    settled_.notify_all();
  }
  lock.unlock();
  switch (me.outcome) {
    case Member::Outcome::kCommitted:
      return;
    case Member::Outcome::kFailed:
      std::rethrow_exception(me.error);
    default:
      own.commit_alone(me.batch);  // throws exactly what this transaction alone would
  }
}

void CommitGroup::lead(Connection& leader, const std::vector<Member*>& group) {
  auto settle = [&](Member::Outcome outcome) {
    for (Member* m : group) m->settled = outcome;
  };
  std::vector<const Connection::Deferred*> statements;
  for (const Member* m : group)
    for (const auto& d : m->batch) statements.push_back(&d);
  try {
    leader.pipeline(statements, /*with_begin=*/true, /*commit=*/true);
    settle(Member::Outcome::kCommitted);
  } catch (const PgError& e) {
    // Alone, the error is the member's own. An in-doubt COMMIT is every member's: each gets
    // its own copy to throw.
    if (group.size() == 1 || e.in_doubt()) {
      for (Member* m : group) m->error = std::make_exception_ptr(e);
      return settle(Member::Outcome::kFailed);
    }
    leader.roll_back_sent();
    settle(Member::Outcome::kAlone);
  } catch (...) {
    if (group.size() == 1) {
      group.front()->error = std::current_exception();
      return settle(Member::Outcome::kFailed);
    }
    leader.roll_back_sent();
    settle(Member::Outcome::kAlone);
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
