#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

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
  // The digest context is reset between MACs: signing again gives the same.
  CHECK(signer.sign(sample()) == independent);
}

TEST_CASE("secrets of a block and longer than a block sign as HMAC-SHA256 does", "[unit][token]") {
  // RFC 2104: a key of up to 64 bytes is padded, a longer one hashed first. Computed with
  // Python's hmac for the payload of sample().
  const std::string payload =
      "eyJhIjoxLCJrIjoidyIsIm4iOiJkZWZhdWx0IiwiciI6IjAwMzNjZTI0LWM4NmYtNDA0OS1iMDQ2LWM2NjMxNjZkMzk0MyIsInMiOjIsInQiOjMsInciOiJvcmRlci0xIn0";
  std::string hundred;
  for (int i = 0; i < 10; ++i) hundred += "0123456789";
  CHECK(TaskTokenSigner(hundred).sign(sample()) == payload + ".Javv9EzJ_zenM31ftDuJ-y7TcpPhuFMGtOBjBNSJk0s");
  CHECK(TaskTokenSigner(std::string(64, 'k')).sign(sample()) == payload + ".wVSXcNUAchG5XDYSQUAAh7mV0-nv_kY8Hhies_ofZBA");
}

TEST_CASE("tokens naming escaped or non-ASCII ids, and query tokens, are the text every version signs",
          "[unit][token]") {
  // Computed outside Reprise as above. The workflow id needs escapes (quote, backslash, a line
  // feed) and holds a non-ASCII letter; the token names a query, so it has "q".
  const std::string independent =
      "eyJhIjoyLCJrIjoicSIsIm4iOiJkZWZhdWx0IiwicSI6InEtNyIsInIiOiIwMDMzY2UyNC1jODZmLTQwNDktYjA0Ni1jNjYzMTY2ZDM5NDMi"
      "LCJzIjo1LCJ0Ijo2LCJ3Ijoic2F5IFwiaGlcIlxcIMO8XG4ifQ.-vxfXNXigAFe_L3HgXXPciqSeShXm6Mtp68_KSi8Nmc";
  TaskToken query{TaskToken::Kind::kQuery, {"default", "say \"hi\"\\ \xC3\xBC\n", "0033ce24-c86f-4049-b046-c663166d3943"},
                  5, 6, 2, "q-7"};
  TaskTokenSigner signer("secret");
  CHECK(signer.sign(query) == independent);
  auto back = signer.verify(independent, TaskToken::Kind::kQuery);
  CHECK(back.run == query.run);
  CHECK(back.query_id == "q-7");
  CHECK(back.scheduled_event_id == 5);
  CHECK(back.started_event_id == 6);
  CHECK(back.attempt == 2);

  // All ASCII: written and read back without nlohmann.
  query.run.workflow_id = "order-1";
  back = signer.verify(signer.sign(query), TaskToken::Kind::kQuery);
  CHECK(back.run == query.run);
  CHECK(back.query_id == "q-7");
  CHECK(back.scheduled_event_id == 5);

  // Payloads of every length modulo three (base64url's groups) round-trip.
  for (std::string id = "o"; id.size() < 7; id += 'x') {
    TaskToken t = sample();
    t.run.workflow_id = id;
    CHECK(signer.verify(signer.sign(t), TaskToken::Kind::kWorkflow).run.workflow_id == id);
  }

  // ASCII that needs escapes (quote, backslash, a control character; DEL goes raw), and a
  // negative attempt: written directly, to the byte of the independent vector.
  TaskToken escaped = sample();
  escaped.run.workflow_id = "a\"b\\c\x01\x7f";
  escaped.attempt = -1;
  const std::string escaped_vector =
      "eyJhIjotMSwiayI6InciLCJuIjoiZGVmYXVsdCIsInIiOiIwMDMzY2UyNC1jODZmLTQwNDktYjA0Ni1jNjYzMTY2ZDM5NDMiLCJzIjoyLCJ0"
      "IjozLCJ3IjoiYVwiYlxcY1x1MDAwMX8ifQ.Yb7O_2kD5nUKjUTt6-c7UcZW5iuDOR1ftIp_8bgFIMI";
  CHECK(signer.sign(escaped) == escaped_vector);
  back = signer.verify(escaped_vector, TaskToken::Kind::kWorkflow);
  CHECK(back.run == escaped.run);
  CHECK(back.attempt == -1);
}

TEST_CASE("a signed payload in another JSON layout still verifies", "[unit][token]") {
  // Spaces and keys in reverse order: not what any version writes, but valid JSON under a
  // valid signature, so the general reader takes it.
  const std::string other_layout =
      "eyAidyI6ICJvcmRlci0xIiwgInQiOiAzLCAicyI6IDIsICJyIjogIjAwMzNjZTI0LWM4NmYtNDA0OS1iMDQ2LWM2NjMxNjZkMzk0MyIsICJu"
      "IjogImRlZmF1bHQiLCAiayI6ICJhIiwgImEiOiAxIH0.l873DnIbI2hMsg3K0-GsrCIvQI7CZ-lN3IjLrEUH8jI";
  TaskTokenSigner signer("secret");
  auto t = signer.verify(other_layout, TaskToken::Kind::kActivity);
  CHECK(t.run == sample().run);
  CHECK(t.scheduled_event_id == 2);
  CHECK(t.started_event_id == 3);
  CHECK(t.attempt == 1);
  CHECK(code_of([&] { signer.verify(other_layout, TaskToken::Kind::kWorkflow); }) == ErrorCode::kInvalidTaskToken);
}

TEST_CASE("every thread signs and verifies alike (each has a digest context of its own)", "[unit][token]") {
  TaskTokenSigner signer("secret");
  const auto expected = signer.sign(sample());
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      for (int n = 0; n < 500; ++n) {
        if (signer.sign(sample()) != expected) ++mismatches;
        if (signer.verify(expected, TaskToken::Kind::kWorkflow).attempt != 1) ++mismatches;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(mismatches == 0);
}

TEST_CASE("signed payloads the direct reader leaves to the general parser read the same or are refused",
          "[unit][token]") {
  // Computed outside Reprise like the others. A leading zero is not JSON: the general parser
  // refuses it. An escaped letter (\u0041 for "A") is JSON, and reads as the letter.
  TaskTokenSigner signer("secret");
  const std::string leading_zero =
      "eyJhIjowMSwiayI6InciLCJuIjoiZGVmYXVsdCIsInIiOiIwMDMzY2UyNC1jODZmLTQwNDktYjA0Ni1jNjYzMTY2ZDM5NDMiLCJzIjoyLCJ0Ij"
      "ozLCJ3Ijoib3JkZXItMSJ9.oFWCHGmyKKEhrvAzUryzAvbntx_oE2PfsfOu_kBoRH8";
  CHECK(code_of([&] { signer.verify(leading_zero, TaskToken::Kind::kWorkflow); }) == ErrorCode::kInvalidTaskToken);
  const std::string escaped_letter =
      "eyJhIjoxLCJrIjoidyIsIm4iOiJkZWZhdWx0IiwiciI6IjAwMzNjZTI0LWM4NmYtNDA0OS1iMDQ2LWM2NjMxNjZkMzk0MyIsInMiOjIsInQiOj"
      "MsInciOiJvcmRlci1cdTAwNDEifQ.C9r71KAAcFOOWHo_JvzdFi_XYx1sJOZ6LWTb4VkU050";
  CHECK(signer.verify(escaped_letter, TaskToken::Kind::kWorkflow).run.workflow_id == "order-A");
}
