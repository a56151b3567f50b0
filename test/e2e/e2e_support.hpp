#pragma once
// What the end-to-end tests share: one reprise-server for the whole executable, workers in
// this process or in child processes, and readers of exported histories.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <reprise/client.hpp>
#include <reprise/worker.hpp>

#include "support/temp_dir.hpp"

namespace e2e {

using json = nlohmann::json;

/// "127.0.0.1:<port>" of the reprise-server every e2e test shares (started on first use on a
/// fresh database; each test uses task queues and workflow ids of its own).
const std::string& server_address();
/// The shared server's output so far (for failure messages).
std::string server_output();

/// A task queue name no other test uses: "<label>-<n>".
std::string unique_queue(const std::string& label);

/// A worker in this process, started on background threads, with every e2e workflow and
/// activity registered; shut down on destruction. Polls time out after 1 s so shutdown is quick.
class TestWorker {
 public:
  /// `extra` registers more workflows or activities before the worker starts.
  /// `configure` adjusts the options (concurrency, say) before the worker is made.
  TestWorker(const std::string& task_queue, std::size_t cache_size = 1000, std::string identity = "",
             const std::function<void(reprise::Registry&)>& extra = {},
             const std::function<void(reprise::WorkerOptions&)>& configure = {});
  ~TestWorker();
  TestWorker(const TestWorker&) = delete;
  TestWorker& operator=(const TestWorker&) = delete;
  reprise::Worker& worker() { return *worker_; }
  void shutdown();

 private:
  std::unique_ptr<reprise::Worker> worker_;
};

/// reprise-e2e-worker as a child process (stdout and stderr to a file); SIGKILLed and reaped
/// on destruction, and killed too if the test thread that started it exits.
class WorkerProcess {
 public:
  /// `extra_args` go after the standard ones (--poll-timeout-ms, --identity...).
  WorkerProcess(const std::string& task_queue, std::size_t cache_size, const std::filesystem::path& output_file,
                const std::vector<std::string>& extra_args = {});
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;
  pid_t pid() const { return pid_; }
  /// SIGKILL, then reap.
  void kill();
  /// Whether the process is still running.
  bool running();

 private:
  pid_t pid_ = -1;
};

/// The file's whole content ("" if it does not exist).
std::string read_file(const std::filesystem::path& path);

/// The event types of an exported history ({"events": [...]}) in order.
std::vector<std::string> event_types(const json& history);
/// How many events of `type` the history has.
int count_events(const json& history, const std::string& type);
/// The events of `type`, in order.
std::vector<json> events_of(const json& history, const std::string& type);
/// One line per event: "<id> <time> <type> <attributes, cut at 160 characters>", for failure messages.
std::string summarize(const json& history);
/// The invariants of every finished run: ids contiguous from 1, exactly one terminal event
/// (the last), and at most one completion event (Completed/Failed/TimedOut/Canceled) per
/// scheduled activity. Returns a description of each violation (empty: all hold).
std::vector<std::string> invariant_violations(const json& history);

}  // namespace e2e
