#include "replay/history_reader.hpp"

namespace reprise::detail {

using nlohmann::json;

json* HistorySax::slot() {
  switch (depth_) {
    case 1:
      return &header[top_key_];
    case 3:
      if (event_key_ == "event_id") return has_id_ = true, &id_;
      if (event_key_ == "event_type") return has_type_ = true, &type_;
      if (event_key_ == "event_time") return has_time_ = true, &time_;
      if (event_key_ == "attributes") return has_attributes_ = true, &attributes_;
      return nullptr;  // a field the engine does not read
    default:
      return nullptr;  // a top-level scalar, or a scalar in the events array
  }
}

bool HistorySax::key(string_t& k) {
  if (skipping_) return true;
  if (!building_.empty()) key_ = std::move(k);
  else if (depth_ == 1) top_key_ = std::move(k);
  else if (depth_ == 3) event_key_ = std::move(k);
  return true;
}

bool HistorySax::scalar(json&& v) {
  if (skipping_) return true;
  if (!building_.empty()) {
    auto& top = *building_.back();
    if (top.is_object()) top[std::move(key_)] = std::move(v);
    else top.push_back(std::move(v));
  } else if (auto* target = slot()) {
    *target = std::move(v);
  }
  return true;
}

bool HistorySax::open(json::value_t kind) {
  if (skipping_) {
    ++skipping_;
    return true;
  }
  if (!building_.empty()) {
    auto& top = *building_.back();
    json* child;
    if (top.is_object()) {
      child = &(top[std::move(key_)] = json(kind));
    } else {
      top.push_back(json(kind));
      child = &top.back();
    }
    building_.push_back(child);
    return true;
  }
  switch (depth_) {
    case 0:
      if (kind == json::value_t::object) {
        depth_ = 1;
        top_object_ = true;
      } else {
        skipping_ = 1;  // not a history document
      }
      return true;
    case 1:
      if (top_key_ == "events" && kind == json::value_t::array) {
        events_array_ = true;
        if (skip_events_) skipping_ = 1;  // passed over whole; the structure stays at the top
        else depth_ = 2;
        return true;
      }
      break;
    case 2:
      if (kind == json::value_t::object) {
        depth_ = 3;
        begin_event();
        return true;
      }
      // An array where an event should be: it cannot be read.
      skipping_ = 1;
      try {
        HistoryEvent::from_json(json::array());
      } catch (...) {
        on_event_({HistoryEvent{}, false, std::current_exception()});
      }
      return true;
    default:
      break;
  }
  if (auto* target = slot()) {
    *target = json(kind);
    building_.push_back(target);
  } else {
    skipping_ = 1;
  }
  return true;
}

bool HistorySax::close() {
  if (skipping_) {
    --skipping_;
    return true;
  }
  if (!building_.empty()) {
    building_.pop_back();
    return true;
  }
  if (depth_ == 3) {
    end_event();
    depth_ = 2;
  } else if (depth_ == 2 || depth_ == 1) {
    --depth_;
  }
  return true;
}

void HistorySax::begin_event() {
  id_ = type_ = time_ = attributes_ = nullptr;
  has_id_ = has_type_ = has_time_ = has_attributes_ = false;
}

void HistorySax::end_event() {
  ReadEvent read;
  read.starts_task = type_.is_string() && type_.get_ref<const std::string&>() == "WorkflowTaskScheduled";
  try {
    if (has_id_ && id_.is_number() && has_type_ && type_.is_string() && has_time_ && time_.is_string()) {
      read.event = HistoryEvent::from_fields(id_.get<std::int64_t>(), type_.get_ref<const std::string&>(),
                                             time_.get_ref<const std::string&>(),
                                             has_attributes_ ? std::move(attributes_) : json::object());
    } else {
      // Something is missing or of the wrong type: from_json says what, in its own words.
      json e = json::object();
      if (has_id_) e["event_id"] = std::move(id_);
      if (has_type_) e["event_type"] = std::move(type_);
      if (has_time_) e["event_time"] = std::move(time_);
      if (has_attributes_) e["attributes"] = std::move(attributes_);
      read.event = HistoryEvent::from_json(std::move(e));
    }
  } catch (...) {
    read.event = HistoryEvent{};
    read.error = std::current_exception();
  }
  on_event_(std::move(read));
}

namespace {

using json = nlohmann::json;

/// Keeps the top object's scalar fields, and stops the parse at its "events" key.
class HeaderSax final : public nlohmann::json_sax<json> {
 public:
  json header = json::object();

  bool null() override { return keep(nullptr); }
  bool boolean(bool v) override { return keep(v); }
  bool number_integer(number_integer_t v) override { return keep(v); }
  bool number_unsigned(number_unsigned_t v) override { return keep(v); }
  bool number_float(number_float_t v, const string_t&) override { return keep(v); }
  bool string(string_t& v) override { return keep(std::move(v)); }
  bool binary(binary_t&) override { return true; }
  bool key(string_t& k) override {
    if (depth_ == 1 && k == "events") return false;
    if (depth_ == 1) key_ = std::move(k);
    return true;
  }
  // A text that does not open with an object stops at once, so depth 1 is the top object.
  bool start_object(std::size_t) override { return ++depth_, true; }
  bool start_array(std::size_t) override { return ++depth_ > 1; }
  bool end_object() override { return --depth_, true; }
  bool end_array() override { return --depth_, true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  int depth_ = 0;
  std::string key_;
  bool keep(json&& v) {
    if (depth_ == 1) header[key_] = std::move(v);
    return depth_ > 0;  // a bare scalar is not a page
  }
};

}  // namespace

json header_before_events(const std::string& text) {
  HeaderSax sax;
  json::sax_parse(text, &sax);  // false once it stops at "events": that is the point
  return std::move(sax.header);
}

}  // namespace reprise::detail
