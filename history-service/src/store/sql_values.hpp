#pragma once
/// Conversions between the store's C++ values and the text libpq carries.

#include <optional>

#include <reprise/protocol/timestamp.hpp>

#include "pg/connection.hpp"

/// Selects a timestamptz column as integer milliseconds since the epoch (NULL stays NULL).
#define REPRISE_EPOCH_MS(col) "floor(extract(epoch from " col ") * 1000)::bigint"

namespace reprise::store {

inline std::optional<protocol::Timestamp> opt_timestamp(const pg::Result& r, int row, int col) {
  if (r.is_null(row, col)) return std::nullopt;
  return protocol::Timestamp(std::chrono::milliseconds(r.i64(row, col)));
}

inline pg::Param opt_timestamp_param(const std::optional<protocol::Timestamp>& t) {
  if (!t) return std::nullopt;
  return protocol::format_timestamp(*t);
}

}  // namespace reprise::store
