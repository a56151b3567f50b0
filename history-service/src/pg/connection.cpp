#include "pg/connection.hpp"

#include "pg/commit_group.hpp"
#include "pg/long_wait.hpp"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>

#include <fmt/format.h>
#include <libpq-fe.h>

namespace reprise::pg {

Result::Result(pg_result* r) : r_(r) {}
Result::Result(Result&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
Result& Result::operator=(Result&& o) noexcept {
  if (this != &o) {
    if (r_) PQclear(r_);
    r_ = std::exchange(o.r_, nullptr);
  }
  return *this;
}
Result::~Result() {
  if (r_) PQclear(r_);
}

int Result::rows() const { return r_ ? PQntuples(r_) : 0; }
bool Result::is_null(int row, int col) const { return PQgetisnull(r_, row, col); }
std::string_view Result::text(int row, int col) const {
  return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
}
std::optional<std::string> Result::opt_str(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return str(row, col);
}
std::int64_t Result::i64(int row, int col) const {
  auto t = text(row, col);
  std::int64_t v = 0;
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}
bool Result::boolean(int row, int col) const { return text(row, col) == "t"; }
std::int64_t Result::affected() const {
  const char* n = PQcmdTuples(r_);
  return n && *n ? std::strtoll(n, nullptr, 10) : 0;
}

namespace {

/// Opens a connection with defaults that keep a dead network or a stuck peer from holding a
/// thread forever: TCP keepalives and a user timeout notice a vanished server, and the
/// session timeouts end a statement, a lock wait or an idle transaction that hangs. Settings
/// in the caller's conninfo win: it is expanded last.
pg_conn* connect_with_defaults(const std::string& conninfo, std::string_view session_settings) {
  std::string options =
      "-c statement_timeout=60000 -c lock_timeout=30000 -c idle_in_transaction_session_timeout=120000";
  if (!session_settings.empty()) options.append(" ").append(session_settings);
  const char* keywords[] = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                            "keepalives_count", "tcp_user_timeout", "application_name", "options",
                            "dbname", nullptr};
  const char* values[] = {"10", "1", "10", "5", "3", "30000", "reprise-server", options.c_str(), conninfo.c_str(),
                          nullptr};
  return PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
}

/// libpq's messages end in a newline; ours are embedded in others.
std::string one_line(std::string message) {
  while (!message.empty() && message.back() == '\n') message.pop_back();
  return message;
}

std::atomic<std::uint64_t> generation{0};
std::atomic<std::uint64_t> losses{0};

}  // namespace

std::uint64_t session_generation() { return generation.load(); }
std::uint64_t sessions_lost() { return losses.load(); }

Connection::Connection(const std::string& conninfo, std::string_view session_settings) {
  // Counted before the session exists, so that nothing this session commits can be
  // remembered under the count from before it.
  opened_generation_ = generation.fetch_add(1) + 1;
  conn_ = connect_with_defaults(conninfo, session_settings);
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string msg = one_line(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    throw PgError(fmt::format("cannot connect to PostgreSQL: {}", msg), "08001", true);
  }
}

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

bool Connection::broken() const { return broken_ || PQstatus(conn_) != CONNECTION_OK; }

void Connection::mark_lost() {
  if (std::exchange(broken_, true)) return;
  losses.fetch_add(1);
  generation.fetch_add(1);
}
int Connection::backend_pid() const { return PQbackendPID(conn_); }

namespace {

/// What a failed result says about its error (each field empty when absent).
struct Diagnostics {
  std::string state, message, primary, constraint;
};

Diagnostics diagnostics_of(const pg_result* r) {
  auto field = [r](int code) {
    const char* value = PQresultErrorField(r, code);
    return std::string(value ? value : "");
  };
  return {field(PG_DIAG_SQLSTATE), one_line(PQresultErrorMessage(r)), field(PG_DIAG_MESSAGE_PRIMARY),
          field(PG_DIAG_CONSTRAINT_NAME)};
}

}  // namespace

void Connection::fail(std::string_view what, pg_result* r) {
  Diagnostics d;
  if (r) {
    d = diagnostics_of(r);
    PQclear(r);
  }
  if (d.message.empty()) d.message = one_line(PQerrorMessage(conn_));
  bool lost = PQstatus(conn_) != CONNECTION_OK;
  if (lost) mark_lost();
  if (d.state.empty()) d.state = lost ? "08006" : "XX000";
  throw PgError(fmt::format("{}: {}", what, d.message), d.state, lost, false, d.primary, d.constraint);
}

Result Connection::exec(std::string_view name, std::string_view sql, std::span<const Param> params) {
  if (begin_pending_ || !deferred_.empty()) {
    auto rows = std::make_shared<Result>();
    deferred_.push_back({std::string(name), std::string(sql), std::vector<Param>(params.begin(), params.end()), rows});
    run_pipeline(/*commit=*/false);
    return std::move(*rows);
  }
  std::string stmt(name);
  if (!prepared_.contains(stmt)) {
    const auto what = fmt::format("preparing {}", name);
    pg_result* r = result_of_sent(what, PQsendPrepare(conn_, stmt.c_str(), std::string(sql).c_str(), 0, nullptr));
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail(what, r);
    PQclear(r);
    prepared_.insert(stmt);
  }
  std::vector<const char*> values(params.size());
  for (std::size_t i = 0; i < params.size(); ++i)
    values[i] = params[i] ? params[i]->c_str() : nullptr;
  pg_result* r = result_of_sent(name, PQsendQueryPrepared(conn_, stmt.c_str(), static_cast<int>(params.size()),
                                                          values.data(), nullptr, nullptr, 0));
  auto status = PQresultStatus(r);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(name, r);
  return Result(r);
}

void Connection::defer(std::string_view name, std::string_view sql, std::vector<Param> params) {
  if (!in_transaction_) {  // nothing to batch with, and nobody would send it later
    exec(name, sql, params);
    return;
  }
  deferred_.push_back({std::string(name), std::string(sql), std::move(params)});
}

std::shared_ptr<const Result> Connection::defer_read(std::string_view name, std::string_view sql,
                                                    std::vector<Param> params) {
  auto rows = std::make_shared<Result>();
  deferred_.push_back({std::string(name), std::string(sql), std::move(params), rows});
  if (!in_transaction_) run_pipeline(/*commit=*/false);
  return rows;
}

std::vector<Result> Connection::exec_all(std::vector<Statement> statements) {
  std::vector<std::shared_ptr<Result>> slots;
  for (auto& s : statements) {
    slots.push_back(std::make_shared<Result>());
    deferred_.push_back({std::string(s.name), std::string(s.sql), std::move(s.params), slots.back()});
  }
  run_pipeline(/*commit=*/false);
  std::vector<Result> out;
  for (auto& slot : slots) out.push_back(std::move(*slot));
  return out;
}

Result Connection::exec(const Statement& s) { return exec(s.name, s.sql, s.params); }

void Connection::begin() {
  deferred_.clear();
  group_key_.clear();
  commit_hooks_.clear();
  rollback_hooks_.clear();
  begin_pending_ = true;
  in_transaction_ = true;
  began_generation_ = generation.load();
}

void Connection::run_pipeline(bool commit) {
  const auto batch = std::exchange(deferred_, {});
  const bool with_begin = std::exchange(begin_pending_, false);
  pipeline(statements_of(batch), with_begin, commit);
}

std::vector<const Connection::Deferred*> Connection::statements_of(const std::vector<Deferred>& batch) {
  std::vector<const Deferred*> statements;
  statements.reserve(batch.size());
  for (const auto& d : batch) statements.push_back(&d);
  return statements;
}

void Connection::pipeline(std::span<const Deferred* const> batch, bool with_begin, bool commit) {
  enum class Kind { kPlain, kPrepare, kStatement };
  struct Sent {
    Kind kind;
    const Deferred* statement;  // null for BEGIN and COMMIT
    const char* plain = nullptr;
  };
  std::vector<Sent> sent;
  std::unordered_set<std::string> preparing;
  auto lost = [&](std::string_view what) -> PgError {
    mark_lost();
    if (commit)
      return PgError(fmt::format("COMMIT: the connection was lost ({}); the transaction may or may not have committed",
                                 what),
                     "08007", true, /*in_doubt=*/true);
    return PgError(fmt::format("{}: the connection was lost: {}", what, PQerrorMessage(conn_)), "08006", true);
  };
  // Blocking mode is safe here although a group's pipeline can carry reads (a task's history)
  // ahead of more statements: when a send would block, libpq reads what the server has sent
  // meanwhile, so the server never stalls on a full send buffer while we are still sending.
  if (PQenterPipelineMode(conn_) != 1) throw lost("entering pipeline mode");
  auto check_sent = [&](int ok, std::string_view what) {
    if (!ok) throw lost(what);
  };
  auto send_plain = [&](const char* sql) {
    check_sent(PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0), sql);
    sent.push_back({Kind::kPlain, nullptr, sql});
  };
  auto send_statement = [&](const Deferred& d) {
    if (!prepared_.contains(d.name) && preparing.insert(d.name).second) {
      check_sent(PQsendPrepare(conn_, d.name.c_str(), d.sql.c_str(), 0, nullptr), d.name);
      sent.push_back({Kind::kPrepare, &d});
    }
    std::vector<const char*> values(d.params.size());
    for (std::size_t i = 0; i < d.params.size(); ++i) values[i] = d.params[i] ? d.params[i]->c_str() : nullptr;
    check_sent(PQsendQueryPrepared(conn_, d.name.c_str(), static_cast<int>(values.size()), values.data(), nullptr,
                                   nullptr, 0),
               d.name);
    sent.push_back({Kind::kStatement, &d});
  };
  // A whole transaction in one pipeline needs no BEGIN or COMMIT: the statements up to a Sync
  // run as one transaction, which the Sync commits, or rolls back if any of them failed (the
  // extended query protocol's rule). Two statements fewer for every transaction sent whole.
  const bool whole = with_begin && commit;
  if (with_begin && !whole) send_plain("BEGIN");
  for (const Deferred* d : batch) send_statement(*d);
  if (commit && !whole) send_plain("COMMIT");
  check_sent(PQpipelineSync(conn_), "sync");
  // One budget for the whole pipeline: a read ahead of the writes can bring its rows early.
  const auto sent_at = std::chrono::steady_clock::now();
  const auto spin_until = sent_at + spin_;
  LongWait long_wait(sent_at);  // one for the whole pipeline, reported at most once

