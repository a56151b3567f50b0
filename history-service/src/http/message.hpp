#pragma once
/// HTTP requests and responses as the API sees them: plain values, no Beast types, so the
/// API's translation units do not pay for Beast's headers.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace reprise::http {

/// Whether the client of a waiting request (a long poll) is still there.
class ClientLink {
 public:
  explicit ClientLink(int socket_fd = -1) : fd_(socket_fd) {}
  /// True once the client hung up, asked of the socket itself (a peek that never blocks) when
  /// it matters: before a task is handed out. Nobody watches the socket meanwhile: that cost
  /// every request a wait to arm and cancel, for an answer the peek gives anyway.
  bool gone();

 private:
  int fd_;  // open while the request waits for its answer
  std::atomic<bool> gone_{false};
};

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string, still percent-encoded (the router decodes
                       // each segment, so an encoded '/' stays inside its segment)
  std::map<std::string, std::string> query;
  std::string body;
  std::string authorization;
  std::string remote;  // peer address, for logs
  /// Gone when the client hangs up while the request waits (a long poll whose worker died):
  /// the handler must not hand it work then, or the work is lost until its timeout.
  std::shared_ptr<ClientLink> client = std::make_shared<ClientLink>();
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

/// Sends the response; may be called from any thread, exactly once.
using Respond = std::function<void(Response)>;
using Handler = std::function<void(Request&&, Respond)>;

}  // namespace reprise::http
