#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace reprise::test {

/// Header name and value pairs, in order.
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

/// One HTTP response.
struct HttpResponse {
  int status = 0;
  /// The body parsed as JSON; null when it is empty or not JSON.
  nlohmann::json body;
  /// The body as received, always.
  std::string raw;
  HttpHeaders headers;

  /// The value of header `name` (case-insensitive), or "" if absent.
  std::string header(std::string_view name) const;
};

/// A small synchronous HTTP/1.1 client for tests, over one keep-alive connection. It
/// reconnects transparently when the server has closed the idle connection, and turns a
/// request that takes longer than timeout() into std::runtime_error, so a hang fails the test.
///
///     HttpClient http("127.0.0.1", server.port());
///     auto started = http.post_json("/api/v1/namespaces/default/workflows", {{"workflow_type", "greet"}});
///     REQUIRE(started.status == 201);
///     auto described = http.get_json("/api/v1/namespaces/default/workflows/" + id);
///
/// A request is resent (once) only when a reused connection fails before any byte of the
/// response arrived, i.e. the server had closed it while idle; a new connection that fails
/// is an error, so a crashed server is never mistaken for a slow one.
/// Not thread-safe: use one client per thread.
class HttpClient {
 public:
  HttpClient(std::string host, int port);
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  ~HttpClient();

  /// Sends `method` (e.g. "GET", "POST") to `target` (path and query) and reads the response.
  /// Throws std::runtime_error on a timeout or a network error; any HTTP status is returned.
  HttpResponse request(std::string_view method, std::string_view target, std::string body = {},
                       const HttpHeaders& headers = {});
  /// POST with a JSON body (Content-Type: application/json).
  HttpResponse post_json(std::string_view target, const nlohmann::json& body, const HttpHeaders& headers = {});
  /// GET, expecting a JSON response.
  HttpResponse get_json(std::string_view target, const HttpHeaders& headers = {});

  /// The limit for one whole request: connect, send and receive (default 90 s, above the
  /// service's longest long poll).
  std::chrono::milliseconds timeout() const { return timeout_; }
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
  /// Drops the connection; the next request opens a new one.
  void disconnect();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;                  ///< Asio/Beast state, private to the .cpp
  std::chrono::milliseconds timeout_{std::chrono::seconds(90)};
};

}  // namespace reprise::test
