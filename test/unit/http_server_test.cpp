// The HTTP server's answer path, in process with a raw socket as the client: the thread that
// answers writes to the socket itself, and the io thread writes whatever the socket did not
// take at once.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <atomic>
#include <mutex>
#include <vector>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "http/server.hpp"

namespace {

using namespace std::chrono_literals;

/// A server on a free port whose handler answers from a thread of its own, as the database
/// threads do: with `body_for(request)`, once `may_answer` is set.
class ServerUnderTest {
 public:
  explicit ServerUnderTest(std::function<std::string(const reprise::http::Request&)> body_for)
      : server_(io_, {.address = "127.0.0.1", .port = 0},
                [this, body_for](reprise::http::Request&& r, reprise::http::Respond respond) {
                  std::lock_guard lock(mutex_);
                  answerers_.emplace_back([this, body = body_for(r), respond] {
                    respond({200, body, "text/plain"});
                    ++answered_;
                  });
                }) {
    server_.start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ServerUnderTest() {
    server_.stop();
    io_.stop();
    thread_.join();
    for (auto& t : answerers_) t.join();
  }
  int port() const { return server_.port(); }
  /// Waits until `count` answering threads have returned from respond().
  void wait_answered(int count) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (answered_ < count) {
      if (std::chrono::steady_clock::now() > deadline) FAIL("the handler's thread did not answer in 10 s");
      std::this_thread::yield();
    }
  }

 private:
  boost::asio::io_context io_{1};
  reprise::http::Server server_;
  std::mutex mutex_;
  std::vector<std::thread> answerers_;
  std::atomic<int> answered_{0};
  std::thread thread_;
};

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  timeval timeout{10, 0};  // a test that would hang fails instead
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return fd;
}

void send_all(int fd, const std::string& bytes) {
  REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

/// Reads one response: its head, and a body of Content-Length bytes.
std::pair<std::string, std::string> read_response(int fd, std::string& buffered) {
  auto read_more = [&] {
    char chunk[65536];
    auto n = ::recv(fd, chunk, sizeof chunk, 0);
    REQUIRE(n > 0);  // 0: closed before the whole response came; -1: 10 s with nothing
    buffered.append(chunk, static_cast<std::size_t>(n));
  };
  while (buffered.find("\r\n\r\n") == std::string::npos) read_more();
  const auto head_end = buffered.find("\r\n\r\n") + 4;
  std::string head = buffered.substr(0, head_end);
  const auto at = head.find("Content-Length: ");
  REQUIRE(at != std::string::npos);
  const auto length = std::stoul(head.substr(at + 16));
  while (buffered.size() < head_end + length) read_more();
  std::string body = buffered.substr(head_end, length);
  buffered.erase(0, head_end + length);
  return {head, body};
}

}  // namespace

TEST_CASE("answers from another thread arrive whole, one after another on a kept-alive connection") {
  ServerUnderTest server([](const reprise::http::Request& r) { return "answer to " + r.path; });
  int fd = connect_to(server.port());
  std::string buffered;
  for (const std::string path : {"/first", "/second", "/third"}) {
    send_all(fd, "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n");
    auto [head, body] = read_response(fd, buffered);
    CHECK(head.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(head.find("Content-Type: text/plain\r\n") != std::string::npos);
    CHECK(head.find("Connection: close") == std::string::npos);
    CHECK(body == "answer to " + path);
  }
  ::close(fd);
}

TEST_CASE("an answer larger than the socket takes at once is finished by the io thread") {
  std::string big(32 << 20, 'x');  // far more than a loopback socket buffers
  for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
  ServerUnderTest server([&](const reprise::http::Request&) { return big; });
  int fd = connect_to(server.port());
  send_all(fd, "GET /big HTTP/1.1\r\nHost: test\r\n\r\n");
  // Nothing is read until the answering thread is done: it wrote only what fit.
  server.wait_answered(1);
  std::string buffered;
  auto [head, body] = read_response(fd, buffered);
  CHECK(head.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(body.size() == big.size());
  CHECK(body == big);
  // The connection still serves the next request.
  send_all(fd, "GET /again HTTP/1.1\r\nHost: test\r\n\r\n");
  auto [head2, body2] = read_response(fd, buffered);
  CHECK(body2.size() == big.size());
  ::close(fd);
}

TEST_CASE("a request asking to close gets its answer, then the connection closes") {
  ServerUnderTest server([](const reprise::http::Request&) { return "bye"; });
  int fd = connect_to(server.port());
  send_all(fd, "GET /last HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
  std::string buffered;
  auto [head, body] = read_response(fd, buffered);
  CHECK(head.find("Connection: close\r\n") != std::string::npos);
  CHECK(body == "bye");
  char byte;
  CHECK(::recv(fd, &byte, 1, 0) == 0);  // end of stream
  ::close(fd);

  fd = connect_to(server.port());  // HTTP/1.0 closes unless asked to keep the connection
  send_all(fd, "GET /old HTTP/1.0\r\n\r\n");
  buffered.clear();
  auto [head10, body10] = read_response(fd, buffered);
  CHECK(head10.starts_with("HTTP/1.0 200 OK\r\n"));
  CHECK(body10 == "bye");
  CHECK(::recv(fd, &byte, 1, 0) == 0);
  ::close(fd);
}
