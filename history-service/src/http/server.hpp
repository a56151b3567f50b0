#pragma once
/// The HTTP/1.1 server (Boost.Beast, keep-alive). One coroutine per connection reads a
/// request and hands it to the handler. The thread that answers, which may be another one and
/// much later (long polls), writes what the socket takes of the answer at once; the
/// connection's io thread writes the rest, then reads the next request.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "http/message.hpp"

namespace boost::asio {
class io_context;
}

namespace reprise::http {

struct ServerOptions {
  std::string address = "127.0.0.1";
  int port = 7233;                       // 0: any free port; see Server::port()
  std::size_t max_body_bytes = 4 << 20;  // a request body over this gets 413
  /// A connection with no request for this long, and none waiting for its answer, is closed.
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(5);
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerOptions options, Handler handler);
  ~Server();
  /// Binds and starts accepting. Throws std::runtime_error naming the address when it cannot.
  void start();
  /// Stops accepting new connections. Requests in progress go on; see Api::begin_drain.
  void stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reprise::http
