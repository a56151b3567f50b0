#include "service/server_app.hpp"

#include <algorithm>
#include <fstream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "pg/database.hpp"
#include "service/change_feed.hpp"
#include "service/io_loop.hpp"
#include "service/io_standby.hpp"
#include "service/timer_loop.hpp"
#include "service/wait_hub.hpp"
#include "store/migrations.hpp"

namespace reprise::service {

namespace {

void write_ready_file(const std::filesystem::path& path, int port) {
  // Write then rename, so a reader never sees a half-written file.
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp);
    out << port << "\n";
  }
  std::filesystem::rename(tmp, path);
}

/// Says so when the store's sessions acknowledge commits before flushing them, whether asked
/// for (--synchronous-commit off) or configured in the database: an operator must know that
/// "nothing acknowledged is lost" does not hold across a PostgreSQL crash. And when they do not
/// run with what --synchronous-commit asked for: an `options` in --database-url replaces it.
void warn_about_synchronous_commit(pg::Connection& conn, const std::string& asked) {
  const std::string setting = conn.exec("reprise_synchronous_commit", "SHOW synchronous_commit").str(0, 0);
  if (!asked.empty() && setting != asked)
    spdlog::warn(
        "msg=\"--synchronous-commit {} was asked for, but the server's sessions run with {}: an options= in "
        "--database-url replaces the server's session settings; add -c synchronous_commit={} to it\"",
        asked, setting, asked);
  if (setting != "off") return;
  spdlog::warn(
      "msg=\"synchronous_commit is off: changes are acknowledged before PostgreSQL flushes them, and a "
      "PostgreSQL crash can lose those of its last moments (up to three times wal_writer_delay); see "
      "docs/architecture.md, Relaxed durability\" synchronous_commit=off");
}

}  // namespace

int run_server(const ServerAppOptions& options) {
  const std::string session_settings =
      options.synchronous_commit.empty() ? "" : "-c synchronous_commit=" + options.synchronous_commit;
  std::string secret;
  {
    pg::Connection conn(options.database_url, session_settings);
    int applied = store::apply_migrations(conn);
    spdlog::info("msg=\"schema ready\" migrations_applied={}", applied);
    secret = store::token_secret(conn);
    warn_about_synchronous_commit(conn, options.synchronous_commit);
  }

  // The hint is the io thread count: with one (the default), asio never hands an event to a
  // second thread to run. The database threads still post here, and IoStandby runs it beside
  // the io thread while a lone request holds that up (and wakes it when it leaves).
  boost::asio::io_context io(options.io_threads);
  // Serves the connections while a lone request's transaction holds the io thread up.
  IoStandby standby(io);
  // A second commit group takes off once half the pool is queued: about the size a group
  // reaches under load with one in flight, so the groups do not shrink (docs/architecture.md).
  pg::CommitGroup::Options commits;
  commits.next_group_size = static_cast<std::size_t>(std::max(2, options.database_threads / 2));
  pg::Database db(options.database_url, {.threads = options.database_threads,
                                         .commits = commits,
                                         .lone_request_spin = options.idle_poll,
                                         .session_settings = session_settings});
  db.on_lone_request_stall([&standby] { standby.cover(); }, [&standby] { standby.release(); });
  WaitHub hub(io);
  ChangeFeed feed(options.database_url, hub);
  TimerLoop timers(options.database_url, session_settings, [&feed](const store::Effects& e) { feed.publish(e); });
  feed.on_timer([&timers](protocol::Timestamp at) { timers.timer_set(at); });
  store::set_history_limit(options.api.limits.history_max_events);
  api::Api api(io, db, hub, feed, store::TaskTokenSigner(secret), options.api);
  http::Server server(io, options.http, [&api](http::Request&& r, http::Respond respond) {
    api.handle(std::move(r), std::move(respond));
  });

  // Caught from here on (a signal during the wait below is queued, not fatal): --dev must
  // stop its PostgreSQL however early it is told to stop.
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  feed.start();
  // Serving before the listener listens would let its first wake-up of every waiter take a
  // poll off the idle list just as a start came for it. Not listening within the time
  // (PostgreSQL refusing one more connection, say), it serves anyway: the listener keeps
  // trying, and polls re-read the database when their emptiness is due for a check.
  if (!feed.wait_until_listening(std::chrono::seconds(10)))
    spdlog::warn("msg=\"not yet listening for other instances' notifications; serving anyway\"");
  server.start();
  timers.start();
  spdlog::info("msg=\"serving\" address={} port={}", options.http.address, server.port());
  if (!options.ready_file.empty()) write_ready_file(options.ready_file, server.port());

  // Graceful stop: no new connections; waiting polls answer empty without claiming; then
  // the io threads stop once every request has been answered (or after 10 s).
  boost::asio::steady_timer drain_timer(io);
  auto drain_deadline = std::chrono::steady_clock::now();
  std::function<void()> stop_when_drained = [&] {
    if (api.in_flight() > 0 && std::chrono::steady_clock::now() < drain_deadline) {
      drain_timer.expires_after(std::chrono::milliseconds(20));
      drain_timer.async_wait([&](const boost::system::error_code&) { stop_when_drained(); });
      return;
    }
    // The last answers were handed to their connections; give the writes a moment.
    drain_timer.expires_after(std::chrono::milliseconds(100));
    drain_timer.async_wait([&](const boost::system::error_code&) { io.stop(); });
  };
  signals.async_wait([&](const boost::system::error_code&, int signal) {
    spdlog::info("msg=\"stopping\" signal={} requests_in_flight={}", signal, api.in_flight());
    server.stop();
    api.begin_drain();
    hub.notify_everyone();
    drain_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    stop_when_drained();
  });

  std::vector<std::thread> threads;
  for (int i = 1; i < options.io_threads; ++i) threads.emplace_back([&io] { io.run(); });
  // Only this thread polls when idle: one polling thread is enough to take the next request.
  run_io(io, options.idle_poll, [&db] { return db.all_idle(); });
  for (auto& t : threads) t.join();
  standby.stop();  // its last handler, if any, is over before what handlers use goes
  timers.stop();
  feed.stop();
  db.stop();
  spdlog::info("msg=\"stopped\"");
  return 0;
}

}  // namespace reprise::service
