#include "service/server_app.hpp"

#include <fstream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include "pg/database.hpp"
#include "service/change_feed.hpp"
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

}  // namespace

int run_server(const ServerAppOptions& options) {
  std::string secret;
  {
    pg::Connection conn(options.database_url);
    int applied = store::apply_migrations(conn);
    spdlog::info("msg=\"schema ready\" migrations_applied={}", applied);
    secret = store::token_secret(conn);
  }

  boost::asio::io_context io;
  pg::Database db(options.database_url, options.database_threads);
  WaitHub hub(io);
  ChangeFeed feed(options.database_url, hub);
  TimerLoop timers(options.database_url, [&feed](const store::Effects& e) { feed.publish(e); });
  feed.on_timer([&timers](protocol::Timestamp at) { timers.timer_set(at); });
  api::Api api(db, hub, feed, store::TaskTokenSigner(secret), options.api);
  http::Server server(io, options.http, [&api](http::Request&& r, http::Respond respond) {
    api.handle(std::move(r), std::move(respond));
  });

  server.start();
  feed.start();
  timers.start();
  spdlog::info("msg=\"serving\" address={} port={}", options.http.address, server.port());
  if (!options.ready_file.empty()) write_ready_file(options.ready_file, server.port());

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int signal) {
    spdlog::info("msg=\"stopping\" signal={}", signal);
    server.stop();
    io.stop();
  });

  std::vector<std::thread> threads;
  for (int i = 1; i < options.io_threads; ++i) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  timers.stop();
  feed.stop();
  db.stop();
  spdlog::info("msg=\"stopped\"");
  return 0;
}

}  // namespace reprise::service
