// Synchronous HTTP/1.1 to a reprise-server over Boost.Beast. The only SDK file that includes
// Beast/Asio (they cost seconds of compile time per file and must stay out of user code).
//
// Connections are pooled: a call takes an idle keep-alive connection (or opens one), uses it on
// the calling thread, and puts it back when the answer left it reusable. So N threads calling at
// once use N connections, and a thread calling in a loop reuses the same one.
#include "transport/service_connection.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <chrono>
#include <algorithm>
#include <limits>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <reprise/errors.hpp>
#include <reprise/protocol/json_dump.hpp>
#include <reprise/protocol/json_parse.hpp>

namespace reprise::detail {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

/// More idle connections than this are closed rather than kept: enough for a worker's pollers.
constexpr std::size_t kMaxIdleConnections = 32;

beast::string_view to_beast(std::string_view s) { return {s.data(), s.size()}; }

struct HostPort {
  std::string host;
  std::string port;
};

/// "host:port", "http://host:port/", "[::1]:7233" or "host" (port 7233).
HostPort parse_address(std::string_view address) {
  if (address.starts_with("http://")) address.remove_prefix(7);
  while (address.ends_with('/')) address.remove_suffix(1);
  if (address.starts_with('[')) {  // IPv6 literal
    auto close = address.find(']');
    if (close != std::string_view::npos) {
      std::string host(address.substr(1, close - 1));
      auto rest = address.substr(close + 1);
      return {host, rest.starts_with(':') ? std::string(rest.substr(1)) : "7233"};
    }
  }
  auto colon = address.rfind(':');
  if (colon == std::string_view::npos) return {std::string(address), "7233"};
  return {std::string(address.substr(0, colon)), std::string(address.substr(colon + 1))};
}

/// The server closed an idle keep-alive connection before reading our request: safe to resend.
bool is_stale_connection(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted;
}

using Clock = std::chrono::steady_clock;

/// A connected socket read and written with plain system calls, waiting in poll() until the
/// call's deadline: Beast's synchronous read and write work on it (SyncReadStream,
/// SyncWriteStream). A round trip costs a send, a poll and a recv. The asynchronous operations
/// on a private io_context it replaces cost, per call, a timerfd update at each end, several
/// epoll_waits and a speculative recv: about three times the system calls, on every request a
/// worker makes.
class DeadlineStream {
 public:
  DeadlineStream(int fd, Clock::time_point deadline) : fd_(fd), deadline_(deadline) {}

  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers, beast::error_code& ec) {
    asio::mutable_buffer into;
    for (auto b : beast::buffers_range_ref(buffers))
      if (b.size() > 0) {
        into = b;
        break;
      }
    for (;;) {
      // Right after a request nothing can have arrived yet: wait first, skip the empty recv.
      if (std::exchange(answer_pending_, false) && !wait(POLLIN, ec)) return 0;
      const ssize_t n = ::recv(fd_, into.data(), into.size(), 0);
      if (n > 0) return ec = {}, static_cast<std::size_t>(n);
      if (n == 0) return ec = asio::error::eof, 0;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return ec = system_error(), 0;
      if (!wait(POLLIN, ec)) return 0;
    }
  }

  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers, beast::error_code& ec) {
    std::vector<iovec> parts;
    for (auto b : beast::buffers_range_ref(buffers))
      if (b.size() > 0) parts.push_back({const_cast<void*>(b.data()), b.size()});
    msghdr message{};
    message.msg_iov = parts.data();
    message.msg_iovlen = parts.size();
    for (;;) {
      const ssize_t n = ::sendmsg(fd_, &message, MSG_NOSIGNAL);
      if (n >= 0) {
        answer_pending_ = true;
        return ec = {}, static_cast<std::size_t>(n);
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return ec = system_error(), 0;
      if (!wait(POLLOUT, ec)) return 0;
    }
  }
  // The throwing forms, which Beast's stream concepts also ask for.
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers) {
    return or_throw([&](beast::error_code& ec) { return read_some(buffers, ec); });
  }
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers) {
    return or_throw([&](beast::error_code& ec) { return write_some(buffers, ec); });
  }

 private:
  static beast::error_code system_error() { return {errno, boost::system::system_category()}; }
  template <class Call>
  static std::size_t or_throw(Call call) {
    beast::error_code ec;
    const auto n = call(ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  /// Waits until the socket is ready for `events`; false with beast::error::timeout at the deadline.
  bool wait(short events, beast::error_code& ec) {
    for (;;) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - Clock::now());
      if (left.count() <= 0) return ec = beast::error::timeout, false;
      pollfd p{fd_, events, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 60'000)));
      if (ready > 0) return true;  // readable, writable, or hung up: the recv or send says which
      if (ready < 0 && errno != EINTR) return ec = system_error(), false;
    }
  }

  int fd_;
  Clock::time_point deadline_;
  bool answer_pending_ = false;
};

