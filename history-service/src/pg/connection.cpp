#include "pg/connection.hpp"

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
pg_conn* connect_with_defaults(const std::string& conninfo) {
  const char* keywords[] = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                            "keepalives_count", "tcp_user_timeout", "application_name", "options",
                            "dbname", nullptr};
  const char* values[] = {"10", "1", "10", "5", "3", "30000", "reprise-server",
                          "-c statement_timeout=60000 -c lock_timeout=30000 "
                          "-c idle_in_transaction_session_timeout=120000",
                          conninfo.c_str(), nullptr};
  return PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
}

}  // namespace

Connection::Connection(const std::string& conninfo) : conn_(connect_with_defaults(conninfo)) {
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn_);
    PQfinish(conn_);
    conn_ = nullptr;
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    throw PgError(fmt::format("cannot connect to PostgreSQL: {}", msg), "08001", true);
  }
}

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

bool Connection::broken() const { return broken_ || PQstatus(conn_) != CONNECTION_OK; }
int Connection::backend_pid() const { return PQbackendPID(conn_); }

void Connection::fail(std::string_view what, pg_result* r) {
  std::string state;
  std::string msg;
  if (r) {
    if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) state = s;
    msg = PQresultErrorMessage(r);
    PQclear(r);
  }
  if (msg.empty()) msg = PQerrorMessage(conn_);
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  bool lost = PQstatus(conn_) != CONNECTION_OK;
  if (lost) broken_ = true;
  if (state.empty()) state = lost ? "08006" : "XX000";
  throw PgError(fmt::format("{}: {}", what, msg), state, lost);
}

Result Connection::exec(std::string_view name, std::string_view sql, std::span<const Param> params) {
  std::string stmt(name);
  if (!prepared_.contains(stmt)) {
    pg_result* r = PQprepare(conn_, stmt.c_str(), std::string(sql).c_str(), 0, nullptr);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail(fmt::format("preparing {}", name), r);
    PQclear(r);
    prepared_.insert(stmt);
  }
  std::vector<const char*> values(params.size());
  for (std::size_t i = 0; i < params.size(); ++i)
    values[i] = params[i] ? params[i]->c_str() : nullptr;
  pg_result* r = PQexecPrepared(conn_, stmt.c_str(), static_cast<int>(params.size()), values.data(),
                                nullptr, nullptr, 0);
  auto status = PQresultStatus(r);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(name, r);
  return Result(r);
}

void Connection::exec_script(std::string_view sql) {
  pg_result* r = PQexec(conn_, std::string(sql).c_str());
  auto status = PQresultStatus(r);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    std::string what(sql.substr(0, 40));
    if (sql.size() > 40) what += "...";
    fail(what, r);
  }
  PQclear(r);
}

void Connection::commit() {
  pg_result* r = PQexec(conn_, "COMMIT");
  if (PQresultStatus(r) == PGRES_COMMAND_OK) {
    PQclear(r);
    return;
  }
  if (PQstatus(conn_) != CONNECTION_OK) {
    PQclear(r);
    broken_ = true;
    throw PgError("COMMIT: the connection was lost; the transaction may or may not have committed",
                  "08007", true, /*in_doubt=*/true);
  }
  fail("COMMIT", r);
}

void Connection::rollback() noexcept {
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    broken_ = true;
    return;
  }
  pg_result* r = PQexec(conn_, "ROLLBACK");
  if (PQresultStatus(r) != PGRES_COMMAND_OK) broken_ = true;
  PQclear(r);
}

}  // namespace reprise::pg
