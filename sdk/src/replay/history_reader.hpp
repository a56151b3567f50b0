#pragma once
/// Reads a history document's text (docs/history-format.md) straight into the engine's
/// HistoryEvents through nlohmann's SAX interface: no JSON tree is built for the document or
/// its events, only for each event's attributes (which the engine reads as JSON). Strings are
/// moved, never copied. Used for files (streamed, one event at a time) and for the pages the
/// service serves.

#include <cstdint>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/history_event.hpp"

namespace reprise::detail {

/// One event as read: the event, or why it could not be read (the same exception, with the same
/// message, as HistoryEvent::from_json throws for it).
struct ReadEvent {
  HistoryEvent event;
  bool starts_task = false;   ///< its event_type is WorkflowTaskScheduled: a new workflow task begins
  std::exception_ptr error;   ///< set: `event` is empty
};

/// The text is not JSON. what() is nlohmann's parse error, as json::parse would throw it.
struct HistoryTextError : std::runtime_error {
  HistoryTextError(std::size_t position, const std::string& what) : std::runtime_error(what), position(position) {}
  std::size_t position;
};

class HistorySax final : public nlohmann::json_sax<nlohmann::json> {
 public:
  using json = nlohmann::json;
  /// `on_event` gets each element of the top-level "events" array that is an object, in order
  /// (an array there is an unreadable event; scalars are skipped). With `skip_events`, events
  /// are not built at all (a pass that only wants the header).
  explicit HistorySax(std::function<void(ReadEvent&&)> on_event, bool skip_events = false)
      : on_event_(std::move(on_event)), skip_events_(skip_events) {}

  /// The top-level fields but "events", once the parse is done.
  json header = json::object();
  /// The text is an object with an "events" array: a history document.
  bool is_document() const { return top_object_ && events_array_; }

  bool null() override { return scalar(nullptr); }
  bool boolean(bool v) override { return scalar(v); }
  bool number_integer(number_integer_t v) override { return scalar(v); }
  bool number_unsigned(number_unsigned_t v) override { return scalar(v); }
  bool number_float(number_float_t v, const string_t&) override { return scalar(v); }
  bool string(string_t& v) override { return scalar(std::move(v)); }
  bool binary(binary_t&) override { return scalar(nullptr); }
  bool key(string_t& k) override;
  bool start_object(std::size_t) override { return open(json::value_t::object); }
  bool start_array(std::size_t) override { return open(json::value_t::array); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    throw HistoryTextError(position, e.what());
  }

 private:
  // Structure outside any value being built: 0 before the document, 1 in its top object,
  // 2 in the events array, 3 in an event.
  int depth_ = 0;
  bool top_object_ = false, events_array_ = false;
  std::string top_key_, event_key_, key_;
  std::vector<json*> building_;  // containers of the value being built, innermost last
  int skipping_ = 0;             // > 0: inside a value nobody wants, this deep

  // The event being read: its fields as found (null until seen).
  json id_, type_, time_, attributes_;
  bool has_id_ = false, has_type_ = false, has_time_ = false, has_attributes_ = false;

  std::function<void(ReadEvent&&)> on_event_;
  bool skip_events_;

  json* slot();  // where a value at the current structural place goes; nullptr: skip it
  bool scalar(json&& v);
  bool open(json::value_t kind);
  bool close();
  void begin_event();
  void end_event();
};

/// The top-level scalar fields that come before "events" in a history page's text, read
/// without reading the events (nothing after them is read). The service writes a page's
/// next_event_id and has_more first, so a reader can ask for the next page before reading this
/// one. An empty object if the text does not start as a JSON object.
nlohmann::json header_before_events(const std::string& text);

}  // namespace reprise::detail
