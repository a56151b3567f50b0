#pragma once

#include <cctype>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include <fmt/compile.h>
#include <fmt/format.h>

namespace reprise::store {

/// A random (version 4) UUID for a new run id.
inline std::string new_uuid() {
  // Seeded with 256 bits. One 32-bit seed, as before, gave even odds that two of the threads
  // ever started (every instance, every restart) share a seed, and so a sequence of run ids,
  // once some 77,000 had started.
  thread_local std::mt19937_64 rng = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(), device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  std::uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
  return fmt::format(FMT_COMPILE("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}"), hi >> 32, (hi >> 16) & 0xFFFF,
                     hi & 0xFFFF, lo >> 48, lo & 0xFFFFFFFFFFFFULL);
}

/// Whether `text` is a UUID as PostgreSQL's uuid type reads it in its canonical form
/// (8-4-4-4-12 hexadecimal digits), so that a bad one is refused with the field's name rather
/// than by the database.
inline bool is_uuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace reprise::store
