// Group commit (pg::CommitGroup): write-only transactions that reach COMMIT while another is in
// flight are committed together, each acknowledged only after that COMMIT, and a member that
// fails takes none of the others down with it.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>

#include "pg/connection.hpp"
#include "pg/database.hpp"
#include "store/effects.hpp"
#include "store/migrations.hpp"
#include "store/operations.hpp"
#include "support/postgres_fixture.hpp"
#include "support/wait.hpp"

using namespace reprise;
using namespace std::chrono_literals;
using reprise::test::fresh_database;
using reprise::test::wait_until;

namespace {

struct Outcome {
  bool committed_hook = false, rolled_back_hook = false;
  std::string error;  // empty when the transaction committed
};

/// A prepared statement's name for `sql`: one per text, since a name is prepared once per connection.
std::string name_for(const std::string& sql) { return "s" + std::to_string(std::hash<std::string>{}(sql)); }

/// Runs a write-only transaction (`sql` deferred; `key` its group key) on one of `db`'s threads.
std::future<Outcome> post_write(pg::Database& db, std::string sql, std::string key = {}) {
  auto done = std::make_shared<std::promise<Outcome>>();
  auto future = done->get_future();
  db.post([&db, sql = std::move(sql), key = std::move(key), done] {
    Outcome out;
    try {
      pg::in_transaction(db.connection(), [&](pg::Connection& c) {
        c.set_group_key(key);
        c.after_commit([&] { out.committed_hook = true; });
        c.after_rollback([&] { out.rolled_back_hook = true; });
        c.defer(name_for(sql), sql, {});
      });
    } catch (const std::exception& e) {
      out.error = e.what();
    }
    done->set_value(out);
  });
  return future;
}

Outcome get(std::future<Outcome>& f) {
  REQUIRE(f.wait_for(20s) == std::future_status::ready);
  return f.get();
}

struct GroupFixture {
  std::string url = fresh_database("commit_group");
  pg::Connection admin{url};
  pg::Connection blocker{url};
  pg::Database db;

  /// `queue_wait`: how long a transaction waits behind a stuck group; long by default, so that
  /// a test can hold a group in flight for as long as it needs. `next_group_size`: how many
  /// must queue for a second group to take off beside the first; by default more than the
  /// pool's four threads can ever queue, so that every queued transaction waits for the first.
  /// `check_after_idle`: see pg::Database.
  explicit GroupFixture(std::chrono::milliseconds queue_wait = std::chrono::minutes(1), std::size_t next_group_size = 8,
                        std::chrono::milliseconds check_after_idle = std::chrono::seconds(30))
      : db(url, {.threads = 4,
                 .commits = {.longest_queue_wait = queue_wait, .most_in_flight = 2, .next_group_size = next_group_size},
                 .check_after_idle = check_after_idle}) {
    store::apply_migrations(admin);
    admin.exec_script("CREATE TABLE items (id bigint PRIMARY KEY, v text); INSERT INTO items VALUES (0, 'held'), (5, 'old')");
    // Every thread's session open before any transaction begins: a leader on a session opened
    // after a member began would not carry it.
    wait_until([&] { return db.idle_threads() == 4; }, 10s, "the pool's threads connect");
  }
  std::int64_t count(std::string_view where) {
    const std::string sql = "SELECT count(*) FROM items WHERE " + std::string(where);
    return admin.exec(name_for(sql), sql).i64(0, 0);
  }
  /// Starts a transaction whose COMMIT waits on `blocker`'s lock of row 0, so the transactions
  /// that reach COMMIT after it queue behind it.
  std::future<Outcome> hold_a_group_in_flight(std::string key = {}) {
    blocker.exec_script("BEGIN; SELECT * FROM items WHERE id = 0 FOR UPDATE");
    auto leader = post_write(db, "UPDATE items SET v = 'leader' WHERE id = 0", std::move(key));
    wait_until([&] { return count_lock_waits() == 1; }, 10s, "the leader's update waits on the row lock");
    return leader;
  }
  std::int64_t count_lock_waits() {
    return admin.exec("waits", "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock'").i64(0, 0);
  }
};

}  // namespace

