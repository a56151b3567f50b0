#include "support/http_client.hpp"

#include <limits>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace reprise::test {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpClient::Impl {
  std::string host;
  int port = 0;
  asio::io_context io;                ///< runs only inside request(), on the caller's thread
  beast::tcp_stream stream{io};       ///< the keep-alive connection; expires at each request's deadline
  beast::flat_buffer buffer;          ///< bytes read past the previous response
  bool connected = false;

  /// Starts one async operation, runs it to completion on this thread and returns its error.
  /// The stream's expiry turns a hang into beast::error::timeout.
  template <typename Start>
  beast::error_code run(Start start) {
    beast::error_code result;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    io.restart();
    io.run();
    return result;
  }

  void close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    buffer.clear();
    connected = false;
  }
};

namespace {

std::string describe(std::string_view method, std::string_view target, const std::string& host, int port) {
  return std::string(method) + " " + std::string(target) + " to " + host + ":" + std::to_string(port);
}

/// The server closed an idle keep-alive connection before reading our request: safe to resend.
bool is_stale_connection(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe;
}

/// Boost 1.74's Beast speaks boost::string_view.
beast::string_view to_beast(std::string_view s) { return {s.data(), s.size()}; }
std::string to_string(beast::string_view s) { return {s.data(), s.size()}; }

bool equals_ignoring_case(std::string_view a, std::string_view b) { return beast::iequals(to_beast(a), to_beast(b)); }

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (equals_ignoring_case(key, name)) return value;
  }
  return {};
}

HttpClient::HttpClient(std::string host, int port) : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
}

HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;
HttpClient::~HttpClient() = default;

void HttpClient::disconnect() {
  if (impl_ && impl_->connected) impl_->close();
}

HttpResponse HttpClient::request(std::string_view method, std::string_view target, std::string body,
                                 const HttpHeaders& headers) {
  Impl& impl = *impl_;
  http::request<http::string_body> req;
  if (const auto verb = http::string_to_verb(to_beast(method)); verb != http::verb::unknown) {
    req.method(verb);
  } else {
    req.method_string(to_beast(method));
  }
  req.target(to_beast(target));
  req.version(11);
  req.set(http::field::host, impl.host + ":" + std::to_string(impl.port));
  req.set(http::field::user_agent, "reprise-test");
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = std::move(body);
  req.prepare_payload();

  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  const auto what = [&] { return describe(method, target, impl.host, impl.port); };
  for (int attempt = 0;; ++attempt) {
    const bool reused = impl.connected;
    if (!impl.connected) {
      tcp::resolver resolver(impl.io);
      beast::error_code ec;
      const auto endpoints = resolver.resolve(impl.host, std::to_string(impl.port), ec);
      if (ec) throw std::runtime_error("HTTP " + what() + ": cannot resolve the host: " + ec.message());
      impl.stream.expires_at(deadline);
      ec = impl.run([&](auto handler) { impl.stream.async_connect(endpoints, handler); });
      if (ec) {
        impl.close();
        throw std::runtime_error("HTTP " + what() + ": cannot connect: " + ec.message() +
                                 " (is the server running and listening on that port?)");
      }
      impl.stream.socket().set_option(tcp::no_delay(true));  // small requests, no Nagle delay
      impl.connected = true;
    }

    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // history exports are large
    if (req.method() == http::verb::head) parser.skip(true);
    impl.stream.expires_at(deadline);
    auto ec = impl.run([&](auto handler) { http::async_write(impl.stream, req, handler); });
    if (!ec) ec = impl.run([&](auto handler) { http::async_read(impl.stream, impl.buffer, parser, handler); });
    if (ec) {
      impl.close();
      if (ec == beast::error::timeout) {
        throw std::runtime_error("HTTP " + what() + ": no response within " + std::to_string(timeout_.count()) +
                                 " ms");
      }
      if (reused && attempt == 0 && !parser.got_some() && is_stale_connection(ec)) continue;
      throw std::runtime_error("HTTP " + what() + " failed: " + ec.message());
    }

    auto& res = parser.get();
    HttpResponse response;
    response.status = static_cast<int>(res.result_int());
    for (const auto& field : res) response.headers.emplace_back(to_string(field.name_string()), to_string(field.value()));
    response.raw = std::move(res.body());
    if (!response.raw.empty()) {
      response.body = nlohmann::json::parse(response.raw, nullptr, /*allow_exceptions=*/false);
      if (response.body.is_discarded()) response.body = nullptr;
    }
    if (!res.keep_alive()) impl.close();
    return response;
  }
}

HttpResponse HttpClient::post_json(std::string_view target, const nlohmann::json& body, const HttpHeaders& headers) {
  HttpHeaders all = {{"Content-Type", "application/json"}};  // first, so the caller's own wins
  all.insert(all.end(), headers.begin(), headers.end());
  return request("POST", target, body.dump(), all);
}

HttpResponse HttpClient::get_json(std::string_view target, const HttpHeaders& headers) {
  HttpHeaders all = {{"Accept", "application/json"}};
  all.insert(all.end(), headers.begin(), headers.end());
  return request("GET", target, {}, all);
}

}  // namespace reprise::test
