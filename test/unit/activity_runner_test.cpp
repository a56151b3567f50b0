// run_activity_task against an in-process stand-in for the service's activity endpoints: what
// an activity learns from the answers to its heartbeats, held ones among them, and what it
// reports.
#include <catch2/catch.hpp>
#include <reprise/activity.hpp>
#include <reprise/errors.hpp>
#include <reprise/registry.hpp>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "activity_runner.hpp"
#include "http/server.hpp"

using namespace reprise;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

/// Answers the first heartbeat "carry on", and every later one `later` (status and body);
/// every other request 200 {}. Keeps the path of each request.
class ActivityEndpoints {
 public:
  explicit ActivityEndpoints(http::Response later)
      : later_(std::move(later)), server_(io_, {.address = "127.0.0.1", .port = 0}, [this](http::Request&& r, http::Respond respond) {
          std::lock_guard lock(mutex_);
          paths_.push_back(r.path);
          const bool heartbeat = r.path.ends_with("/activity-tasks/heartbeat");
          if (heartbeat && ++heartbeats_ > 1) return respond(later_);
          respond({200, heartbeat ? R"({"cancel_requested":false})" : "{}"});
        }) {
    server_.start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ActivityEndpoints() {
    server_.stop();
    io_.stop();
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_.port()); }
  std::vector<std::string> paths() const {
    std::lock_guard lock(mutex_);
    return paths_;
  }

 private:
  const http::Response later_;
  boost::asio::io_context io_{1};
  http::Server server_;
  mutable std::mutex mutex_;
  std::vector<std::string> paths_;
  int heartbeats_ = 0;
  std::thread thread_;
};

/// Heartbeats twice at once, so the second is held by the batcher and sent when its interval
/// ends (a second); then only watches is_cancelled(), as a long loop of work would.
std::string heartbeats_then_watches(ActivityContext& ctx) {
  ctx.heartbeat(1);
  ctx.heartbeat(2);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ctx.is_cancelled()) throw CanceledError("stopping as asked");
    std::this_thread::sleep_for(5ms);
  }
  return "never told to stop";
}

std::vector<std::string> run_against(ActivityEndpoints& service) {
  Registry registry;
  registry.add_activity("heartbeats_then_watches", heartbeats_then_watches);
  detail::ServiceConnection connection(service.address());
  const json task = {{"task_token", "token-1"},       {"namespace", "default"},
                     {"workflow_id", "w"},             {"run_id", "r"},
                     {"activity_id", "a"},             {"activity_type", "heartbeats_then_watches"},
                     {"attempt", 1},                   {"heartbeat_timeout", "3s"}};
  const auto started = std::chrono::steady_clock::now();
  detail::run_activity_task(registry, connection, task, "test-worker", "");
  CHECK(std::chrono::steady_clock::now() - started < 8s);  // told by the held heartbeat's answer
  return service.paths();
}

}  // namespace

TEST_CASE("a cancel in the answer to a held heartbeat reaches an activity that no longer heartbeats",
          "[unit][activity][heartbeat]") {
  ActivityEndpoints service({200, R"({"cancel_requested":true})"});
  auto paths = run_against(service);
  REQUIRE(paths.size() == 3);
  CHECK(paths[0].ends_with("/activity-tasks/heartbeat"));
  CHECK(paths[1].ends_with("/activity-tasks/heartbeat"));
  CHECK(paths[2].ends_with("/activity-tasks/cancel"));  // reported canceled, as its workflow asked
}

TEST_CASE("an attempt found over in the answer to a held heartbeat stops its activity", "[unit][activity][heartbeat]") {
  ActivityEndpoints service(
      {409, R"({"error":{"code":"StaleTaskToken","message":"this attempt has ended (it failed or timed out) and the activity was retried"}})"});
  auto paths = run_against(service);
  REQUIRE(paths.size() >= 2);
  CHECK(paths[1].ends_with("/activity-tasks/heartbeat"));
  for (std::size_t i = 2; i < paths.size(); ++i) CHECK(!paths[i].ends_with("/activity-tasks/complete"));
}
