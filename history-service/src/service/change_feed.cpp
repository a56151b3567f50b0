#include "service/change_feed.hpp"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <fmt/compile.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include "pg/connection.hpp"
#include "service/wait_hub.hpp"

namespace reprise::service {
namespace {

constexpr const char* kChannel = "reprise_changes";
// NOTIFY payloads must stay under 8000 bytes; lines are joined up to this size.
constexpr std::size_t kMaxPayload = 7000;
constexpr auto kGatherWindow = std::chrono::milliseconds(1);
// How often the sender counts the other instances' listeners.
constexpr auto kPeerCountEvery = std::chrono::seconds(1);

}  // namespace

// Lines are tab-separated; the API rejects names with control characters, so tabs and
// newlines cannot occur inside a name. The formats are compiled: polls, starts and closes each
// make keys.
std::string queue_wait_key(const store::QueueKey& q) {
  return fmt::format(FMT_COMPILE("q\t{}\t{}\t{}"), q.ns, q.kind, q.task_queue);
}
std::string run_wait_key(const store::RunKey& r) {
  return fmt::format(FMT_COMPILE("r\t{}\t{}\t{}"), r.ns, r.workflow_id, r.run_id);
}

std::string query_wait_key(const std::string& query_id) { return "a\t" + query_id; }
std::string close_wait_key(const store::RunKey& r) {
  return fmt::format(FMT_COMPILE("c\t{}\t{}\t{}"), r.ns, r.workflow_id, r.run_id);
}

ChangeFeed::ChangeFeed(std::string conninfo, WaitHub& hub) : conninfo_(std::move(conninfo)), hub_(hub) {}

ChangeFeed::~ChangeFeed() { stop(); }

void ChangeFeed::start() {
  sender_ = std::thread([this] { send_loop(); });
  listener_ = std::thread([this] { listen_loop(); });
}

bool ChangeFeed::wait_until_listening(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);  // stop() sets stopping_, and the listener listening_, under it
  return listening_changed_.wait_for(lock, timeout, [&] { return listening_ || stopping_; }) && listening_;
}

void ChangeFeed::stop() {
  {
    // Under the lock, so the sender cannot check its wait condition between our store and
    // our notify, and sleep through both.
    std::lock_guard lock(mutex_);
    if (stopping_.exchange(true)) return;
  }
  wake_.notify_all();
  listening_changed_.notify_all();
  if (sender_.joinable()) sender_.join();
  if (listener_.joinable()) listener_.join();
}

void ChangeFeed::publish(const store::Effects& effects) {
  std::vector<std::string> lines;
  // One wake per task created, so one new task wakes one poller rather than all of them.
  for (const auto& q : effects.new_tasks) {
    auto key = queue_wait_key(q);
    hub_.notify(key, 1);
    lines.push_back(std::move(key));
  }
  for (const auto& r : effects.changed_runs) {
    auto key = run_wait_key(r);
    hub_.notify(key);
    lines.push_back(std::move(key));
  }
  for (const auto& r : effects.closed_runs) {
    auto key = close_wait_key(r);
    hub_.notify(key);
    lines.push_back(std::move(key));
  }
  for (const auto& id : effects.answered_queries) {
    auto key = query_wait_key(id);
    hub_.notify(key);
    lines.push_back(std::move(key));
  }
  if (effects.earliest_timer && on_timer_) on_timer_(*effects.earliest_timer);
  // Alone: nobody to tell. Whoever starts listening later is sent kLookAgain (see peer_seen),
  // after this commit, so its waiters read what this one wrote.
  if (lines.empty() || !others_listen_) return;
  queue_lines(std::move(lines));
}

void ChangeFeed::queue_lines(std::vector<std::string> lines) {
  {
    std::lock_guard lock(mutex_);
    for (auto& l : lines) outbox_.push_back(std::move(l));
  }
  wake_.notify_one();
}

void ChangeFeed::peer_seen() {
  bool flipped;
  {
    std::lock_guard lock(peers_mutex_);
    ++peer_news_;
    flipped = !others_listen_.exchange(true);
  }
  if (flipped) queue_lines({kLookAgain});
}

void ChangeFeed::count_peers(pg::Connection& conn) {
  std::uint64_t news_before;
  {
    std::lock_guard lock(peers_mutex_);
    news_before = peer_news_;
  }
  try {
    // An instance of a version that did not name its listener is known by its last statement.
    auto rows = conn.exec("count_listeners", R"(
      SELECT count(*) FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> $2::int
        AND (application_name = $1 OR query = 'LISTEN reprise_changes'))",
                          {std::string(kListenerName), std::to_string(listener_pid_.load())});
    if (rows.i64(0, 0) > 0) return peer_seen();
    // Nobody else, unless a peer made itself known while the count ran (its snapshot may
    // predate that peer): then it stands until the next count.
    std::lock_guard lock(peers_mutex_);
    if (peer_news_ == news_before) others_listen_ = false;
  } catch (const std::exception& e) {
    // Cannot tell: notify, as if someone listened. The count is tried again in a second.
    spdlog::warn("msg=\"cannot count the other instances; notifying them anyway\" error=\"{}\"", e.what());
    peer_seen();
  }
}

