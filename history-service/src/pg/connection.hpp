#pragma once
/// A PostgreSQL connection (libpq) used from one thread at a time. libpq stays out of this
/// header: PGconn/PGresult are forward-declared, so only connection.cpp pays for libpq-fe.h.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

struct pg_conn;
struct pg_result;

namespace reprise::pg {

class CommitGroup;

/// The store's one error root. `sqlstate()` is PostgreSQL's five-character code ("23505");
/// `in_doubt()` says a COMMIT was sent but its outcome is unknown (the connection died).
class PgError : public std::runtime_error {
 public:
  PgError(std::string message, std::string sqlstate, bool connection_lost, bool in_doubt = false,
          std::string primary = {}, std::string constraint = {})
      : std::runtime_error(std::move(message)),
        sqlstate_(std::move(sqlstate)),
        primary_(std::move(primary)),
        constraint_(std::move(constraint)),
        connection_lost_(connection_lost),
        in_doubt_(in_doubt) {}
  const std::string& sqlstate() const noexcept { return sqlstate_; }
  /// The server's message alone (no statement name, no severity or context lines).
  const std::string& primary_message() const noexcept { return primary_; }
  /// The constraint (or unique index) a violation broke; empty for other errors.
  const std::string& constraint() const noexcept { return constraint_; }
  /// RP400: a check in SQL found the request invalid; primary_message() says why, for the caller.
  bool rejected_request() const noexcept { return sqlstate_ == "RP400"; }
  /// Class 22, a data exception: a value the request carried does not fit its column (a run
  /// id that is not a UUID, a number out of range).
  bool data_exception() const noexcept { return sqlstate_.starts_with("22"); }
  bool connection_lost() const noexcept { return connection_lost_; }
  bool in_doubt() const noexcept { return in_doubt_; }
  /// Serialization failure or deadlock: the whole transaction may be run again.
  bool retryable() const noexcept { return sqlstate_ == "40001" || sqlstate_ == "40P01"; }

 private:
  std::string sqlstate_;
  std::string primary_;
  std::string constraint_;
  bool connection_lost_;
  bool in_doubt_;
};

/// Thrown when a conditional update finds the run changed since it was read; the
/// transaction is rolled back and run again from the start.
struct WriteConflict {};

class Result {
 public:
  Result() = default;
  explicit Result(pg_result* r);
  Result(Result&&) noexcept;
  Result& operator=(Result&&) noexcept;
  ~Result();

  int rows() const;
  bool is_null(int row, int col) const;
  std::string_view text(int row, int col) const;
  std::string str(int row, int col) const { return std::string(text(row, col)); }
  std::optional<std::string> opt_str(int row, int col) const;
  std::int64_t i64(int row, int col) const;
  bool boolean(int row, int col) const;
  /// Rows changed by an INSERT/UPDATE/DELETE.
  std::int64_t affected() const;

 private:
  pg_result* r_ = nullptr;
};

/// A parameter: text or NULL. Every value crosses as text; PostgreSQL casts it.
using Param = std::optional<std::string>;

/// A count that moves whenever this process opens a connection (or tries to) or finds one
/// lost. What a process remembers of its own commits is trusted only while it stands: a
/// database that lost commits it had acknowledged (a crash with synchronous_commit off, a
/// failover to a replica behind) ends the sessions that saw them and is met again through new
/// ones, so a count that moved says the remembered rows may be ahead of the database
/// (store/committed_state.hpp).
std::uint64_t session_generation();
/// How many connections of this process were found lost so far, counted the moment each is
/// found (before the error reaches any caller): after a PostgreSQL restart every other session
/// is dead too, and a pool checks each of its connections before its next use.
std::uint64_t sessions_lost();

class Connection {
 public:
  /// `session_settings` are PostgreSQL command-line options for this session ("-c name=value
  /// ..."), applied after the defaults (connect_with_defaults in connection.cpp), so they win;
  /// `conninfo`'s own `options`, if any, replace both.
  explicit Connection(const std::string& conninfo, std::string_view session_settings = {});
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  /// Runs one statement, preparing it on first use on this connection under `name`, after the
  /// deferred ones (all in one round trip). Throws PgError, or WriteConflict from a deferred one.
  Result exec(std::string_view name, std::string_view sql, std::span<const Param> params = {});
  Result exec(std::string_view name, std::string_view sql, std::initializer_list<Param> params) {
    return exec(name, sql, std::span<const Param>(params.begin(), params.size()));
  }
  /// Queues a write whose rows nobody reads. Deferred writes go out, in order, with the next
  /// exec() or commit(), in one round trip (libpq pipeline mode): later reads still see them,
  /// and an error in one surfaces from that call. The COMMIT of the same pipeline then does
  /// not happen, so a condition a write depends on must be checked by the statement itself,
  /// as an error (see reprise_fence), never by looking at its row count afterwards.
  void defer(std::string_view name, std::string_view sql, std::vector<Param> params);
  /// A read that rides with the next pipeline (the next exec() or the COMMIT): its rows are in
  /// the returned result once that has run. For a read whose answer is only needed after the
  /// transaction commits (the history handed to a worker), it saves a round trip.
  std::shared_ptr<const Result> defer_read(std::string_view name, std::string_view sql, std::vector<Param> params);
  /// Several reads in one round trip (with whatever is deferred before them).
  struct Statement {
    std::string name, sql;
    std::vector<Param> params;
  };
  Result exec(const Statement& s);
  std::vector<Result> exec_all(std::vector<Statement> statements);
  /// Runs SQL text without parameters (several statements allowed). Throws PgError.
  void exec_script(std::string_view sql);