/// One keep-alive connection, used by one thread at a time. Its own io_context runs only to
/// connect, on the caller's thread, so no thread of the SDK's is needed; requests and answers
/// go through a DeadlineStream on its socket.
struct Connection {
  asio::io_context io;
  beast::tcp_stream stream{io};  ///< expires at the connect's deadline
  /// Bytes read past the previous response. Reserved up front: an empty flat_buffer reads 512
  /// bytes at a time, so a task of a few KiB took several reads (and reactor turns) to arrive.
  beast::flat_buffer buffer = [] {
    beast::flat_buffer b;
    b.reserve(16 * 1024);
    return b;
  }();

  /// Starts one async operation (the connect), runs it to completion here and returns its
  /// error; the stream's expiry turns a hang into beast::error::timeout.
  template <typename Start>
  beast::error_code run(Start start) {
    beast::error_code result;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    io.restart();
    io.run();
    return result;
  }

  ~Connection() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
  }
};

std::string format_ms(std::chrono::milliseconds ms) {
  if (ms.count() % 1000 == 0) return std::to_string(ms.count() / 1000) + "s";
  return std::to_string(ms.count()) + "ms";
}

}  // namespace

struct ServiceConnection::Impl {
  HostPort endpoint;
  std::string host_header;                        ///< "host:port" as sent in Host
  std::mutex mutex;                               ///< guards idle, in_flight and aborted
  std::vector<std::unique_ptr<Connection>> idle;  ///< open connections no call is using
  std::vector<int> in_flight;                     ///< the sockets of calls under way
  bool aborted = false;                           ///< abort_calls() ran

  /// Marks a call's socket under way until it is over, so that abort_calls() can end it.
  struct InFlight {
    InFlight(Impl& i, int f) : impl(i), fd(f) {}
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    Impl& impl;
    int fd;
    ~InFlight() {
      std::lock_guard lock(impl.mutex);
      if (auto it = std::find(impl.in_flight.begin(), impl.in_flight.end(), fd); it != impl.in_flight.end())
        impl.in_flight.erase(it);
    }
  };
  /// Registers `fd` as under way; false, registering nothing, once abort_calls() ran.
  bool enter(int fd) {
    std::lock_guard lock(mutex);
    if (!aborted) in_flight.push_back(fd);
    return !aborted;
  }

  std::unique_ptr<Connection> take_idle() {
    std::lock_guard lock(mutex);
    if (idle.empty()) return nullptr;
    auto connection = std::move(idle.back());  // the most recently used is the least likely stale
    idle.pop_back();
    return connection;
  }

  void give_back(std::unique_ptr<Connection> connection) {
    std::lock_guard lock(mutex);
    if (idle.size() < kMaxIdleConnections) idle.push_back(std::move(connection));
  }

  nlohmann::json call(const std::string& address, http::verb method, const std::string& target,
                      std::string body, std::chrono::milliseconds timeout);
  /// The status and body of a 2xx answer, as it came; error answers throw as call() does.
  std::pair<int, std::string> call_text(const std::string& address, http::verb method, const std::string& target,
                        std::string body, std::chrono::milliseconds timeout);
};

ServiceConnection::ServiceConnection(std::string address, std::string ns)
    : address_(std::move(address)), ns_(std::move(ns)), impl_(std::make_unique<Impl>()) {
  impl_->endpoint = parse_address(address_);
  impl_->host_header = impl_->endpoint.host + ":" + impl_->endpoint.port;
}

ServiceConnection::~ServiceConnection() = default;

void ServiceConnection::abort_calls() {
  std::lock_guard lock(impl_->mutex);
  impl_->aborted = true;
  for (int fd : impl_->in_flight) ::shutdown(fd, SHUT_RDWR);  // a poll(2) waiting on it returns
}

std::string ServiceConnection::in_namespace(std::string_view path) const {
  return "/namespaces/" + url_encode(ns_) + std::string(path);
}

nlohmann::json ServiceConnection::post(std::string_view path, const nlohmann::json& body,
                                       std::chrono::milliseconds timeout) {
  return post_unscoped(in_namespace(path), body, timeout);
}

nlohmann::json ServiceConnection::get(std::string_view path_and_query, std::chrono::milliseconds timeout) {
  return get_unscoped(in_namespace(path_and_query), timeout);
}

std::string ServiceConnection::get_text(std::string_view path_and_query, std::chrono::milliseconds timeout) {
  return impl_->call_text(address_, http::verb::get, "/api/v1" + in_namespace(path_and_query), {}, timeout).second;
}

nlohmann::json ServiceConnection::post_unscoped(std::string_view path, const nlohmann::json& body,
                                                std::chrono::milliseconds timeout) {
  return impl_->call(address_, http::verb::post, "/api/v1" + std::string(path), protocol::dump_json(body), timeout);
}

nlohmann::json ServiceConnection::get_unscoped(std::string_view path_and_query, std::chrono::milliseconds timeout) {
  return impl_->call(address_, http::verb::get, "/api/v1" + std::string(path_and_query), {}, timeout);
}

