// A worker that gets a workflow task whose history did not fit one answer (over
// store::kMostHistoryPageBytes, 4 MiB) reads the rest as history pages and carries on; so does a
// query's.
#include <string>

#include <catch2/catch.hpp>

#include <reprise/client.hpp>
#include <reprise/registry.hpp>

#include "e2e/e2e_support.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::size_t kChunkBytes = 1536 * 1024;  // three of them: more than one answer holds
constexpr int kChunks = 4;

/// Waits for kChunks large chunks by signal; returns how many bytes came.
std::size_t collects_chunks(reprise::WorkflowContext& ctx) {
  std::size_t bytes = 0;
  int chunks = 0;
  ctx.on_signal<std::string>("chunk", [&](std::string chunk) {
    bytes += chunk.size();
    ++chunks;
  });
  ctx.on_query<int>("chunks", [&] { return chunks; });
  ctx.wait_condition([&] { return chunks == kChunks; });
  return bytes;
}

void register_chunks(reprise::Registry& r) { r.add_workflow("collects_chunks", collects_chunks); }

}  // namespace

TEST_CASE("a workflow task and a query whose history comes in pages see all of it", "[e2e][history]") {
  const auto queue = e2e::unique_queue("history-pages");
  // No cache: every task carries the whole history, as for a worker that does not hold the run.
  e2e::TestWorker worker(queue, 0, "", register_chunks);
  reprise::Client client(e2e::server_address());
  auto handle = client.start("collects_chunks", nullptr, {.id = e2e::unique_queue("history-pages"), .task_queue = queue});
  for (char c : {'a', 'b', 'c'}) handle.signal("chunk", std::string(kChunkBytes, c));
  // Three chunks in: a query's history is over one answer already, with the last chunk to come.
  int seen = 0;
  reprise::test::wait_until([&] {
    try {
      seen = handle.query<int>("chunks", nullptr, 10s);
    } catch (const reprise::ServiceError&) {
      return false;  // asked before the first task ran: nothing to answer from yet
    }
    return seen == 3;
  }, 30s, "a query to see three chunks");
  handle.signal("chunk", std::string(kChunkBytes, 'd'));
  CHECK(handle.result<std::size_t>(30s) == kChunks * kChunkBytes);
}