  // Each command's results end with a NULL; the sync point ends the pipeline. After an error
  // the rest report PIPELINE_ABORTED: the first error is the one that counts.
  std::optional<PgError> error;
  std::size_t index = 0;
  for (std::size_t nulls = 0;;) {
    if (spin_.count() > 0) spin_until_result(spin_until);
    if (long_wait.pending() && !wait_for_result(long_wait.report_at())) long_wait.report();
    pg_result* r = PQgetResult(conn_);
    if (!r) {
      if (PQstatus(conn_) != CONNECTION_OK || ++nulls > sent.size() + 1) throw lost("reading pipeline results");
      ++index;
      continue;
    }
    const auto status = PQresultStatus(r);
    if (status == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      break;
    }
    const Sent* s = index < sent.size() ? &sent[index] : nullptr;
    if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE || status == PGRES_NONFATAL_ERROR) {
      if (!error) {
        auto d = diagnostics_of(r);
        std::string what = !s                ? std::string("pipeline")
                           : s->statement ? (s->kind == Kind::kPrepare ? "preparing " : "") + s->statement->name
                                          : std::string(s->plain);
        error.emplace(fmt::format("{}: {}", what, d.message), d.state.empty() ? "XX000" : d.state, false, false,
                      d.primary, d.constraint);
      }
      PQclear(r);
      continue;
    }
    if (status == PGRES_PIPELINE_ABORTED || !s) {
      PQclear(r);
      continue;
    }
    if (s->kind == Kind::kPrepare) prepared_.insert(s->statement->name);
    if (s->kind == Kind::kStatement && s->statement->rows) *s->statement->rows = Result(r);
    else PQclear(r);
  }
  if (PQexitPipelineMode(conn_) != 1) throw lost("leaving pipeline mode");
  if (error) throw *error;
}

