#include "support/raw_sql.hpp"

#include <memory>
#include <stdexcept>

#include <libpq-fe.h>

namespace reprise::test {

std::string query_value(pg_conn* conn, const std::string& sql) {
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn, sql.c_str()), &PQclear);
  const auto status = PQresultStatus(result.get());
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)
    throw std::runtime_error(sql + " failed: " + PQerrorMessage(conn));
  if (status != PGRES_TUPLES_OK || PQntuples(result.get()) == 0) return {};
  return PQgetvalue(result.get(), 0, 0);
}

std::string query_value(const std::string& conninfo, const std::string& sql) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK)
    throw std::runtime_error("cannot connect to " + conninfo + ": " + PQerrorMessage(conn.get()));
  return query_value(conn.get(), sql);
}

int lock_waiters(const std::string& conninfo) {
  return std::stoi(query_value(conninfo,
                               "SELECT count(*) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND wait_event_type = 'Lock'"));
}

}  // namespace reprise::test
