// The keys the service files runs, queues and commit groups under.
#include <catch2/catch.hpp>

#include "store/run_key.hpp"

using reprise::store::join_key;
using reprise::store::QueueKey;
using reprise::store::RunKey;

TEST_CASE("keys are their parts joined by slashes", "[keys]") {
  CHECK(to_string(RunKey{"default", "order-1", "5f0c"}) == "default/order-1/5f0c");
  CHECK(group_key(RunKey{"default", "order-1", "5f0c"}) == "default/order-1");
  CHECK(to_string(QueueKey{"default", "orders", "workflow"}) == "default/workflow/orders");
  // Empty parts keep their place.
  CHECK(join_key({"", "a", ""}) == "/a/");
  CHECK(join_key({"a", "a"}) == "a/a");
  CHECK(join_key({"only"}) == "only");
  CHECK(join_key({}).empty());
}
