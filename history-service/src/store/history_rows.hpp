#pragma once
/// Reading a page of a run's history: the statement, and its rows as the API's JSON array
/// (built from the stored text without parsing it).

#include <cstdint>
#include <string>
#include <string_view>

#include "pg/connection.hpp"
#include "store/run_key.hpp"

namespace reprise::store {

pg::Connection::Statement history_page_statement(const RunKey& run, std::int64_t from_event_id, int page_size);
std::string events_json(const pg::Result& rows);
/// Appends one event as the API's JSON object (`attributes` is its stored JSON text), after a
/// comma unless it is the array's first.
void append_event_json(std::string& out, bool first, std::string_view event_id, std::string_view event_type,
                       std::string_view event_time, std::string_view attributes);

}  // namespace reprise::store
