#include <catch2/catch.hpp>
#include <reprise/protocol/api_error.hpp>

#include "store/task_token.hpp"

using namespace reprise::store;
using reprise::protocol::ApiError;
using reprise::protocol::ErrorCode;

namespace {
TaskToken sample() {
  return {TaskToken::Kind::kWorkflow, {"default", "order-1", "0033ce24-c86f-4049-b046-c663166d3943"}, 2, 3, 1};
}
ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e.code();
  }
  FAIL("no ApiError thrown");
  return ErrorCode::kInternal;
}
}  // namespace

TEST_CASE("a signed task token verifies back to the same task", "[unit][token]") {
  TaskTokenSigner signer("secret");
  auto t = signer.verify(signer.sign(sample()), TaskToken::Kind::kWorkflow);
  CHECK(t.run == sample().run);
  CHECK(t.scheduled_event_id == 2);
  CHECK(t.started_event_id == 3);
  CHECK(t.attempt == 1);
}

TEST_CASE("altered, foreign and wrong-kind task tokens are rejected", "[unit][token]") {
  TaskTokenSigner signer("secret");
  auto token = signer.sign(sample());
  auto altered = token;
  altered[altered.size() / 4] = altered[altered.size() / 4] == 'A' ? 'B' : 'A';  // inside the payload
  CHECK(code_of([&] { signer.verify(altered, TaskToken::Kind::kWorkflow); }) == ErrorCode::kInvalidTaskToken);
  CHECK(code_of([&] { TaskTokenSigner("other").verify(token, TaskToken::Kind::kWorkflow); }) ==
        ErrorCode::kInvalidTaskToken);
  CHECK(code_of([&] { signer.verify(token, TaskToken::Kind::kActivity); }) == ErrorCode::kInvalidTaskToken);
  CHECK(code_of([&] { signer.verify("no-dot", TaskToken::Kind::kWorkflow); }) == ErrorCode::kInvalidTaskToken);
}

TEST_CASE("a token's signature is HMAC-SHA256 of its payload, so every version's tokens verify",
          "[unit][token]") {
  // Computed outside Reprise (Python's hmac): base64url of the payload's JSON, a dot, and
  // base64url of HMAC-SHA256 under "secret" of that text. Instances of different versions share
  // a cluster during an upgrade, and each must accept the others' tokens.
  const std::string independent =
      "eyJhIjoxLCJrIjoidyIsIm4iOiJkZWZhdWx0IiwiciI6IjAwMzNjZTI0LWM4NmYtNDA0OS1iMDQ2LWM2NjMxNjZkMzk0MyIsInMiOjIsInQiOjMsInciOiJvcmRlci0xIn0"
      ".r1GBrKqaaBw7F8sPz1Zdw51LmqRmDxOlIQgz9DsOR5k";
  TaskTokenSigner signer("secret");
  CHECK(signer.sign(sample()) == independent);
  CHECK(signer.verify(independent, TaskToken::Kind::kWorkflow).run == sample().run);
  // The keyed context is copied for each MAC, never changed: signing again gives the same.
  CHECK(signer.sign(sample()) == independent);
}
