// The HTTP server's answer path, in process with a raw socket as the client: the thread that
// answers writes to the socket itself, and the io thread writes whatever the socket did not
// take at once.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <vector>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "http/server.hpp"

namespace {

using namespace std::chrono_literals;

/// A server on a free port whose handler answers from a thread of its own, as the database
/// threads do: with `body_for(request)`, at once, or, while answers are held, when released.
class ServerUnderTest {
 public:
  explicit ServerUnderTest(std::function<std::string(const reprise::http::Request&)> body_for,
                           std::chrono::milliseconds idle_timeout = std::chrono::minutes(5))
      : server_(io_, {.address = "127.0.0.1", .port = 0, .idle_timeout = idle_timeout},
                [this, body_for](reprise::http::Request&& r, reprise::http::Respond respond) {
                  std::lock_guard lock(mutex_);
                  ++received_;
                  last_client_ = r.client;
                  auto answer = [this, body = body_for(r), respond] {
                    respond({200, body, "text/plain"});
                    ++answered_;
                  };
                  if (hold_) held_.push_back(std::move(answer));
                  else answerers_.emplace_back(std::move(answer));
                }) {
    server_.start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ServerUnderTest() {
    release();
    server_.stop();
    io_.stop();
    thread_.join();
    for (auto& t : answerers_) t.join();
  }
  int port() const { return server_.port(); }
  /// From now on, requests wait for release() for their answers.
  void hold() {
    std::lock_guard lock(mutex_);
    hold_ = true;
  }
  /// Answers every held request, in order, from threads of their own; stops holding.
  void release() {
    std::lock_guard lock(mutex_);
    hold_ = false;
    for (auto& answer : held_) answerers_.emplace_back(std::move(answer));
    held_.clear();
  }
  /// Requests the handler has been given.
  int received() {
    std::lock_guard lock(mutex_);
    return received_;
  }
  /// How the server sees the client of the last request it was given.
  std::shared_ptr<reprise::http::ClientLink> last_client() {
    std::lock_guard lock(mutex_);
    return last_client_;
  }
  /// Waits until `count` answering threads have returned from respond().
  void wait_answered(int count) { wait_until([&] { return answered_ >= count; }, "the handler's thread did not answer"); }
  void wait_received(int count) { wait_until([&] { return received() >= count; }, "the handler was not given the request"); }

 private:

 public:
  template <class Condition>
  static void wait_until(Condition done, const char* failure) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) FAIL(failure << " in 10 s");
      std::this_thread::yield();
    }
  }

  boost::asio::io_context io_{1};
  reprise::http::Server server_;
  std::mutex mutex_;
  bool hold_ = false;
  int received_ = 0;
  std::vector<std::function<void()>> held_;
  std::shared_ptr<reprise::http::ClientLink> last_client_;
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

TEST_CASE("a request sent before the previous answer waits for it, and answers keep their order") {
  ServerUnderTest server([](const reprise::http::Request& r) { return "answer to " + r.path; });
  server.hold();
  int fd = connect_to(server.port());
  send_all(fd, "GET /first HTTP/1.1\r\nHost: test\r\n\r\nGET /second HTTP/1.1\r\nHost: test\r\n\r\n");
  server.wait_received(1);
  // The second request arrived with the first, but is not handed over while the first waits.
  std::this_thread::sleep_for(100ms);  // a wrong server would hand it over meanwhile
  CHECK(server.received() == 1);
  server.release();
  std::string buffered;
  auto [head1, body1] = read_response(fd, buffered);
  auto [head2, body2] = read_response(fd, buffered);
  CHECK(body1 == "answer to /first");
  CHECK(body2 == "answer to /second");
  CHECK(server.received() == 2);
  ::close(fd);
}

TEST_CASE("an idle connection is closed after the idle timeout, one waiting for its answer is not") {
  ServerUnderTest server([](const reprise::http::Request& r) { return "answer to " + r.path; }, 300ms);
  // The server accepts after the connect returns, so its idle clock starts after this.
  const auto before = std::chrono::steady_clock::now();
  int idle = connect_to(server.port());
  int waiting = connect_to(server.port());
  server.hold();
  send_all(waiting, "GET /long-poll HTTP/1.1\r\nHost: test\r\n\r\n");
  server.wait_received(1);
  char byte;
  CHECK(::recv(idle, &byte, 1, 0) == 0);  // closed by the server (the socket gives up after 10 s)
  CHECK(std::chrono::steady_clock::now() - before >= 300ms);
  // Three idle timeouts later the request still waits, and its answer still arrives.
  std::this_thread::sleep_for(900ms);
  server.release();
  std::string buffered;
  auto [head, body] = read_response(waiting, buffered);
  CHECK(body == "answer to /long-poll");
  // The connection was kept: it serves the next request, then, idle, is closed in its turn.
  send_all(waiting, "GET /next HTTP/1.1\r\nHost: test\r\n\r\n");
  auto [head2, body2] = read_response(waiting, buffered);
  CHECK(body2 == "answer to /next");
  CHECK(::recv(waiting, &byte, 1, 0) == 0);
  ::close(idle);
  ::close(waiting);
}

TEST_CASE("a client that hangs up before its answer leaves the server serving others") {
  std::string big(32 << 20, 'x');  // more than the socket takes: the io thread writes the rest, and fails
  ServerUnderTest server([&](const reprise::http::Request& r) { return r.path == "/abandoned" ? big : "answer to " + r.path; });
  server.hold();
  int gone = connect_to(server.port());
  send_all(gone, "GET /abandoned HTTP/1.1\r\nHost: test\r\n\r\n");
  server.wait_received(1);
  auto client = server.last_client();
  CHECK_FALSE(client->gone());
  ::close(gone);
  ServerUnderTest::wait_until([&] { return client->gone(); }, "the server did not see the client hang up");
  server.release();
  server.wait_answered(1);
  int fd = connect_to(server.port());
  send_all(fd, "GET /next HTTP/1.1\r\nHost: test\r\n\r\n");
  std::string buffered;
  auto [head, body] = read_response(fd, buffered);
  CHECK(body == "answer to /next");
  ::close(fd);
}
