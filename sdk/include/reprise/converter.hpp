#pragma once
/// Payloads are JSON. A workflow's or activity's arguments and result cross the wire through
/// nlohmann::json's `to_json`/`from_json`, so any type with those conversions (including every
/// standard container of such types) can be passed. A type without them fails to compile,
/// naming the type: "no conversion to a Reprise payload for type T".
///
/// Arguments travel as one payload: none → null, one → that value, several → an array.

#include <tuple>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

namespace reprise {

using Payload = nlohmann::json;

namespace detail {
template <class T>
constexpr bool payload_convertible() {
  if constexpr (std::is_void_v<T>) return true;  // no result: nothing to convert
  else return std::is_constructible_v<nlohmann::json, const T&> &&
              requires(const nlohmann::json& j) { j.template get<T>(); };
}
}  // namespace detail

template <class T>
inline constexpr bool is_payload_convertible_v = detail::payload_convertible<T>();

template <class T>
Payload to_payload(const T& value) {
  static_assert(is_payload_convertible_v<T>,
                "no conversion to a Reprise payload for this type: give it nlohmann::json "
                "to_json/from_json (NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE is the short way)");
  return Payload(value);
}

template <class T>
T from_payload(const Payload& payload) {
  static_assert(is_payload_convertible_v<T>,
                "no conversion from a Reprise payload for this type: give it nlohmann::json "
                "to_json/from_json (NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE is the short way)");
  return payload.get<T>();
}

/// Packs call arguments into one payload.
template <class... Args>
Payload pack_arguments(const Args&... args) {
  if constexpr (sizeof...(Args) == 0) return nullptr;
  else if constexpr (sizeof...(Args) == 1) return to_payload(args...);
  else return Payload::array({to_payload(args)...});
}

/// Unpacks a payload into the arguments of a function taking `Args...`.
template <class... Args>
std::tuple<std::decay_t<Args>...> unpack_arguments(const Payload& payload) {
  if constexpr (sizeof...(Args) == 0) {
    return {};
  } else if constexpr (sizeof...(Args) == 1) {
    return {from_payload<std::decay_t<Args>>(payload)...};
  } else {
    if (!payload.is_array() || payload.size() != sizeof...(Args))
      throw std::invalid_argument("expected an array of " + std::to_string(sizeof...(Args)) +
                                  " arguments, got " + payload.dump());
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return std::tuple<std::decay_t<Args>...>{from_payload<std::decay_t<Args>>(payload[I])...};
    }(std::index_sequence_for<Args...>{});
  }
}

}  // namespace reprise
