#include "store/history_batches.hpp"

#include <iterator>
#include <limits>
#include <stdexcept>

#include <fmt/compile.h>
#include <fmt/format.h>

namespace reprise::store {

std::string render_event(std::int64_t event_id, protocol::EventType type, protocol::Timestamp time,
                         std::string_view attributes) {
  // A batch is cut at its newlines: an event must not have one of its own.
  if (attributes.find('\n') != std::string_view::npos)
    throw std::logic_error("an event's attributes were not compact JSON (they hold a newline)");
  std::string out;
  out.reserve(attributes.size() + 112);
  fmt::format_to(std::back_inserter(out), FMT_COMPILE(R"({{"event_id":{},"event_type":"{}","event_time":"{}","attributes":)"),
                 event_id, protocol::to_string(type), protocol::format_timestamp(time));
  out += attributes;
  out += '}';
  return out;
}

namespace {

/// Between two events of a batch.
constexpr std::string_view kBatchSeparator = ",\n";

// Where a run's batches are: every statement here names the run the same way.
#define REPRISE_RUN_BATCHES "history_batches WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid"

/// The first event id past a page, saturating (a client may ask from any id).
std::int64_t page_end(std::int64_t from_event_id, int page_size) {
  return from_event_id > std::numeric_limits<std::int64_t>::max() - page_size
             ? std::numeric_limits<std::int64_t>::max()
             : from_event_id + page_size;
}

/// Calls `each(event_id, object)` for every event of a batch that starts at `first_event_id`.
template <class F>
void for_each_event(std::int64_t first_event_id, std::string_view batch, F&& each) {
  for (std::int64_t id = first_event_id;; ++id) {
    auto end = batch.find(kBatchSeparator);
    if (end == std::string_view::npos) return each(id, batch);
    each(id, batch.substr(0, end));
    batch.remove_prefix(end + kBatchSeparator.size());
  }
}

}  // namespace

std::vector<pg::Connection::Statement> append_statements(const RunKey& run, std::int64_t first_event_id,
                                                         const std::vector<std::string_view>& events) {
  constexpr std::size_t kMostBatchBytes = 4 << 20;
  std::vector<pg::Connection::Statement> out;
  for (std::size_t i = 0; i < events.size();) {
    const auto first = first_event_id + static_cast<std::int64_t>(i);
    std::string batch(events[i++]);
    while (i < events.size() && batch.size() < kMostBatchBytes) {
      batch += kBatchSeparator;
      batch += events[i++];
    }
    out.push_back({"history_append",
                   "INSERT INTO history_batches (namespace, workflow_id, run_id, first_event_id, last_event_id, "
                   "events) VALUES ($1, $2, $3::uuid, $4::bigint, $5::bigint, $6)",
                   {run.ns, run.workflow_id, run.run_id, std::to_string(first),
                    std::to_string(first_event_id + static_cast<std::int64_t>(i) - 1), std::move(batch)}});
  }
  return out;
}

pg::Connection::Statement history_page_statement(const RunKey& run, std::int64_t from_event_id, int page_size) {
  const auto end = page_end(from_event_id, page_size);
  // The batch holding the first event is found by an index-only step back from it, so a late
  // page of a long history does not scan the batches before it.
  // Rows past the byte budget are left out by the size of the text between the first row and
  // them (the first may hold mostly events before the page: it does not count). octet_length
  // reads a stored value's size from its header, so the rows left out are never fetched whole.
  return {"history_page",
          "SELECT first_event_id, last_event_id, events FROM (SELECT first_event_id, last_event_id, events, "
          "coalesce(sum(octet_length(events)) OVER (ORDER BY first_event_id ROWS BETWEEN UNBOUNDED PRECEDING "
          "AND 1 PRECEDING), 0) - first_value(octet_length(events)) OVER (ORDER BY first_event_id) AS bytes_before "
          "FROM " REPRISE_RUN_BATCHES
          " AND first_event_id >= (SELECT coalesce(max(first_event_id), 1) FROM " REPRISE_RUN_BATCHES
          " AND first_event_id <= $4::bigint) AND first_event_id < $5::bigint AND last_event_id >= $4::bigint) page "
          "WHERE bytes_before < $6::bigint ORDER BY first_event_id",
          {run.ns, run.workflow_id, run.run_id, std::to_string(from_event_id), std::to_string(end),
           std::to_string(kMostHistoryPageBytes)}};
}

std::string events_json(const pg::Result& rows, std::int64_t from_event_id, int page_size, int& count) {
  const auto end = page_end(from_event_id, page_size);
  std::string out = "[";
  count = 0;
  for (int i = 0; i < rows.rows(); ++i) {
    const auto first = rows.i64(i, 0), last = rows.i64(i, 1);
    const auto batch = rows.text(i, 2);
    if (count > 0 && out.size() >= kMostHistoryPageBytes) break;
    if (first >= from_event_id && last < end && (count == 0 || out.size() + batch.size() <= kMostHistoryPageBytes)) {
      // The whole batch: spliced as it is
      if (count) out += ',';
      out += batch;
      count += static_cast<int>(last - first + 1);
      continue;
    }
    bool full = false;
    for_each_event(first, batch, [&](std::int64_t id, std::string_view event) {
      if (full || id < from_event_id || id >= end) return;
      if (count > 0 && out.size() + event.size() > kMostHistoryPageBytes) {
        full = true;  // the events after this one wait for the next page, so the page stays contiguous
        return;
      }
      if (count++) out += ',';
      out += event;
    });
    if (full) break;
  }
  return out + "]";
}

pg::Connection::Statement last_batch_statement(const RunKey& run, bool closed_only) {
  if (closed_only)
    return {"history_closing_batch",
            "SELECT events FROM " REPRISE_RUN_BATCHES
            " AND EXISTS (SELECT 1 FROM executions WHERE namespace = $1 AND workflow_id = $2 AND run_id = "
            "$3::uuid AND status <> 'Running') ORDER BY first_event_id DESC LIMIT 1",
            {run.ns, run.workflow_id, run.run_id}};
  return {"history_last_batch",
          "SELECT events FROM " REPRISE_RUN_BATCHES " ORDER BY first_event_id DESC LIMIT 1",
          {run.ns, run.workflow_id, run.run_id}};
}

pg::Connection::Statement first_batch_statement(const RunKey& run) {
  return {"history_first_batch",
          "SELECT events FROM " REPRISE_RUN_BATCHES " AND first_event_id = 1",
          {run.ns, run.workflow_id, run.run_id}};
}

std::string_view first_event(std::string_view batch) { return batch.substr(0, batch.find(kBatchSeparator)); }

std::string_view last_event(std::string_view batch) {
  auto at = batch.rfind(kBatchSeparator);
  return at == std::string_view::npos ? batch : batch.substr(at + kBatchSeparator.size());
}

#undef REPRISE_RUN_BATCHES

}  // namespace reprise::store
