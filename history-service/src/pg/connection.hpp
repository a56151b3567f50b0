#pragma once
/// A PostgreSQL connection (libpq) used from one thread at a time. libpq stays out of this
/// header: PGconn/PGresult are forward-declared, so only connection.cpp pays for libpq-fe.h.

#include <cstdint>
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

/// The store's one error root. `sqlstate()` is PostgreSQL's five-character code ("23505");
/// `in_doubt()` says a COMMIT was sent but its outcome is unknown (the connection died).
class PgError : public std::runtime_error {
 public:
  PgError(std::string message, std::string sqlstate, bool connection_lost, bool in_doubt = false)
      : std::runtime_error(std::move(message)),
        sqlstate_(std::move(sqlstate)),
        connection_lost_(connection_lost),
        in_doubt_(in_doubt) {}
  const std::string& sqlstate() const noexcept { return sqlstate_; }
  bool connection_lost() const noexcept { return connection_lost_; }
  bool in_doubt() const noexcept { return in_doubt_; }
  /// Serialization failure or deadlock: the whole transaction may be run again.
  bool retryable() const noexcept { return sqlstate_ == "40001" || sqlstate_ == "40P01"; }

 private:
  std::string sqlstate_;
  bool connection_lost_;
  bool in_doubt_;
};

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

class Connection {
 public:
  explicit Connection(const std::string& conninfo);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  /// Runs one statement, preparing it on first use on this connection under `name`. Throws PgError.
  Result exec(std::string_view name, std::string_view sql, std::span<const Param> params = {});
  Result exec(std::string_view name, std::string_view sql, std::initializer_list<Param> params) {
    return exec(name, sql, std::span<const Param>(params.begin(), params.size()));
  }
  /// Runs SQL text without parameters (several statements allowed). Throws PgError.
  void exec_script(std::string_view sql);

  void begin() { exec_script("BEGIN"); }
  /// Throws PgError with in_doubt() when the connection dies during COMMIT.
  void commit();
  /// Never throws: a failed rollback marks the connection broken.
  void rollback() noexcept;

  bool broken() const;
  int backend_pid() const;
  /// The raw handle, for LISTEN/NOTIFY users in connection-aware code.
  pg_conn* native() const { return conn_; }

 private:
  [[noreturn]] void fail(std::string_view what, pg_result* r);

  pg_conn* conn_ = nullptr;
  std::unordered_set<std::string> prepared_;  // statement names prepared on this session
  bool broken_ = false;
};

}  // namespace reprise::pg
