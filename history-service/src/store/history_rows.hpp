#pragma once
/// Reading a page of a run's history: the statement, and its rows as the API's JSON array
/// (built from the stored text without parsing it).

#include <cstdint>
#include <string>

#include "pg/connection.hpp"
#include "store/run_key.hpp"

namespace reprise::store {

pg::Connection::Statement history_page_statement(const RunKey& run, std::int64_t from_event_id, int page_size);
std::string events_json(const pg::Result& rows);

}  // namespace reprise::store
