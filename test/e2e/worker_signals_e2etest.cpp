// A worker process stopped by signals: the first asks for a graceful stop, which waits for the
// activity running there; a second one must end the process at once, as an operator pressing
// Ctrl-C twice expects, not wait out the activity.
#include <csignal>
#include <fstream>

#include <catch2/catch.hpp>

#include <reprise/client.hpp>

#include "e2e/e2e_support.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using reprise::test::TempDir;
using reprise::test::wait_until;

TEST_CASE("a second SIGTERM ends a worker whose graceful stop waits for a running activity", "[e2e][signals]") {
  TempDir dir("e2e-signals");
  const auto queue = e2e::unique_queue("signals");
  reprise::Client client(e2e::server_address());
  e2e::WorkerProcess worker(queue, 1000, dir.path() / "worker.log");
  auto handle = client.start("killable_workflow", dir.path().string(),
                             {.id = e2e::unique_queue("signals"), .task_queue = queue});
  // Its second activity waits for a file that never comes (60 s, then it gives up).
  handle.signal("continue", true);
  wait_until([&] { return e2e::read_file(dir.path() / "started-1").ends_with("\n"); }, 30s,
             "the worker starts the activity that waits");

  // SIGTERM until the process is gone: the first starts the graceful stop, a later one ends it.
  const pid_t pid = worker.pid();
  wait_until(
      [&] {
        ::kill(pid, SIGTERM);
        return !worker.running();
      },
      10s, "the worker process ends on a second SIGTERM");
  CHECK_FALSE(worker.running());
  handle.terminate("the test is over");
}
