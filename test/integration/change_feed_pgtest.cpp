// The change feed tells other instances what committed, through NOTIFY, only when there are
// other instances: one alone on its database sends nothing, and one that learns of a peer
// first sends "*" (look again), so the peer's waiters read what it was never told about.
// The test's own session plays the peer: it LISTENs, and it counts as an instance once its
// application_name is the listeners' name.
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include "pg/connection.hpp"
#include "support/postgres_fixture.hpp"
#include "support/reprise_api.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

using namespace reprise::test;
using namespace std::chrono_literals;

namespace {

/// A session that LISTENs on the instances' channel and keeps what it hears, in order.
class Observer {
 public:
  explicit Observer(const std::string& url) : conn_(url) {
    conn_.exec_script("SET application_name = 'reprise-test-observer'");
    conn_.exec_script("LISTEN reprise_changes");
    // An instance's listener is also known by its last statement being that LISTEN.
    conn_.exec_script("SELECT 1");
  }
  /// Counts as one more instance from now on.
  void look_like_an_instance() { conn_.exec_script("SET application_name = 'reprise-listener'"); }
  /// Everything heard so far, one payload per notification.
  const std::vector<std::string>& heard() {
    PGconn* raw = conn_.native();
    if (!PQconsumeInput(raw)) throw std::runtime_error(PQerrorMessage(raw));
    while (PGnotify* n = PQnotifies(raw)) {
      heard_.emplace_back(n->extra);
      PQfreemem(n);
    }
    return heard_;
  }
  /// Whether some payload heard has a line containing `text`.
  bool heard_about(const std::string& text) {
    for (const auto& payload : heard())
      if (payload.find(text) != std::string::npos) return true;
    return false;
  }

 private:
  reprise::pg::Connection conn_;
  std::vector<std::string> heard_;
};

/// When the server's feed last began counting the other instances' listeners, as text ("" if
/// it has not yet). Only this database's: servers of other tests share the cluster.
std::string last_peer_count(reprise::pg::Connection& admin) {
  auto rows = admin.exec("last_peer_count", R"(
    SELECT coalesce(max(query_start)::text, '') FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'reprise-server'
      AND query LIKE '%FROM pg_stat_activity%' AND pid <> pg_backend_pid())",
                         {});
  return std::string(rows.text(0, 0));
}

/// Whether the server's listening session has sent its LISTEN (and so queued its start-up
/// look-again).
bool server_listens(reprise::pg::Connection& admin) {
  auto rows = admin.exec("server_listens", R"(
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'reprise-listener'
      AND query = 'LISTEN reprise_changes')",
                         {});
  return rows.i64(0, 0) > 0;
}

/// Waits until the server listens and its feed has begun two counts since: its start-up
/// look-again has been sent, and the first count's verdict is in force. The last count is
/// seen only while it is the sender's last statement ("" once it has sent a notification).
void wait_for_two_counts(reprise::pg::Connection& admin) {
  wait_until([&] { return server_listens(admin); }, 10s, "the server listens");
  std::string first;
  wait_until([&] { return !(first = last_peer_count(admin)).empty(); }, 10s, "the feed counts its peers");
  wait_until([&] {
    auto now = last_peer_count(admin);
    return !now.empty() && now != first;
  }, 10s, "the feed counts its peers again");
}

}  // namespace

TEST_CASE("an instance serves only once it listens", "[pg][change-feed]") {
  // Its listener's first act wakes every waiter; a poll already waiting would be woken off the
  // idle list for nothing, just as a start came to hand it a task.
  ServerProcess server({.database_url = fresh_database("change_feed_ready")});
  const auto log = server.output();
  const auto listening = log.find("listening for other instances' notifications");
  const auto serving = log.find("msg=\"serving\"");
  REQUIRE(serving != std::string::npos);
  CHECK(listening < serving);
}

TEST_CASE("an instance alone sends no notifications; told of a peer, it sends look-again, then notifies",
          "[pg][change-feed]") {
  auto url = fresh_database("change_feed_alone");
  ServerProcess server({.database_url = url});
  RepriseApi api(server.port());
  reprise::pg::Connection admin(url);
  Observer observer(url);
  wait_for_two_counts(admin);  // the server now knows nobody else listens
  const auto heard_before = observer.heard().size();

  // A task created while alone: nobody is told.
  api.start_ok("while-alone", "Feed", "feed");

  // A peer appears: the server's next count finds it, it says "look again", then notifies.
  observer.look_like_an_instance();
  wait_until([&] { return observer.heard().size() > heard_before; }, 10s, "the server notices its new peer");
  CHECK(observer.heard()[heard_before] == "*");
  api.start_ok("with-a-peer", "Feed", "feed");
  wait_until([&] { return observer.heard_about("with-a-peer"); }, 10s, "the server notifies its peer");

  // Notifications arrive in commit order: had the first start been sent, it would be here.
  CHECK_FALSE(observer.heard_about("while-alone"));
}

TEST_CASE("an instance hearing from one it did not know of sends look-again", "[pg][change-feed]") {
  auto url = fresh_database("change_feed_hello");
  ServerProcess server({.database_url = url});
  reprise::pg::Connection admin(url);
  Observer observer(url);
  wait_for_two_counts(admin);
  const auto heard_before = observer.heard().size();

  // A notification from another session: whoever sent it is there, though no count will find
  // it (its session does not look like an instance), so this alone tells the server.
  // Looked up by content: a start-up look-again sent as the wait above ended may come first.
  const std::string hello = "q\tdefault\tworkflow\tnobody-polls-this";
  admin.exec_script("NOTIFY reprise_changes, '" + hello + "'");
  wait_until(
      [&] {
        const auto& heard = observer.heard();
        auto said = std::find(heard.begin() + static_cast<long>(heard_before), heard.end(), hello);
        return said != heard.end() && std::find(said + 1, heard.end(), "*") != heard.end();
      },
      10s, "the server answers the newcomer with a look-again");
}