TEST_CASE("transactions that reach COMMIT while one is in flight commit together, each after the COMMIT",
          "[pg][group-commit]") {
  GroupFixture f;
  auto leader = f.hold_a_group_in_flight();
  auto a = post_write(f.db, "INSERT INTO items VALUES (1, 'a')");
  auto b = post_write(f.db, "INSERT INTO items VALUES (2, 'b')");
  wait_until([&] { return f.db.commit_group().waiting() == 2; }, 10s, "both transactions queue behind the leader");
  CHECK(a.wait_for(0s) == std::future_status::timeout);  // nothing acknowledged before its COMMIT
  CHECK(f.count("id IN (1, 2)") == 0);

  f.blocker.exec_script("ROLLBACK");
  auto out_leader = get(leader), out_a = get(a), out_b = get(b);
  for (const auto* out : {&out_leader, &out_a, &out_b}) {
    CHECK(out->error.empty());
    CHECK(out->committed_hook);
    CHECK_FALSE(out->rolled_back_hook);
  }
  CHECK(f.count("id IN (1, 2)") == 2);
  CHECK(f.count("v = 'leader'") == 1);
  const auto counts = f.db.commit_group().counts();
  CHECK(counts.groups == 1);  // the two that queued, as one transaction
  CHECK(counts.grouped == 2);
}

TEST_CASE("a member that fails in a group gets its own error and the others still commit", "[pg][group-commit]") {
  GroupFixture f;
  auto leader = f.hold_a_group_in_flight();
  auto duplicate = post_write(f.db, "INSERT INTO items VALUES (5, 'again')");
  auto fine = post_write(f.db, "INSERT INTO items VALUES (6, 'fine')");
  wait_until([&] { return f.db.commit_group().waiting() == 2; }, 10s, "both transactions queue behind the leader");
  f.blocker.exec_script("ROLLBACK");

  CHECK(get(leader).error.empty());
  const auto failed = get(duplicate);
  CHECK_THAT(failed.error, Catch::Contains("duplicate key"));
  CHECK(failed.rolled_back_hook);
  CHECK_FALSE(failed.committed_hook);
  const auto committed = get(fine);
  CHECK(committed.error.empty());
  CHECK(committed.committed_hook);
  CHECK(f.count("id = 6") == 1);
  CHECK(f.count("id = 5 AND v = 'old'") == 1);  // the failed insert changed nothing
  CHECK(f.db.commit_group().counts().groups == 0);  // the failed group committed nothing
}

/// Inserts row `id` and reads it back with the COMMIT (a deferred read); the value it read and
/// the id of the transaction that read it ("mine 1234"), or its error.
std::future<std::string> post_insert_and_read(pg::Database& db, int id) {
  auto done = std::make_shared<std::promise<std::string>>();
  auto future = done->get_future();
  db.post([&db, id, done] {
    try {
      std::shared_ptr<const pg::Result> rows;
      pg::in_transaction(db.connection(), [&](pg::Connection& c) {
        c.defer("insert_mine", "INSERT INTO items VALUES ($1::bigint, 'mine')", {std::to_string(id)});
        rows = c.defer_read("read_mine", "SELECT v || ' ' || pg_current_xact_id()::text FROM items WHERE id = $1::bigint",
                            {std::to_string(id)});
      });
      done->set_value(rows->rows() == 1 ? rows->str(0, 0) : "no row");
    } catch (const std::exception& e) {
      done->set_value(e.what());
    }
  });
  return future;
}

TEST_CASE("a read that rides with the COMMIT joins the group, and gets its rows", "[pg][group-commit]") {
  GroupFixture f;
  auto leader = f.hold_a_group_in_flight();
  auto reader = post_insert_and_read(f.db, 8);
  auto other = post_write(f.db, "INSERT INTO items VALUES (9, 'other')");
  wait_until([&] { return f.db.commit_group().waiting() == 2; }, 10s, "both queue behind the leader");
  CHECK(reader.wait_for(0s) == std::future_status::timeout);
  f.blocker.exec_script("ROLLBACK");
  CHECK(get(leader).error.empty());
  CHECK(get(other).error.empty());
  REQUIRE(reader.wait_for(20s) == std::future_status::ready);
  // Read in the group's transaction, after its own insert.
  CHECK(reader.get() == "mine " + f.admin.exec("xmin_8", "SELECT xmin::text FROM items WHERE id = 8").str(0, 0));
  const auto counts = f.db.commit_group().counts();
  CHECK(counts.groups == 1);
  CHECK(counts.grouped == 2);
}