void Connection::spin_until_result(std::chrono::steady_clock::time_point until) {
  // PQconsumeInput reads what has arrived without blocking; an error it meets (a closed
  // socket) is left for PQgetResult to report.
  while (PQisBusy(conn_) && PQconsumeInput(conn_) == 1 && PQisBusy(conn_) &&
         std::chrono::steady_clock::now() < until) {
  }
}

bool Connection::wait_for_result(std::chrono::steady_clock::time_point until) {
  // An error met on the way (a closed socket) is left for PQgetResult to report.
  while (PQisBusy(conn_)) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    // Over TLS, bytes the TLS layer has already read sit where poll(2) cannot see them: polled
    // in short slices, each followed by a read, so the wait is not overstated.
    const int slice = PQsslInUse(conn_) ? 1 : static_cast<int>(left.count());
    pollfd fd{PQsocket(conn_), POLLIN, 0};
    const int ready = ::poll(&fd, 1, std::min(slice, static_cast<int>(left.count())));
    if (ready == 0 && slice == 1 && PQconsumeInput(conn_) != 1) return true;
    if (ready < 0 && errno != EINTR) return true;
    if (ready > 0 && PQconsumeInput(conn_) != 1) return true;
  }
  return true;
}

pg_result* Connection::result_of_sent(std::string_view what, int sent) {
  if (!sent) fail(what, nullptr);
  if (LongWait long_wait; long_wait.pending() && !wait_for_result(long_wait.report_at())) long_wait.report();
  // As PQexec: every result is read, and the last one returned (the error, after one); it
  // stops at a lost connection and at COPY, which nothing here sends.
  pg_result* last = nullptr;
  while (pg_result* r = PQgetResult(conn_)) {
    if (last) PQclear(last);
    last = r;
    const auto status = PQresultStatus(r);
    if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH ||
        PQstatus(conn_) == CONNECTION_BAD)
      break;
  }
  return last;
}

