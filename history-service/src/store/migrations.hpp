#pragma once

#include <string>
#include <vector>

#include "pg/connection.hpp"

namespace reprise::store {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

/// The numbered files of history-service/sql, compiled into the binary.
const std::vector<Migration>& embedded_migrations();

/// Applies the migrations not yet applied, each in its own transaction, under an advisory
/// lock so that instances starting together apply each exactly once. Returns how many ran.
int apply_migrations(pg::Connection& conn);

/// The secret task tokens are signed with: made once by the first instance, shared by all.
std::string token_secret(pg::Connection& conn);

}  // namespace reprise::store
