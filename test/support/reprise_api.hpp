#pragma once
/// Drives reprise-server's HTTP API the way a worker and a client would, for integration
/// tests. Thin on purpose: each call is one request, and the raw answer is returned so a test
/// can assert on status codes and error codes as well as on results.

#include <future>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/http_client.hpp"

namespace reprise::test {

using nlohmann::json;

class RepriseApi {
 public:
  RepriseApi(int port, std::string ns = "default");

  HttpClient& http() { return http_; }
  /// "/api/v1/namespaces/<ns>" + suffix.
  std::string path(const std::string& suffix) const;

  HttpResponse start(const json& body);  // POST /workflows
  /// Starts and returns the run id; fails the test (throws) unless 201.
  std::string start_ok(const std::string& workflow_id, const std::string& type,
                       const std::string& queue, json extra = json::object());
  HttpResponse signal(const std::string& workflow_id, const json& body);
  HttpResponse signal_with_start(const std::string& workflow_id, const json& body);
  HttpResponse cancel(const std::string& workflow_id, const json& body = json::object());
  HttpResponse terminate(const std::string& workflow_id, const json& body = json::object());
  HttpResponse describe(const std::string& workflow_id, const std::string& run_id = "");
  HttpResponse list(const std::string& query = "");
  /// GET history; `query` like "wait=true&from_event_id=5&timeout=5s".
  HttpResponse history(const std::string& workflow_id, const std::string& query = "");
  /// Event types of the run's whole history, in order.
  std::vector<std::string> event_types(const std::string& workflow_id, const std::string& run_id = "");

  /// POST .../workflow-tasks/poll; returns the task object, or nullopt on an empty poll.
  std::optional<json> poll_workflow_task(const std::string& queue, const std::string& timeout = "5s",
                                         const std::string& identity = "test-worker");
  std::optional<json> poll_activity_task(const std::string& queue, const std::string& timeout = "5s",
                                         const std::string& identity = "test-worker");
  /// Polls until a task arrives or `timeout` passes (then throws).
  json expect_workflow_task(const std::string& queue, const std::string& timeout = "10s");
  json expect_activity_task(const std::string& queue, const std::string& timeout = "10s");

  HttpResponse complete_workflow_task(const std::string& token, const std::vector<json>& commands,
                                      json extra = json::object());
  HttpResponse fail_workflow_task(const std::string& token, const std::string& cause,
                                  const std::string& message);
  HttpResponse complete_activity(const std::string& token, const json& result, json extra = json::object());
  HttpResponse fail_activity(const std::string& token, const json& failure);
  HttpResponse heartbeat_activity(const std::string& token, const json& details);
  HttpResponse cancel_activity(const std::string& token, const json& details = nullptr);

  // Command builders.
  static json schedule_activity(const std::string& activity_id, const std::string& type,
                                json attributes = json::object());
  static json start_timer(const std::string& timer_id, const std::string& duration);
  static json complete_workflow(const json& result);
  static json command(const std::string& type, json attributes = json::object());

 private:
  HttpClient http_;
  std::string ns_;
};

/// Polls `queue` for a workflow task from a thread of its own (a poll blocks), as worker
/// `identity`, on a connection of its own.
std::future<std::optional<json>> poll_in_background(int port, const std::string& queue, const std::string& identity,
                                                    const std::string& timeout = "20s");
/// Waits until `count` workflow polls wait on `queue` at the server with nothing to claim.
void wait_for_waiting_polls(RepriseApi& api, const std::string& queue, std::size_t count);
/// A workflow poll by `identity` waiting on the empty `queue`, on the server's idle list until
/// its deadline, so that the next start's first task goes to it (sync match, held start).
std::future<std::optional<json>> poll_on_the_idle_list(RepriseApi& api, int port, const std::string& queue,
                                                       const std::string& identity);

/// The events of a run's whole history (the open or latest run when run_id is empty).
json history_events(RepriseApi& api, const std::string& workflow_id, const std::string& run_id = "");
/// The events of one type, in order.
std::vector<json> events_of_type(const json& events, const std::string& type);
/// How many times `type` occurs in a list of event types.
std::ptrdiff_t count_of(const std::vector<std::string>& types, const std::string& type);

}  // namespace reprise::test

// ---------------------------------------------------------------------------------------
// Fault-test helpers (restart / multi-instance / dev-mode fault tests). Appended block.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <sys/types.h>

namespace reprise::test {

/// Milliseconds since the epoch of a history event_time ("2024-05-01T12:00:00.123Z").
std::int64_t event_time_ms(const std::string& timestamp);

/// The reprise-server to run: $REPRISE_SERVER_BINARY, else the REPRISE_SERVER_BINARY compiled
/// in (if any), else ../history-service/reprise-server next to the test executable.
std::filesystem::path reprise_server_binary();

/// A reprise-server started with arbitrary arguments (e.g. --dev, which ServerProcess cannot
/// run because it always passes --database-url). stdout and stderr go to `output_file`.
/// Killed (SIGKILL) and reaped on destruction; PR_SET_PDEATHSIG as in ServerProcess, so
/// spawn it from the test's main thread.
class SpawnedServer {
 public:
  SpawnedServer(std::vector<std::string> args, std::filesystem::path output_file);
  SpawnedServer(const SpawnedServer&) = delete;
  SpawnedServer& operator=(const SpawnedServer&) = delete;
  ~SpawnedServer();

  pid_t pid() const { return pid_; }
  /// Waits until `ready_file` holds a port and returns it; throws (with the output) if the
  /// process exits first or `timeout` passes.
  int wait_ready(const std::filesystem::path& ready_file, std::chrono::milliseconds timeout);
  void signal(int sig);
  /// Waits up to `timeout` for the process to exit; returns its status like a shell
  /// (exit code or 128 + signal), or -1 if it is still running.
  int wait_exit(std::chrono::milliseconds timeout);
  /// SIGKILL and reap; returns the status.
  int kill();
  std::string output() const;

 private:
  bool try_reap();
  std::filesystem::path output_file_;
  pid_t pid_ = -1;
  int exit_status_ = -1;
};

}  // namespace reprise::test
// End of fault-test helpers.
// ---------------------------------------------------------------------------------------
