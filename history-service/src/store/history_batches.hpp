#pragma once
/// A run's history as stored: one `history_batches` row for the events one transaction
/// appended (migration 0012). The row holds them as the API's JSON objects, in order, separated
/// by ",\n": a whole batch splices into a JSON array as it is, and part of one is cut at its
/// newlines without parsing (compact JSON has no raw newline). A run's batches are contiguous,
/// so the one holding event N is the one with the greatest first_event_id <= N.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <reprise/protocol/event_type.hpp>
#include <reprise/protocol/timestamp.hpp>

#include "pg/connection.hpp"
#include "store/run_key.hpp"

namespace reprise::store {

/// One event as the API's JSON object (`attributes`: its JSON text, compact).
std::string render_event(std::int64_t event_id, protocol::EventType type, protocol::Timestamp time,
                         std::string_view attributes);
/// Writes a transaction's events (rendered, in id order from `first_event_id`): one row, or,
/// for megabytes of them, one row per 4 MiB, so no row nears PostgreSQL's limits.
std::vector<pg::Connection::Statement> append_statements(const RunKey& run, std::int64_t first_event_id,
                                                         const std::vector<std::string_view>& events);

/// The most event text one page of history holds (a history read, a task's history): past
/// it, the page ends early and the reader asks for the next (`has_more`, a task's
/// `next_page_event_id`). A page holds at least one event, however large. Else a long history
/// of large payloads would be read whole into the server's memory, and sent in one answer.
inline constexpr std::size_t kMostHistoryPageBytes = 4 << 20;

/// Reads the batches holding events [from_event_id, from_event_id + page_size), as many as
/// fit kMostHistoryPageBytes (at least one).
pg::Connection::Statement history_page_statement(const RunKey& run, std::int64_t from_event_id, int page_size);
/// The events of a history page's rows that are in its range, up to kMostHistoryPageBytes (at
/// least one), as the API's JSON array; `count` gets how many it holds.
std::string events_json(const pg::Result& rows, std::int64_t from_event_id, int page_size, int& count);

/// Reads the text of a run's last batch; with `closed_only`, only once the run has closed.
pg::Connection::Statement last_batch_statement(const RunKey& run, bool closed_only);
/// Reads the text of a run's first batch (the one its start wrote).
pg::Connection::Statement first_batch_statement(const RunKey& run);
/// The first and last events of a batch's text, as JSON objects.
std::string_view first_event(std::string_view batch);
std::string_view last_event(std::string_view batch);

}  // namespace reprise::store
