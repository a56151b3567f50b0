#pragma once
/// Group commit. A transaction sent whole at COMMIT (nothing sent before it: deferred writes,
/// and reads whose rows are needed only afterwards; a workflow-task completion or an activity
/// result started from committed state, a start that hands its first task to a waiting poll)
/// does not need a connection of its own at COMMIT. Connections of one Database that
/// reach COMMIT while a group is in flight queue here; when it ends, one of them leads:
/// it sends every queued transaction's statements as one transaction on its own connection
/// (each read's rows go to its member), and
/// each member's commit() returns only after that commit. One transaction, one WAL flush and
/// one round trip serve the whole group. A transaction that finds no group in flight
/// leads a group of one at once, so a quiet service waits for nothing; under load the groups
/// grow by themselves while the one in flight waits for its WAL flush. A second group takes
/// off beside the first once `next_group_size` transactions are queued, so that one group's
/// statements run while the other's WAL flush is under way, without groups shrinking.
///
/// When the group's transaction fails (one member's fence, a unique index, a deadlock), every
/// member runs its own transaction again on its own connection and gets the answer it would
/// have got alone; only an in-doubt COMMIT (the leader's connection lost) is shared by all.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace reprise::pg {

class Connection;
class Wakeup;

class CommitGroup {
 public:
  struct Options {
    /// A transaction queued behind a group for longer than this leaves the queue and commits
    /// alone. A group's flight takes a round trip and a WAL flush (about a millisecond); one
    /// that waits on a row lock must not hold every queued transaction, and the pool's
    /// threads, with it.
    std::chrono::milliseconds longest_queue_wait{50};
    /// Groups in flight at once.
    int most_in_flight = 2;
    /// Transactions that must be queued before a group takes off beside one in flight. Small,
    /// and the groups shrink: more transactions, more of PostgreSQL's CPU for the same work.
    std::size_t next_group_size = 8;
  };
  explicit CommitGroup(Options options) : options_(options) { keys_in_flight_.reserve(1024); }

  /// Commits `own`'s pending transaction (sent whole), with others' when they are waiting.
  /// Throws as Connection::commit() does.
  void commit(Connection& own);

  /// Transactions committed in groups of two or more, and the groups that carried them.
  struct Counts {
    std::int64_t grouped = 0, groups = 0;
  };
  Counts counts() const;
  /// Transactions queued behind the groups in flight.
  std::size_t waiting() const;

 private:
  struct Member;
  /// Takes the next group, led by `leader` on a session opened at generation `leader_opened`,
  /// off the queue (the caller holds the mutex). Members that began before that session are
  /// told to commit alone and moved to `alone`, to be woken once the mutex is let go.
  std::vector<std::shared_ptr<Member>> take_group(const std::shared_ptr<Member>& leader, std::uint64_t leader_opened,
                                                  std::vector<std::shared_ptr<Member>>& alone);
  /// Calls a queued member to lead a group now: `newcomer` (just queued, and running) if no
  /// transaction of its run is in flight or queued ahead of it, else the first in line whose
  /// run is not in flight. Nobody while a group is in flight and fewer than next_group_size
  /// are queued, or while a leader called before has not taken its group yet (it takes
  /// everyone queued). The caller holds the mutex.
  std::shared_ptr<Member> call_leader(const std::shared_ptr<Member>& newcomer = nullptr);
  /// Waits as Wakeup::wait_for does (for ever with nanoseconds::max()), reporting a lone
  /// request's long wait on the way (report_long_wait).
  static bool wait_reporting_stall(Wakeup& woken, std::chrono::nanoseconds timeout);
  bool key_in_flight(const std::string& key) const;
  void fly_key(const std::string& key);
  /// Runs `group` on `leader` and settles each member's outcome.
  void lead(Connection& leader, const std::vector<std::shared_ptr<Member>>& group) noexcept;

  const Options options_;
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<Member>> waiting_;  // queued behind the groups in flight, in arrival order
  int in_flight_ = 0;  // groups in flight, counting a called leader (`leads`, still queued) not yet off
  // The keys of their members: pointers into Member::key, which lives while it flies. Reserved,
  // so that recording one under the mutex does not allocate (and cannot throw) in practice.
  std::vector<const std::string*> keys_in_flight_;
  Counts counts_;
};

}  // namespace reprise::pg
