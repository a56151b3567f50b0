// reprise-e2e-worker: a worker process running the end-to-end tests' workflows and activities,
// for the tests that kill a worker with SIGKILL.
//   reprise-e2e-worker --address 127.0.0.1:PORT --task-queue Q [--cache-size N]
//                      [--sticky-timeout-ms MS] [--poll-timeout-ms MS] [--identity NAME]
// Stops gracefully on SIGTERM/SIGINT.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <reprise/worker.hpp>

#include "e2e/e2e_workflows.hpp"

int main(int argc, char** argv) {
  reprise::WorkerOptions options{.poll_timeout = std::chrono::seconds(1)};
  options.sticky_schedule_to_start_timeout = std::chrono::seconds(1);
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "reprise-e2e-worker: %s needs a value\n", argv[i]);
      return 2;
    }
    std::string value = argv[++i];
    if (arg == "--address") options.address = value;
    else if (arg == "--task-queue") options.task_queue = value;
    else if (arg == "--cache-size") options.cache_size = std::stoul(value);
    else if (arg == "--sticky-timeout-ms") options.sticky_schedule_to_start_timeout = std::chrono::milliseconds(std::stol(value));
    else if (arg == "--identity") options.identity = value;
    else if (arg == "--poll-timeout-ms") options.poll_timeout = std::chrono::milliseconds(std::stol(value));
    else {
      std::fprintf(stderr, "reprise-e2e-worker: unknown option %s\n", argv[i - 1]);
      return 2;
    }
  }
  if (options.task_queue.empty()) {
    std::fprintf(stderr, "reprise-e2e-worker: --task-queue is required\n");
    return 2;
  }
  try {
    reprise::Worker worker(options);
    e2e::register_all(worker.registry());
    worker.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reprise-e2e-worker: %s\n", e.what());
    return 1;
  }
  return 0;
}
