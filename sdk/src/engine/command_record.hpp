#pragma once
/// A command the workflow code issued, from the call that issued it to the event that records
/// it and the event that resolves it:
///
///   kIssued ──(its event is in the history)──> kRecorded ──(outcome event)──> resolved future
///      └──(canceled before it was sent)──> kDropped
///
/// Matching a command to its event compares the command's kind and identity (activity type
/// and id, timer id, marker name and id); a mismatch is a non-determinism error naming the
/// call site kept here.

#include <cstdint>
#include <memory>
#include <source_location>
#include <string>

#include <nlohmann/json.hpp>
#include <reprise/protocol/event_type.hpp>
#include <reprise/workflow.hpp>

namespace reprise::detail {

enum class CommandStatus { kIssued, kRecorded, kDropped };

struct CommandRecord {
  protocol::CommandType type{};
  nlohmann::json attributes;     // as sent to the service
  std::string identity;          // what its event must show, e.g. "activity_type=charge activity_id=1"
  std::source_location location; // the workflow code's call
  CommandStatus status = CommandStatus::kIssued;
  std::int64_t event_id = 0;     // the event that recorded it
  std::shared_ptr<FutureState> future;  // resolved by its outcome (activities, timers)
  bool finished = false;         // nothing looks it up again: attributes, identity and future released

  std::string describe() const {
    return std::string(protocol::to_string(type)) + "(" + identity + ")";
  }
  std::string where() const {
    return std::string(location.file_name()) + ":" + std::to_string(location.line());
  }
};

}  // namespace reprise::detail
