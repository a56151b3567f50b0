#pragma once
/// SQL through plain libpq, for tests that check a database beside the code under test (so
/// that no bug of pg::Connection hides in what the test sees).

#include <string>

struct pg_conn;

namespace reprise::test {

/// Runs `sql` (one statement or several) on `conn` and returns the first column of the first
/// row of its last result: "" when there is none. Throws std::runtime_error naming the
/// statement and PostgreSQL's message when it fails.
std::string query_value(pg_conn* conn, const std::string& sql);
/// The same on a connection of its own to `conninfo`, closed afterwards.
std::string query_value(const std::string& conninfo, const std::string& sql);
/// Backends of `conninfo`'s database waiting for a lock: how a test knows that the requests it
/// sent are queued behind a row it holds.
int lock_waiters(const std::string& conninfo);

}  // namespace reprise::test
