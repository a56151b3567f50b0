#pragma once
/// The HTTP/JSON API of a reprise-server as the SDK uses it (docs/api.md). Internal to the
/// SDK: Beast stays inside service_connection.cpp.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace reprise::detail {

/// Calls one reprise-server: in one namespace (post, get), or outside any (post_unscoped,
/// get_unscoped: the registry of namespaces). Safe to use from several threads at once; each
/// thread gets a keep-alive connection of its own.
class ServiceConnection {
 public:
  /// `address` is "host:port" or "http://host:port".
  explicit ServiceConnection(std::string address, std::string ns = "default");
  ~ServiceConnection();

  /// POSTs `body` to /api/v1/namespaces/<ns><path> and returns the JSON answer. Throws
  /// reprise::ServiceError with the API's error code and message on an error answer, and with
  /// code "Unavailable" when the server cannot be reached or does not answer within `timeout`.
  nlohmann::json post(std::string_view path, const nlohmann::json& body,
                      std::chrono::milliseconds timeout = std::chrono::seconds(90));
  /// GETs /api/v1/namespaces/<ns><path_and_query>.
  nlohmann::json get(std::string_view path_and_query,
                     std::chrono::milliseconds timeout = std::chrono::seconds(90));

  /// The same, returning a successful answer's body unparsed (for a caller that streams it).
  std::string get_text(std::string_view path_and_query,
                       std::chrono::milliseconds timeout = std::chrono::seconds(90));

  /// POSTs `body` to /api/v1<path>, outside any namespace (the registry of namespaces).
  nlohmann::json post_unscoped(std::string_view path, const nlohmann::json& body,
                               std::chrono::milliseconds timeout = std::chrono::seconds(90));
  /// GETs /api/v1<path_and_query>, outside any namespace.
  nlohmann::json get_unscoped(std::string_view path_and_query,
                              std::chrono::milliseconds timeout = std::chrono::seconds(90));
  /// Ends every call under way (its socket is shut down) and fails every later one
  /// (Unavailable): for a worker's long polls when it stops, so that no task is handed to a
  /// poll that would no longer run it. The service drops a poll whose client hung up.
  void abort_calls();

  const std::string& ns() const { return ns_; }
  const std::string& address() const { return address_; }

 private:
  /// "/namespaces/<ns><path>": where the namespaced calls go under /api/v1.
  std::string in_namespace(std::string_view path) const;
  struct Impl;
  std::string address_;
  std::string ns_;
  std::unique_ptr<Impl> impl_;
};

/// Percent-encodes one path segment or query value (workflow ids may hold any character).
std::string url_encode(std::string_view text);
/// Adds `name=value` to a query string (starting it with '?'), the value percent-encoded;
/// nothing when `value` is empty.
void append_query(std::string& query, std::string_view name, std::string_view value);
/// A listed page's next_page_token; empty on the last page (the API's null).
std::string next_page_token(const nlohmann::json& page);

}  // namespace reprise::detail