TEST_CASE("a read in a group that fails gets its rows when its transaction runs alone", "[pg][group-commit]") {
  GroupFixture f;
  auto leader = f.hold_a_group_in_flight();
  auto reader = post_insert_and_read(f.db, 10);
  auto duplicate = post_write(f.db, "INSERT INTO items VALUES (5, 'again')");
  wait_until([&] { return f.db.commit_group().waiting() == 2; }, 10s, "both queue behind the leader");
  f.blocker.exec_script("ROLLBACK");
  CHECK(get(leader).error.empty());
  CHECK_THAT(get(duplicate).error, Catch::Contains("duplicate key"));
  REQUIRE(reader.wait_for(20s) == std::future_status::ready);
  // Its rows are those of the transaction that committed, not of the group that failed.
  CHECK(reader.get() == "mine " + f.admin.exec("xmin_10", "SELECT xmin::text FROM items WHERE id = 10").str(0, 0));
  CHECK(f.db.commit_group().counts().groups == 0);  // the group failed; its members ran alone
}

TEST_CASE("a transaction that reads before its COMMIT is never grouped: it commits on its own connection",
          "[pg][group-commit]") {
  GroupFixture f;
  auto leader = f.hold_a_group_in_flight();
  auto done = std::make_shared<std::promise<std::string>>();
  auto reader = done->get_future();
  f.db.post([&f, done] {
    try {
      pg::in_transaction(f.db.connection(), [](pg::Connection& c) {
        c.exec("read", "SELECT count(*) FROM items");
        c.defer("insert_7", "INSERT INTO items VALUES (7, 'r')", {});
      });
      done->set_value("");
    } catch (const std::exception& e) {
      done->set_value(e.what());
    }
  });
  // It does not queue behind the blocked group: it commits while the leader still waits.
  REQUIRE(reader.wait_for(20s) == std::future_status::ready);
  CHECK(reader.get().empty());
  CHECK(f.count("id = 7") == 1);
  CHECK(leader.wait_for(0s) == std::future_status::timeout);
  f.blocker.exec_script("ROLLBACK");
  CHECK(get(leader).error.empty());
}

