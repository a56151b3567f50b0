#include <catch2/catch.hpp>
#include <reprise/protocol/api_error.hpp>
#include <reprise/protocol/event_type.hpp>

using namespace reprise::protocol;

TEST_CASE("every event and command type name reads back to its enumerator", "[unit][protocol]") {
  for (int i = 0; i <= static_cast<int>(EventType::kExternalWorkflowExecutionCancelRequested); ++i) {
    auto type = static_cast<EventType>(i);
    CHECK(event_type_from_string(to_string(type)) == type);
  }
  for (int i = 0; i <= static_cast<int>(CommandType::kRequestCancelExternalWorkflowExecution); ++i) {
    auto type = static_cast<CommandType>(i);
    CHECK(command_type_from_string(to_string(type)) == type);
  }
  CHECK_FALSE(event_type_from_string("TimerExploded"));
}

TEST_CASE("exactly the six closing events are terminal", "[unit][protocol]") {
  int terminal = 0;
  for (int i = 0; i <= static_cast<int>(EventType::kExternalWorkflowExecutionCancelRequested); ++i)
    terminal += is_terminal(static_cast<EventType>(i));
  CHECK(terminal == 6);
  CHECK(is_terminal(EventType::kWorkflowExecutionContinuedAsNew));
  CHECK_FALSE(is_terminal(EventType::kWorkflowTaskCompleted));
}

TEST_CASE("every API error code has a name and an HTTP status", "[unit][protocol]") {
  for (int i = 0; i <= static_cast<int>(ErrorCode::kDeadlineExceeded); ++i) {
    auto code = static_cast<ErrorCode>(i);
    CHECK(error_code_from_string(to_string(code)) == code);
    CHECK(http_status(code) >= 400);
  }
  CHECK(http_status(ErrorCode::kStaleTaskToken) == 409);
  CHECK(http_status(ErrorCode::kUnavailable) == 503);
}
