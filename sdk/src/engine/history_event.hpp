#pragma once

#include <cstdint>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <reprise/protocol/event_type.hpp>
#include <reprise/protocol/timestamp.hpp>

namespace reprise::detail {

/// One event of a run's history, as the API serves it (docs/api.md, "Event types").
struct HistoryEvent {
  std::int64_t id = 0;
  protocol::EventType type{};
  protocol::Timestamp time;
  nlohmann::json attributes;

  static HistoryEvent from_json(const nlohmann::json& j) {
    HistoryEvent e;
    e.id = j.at("event_id").get<std::int64_t>();
    auto name = j.at("event_type").get<std::string>();
    auto type = protocol::event_type_from_string(name);
    if (!type) throw std::runtime_error("history event " + std::to_string(e.id) + " has unknown type " + name);
    e.type = *type;
    e.time = protocol::parse_timestamp(j.at("event_time").get<std::string>());
    e.attributes = j.value("attributes", nlohmann::json::object());
    return e;
  }
};

}  // namespace reprise::detail
