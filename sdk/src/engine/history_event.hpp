#pragma once

#include <cstdint>
#include <stdexcept>
#include <utility>

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
    HistoryEvent e = header_from_json(j);
    e.attributes = j.value("attributes", nlohmann::json::object());
    return e;
  }
  /// The same, moving the attributes out of `j` instead of copying them.
  static HistoryEvent from_json(nlohmann::json&& j) {
    HistoryEvent e = header_from_json(j);
    if (auto it = j.find("attributes"); it != j.end()) e.attributes = std::move(*it);
    else e.attributes = nlohmann::json::object();
    return e;
  }
  /// From its three fields, already read (a streaming reader's fast path): the same checks
  /// and messages as from_json.
  static HistoryEvent from_fields(std::int64_t id, std::string_view type_name, std::string_view time,
                                  nlohmann::json attributes) {
    HistoryEvent e;
    e.id = id;
    auto type = protocol::event_type_from_string(type_name);
    if (!type)
      throw std::runtime_error("history event " + std::to_string(e.id) + " has unknown type " + std::string(type_name));
    e.type = *type;
    e.time = protocol::parse_timestamp(time);
    e.attributes = std::move(attributes);
    return e;
  }

 private:
  static HistoryEvent header_from_json(const nlohmann::json& j) {
    HistoryEvent e;
    e.id = j.at("event_id").get<std::int64_t>();
    const auto& name = string_at(j, "event_type");
    auto type = protocol::event_type_from_string(name);
    if (!type) throw std::runtime_error("history event " + std::to_string(e.id) + " has unknown type " + name);
    e.type = *type;
    e.time = protocol::parse_timestamp(string_at(j, "event_time"));
    return e;
  }
  // j.at(key) as a string, without a copy; what get<std::string>() throws when it is not one.
  static const std::string& string_at(const nlohmann::json& j, const char* key) {
    const auto& v = j.at(key);
    if (!v.is_string()) (void)v.get<std::string>();
    return v.get_ref<const std::string&>();
  }
};

}  // namespace reprise::detail
