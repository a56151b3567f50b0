#include "http/server.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <iterator>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/compile.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace reprise::http {

bool ClientLink::gone() {
  if (gone_) return true;
  if (fd_ < 0) return false;
  // A peek that never blocks: end-of-stream (or an error) means the client hung up; data would
  // be a pipelined request, left for the next read.
  char byte;
  auto n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) gone_ = true;
  return gone_;
}
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::awaitable;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

std::string percent_decode(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else if (in[i] == '+') {
      out += ' ';
    } else {
      out += in[i];
    }
  }
  return out;
}

Request to_request(bhttp::request<bhttp::string_body>&& req, const std::string& remote) {
  Request out;
  out.method = std::string(req.method_string());
  std::string_view target(req.target().data(), req.target().size());
  auto q = target.find('?');
  // Decode the path after splitting it into the query, so %2F inside a name stays in the name:
  // the router splits on '/' before decoding each segment.
  out.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      auto amp = query.find('&');
      auto pair = query.substr(0, amp);
      auto eq = pair.find('=');
      out.query[percent_decode(pair.substr(0, eq))] =
          eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  out.body = std::move(req.body());
  out.authorization = std::string(req[bhttp::field::authorization]);
  out.remote = remote;
  return out;
}

/// The bytes of an HTTP/1.x response with a JSON (or other) body.
std::string serialize(const Response& response, unsigned version, bool keep_alive) {
  const auto status = static_cast<bhttp::status>(response.status);
  auto reason = bhttp::obsolete_reason(status);
  std::string out;
  out.reserve(160 + response.content_type.size() + response.body.size());  // the head, then the body
  fmt::format_to(std::back_inserter(out),
                 FMT_COMPILE("HTTP/{}.{} {} {}\r\nServer: reprise\r\nContent-Type: {}\r\nContent-Length: {}\r\n"),
                 version / 10, version % 10, response.status, std::string_view(reason.data(), reason.size()),
                 response.content_type, response.body.size());
  if (version >= 11 && !keep_alive) out += "Connection: close\r\n";
  if (version < 11 && keep_alive) out += "Connection: keep-alive\r\n";
  out += "\r\n";
  out += response.body;
  return out;
}

/// An answer, and how much of it the thread that answered wrote to the socket itself.
struct Answer {
  std::string bytes;
  std::size_t sent = 0;
};

/// Writes what the kernel takes at once to the (non-blocking) socket, from the calling thread.
std::size_t send_now(int fd, std::string_view bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) sent += static_cast<std::size_t>(n);
    else if (n < 0 && errno == EINTR) continue;
    else break;  // full (the io thread writes the rest) or failed (its write reports why)
  }
  return sent;
}

/// Runs the handler and suspends the coroutine until it responds, from whatever thread. The
/// responding thread (usually a database thread) writes the answer to the socket itself, so
/// the client gets it without waiting for the io thread to wake; the coroutine, resumed on
/// the io thread, writes only what the socket did not take.
awaitable<Answer> call(const Handler& handler, Request request, int fd, unsigned version, bool keep_alive) {
  auto initiate = [&handler, &request, fd, version, keep_alive](auto completion) {
    auto shared = std::make_shared<decltype(completion)>(std::move(completion));
    handler(std::move(request), [shared, fd, version, keep_alive](Response response) {
      Answer answer{serialize(response, version, keep_alive)};
      answer.sent = send_now(fd, answer.bytes);
      auto executor = asio::get_associated_executor(*shared);
      asio::post(executor, [shared, answer = std::move(answer)]() mutable { (*shared)(std::move(answer)); });
    });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Answer)>(initiate,
                                                                                      asio::use_awaitable);
}

std::string error_body(std::string_view code, std::string_view message) {
  return fmt::format(R"({{"error":{{"code":"{}","message":"{}"}}}})", code, message);
}

}  // namespace

