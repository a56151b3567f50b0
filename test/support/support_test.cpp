// The test harness itself: ServerProcess, HttpClient and wait_until, against fake_server.py,
// a stand-in that speaks the real server's start protocol (ready file) and plain HTTP.

#include <csignal>
#include <filesystem>
#include <stdexcept>

#include <catch2/catch.hpp>
#include <unistd.h>

#include "support/http_client.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

using namespace std::chrono_literals;
using reprise::test::HttpClient;
using reprise::test::ServerOptions;
using reprise::test::ServerProcess;
using reprise::test::wait_until;

namespace {

bool have_python() { return ::access("/usr/bin/python3", X_OK) == 0; }

ServerOptions fake_server(std::vector<std::string> extra_args = {}) {
  return ServerOptions{.database_url = "host=127.0.0.1 dbname=unused",
                       .extra_args = std::move(extra_args),
                       .binary = REPRISE_FAKE_SERVER};
}

}  // namespace

TEST_CASE("wait_until returns once the predicate holds and names what it waited for otherwise", "[support]") {
  int calls = 0;
  wait_until([&] { return ++calls == 3; }, 1s, "the third call");
  CHECK(calls == 3);
  CHECK_THROWS_WITH(wait_until([] { return false; }, 50ms, "pigs fly"), Catch::Contains("pigs fly"));
}

TEST_CASE("a server process reports its port and answers over one keep-alive connection", "[support]") {
  if (!have_python()) {
    WARN("python3 missing: harness self-test skipped");
    return;
  }
  ServerProcess server(fake_server());
  REQUIRE(server.port() > 0);
  CHECK(server.base_url() == "http://127.0.0.1:" + std::to_string(server.port()));

  HttpClient http("127.0.0.1", server.port());
  auto first = http.get_json("/json");
  CHECK(first.status == 200);
  CHECK(first.body["ok"] == true);
  CHECK(http.get_json("/json").body["requests_on_connection"] == 2);

  auto echoed = http.post_json("/echo", {{"name", "reprise"}});
  CHECK(echoed.body["body"] == R"({"name":"reprise"})");
  CHECK(echoed.body["content_type"] == "application/json");

  auto text = http.request("GET", "/text");
  CHECK(text.raw == "plain");
  CHECK(text.body.is_null());
  CHECK(text.header("content-type") == "text/plain");
  CHECK(http.get_json("/missing").status == 404);
  CHECK_THAT(server.output(), Catch::Contains("listening on"));
}

TEST_CASE("the http client reconnects when the server dropped the keep-alive connection", "[support]") {
  if (!have_python()) {
    WARN("python3 missing: harness self-test skipped");
    return;
  }
  ServerProcess server(fake_server());
  HttpClient http("127.0.0.1", server.port());
  CHECK(http.get_json("/drop").status == 200);
  auto after = http.get_json("/json");
  CHECK(after.status == 200);
  CHECK(after.body["requests_on_connection"] == 1);  // a new connection
}

TEST_CASE("the http client turns a hang into an error", "[support]") {
  if (!have_python()) {
    WARN("python3 missing: harness self-test skipped");
    return;
  }
  ServerProcess server(fake_server());
  HttpClient http("127.0.0.1", server.port());
  http.set_timeout(200ms);
  CHECK_THROWS_WITH(http.get_json("/slow"), Catch::Contains("no response within 200 ms"));
  http.set_timeout(10s);
  CHECK(http.get_json("/json").status == 200);  // and recovers on a new connection
}

TEST_CASE("a server that exits before it is ready fails the start with its output", "[support]") {
  if (!have_python()) {
    WARN("python3 missing: harness self-test skipped");
    return;
  }
  CHECK_THROWS_WITH(ServerProcess(fake_server({"--exit-before-ready"})),
                    Catch::Contains("exited with status 3") && Catch::Contains("told to exit before ready"));
}

TEST_CASE("a missing server binary is reported", "[support]") {
  auto options = fake_server();
  options.binary = "/nonexistent/reprise-server";
  CHECK_THROWS_WITH(ServerProcess(options), Catch::Contains("cannot execute /nonexistent/reprise-server"));
}

TEST_CASE("a server process can be killed, restarted on a new port and terminated", "[support]") {
  if (!have_python()) {
    WARN("python3 missing: harness self-test skipped");
    return;
  }
  ServerProcess server(fake_server());
  const int first_port = server.port();
  server.kill(SIGSTOP);
  CHECK(server.running());  // paused, not gone
  server.kill();
  CHECK_FALSE(server.running());
  CHECK_THROWS(HttpClient("127.0.0.1", first_port).get_json("/json"));

  server.restart();
  CHECK(server.running());
  CHECK(HttpClient("127.0.0.1", server.port()).get_json("/json").status == 200);

  CHECK(server.terminate() == 128 + SIGTERM);  // python dies of the signal: no handler
  CHECK_FALSE(server.running());
}