void Connection::exec_script(std::string_view sql) {
  if (begin_pending_ || !deferred_.empty()) run_pipeline(/*commit=*/false);
  std::string what(sql.substr(0, 40));
  if (sql.size() > 40) what += "...";
  pg_result* r = result_of_sent(what, PQsendQuery(conn_, std::string(sql).c_str()));
  auto status = PQresultStatus(r);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(what, r);
  PQclear(r);
}

void Connection::settle_hooks(bool committed) noexcept {
  auto hooks = std::exchange(committed ? commit_hooks_ : rollback_hooks_, {});
  commit_hooks_.clear();
  rollback_hooks_.clear();
  for (auto& hook : hooks) hook();
}

void Connection::commit() {
  try {
    commit_now();
  } catch (...) {
    settle_hooks(/*committed=*/false);
    throw;
  }
  settle_hooks(/*committed=*/true);
}

void Connection::commit_now() {
  in_transaction_ = false;
  if (begin_pending_ && deferred_.empty()) {
    begin_pending_ = false;  // the transaction never ran a statement: nothing to commit
    return;
  }
  if (group_ && nothing_sent_yet()) {
    group_->commit(*this);  // the whole transaction goes out at once: commit it with others
    return;
  }
  if (begin_pending_ || !deferred_.empty()) {
    run_pipeline(/*commit=*/true);
    return;
  }
  // A COMMIT whose send failed with the connection gone is in doubt, as one lost after it.
  const int sent = PQsendQuery(conn_, "COMMIT");
  pg_result* r = sent ? result_of_sent("COMMIT", sent) : nullptr;
  if (PQresultStatus(r) == PGRES_COMMAND_OK) {
    PQclear(r);
    return;
  }
  if (PQstatus(conn_) != CONNECTION_OK) {
    PQclear(r);
    mark_lost();
    throw PgError("COMMIT: the connection was lost; the transaction may or may not have committed",
                  "08007", true, /*in_doubt=*/true);
  }
  fail("COMMIT", r);
}

bool Connection::nothing_sent_yet() const { return begin_pending_ && !deferred_.empty(); }

void Connection::commit_alone(const std::vector<Deferred>& batch) {
  pipeline(statements_of(batch), /*with_begin=*/true, /*commit=*/true);
}

void Connection::roll_back_sent() noexcept {
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    mark_lost();
    return;
  }
  // A whole transaction sent in one pipeline ended at its Sync, committed or rolled back.
  if (PQtransactionStatus(conn_) == PQTRANS_IDLE) return;
  pg_result* r = PQexec(conn_, "ROLLBACK");
  if (PQresultStatus(r) != PGRES_COMMAND_OK) broken_ = true;
  PQclear(r);
}

void Connection::rollback() noexcept {
  settle_hooks(/*committed=*/false);
  in_transaction_ = false;
  deferred_.clear();
  if (std::exchange(begin_pending_, false)) return;  // BEGIN never went out
  roll_back_sent();
}

}  // namespace reprise::pg
