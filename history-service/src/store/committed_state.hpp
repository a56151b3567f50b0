#pragma once
/// What this process committed last: each run's execution row, and each started activity
/// attempt. A writer's first attempt at a hot path (a workflow task completion, an activity
/// result) starts from here instead of reading, so its transaction is one round trip; the
/// version fence on the run's update (and the attempt fence on the activity's delete) proves
/// nothing changed since. A row changed meanwhile, by this instance or another, fails that
/// fence: the transaction rolls back, forgets what it used, and runs again from a locked read.
/// Entries are only ever written after their transaction committed (pg::Connection hooks).
///
/// A commit acknowledged can still be lost: with synchronous_commit off, a PostgreSQL crash
/// drops the last fraction of a second of them, and a failover to a replica behind drops what
/// it had not received. A row remembered from such a commit is ahead of the database, and its
/// version may come round again with other contents, which the fence cannot tell apart. Such
/// a loss ends the sessions that saw the commits, and the database is met again only through
/// new ones, so the rows are trusted only while pg::session_generation() stands (it moves when
/// a connection opens or is found lost): when it moves, everything is forgotten, and a commit
/// hook registered before it moved writes nothing. A transaction that read rows here before
/// the count moved is not carried by a commit group's leader on a newer session
/// (pg/commit_group.cpp), so it cannot commit them on the database met again.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "pg/connection.hpp"
#include "store/activity_row.hpp"
#include "store/run_state.hpp"

namespace reprise::store {

template <class Row>
class CommittedRows {
 public:
  explicit CommittedRows(std::size_t capacity) : capacity_(capacity) {}
  std::optional<Row> find(const std::string& key) {
    std::lock_guard lock(mutex_);
    forget_if_new_sessions();
    auto it = rows_.find(key);
    if (it == rows_.end()) return std::nullopt;
    return it->second;
  }
  /// Remembers `row`, unless the count of sessions moved since `epoch`, when the transaction
  /// that committed it began (pg::Connection::began_generation; see above).
  void put(const std::string& key, Row row, std::uint64_t epoch) {
    std::lock_guard lock(mutex_);
    forget_if_new_sessions();
    if (epoch != epoch_) return;
    auto [it, added] = rows_.insert_or_assign(key, std::move(row));
    if (!added) return;
    order_.push_back(key);
    // Oldest first out; a key forgotten meanwhile is skipped (its slot in order_ is stale).
    while (rows_.size() > capacity_ && !order_.empty()) {
      rows_.erase(order_.front());
      order_.pop_front();
    }
    if (order_.size() > 2 * capacity_) compact();
  }
  void forget(const std::string& key) {
    std::lock_guard lock(mutex_);
    rows_.erase(key);
  }

 private:
  void forget_if_new_sessions() {
    const auto now = pg::session_generation();
    if (now == epoch_) return;
    rows_.clear();
    order_.clear();
    epoch_ = now;
  }
  void compact() {
    std::deque<std::string> kept;
    for (auto& k : order_)
      if (rows_.contains(k)) kept.push_back(std::move(k));
    order_ = std::move(kept);
  }
  std::size_t capacity_;
  std::uint64_t epoch_ = 0;  // pg::session_generation() when the rows were last forgotten
  std::mutex mutex_;
  std::unordered_map<std::string, Row> rows_;
  std::deque<std::string> order_;  // insertion order, for eviction
};

/// The process's runs, by to_string(RunKey).
CommittedRows<ExecutionRow>& committed_runs();
/// The process's started activity attempts, by activity_key(), without their input and
/// heartbeat details (what a result needs).
CommittedRows<ActivityRow>& committed_activities();
std::string activity_key(const RunKey& run, std::int64_t scheduled_event_id);

/// A run's closing as committed: its closing event (a one-event JSON array, as a history page
/// has it) and its next event id. A caller waiting for the result is answered from it.
struct CommittedClose {
  std::string event_json;
  std::int64_t next_event_id = 0;
};
/// The runs this process closed lately, by to_string(RunKey). A run never reopens, so an entry
/// stays true; older ones are forgotten (a waiter then reads the close).
CommittedRows<CommittedClose>& committed_closes();

/// Remembers the run's row once the transaction commits; forgets it if it rolls back.
void remember_on_commit(pg::Connection& conn, const ExecutionRow& row);
/// The same for a run that closed in this transaction (nothing to forget on rollback: an entry
/// is only ever written at commit).
void remember_close_on_commit(pg::Connection& conn, const RunKey& run, CommittedClose close);
/// The same for an activity attempt that started in this transaction.
void remember_on_commit(pg::Connection& conn, const ActivityRow& started);

}  // namespace reprise::store
