#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <reprise/protocol/retry_policy.hpp>

using namespace reprise::protocol;

TEST_CASE("retry backoff grows by the coefficient and stops at the maximum interval", "[unit][retry]") {
  RetryPolicy p;
  p.initial_interval = Duration{100};
  p.backoff_coefficient = 2.0;
  p.maximum_interval = Duration{500};
  CHECK(p.backoff_before(2) == Duration{100});
  CHECK(p.backoff_before(3) == Duration{200});
  CHECK(p.backoff_before(4) == Duration{400});
  CHECK(p.backoff_before(5) == Duration{500});
  CHECK(p.backoff_before(60) == Duration{500});
}

TEST_CASE("without a maximum interval the backoff is capped at 100 times the initial one",
          "[unit][retry]") {
  RetryPolicy p;  // 1s initial, coefficient 2
  CHECK(p.backoff_before(40) == Duration{100'000});
}

TEST_CASE("retries stop at the maximum attempts and for non-retryable errors", "[unit][retry]") {
  RetryPolicy p;
  p.maximum_attempts = 3;
  p.non_retryable_error_types = {"InvalidCard"};
  CHECK(p.allows_retry(1, "Timeout", false));
  CHECK(p.allows_retry(2, "Timeout", false));
  CHECK_FALSE(p.allows_retry(3, "Timeout", false));
  CHECK_FALSE(p.allows_retry(1, "InvalidCard", false));
  CHECK_FALSE(p.allows_retry(1, "Timeout", true));
  RetryPolicy unlimited;
  CHECK(unlimited.allows_retry(1000, "", false));
}

TEST_CASE("retry policies round-trip through JSON and reject unknown or bad fields", "[unit][retry]") {
  auto p = nlohmann::json::parse(R"({"initial_interval":"250ms","maximum_attempts":4,
                                     "non_retryable_error_types":["X"]})")
               .get<RetryPolicy>();
  CHECK(p.initial_interval == Duration{250});
  CHECK(p.maximum_attempts == 4);
  auto back = nlohmann::json(p).get<RetryPolicy>();
  CHECK(back.initial_interval == p.initial_interval);
  CHECK(back.non_retryable_error_types == p.non_retryable_error_types);
  CHECK_THROWS_WITH(nlohmann::json::parse(R"({"max_attempts":3})").get<RetryPolicy>(),
                    Catch::Contains("unknown field \"max_attempts\""));
  RetryPolicy bad;
  bad.backoff_coefficient = 0.5;
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("backoff_coefficient"));
}
