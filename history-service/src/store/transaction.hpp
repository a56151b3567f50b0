#pragma once
/// pg::in_transaction for a body that collects Effects: each attempt collects its own, and only
/// the committed attempt's reach the caller. An attempt rolled back for a conflict and run
/// again must wake nobody for what it did.

#include <type_traits>
#include <utility>

#include "pg/database.hpp"
#include "store/effects.hpp"

namespace reprise::store {

template <class Body>
auto in_transaction(pg::Connection& conn, Effects& out, Body&& body) -> decltype(body(conn, out)) {
  Effects attempt;
  auto each = [&](pg::Connection& c) -> decltype(body(c, attempt)) {
    attempt = {};
    return body(c, attempt);
  };
  if constexpr (std::is_void_v<decltype(body(conn, out))>) {
    pg::in_transaction(conn, each);
    out.merge(std::move(attempt));
  } else {
    auto result = pg::in_transaction(conn, each);
    out.merge(std::move(attempt));
    return result;
  }
}

}  // namespace reprise::store