  /// Starts a transaction. BEGIN is sent with the transaction's first statement, and a
  /// transaction that ran none costs no round trip at all.
  void begin();
  /// Commits, sending the deferred writes with it in one pipeline (a transaction sent whole
  /// goes without BEGIN and COMMIT: the pipeline's Sync commits it). Throws PgError with
  /// in_doubt() when the connection dies while committing, WriteConflict or PgError when a
  /// deferred write failed.
  void commit();
  /// Never throws: a failed rollback marks the connection broken.
  void rollback() noexcept;
  /// Runs `hook` once the current transaction has committed; dropped if it does not.
  void after_commit(std::function<void()> hook) { commit_hooks_.push_back(std::move(hook)); }
  /// session_generation() when the current transaction began: what a commit hook that
  /// remembers what it read must be tied to (store/committed_state.hpp).
  std::uint64_t began_generation() const { return began_generation_; }
  /// Runs `hook` if the current transaction rolls back or its COMMIT fails (or is in doubt).
  void after_rollback(std::function<void()> hook) { rollback_hooks_.push_back(std::move(hook)); }

  /// Commits this connection's transactions sent whole (nothing sent before the commit)
  /// together with other connections' through `group` (see CommitGroup); null commits each
  /// alone.
  void commit_with(CommitGroup* group) { group_ = group; }
  /// Names what the current transaction changes (store::group_key: a workflow id), so that a
  /// commit group never holds two transactions of it: the second would fail the first's
  /// version fence, or a unique index.
  void set_group_key(std::string key) { group_key_ = std::move(key); }

  /// A pipeline's results are waited for by polling the socket, for up to `spin` in all,
  /// before sleeping in poll(2): for a connection whose caller would rather keep a core busy
  /// than pay a thread wake-up when the answer comes (the lone-request connection under
  /// --idle-poll). Zero, the default, sleeps at once. Statements sent outside a pipeline (a
  /// lone exec() outside a transaction, a plain COMMIT) always sleep.
  void set_result_spin(std::chrono::microseconds spin) { spin_ = spin; }

  bool broken() const;
  /// Marks the connection lost, when the caller found out through native() (a listener).
  void mark_lost();
  int backend_pid() const;
  /// The raw handle, for LISTEN/NOTIFY users in connection-aware code.
  pg_conn* native() const { return conn_; }

 private:
  struct Deferred {
    std::string name, sql;
    std::vector<Param> params;
    std::shared_ptr<Result> rows;  // set for reads: where their result goes
  };
  [[noreturn]] void fail(std::string_view what, pg_result* r);
  void commit_now();
  /// Runs one list of hooks and drops both.
  void settle_hooks(bool committed) noexcept;
  std::vector<std::function<void()>> commit_hooks_, rollback_hooks_;
  /// Sends BEGIN (when pending), the deferred statements and COMMIT (with `commit`) in one
  /// pipeline, filling the result of every read among them. A whole transaction (BEGIN pending
  /// and `commit`) goes without either: its pipeline's Sync commits it.
  void run_pipeline(bool commit);
  /// Polls until the next result is in, or `until`.
  void spin_until_result(std::chrono::steady_clock::time_point until);
  /// Sleeps until the next result is in, or `until`; false at `until`.
  bool wait_for_result(std::chrono::steady_clock::time_point until);
  /// The last result of the command just sent outside a pipeline (`sent`: what PQsend* returned;
  /// a send that failed throws, naming `what`). A lone request's long wait for it is reported,
  /// as a pipeline's is; PQexec could not report it.
  pg_result* result_of_sent(std::string_view what, int sent);
  /// The same for any statements: BEGIN with `with_begin`, then `batch`, then COMMIT (both
  /// left out when both are asked for).
  void pipeline(std::span<const Deferred* const> batch, bool with_begin, bool commit);
  static std::vector<const Deferred*> statements_of(const std::vector<Deferred>& batch);
  /// True when nothing of the transaction has been sent: all of it is deferred writes, and
  /// reads whose rows are needed only after the commit.
  bool nothing_sent_yet() const;
  /// Runs a whole transaction sent at once on this connection (a group's member, on its own).
  void commit_alone(const std::vector<Deferred>& batch);
  /// Ends a transaction whose statements went out, leaving the hooks alone (a group's leader);
  /// nothing to send when the server has no transaction open (a whole pipeline ended it).
  void roll_back_sent() noexcept;
  friend class CommitGroup;

  pg_conn* conn_ = nullptr;
  std::uint64_t opened_generation_ = 0;  // session_generation() once this session was counted
  std::uint64_t began_generation_ = 0;   // session_generation() at the last begin()
  bool in_transaction_ = false;      // between begin() and commit()/rollback()
  bool begin_pending_ = false;       // begin() ran; BEGIN goes out with the first statement
  std::vector<Deferred> deferred_;
  std::unordered_set<std::string> prepared_;  // statement names prepared on this session
  CommitGroup* group_ = nullptr;
  std::string group_key_;  // cleared by begin()
  bool broken_ = false;
  std::chrono::microseconds spin_{0};
};

}  // namespace reprise::pg
