#pragma once
/// HTTP requests and responses as the API sees them: plain values, no Beast types, so the
/// API's translation units do not pay for Beast's headers.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace reprise::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string, still percent-encoded (the router decodes
                       // each segment, so an encoded '/' stays inside its segment)
  std::map<std::string, std::string> query;
  std::string body;
  std::string authorization;
  std::string remote;  // peer address, for logs
  /// Set by the server when the client hangs up while the request waits (a long poll whose
  /// worker died): the handler must not hand it work then, or the work is lost until its
  /// timeout.
  std::shared_ptr<std::atomic<bool>> client_gone = std::make_shared<std::atomic<bool>>(false);
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
