#include <reprise/protocol/api_error.hpp>

#include <array>
#include <utility>

namespace reprise::protocol {
namespace {

struct CodeInfo {
  std::string_view name;
  int status;
};

// Indexed by ErrorCode; the order must follow the enum's.
constexpr std::array<CodeInfo, 20> kCodes = {{
    {"MalformedJson", 400},
    {"InvalidArgument", 400},
    {"UnknownCommand", 400},
    {"InvalidTaskToken", 400},
    {"Unauthenticated", 401},
    {"PermissionDenied", 403},
    {"NotFound", 404},
    {"MethodNotAllowed", 405},
    {"WorkflowAlreadyStarted", 409},
    {"StaleTaskToken", 409},
    {"UnhandledEvents", 409},
    {"QueryFailed", 400},
    {"RunClosed", 409},
    {"AlreadyExists", 409},
    {"PayloadTooLarge", 413},
    {"ResourceExhausted", 429},
    {"Internal", 500},
    {"Unavailable", 503},
    {"Unimplemented", 501},
    {"DeadlineExceeded", 504},
}};

}  // namespace

std::string_view to_string(ErrorCode code) { return kCodes.at(static_cast<std::size_t>(code)).name; }

int http_status(ErrorCode code) { return kCodes.at(static_cast<std::size_t>(code)).status; }

std::optional<ErrorCode> error_code_from_string(std::string_view name) {
  for (std::size_t i = 0; i < kCodes.size(); ++i)
    if (kCodes[i].name == name) return static_cast<ErrorCode>(i);
  return std::nullopt;
}

}  // namespace reprise::protocol