TEST_CASE("a pool connection closed while it sat idle is replaced before a transaction uses it", "[pg][pool]") {
  const auto url = fresh_database("database_pool");
  pg::Connection admin(url);
  admin.exec_script("CREATE TABLE items (id bigint PRIMARY KEY, v text)");
  // One thread, checked whenever it was idle at all (30 s in production).
  pg::Database db(url, {.threads = 1, .check_after_idle = 0ms});
  auto first = post_write(db, "INSERT INTO items VALUES (1, 'a')");
  REQUIRE(get(first).error.empty());
  // Closed behind its back, as idle_session_timeout or a proxy would.
  admin.exec_script("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  // A transaction sent whole: without the check it would fail at its COMMIT, in doubt.
  auto second = post_write(db, "INSERT INTO items VALUES (2, 'b')");
  CHECK(get(second).error == "");  // not "the transaction may or may not have committed"
  CHECK(admin.exec("count", "SELECT count(*) FROM items").i64(0, 0) == 2);
}

TEST_CASE("two transactions of one run are never in one group", "[pg][group-commit]") {
  GroupFixture f;
  auto leader = f.hold_a_group_in_flight();
  auto first = post_write(f.db, "INSERT INTO items VALUES (11, 'r1 first')", "run-1");
  wait_until([&] { return f.db.commit_group().waiting() == 1; }, 10s, "the first queues");
  auto second = post_write(f.db, "INSERT INTO items VALUES (12, 'r1 second')", "run-1");
  auto other = post_write(f.db, "INSERT INTO items VALUES (13, 'r2')", "run-2");
  wait_until([&] { return f.db.commit_group().waiting() == 3; }, 10s, "all three queue");
  f.blocker.exec_script("ROLLBACK");
  for (auto* fut : {&leader, &first, &second, &other}) CHECK(get(*fut).error.empty());
  CHECK(f.count("id IN (11, 12, 13)") == 3);
  const auto counts = f.db.commit_group().counts();
  CHECK(counts.groups == 1);  // run-1's first with run-2; run-1's second after them, alone
  CHECK(counts.grouped == 2);
}

TEST_CASE("a second group takes off beside the one in flight once enough transactions queue", "[pg][group-commit]") {
  GroupFixture f(std::chrono::minutes(1), /*next_group_size=*/3);
  auto leader = f.hold_a_group_in_flight();
  auto a = post_write(f.db, "INSERT INTO items VALUES (41, 'a')");
  auto b = post_write(f.db, "INSERT INTO items VALUES (42, 'b')");
  wait_until([&] { return f.db.commit_group().waiting() == 2; }, 10s, "two queue: too few for a group of their own");
  CHECK(f.count("id IN (41, 42)") == 0);
  // The third makes enough: it leads the three while the first group still waits on its lock.
  auto c = post_write(f.db, "INSERT INTO items VALUES (43, 'c')");
  for (auto* fut : {&a, &b, &c}) CHECK(get(*fut).error.empty());
  CHECK(f.count("id IN (41, 42, 43)") == 3);
  CHECK(leader.wait_for(0s) == std::future_status::timeout);
  const auto counts = f.db.commit_group().counts();
  CHECK(counts.groups == 1);
  CHECK(counts.grouped == 3);
  f.blocker.exec_script("ROLLBACK");
  CHECK(get(leader).error.empty());
}

TEST_CASE("a leader on a session opened after a transaction began does not carry it", "[pg][group-commit]") {
  // What a transaction decided before the database was met again through a new session may rest
  // on commits the database lost (store/committed_state.hpp): it commits alone.
  GroupFixture f(std::chrono::minutes(1), /*next_group_size=*/3, /*check_after_idle=*/0ms);
  auto leader = f.hold_a_group_in_flight();
  // Every other session of the pool ends; each job checks its connection first (checked after
  // 0 ms idle) and opens a new one, so each transaction below begins on a session newer than
  // the one before it, and the last, which leads, on the newest.
  f.admin.exec("terminate",
               "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
               "AND pid NOT IN ($1::int, $2::int, pg_backend_pid()) AND wait_event_type IS DISTINCT FROM 'Lock' "
               "AND backend_type = 'client backend'",
               {std::to_string(f.blocker.backend_pid()), std::to_string(f.admin.backend_pid())});
  auto a = post_write(f.db, "INSERT INTO items VALUES (61, 'a')");
  auto b = post_write(f.db, "INSERT INTO items VALUES (62, 'b')");
  wait_until([&] { return f.db.commit_group().waiting() == 2; }, 10s, "two queue");
  auto c = post_write(f.db, "INSERT INTO items VALUES (63, 'c')");
  for (auto* fut : {&a, &b, &c}) CHECK(get(*fut).error.empty());
  CHECK(f.count("id IN (61, 62, 63)") == 3);
  CHECK(f.db.commit_group().counts().groups == 0);  // each alone
  f.blocker.exec_script("ROLLBACK");
  CHECK(get(leader).error.empty());
}

TEST_CASE("a run with a transaction in a group in flight is kept out of the group beside it", "[pg][group-commit]") {
  GroupFixture f(std::chrono::minutes(1), /*next_group_size=*/3);
  auto leader = f.hold_a_group_in_flight("run-1");
  auto same_run = post_write(f.db, "INSERT INTO items VALUES (51, 'run-1 again')", "run-1");
  auto a = post_write(f.db, "INSERT INTO items VALUES (52, 'run-2')", "run-2");
  wait_until([&] { return f.db.commit_group().waiting() == 2; }, 10s, "two queue");
  auto b = post_write(f.db, "INSERT INTO items VALUES (53, 'run-3')", "run-3");
  // Three queued make a second group, without run-1's: it would fail the first group's fence.
  CHECK(get(a).error.empty());
  CHECK(get(b).error.empty());
  CHECK(f.count("id IN (52, 53)") == 2);
  CHECK(f.count("id = 51") == 0);
  CHECK(same_run.wait_for(0s) == std::future_status::timeout);
  CHECK(f.db.commit_group().waiting() == 1);
  // It goes once run-1's group has committed.
  f.blocker.exec_script("ROLLBACK");
  CHECK(get(leader).error.empty());
  CHECK(get(same_run).error.empty());
  CHECK(f.count("id = 51") == 1);
}

TEST_CASE("the group beside the one in flight is led by the first in line, so a run's transactions keep their order",
          "[pg][group-commit]") {
  GroupFixture f(std::chrono::minutes(1), /*next_group_size=*/3);
  auto leader = f.hold_a_group_in_flight();
  auto earlier = post_write(f.db, "INSERT INTO items VALUES (61, 'run-1 earlier')", "run-1");
  auto other = post_write(f.db, "INSERT INTO items VALUES (62, 'run-2')", "run-2");
  wait_until([&] { return f.db.commit_group().waiting() == 2; }, 10s, "two queue");
  // The third, of run-1 too, makes enough for a group: it must not lead it and leave the
  // earlier run-1 transaction behind.
  auto later = post_write(f.db, "INSERT INTO items VALUES (63, 'run-1 later')", "run-1");
  CHECK(get(earlier).error.empty());
  CHECK(get(other).error.empty());
  CHECK(f.count("id IN (61, 62)") == 2);
  CHECK(f.count("id = 63") == 0);
  CHECK(later.wait_for(0s) == std::future_status::timeout);
  f.blocker.exec_script("ROLLBACK");
  CHECK(get(leader).error.empty());
  CHECK(get(later).error.empty());
  CHECK(f.count("id = 63") == 1);
}

TEST_CASE("a transaction queued behind a stuck group commits alone after a while", "[pg][group-commit]") {
  GroupFixture f(100ms);
  auto leader = f.hold_a_group_in_flight();
  auto queued = post_write(f.db, "INSERT INTO items VALUES (21, 'q')");
  // It does not wait for the row lock the group waits on: it leaves the queue and commits.
  CHECK(get(queued).error.empty());
  CHECK(f.count("id = 21") == 1);
  CHECK(leader.wait_for(0s) == std::future_status::timeout);
  f.blocker.exec_script("ROLLBACK");
  CHECK(get(leader).error.empty());
  // And the group is free again: the next transaction leads at once.
  auto after = post_write(f.db, "INSERT INTO items VALUES (22, 'after')");
  CHECK(get(after).error.empty());
  CHECK(f.db.commit_group().waiting() == 0);
}

TEST_CASE("a transaction taken into a group stays in it however long the group waits", "[pg][group-commit]") {
  GroupFixture f(200ms);
  pg::Connection second_blocker{f.url};
  second_blocker.exec_script("BEGIN; SELECT * FROM items WHERE id = 5 FOR UPDATE");
  auto leader = f.hold_a_group_in_flight();
  auto held = post_write(f.db, "UPDATE items SET v = 'held' WHERE id = 5");
  auto other = post_write(f.db, "INSERT INTO items VALUES (31, 'other')");
  wait_until([&] { return f.db.commit_group().waiting() == 2; }, 10s, "both queue behind the leader");
  // The leader commits; the two queued form the next group, which waits on row 5.
  f.blocker.exec_script("ROLLBACK");
  CHECK(get(leader).error.empty());
  auto group_waited = [&] {
    return f.admin.exec("waited", "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                  "AND wait_event_type = 'Lock' AND now() - query_start > interval '600 ms'")
               .i64(0, 0) == 1;
  };
  wait_until(group_waited, 10s, "the group has waited on the lock for three times the queue wait");
  CHECK(other.wait_for(0s) == std::future_status::timeout);  // it did not leave to commit alone
  second_blocker.exec_script("ROLLBACK");
  CHECK(get(held).error.empty());
  CHECK(get(other).error.empty());
  CHECK(f.count("id = 31") == 1);
  const auto counts = f.db.commit_group().counts();
  CHECK(counts.groups == 1);  // the two committed as the group they were taken into
  CHECK(counts.grouped == 2);
}

namespace {

struct Started {
  store::StartResult result;
  std::string error;
};

/// Starts workflow `workflow_id` on one of `db`'s threads, as POST /workflows does; with
/// `poller`, a poll waiting for it, which is handed the run's first task.
std::future<Started> post_start(pg::Database& db, std::string workflow_id, std::string request_id,
                                store::IdReusePolicy policy = store::IdReusePolicy::kAllowDuplicate,
                                store::WaitingPoller* poller = nullptr) {
  auto done = std::make_shared<std::promise<Started>>();
  auto future = done->get_future();
  db.post([&db, workflow_id = std::move(workflow_id), request_id = std::move(request_id), policy, poller, done] {
    Started out;
    try {
      store::StartRequest req;
      req.ns = "default";
      req.workflow_id = workflow_id;
      req.workflow_type = "T";
      req.task_queue = "q";
      req.request_id = request_id;
      req.id_reuse_policy = policy;
      store::Effects effects;
      out.result = store::start_workflow(db.connection(), req, effects, poller);
    } catch (const std::exception& e) {
      out.error = e.what();
    }
    done->set_value(out);
  });
  return future;
}

Started get(std::future<Started>& f) {
  REQUIRE(f.wait_for(20s) == std::future_status::ready);
  return f.get();
}

}  // namespace

TEST_CASE("a start under the default id reuse policy reads nothing first, so it joins a group", "[pg][group-commit]") {
  GroupFixture f;
  auto leader = f.hold_a_group_in_flight();
  auto first = post_start(f.db, "w-1", "request-1");
  wait_until([&] { return f.db.commit_group().waiting() == 1; }, 10s, "the start queues behind the leader");
  // A policy that depends on earlier runs reads them first, so it never queues.
  auto careful = post_start(f.db, "w-2", "", store::IdReusePolicy::kRejectDuplicate);
  const auto careful_out = get(careful);
  CHECK(careful_out.error.empty());
  CHECK(careful_out.result.created);
  CHECK(leader.wait_for(0s) == std::future_status::timeout);

  f.blocker.exec_script("ROLLBACK");
  CHECK(get(leader).error.empty());
  const auto first_out = get(first);
  REQUIRE(first_out.error.empty());
  CHECK(first_out.result.created);

  // The same request again: its blind insert fails on the request id's key, and the start runs
  // again the careful way, answering with the first call's run.
  auto again = post_start(f.db, "w-1", "request-1");
  const auto again_out = get(again);
  CHECK(again_out.error.empty());
  CHECK_FALSE(again_out.result.created);
  CHECK(again_out.result.run_id == first_out.result.run_id);
  // Another request while the run is open: refused, as before.
  auto second = post_start(f.db, "w-1", "request-2");
  CHECK_THAT(get(second).error, Catch::Contains("is already running"));
  CHECK(f.admin.exec("runs", "SELECT count(*) FROM executions WHERE workflow_id = 'w-1'").i64(0, 0) == 1);
}

TEST_CASE("a start refused inside a group answers as alone, and the group's other members still commit",
          "[pg][group-commit]") {
  GroupFixture f;
  auto first = post_start(f.db, "w-9", "request-9");
  const auto first_out = get(first);
  REQUIRE(first_out.error.empty());

  auto leader = f.hold_a_group_in_flight();
  auto repeated = post_start(f.db, "w-9", "request-9");  // its blind insert hits request_ids' key
  auto other = post_write(f.db, "INSERT INTO items VALUES (41, 'other')");
  wait_until([&] { return f.db.commit_group().waiting() == 2; }, 10s, "both queue behind the leader");
  f.blocker.exec_script("ROLLBACK");

  CHECK(get(leader).error.empty());
  CHECK(get(other).error.empty());
  CHECK(f.count("id = 41") == 1);
  const auto repeated_out = get(repeated);
  CHECK(repeated_out.error.empty());
  CHECK_FALSE(repeated_out.result.created);
  CHECK(repeated_out.result.run_id == first_out.result.run_id);
  CHECK(f.db.commit_group().counts().groups == 0);  // the group failed; its members ran alone
}

TEST_CASE("a start that hands its first task to a waiting poll joins a group, the history read riding along",
          "[pg][group-commit][sync-match]") {
  GroupFixture f;
  const store::TaskTokenSigner signer("secret");
  store::WaitingPoller poller{"waiting-worker", &signer, ""};
  auto leader = f.hold_a_group_in_flight();
  auto start = post_start(f.db, "w-poll", "", store::IdReusePolicy::kAllowDuplicate, &poller);
  auto other = post_write(f.db, "INSERT INTO items VALUES (51, 'other')");
  wait_until([&] { return f.db.commit_group().waiting() == 2; }, 10s, "the start queues behind the leader");
  f.blocker.exec_script("ROLLBACK");
  CHECK(get(leader).error.empty());
  CHECK(get(other).error.empty());
  const auto started = get(start);
  REQUIRE(started.error.empty());
  CHECK(started.result.created);
  CHECK(f.db.commit_group().counts().groups == 1);

  const auto task = nlohmann::json::parse(poller.task);
  CHECK(task["workflow_id"] == "w-poll");
  REQUIRE(task["history"].size() == 3);
  CHECK(task["history"][0]["event_type"] == "WorkflowExecutionStarted");
  CHECK(task["history"][2]["event_type"] == "WorkflowTaskStarted");
  CHECK(task["history"][2]["attributes"]["identity"] == "waiting-worker");
}
