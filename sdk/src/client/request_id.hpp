#pragma once
/// Idempotency keys for calls that change a run (start, signal, signal-with-start, cancel).

#include <string>

namespace reprise::detail {

/// A random (version 4) UUID: "9b2f6c1e-4d3a-4f7e-8a1b-2c3d4e5f6a7b".
std::string new_request_id();

}  // namespace reprise::detail