struct Server::Impl {
  Impl(asio::io_context& io, ServerOptions o, Handler h)
      : io(io), options(std::move(o)), handler(std::move(h)), strand(asio::make_strand(io)), acceptor(strand) {}

  awaitable<void> accept_loop() {
    for (;;) {
      beast::error_code ec;
      // Sockets belong to the io_context, not the acceptor's strand: sessions run in parallel.
      tcp::socket socket = co_await acceptor.async_accept(io, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (!acceptor.is_open()) co_return;
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      // Each session on a strand of its own: with several io threads, its coroutine and its
      // stream's timer never run at once, while different sessions still run in parallel.
      asio::co_spawn(asio::make_strand(io), session(std::move(socket)), asio::detached);
    }
  }

  awaitable<void> session(tcp::socket socket) {
    beast::error_code ec;
    std::string remote;
    auto endpoint = socket.remote_endpoint(ec);
    if (!ec) remote = fmt::format("{}:{}", endpoint.address().to_string(), endpoint.port());
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    buffer.reserve(16 * 1024);  // an empty flat_buffer reads 512 bytes at a time: a request took several reads
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(options.max_body_bytes);
      stream.expires_after(options.idle_timeout);  // idle keep-alive connections are closed after this
      co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      if (ec == bhttp::error::body_limit) {
        const auto too_large = serialize(
            {413, error_body("PayloadTooLarge",
                             fmt::format("the request body is over the {} byte limit", options.max_body_bytes))},
            11, /*keep_alive=*/false);
        co_await asio::async_write(stream, asio::buffer(too_large), asio::redirect_error(asio::use_awaitable, ec));
        break;
      }
      if (ec) break;  // closed by the peer, timed out, or not HTTP
      auto req = parser.release();
      bool keep_alive = req.keep_alive();
      unsigned version = req.version();
      stream.expires_never();  // a long poll may take a minute; the handler owns the deadline
      auto request = to_request(std::move(req), remote);
      request.client = std::make_shared<ClientLink>(stream.socket().native_handle());
      Answer answer = co_await call(handler, std::move(request), stream.socket().native_handle(), version, keep_alive);
      if (answer.sent < answer.bytes.size()) {
        stream.expires_after(60s);
        co_await asio::async_write(stream, asio::buffer(answer.bytes.data() + answer.sent, answer.bytes.size() - answer.sent),
                                   asio::redirect_error(asio::use_awaitable, ec));
      }
      if (ec || !keep_alive) break;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  asio::io_context& io;
  ServerOptions options;
  Handler handler;
  // The acceptor is touched by its accept loop and by stop(), from different io threads: both
  // go through this strand, since an acceptor is not safe to use from two threads at once.
  asio::strand<asio::io_context::executor_type> strand;
  tcp::acceptor acceptor;
};

Server::Server(asio::io_context& io, ServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(io, std::move(options), std::move(handler))) {}

Server::~Server() = default;

void Server::start() {
  auto& a = impl_->acceptor;
  beast::error_code ec;
  tcp::endpoint endpoint(asio::ip::make_address(impl_->options.address, ec),
                         static_cast<unsigned short>(impl_->options.port));
  if (ec) throw std::runtime_error(fmt::format("invalid listen address \"{}\"", impl_->options.address));
  a.open(endpoint.protocol());
  a.set_option(tcp::acceptor::reuse_address(true));
  a.bind(endpoint, ec);
  if (ec)
    throw std::runtime_error(fmt::format("cannot listen on {}:{}: {} (is another server running? "
                                         "choose another with --port)",
                                         impl_->options.address, impl_->options.port, ec.message()));
  a.listen(asio::socket_base::max_listen_connections);
  asio::co_spawn(impl_->strand, impl_->accept_loop(), asio::detached);
}

void Server::stop() {
  asio::post(impl_->strand, [impl = impl_.get()] {
    beast::error_code ec;
    impl->acceptor.close(ec);
  });
}

int Server::port() const { return impl_->acceptor.local_endpoint().port(); }

}  // namespace reprise::http
