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
  std::filesystem::path ready_file;  // written with the port once serving (for tests and scripts)
};

/// Serves until SIGINT/SIGTERM; returns the process exit code. Throws on start-up failure.
int run_server(const ServerAppOptions& options);

}  // namespace reprise::service