/// `&name=value` (or `?name=value` first), the value percent-encoded; nothing when it is empty.
void append_query(std::string& query, std::string_view name, std::string_view value) {
  if (value.empty()) return;
  query += query.empty() ? '?' : '&';
  query.append(name).append("=").append(url_encode(value));
}

std::string next_page_token(const nlohmann::json& page) {
  auto token = page.find("next_page_token");
  return token != page.end() && token->is_string() ? token->get<std::string>() : std::string();
}

nlohmann::json ServiceConnection::Impl::call(const std::string& address, http::verb method,
                                             const std::string& target, std::string body,
                                             std::chrono::milliseconds timeout) {
  auto [status, text] = call_text(address, method, target, std::move(body), timeout);
  if (text.empty()) return nlohmann::json::object();
  auto answer = protocol::parse_json_or_discarded(text);
  if (answer.is_discarded())
    throw ServiceError("Internal", "reprise-server at " + address + " answered " + target +
                                       " with a body that is not JSON", status);
  return answer;
}

std::pair<int, std::string> ServiceConnection::Impl::call_text(const std::string& address, http::verb method,
                                               const std::string& target, std::string body,
                                               std::chrono::milliseconds timeout) {
  http::request<http::string_body> req{method, to_beast(target), 11};
  req.set(http::field::host, host_header);
  req.set(http::field::user_agent, "reprise-sdk-cpp");
  req.set(http::field::accept, "application/json");
  if (method == http::verb::post) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
  }
  req.prepare_payload();

  const auto verb_text = http::to_string(method);
  const std::string method_name(verb_text.data(), verb_text.size());
  const auto unavailable = [&](const std::string& why) {
    return ServiceError("Unavailable",
                        "cannot reach reprise-server at " + address + ": " + why + " (" + method_name +
                            " " + target + ")",
                        0);
  };

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // At most two tries: a reused connection the server closed while it sat idle is resent once,
  // on a new connection. A new connection that fails is an error (the server is down).
  std::unique_ptr<Connection> connection = take_idle();
  for (int attempt = 0;; ++attempt) {
    const bool reused = connection != nullptr;
    if (!connection) {
      connection = std::make_unique<Connection>();
      tcp::resolver resolver(connection->io);
      beast::error_code ec;
      const auto endpoints = resolver.resolve(endpoint.host, endpoint.port, ec);
      if (ec) throw unavailable("cannot resolve \"" + endpoint.host + "\": " + ec.message());
      connection->stream.expires_at(deadline);
      ec = connection->run([&](auto handler) { connection->stream.async_connect(endpoints, handler); });
      if (ec == beast::error::timeout) throw unavailable("no connection within " + format_ms(timeout));
      if (ec) throw unavailable(ec.message());
      connection->stream.socket().set_option(tcp::no_delay(true));  // small requests: no Nagle delay
      connection->stream.socket().native_non_blocking(true, ec);     // DeadlineStream waits in poll()
      if (ec) throw unavailable(ec.message());
    }

    const int fd = connection->stream.socket().native_handle();
    if (!enter(fd)) throw unavailable("its calls were aborted (the worker is stopping)");
    std::optional<InFlight> under_way(std::in_place, *this, fd);
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // whole histories can be large
    DeadlineStream stream(fd, deadline);
    beast::error_code ec;
    http::write(stream, req, ec);
    if (!ec) {
      http::read(stream, connection->buffer, parser, ec);
    } else if (is_stale_connection(ec)) {
      // A server refusing a body as it arrives (413, over its limit) answers and closes before
      // reading the rest: the write fails, but the answer is there to read.
      beast::error_code read_ec;
      http::read(stream, connection->buffer, parser, read_ec);
      if (parser.is_done()) ec = {};
    }
    if (ec) {
      connection.reset();
      if (ec == beast::error::timeout) throw unavailable("no answer within " + format_ms(timeout));
      // Resend only if nothing of the answer arrived: then the server never handled the request.
      if (reused && attempt == 0 && !parser.got_some() && is_stale_connection(ec)) continue;
      throw unavailable(ec.message());
    }

    auto& res = parser.get();
    const int status = static_cast<int>(res.result_int());
    under_way.reset();  // before another call may take the connection
    if (res.keep_alive()) give_back(std::move(connection));

    if (status >= 200 && status < 300) return {status, std::move(res.body())};
    auto answer = protocol::parse_json_or_discarded(res.body());
    if (res.body().empty()) answer = nlohmann::json::object();
    if (!answer.is_discarded() && answer.contains("error") && answer["error"].is_object()) {
      const auto& error = answer["error"];
      throw ServiceError(error.value("code", "Internal"), error.value("message", "(no message)"), status);
    }
    // Not an API error answer (a proxy in between, say): name the code its status stands for.
    std::string code = status == 503 ? "Unavailable" : status == 404 ? "NotFound" : "Internal";
    throw ServiceError(code,
                       "reprise-server at " + address + " answered " + target + " with HTTP " +
                           std::to_string(status) + ": " + res.body().substr(0, 200),
                       status);
  }
}

std::string url_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                            c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

}  // namespace reprise::detail
