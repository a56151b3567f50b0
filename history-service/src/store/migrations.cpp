#include "store/migrations.hpp"

#include <random>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace reprise::store {
namespace {

// pg_advisory_lock key: "reprise" migrations. Any constant works as long as it never changes.
constexpr const char* kMigrationLock = "7233001";

}  // namespace

int apply_migrations(pg::Connection& conn) {
  // A migration may take long on a big database; the session's default timeouts are for
  // requests, not for this.
  conn.exec_script("SET statement_timeout = 0; SET lock_timeout = 0");
  conn.exec_script(fmt::format("SELECT pg_advisory_lock({})", kMigrationLock));
  int applied = 0;
  try {
    conn.exec_script(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT "
        "NULL, applied_at timestamptz NOT NULL DEFAULT now())");
    auto r = conn.exec("migrations_applied", "SELECT version FROM schema_migrations");
    std::set<std::int64_t> done;
    for (int i = 0; i < r.rows(); ++i) done.insert(r.i64(i, 0));
    for (const auto& m : embedded_migrations()) {
      if (done.contains(m.version)) continue;
      spdlog::info("msg=\"applying migration\" version={} name={}", m.version, m.name);
      conn.begin();
      try {
        conn.exec_script(m.sql);
        conn.exec("migration_record", "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)",
                  {std::to_string(m.version), m.name});
        conn.commit();
      } catch (...) {
        conn.rollback();
        throw;
      }
      ++applied;
    }
    if (!done.empty() && *done.rbegin() > embedded_migrations().back().version)
      spdlog::warn("msg=\"the database schema is newer than this server\" schema_version={} "
                   "server_knows={}",
                   *done.rbegin(), embedded_migrations().back().version);
  } catch (...) {
    conn.exec_script(fmt::format("SELECT pg_advisory_unlock({})", kMigrationLock));
    throw;
  }
  conn.exec_script(fmt::format("SELECT pg_advisory_unlock({})", kMigrationLock));
  return applied;
}

std::string token_secret(pg::Connection& conn) {
  std::random_device rd;
  std::string secret;
  for (int i = 0; i < 32; ++i) secret += fmt::format("{:02x}", rd() & 0xFF);
  conn.exec("secret_insert",
            "INSERT INTO cluster_metadata (key, value) VALUES ('task_token_secret', $1) ON CONFLICT "
            "DO NOTHING",
            {secret});
  auto r = conn.exec("secret_read", "SELECT value FROM cluster_metadata WHERE key = 'task_token_secret'");
  return r.str(0, 0);
}

}  // namespace reprise::store
