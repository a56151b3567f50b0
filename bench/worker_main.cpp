// reprise-bench-worker: a reprise::Worker serving the benchmark workflows. Writes the number
// of warm (cached) runs to --status-file every 200 ms, for the driver's B6 measurement.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <reprise/worker.hpp>

#include "bench_workflows.hpp"

int main(int argc, char** argv) {
  CLI::App app{"reprise-bench-worker"};
  reprise::WorkerOptions options{.task_queue = "bench"};
  std::string status_file;
  app.add_option("--address", options.address)->capture_default_str();
  app.add_option("--task-queue", options.task_queue)->capture_default_str();
  app.add_option("--cache-size", options.cache_size)->capture_default_str();
  app.add_option("--workflow-pollers", options.workflow_pollers)->capture_default_str();
  app.add_option("--activity-pollers", options.activity_pollers)->capture_default_str();
  app.add_option("--eager-activity-threads", options.eager_activity_threads)->capture_default_str();
  app.add_option("--status-file", status_file);
  CLI11_PARSE(app, argc, argv);

  reprise::Worker worker(options);
  reprise_bench::register_bench(worker.registry());
  std::atomic<bool> stop{false};
  std::thread status;
  if (!status_file.empty()) {
    status = std::thread([&] {
      while (!stop) {
        {
          std::ofstream out(status_file + ".tmp", std::ios::trunc);
          out << worker.cached_runs() << "\n";
        }
        std::error_code ignored;
        std::filesystem::rename(status_file + ".tmp", status_file, ignored);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    });
  }
  worker.run();
  stop = true;
  if (status.joinable()) status.join();
  return 0;
}