void ChangeFeed::send_loop() {
  std::unique_ptr<pg::Connection> conn;
  auto next_count = std::chrono::steady_clock::now();
  for (bool last = false; !last;) {
    std::vector<std::string> lines;
    bool count_now = false;
    {
      std::unique_lock lock(mutex_);
      wake_.wait_until(lock, next_count, [&] { return stopping_ || !outbox_.empty(); });
      last = stopping_;  // one more pass sends what was published before stop()
      count_now = !last && std::chrono::steady_clock::now() >= next_count;
      if (!outbox_.empty()) {
        // Under load, a millisecond gathers the wake-ups of many commits into one NOTIFY.
        // Only other instances wait on these: this instance woke its own waiters already.
        if (!last) {
          lock.unlock();
          std::this_thread::sleep_for(kGatherWindow);
          lock.lock();
        }
        lines.swap(outbox_);
      }
    }
    try {
      if (count_now) next_count = std::chrono::steady_clock::now() + kPeerCountEvery;
      if (!count_now && lines.empty()) continue;
      if (!conn || conn->broken()) {
        // A notification is a wake-up, not data: one lost in a crash costs a waiter a re-read
        // at its deadline. So these commits do not wait for the WAL flush.
        conn = std::make_unique<pg::Connection>(conninfo_, "-c synchronous_commit=off");
        sender_pid_ = conn->backend_pid();
      }
      if (count_now) count_peers(*conn);
      if (lines.empty()) continue;
      // A look-again makes every waiter read again, so it stands for every other line.
      if (std::find(lines.begin(), lines.end(), kLookAgain) != lines.end()) lines = {kLookAgain};
      std::string payload;
      conn->begin();  // every chunk in one transaction: one commit however large the batch
      auto flush = [&] {
        if (payload.empty()) return;
        conn->defer("notify", "SELECT pg_notify($1, $2)", {std::string(kChannel), payload});
        payload.clear();
      };
      for (auto& line : lines) {
        if (payload.size() + line.size() + 1 > kMaxPayload) flush();
        if (!payload.empty()) payload += '\n';
        payload += line;
      }
      flush();
      conn->commit();
    } catch (const std::exception& e) {
      // Other instances miss these wake-ups; their polls still re-read the database when
      // their own listener reconnects or their deadline passes. Nothing durable is lost.
      spdlog::warn("msg=\"cannot notify other instances\" error=\"{}\"", e.what());
      // What was lost may include a look-again: count as alone until the next count or
      // notification finds the peers again, which sends a new one.
      {
        std::lock_guard lock(peers_mutex_);
        others_listen_ = false;
      }
      next_count = std::chrono::steady_clock::now();
      if (conn) conn->rollback();
      conn.reset();
      if (!last) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
}

void ChangeFeed::deliver(const std::string& payload) {
  std::size_t start = 0;
  while (start < payload.size()) {
    auto end = payload.find('\n', start);
    if (end == std::string::npos) end = payload.size();
    auto line = payload.substr(start, end - start);
    if (line == kLookAgain) hub_.notify_everyone();
    else hub_.notify(line, line.starts_with("q\t") ? 1 : -1);
    start = end + 1;
  }
}

void ChangeFeed::listen_loop() {
  while (!stopping_) {
    try {
      pg::Connection conn(conninfo_);
      conn.exec_script(fmt::format("SET application_name = '{}'", kListenerName));
      conn.exec_script(fmt::format("LISTEN {}", kChannel));
      listener_pid_ = conn.backend_pid();
      // Anything sent while we were not listening is lost: have every poll look again, here
      // and, since an instance that thought itself alone told nobody, everywhere.
      hub_.notify_everyone();
      queue_lines({kLookAgain});
      spdlog::info("msg=\"listening for other instances' notifications\" channel={}", kChannel);
      {
        std::lock_guard lock(mutex_);
        listening_ = true;
      }
      listening_changed_.notify_all();
      PGconn* raw = conn.native();
      while (!stopping_) {
        pollfd fd{PQsocket(raw), POLLIN, 0};
        int ready = ::poll(&fd, 1, 200);
        if (ready < 0 && errno != EINTR) throw std::runtime_error("poll() on the listen connection failed");
        if (ready <= 0) continue;
        if (!PQconsumeInput(raw)) {
          conn.mark_lost();  // the database may have restarted: see pg::session_generation()
          throw std::runtime_error(PQerrorMessage(raw));
        }
        while (PGnotify* n = PQnotifies(raw)) {
          if (n->be_pid != sender_pid_) {
            peer_seen();
            deliver(n->extra);
          }
          PQfreemem(n);
        }
      }
    } catch (const std::exception& e) {
      spdlog::warn("msg=\"lost the notification listener; reconnecting\" error=\"{}\"", e.what());
      for (int i = 0; i < 10 && !stopping_; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace reprise::service
