#pragma once
/// One reprise-server instance: migrations, the database threads, the HTTP API, the change
/// feed and the timer loop, wired together and run until SIGINT or SIGTERM.

#include <chrono>
#include <filesystem>
#include <string>

#include "api/api.hpp"
#include "http/server.hpp"

namespace reprise::service {

struct ServerAppOptions {
  std::string database_url;
  http::ServerOptions http;
  api::ApiOptions api;
  int database_threads = 16;
  int io_threads = 1;
  /// How long the io thread, with nothing left to do and the database idle, polls for the next
  /// request before it sleeps, and how long a lone request's database wait polls for the
  /// answer: latency under light load for CPU (docs/architecture.md, "Idle polling"). 0: off.
  std::chrono::microseconds idle_poll{0};
  /// PostgreSQL's synchronous_commit for the store's sessions; empty: the database's own
  /// (on unless configured otherwise). "off" acknowledges a change before its commit is
  /// flushed: faster, and a PostgreSQL crash may lose the last moments of acknowledged changes
  /// (docs/architecture.md, "Relaxed durability").
  std::string synchronous_commit;
  std::filesystem::path ready_file;  // written with the port once serving (for tests and scripts)
};

/// Serves until SIGINT/SIGTERM; returns the process exit code. Throws on start-up failure.
int run_server(const ServerAppOptions& options);

}  // namespace reprise::service
