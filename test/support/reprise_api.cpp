#include "support/reprise_api.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "support/wait.hpp"

namespace reprise::test {

RepriseApi::RepriseApi(int port, std::string ns) : http_("127.0.0.1", port), ns_(std::move(ns)) {}

std::string RepriseApi::path(const std::string& suffix) const {
  return "/api/v1/namespaces/" + ns_ + suffix;
}

HttpResponse RepriseApi::start(const json& body) { return http_.post_json(path("/workflows"), body); }

std::string RepriseApi::start_ok(const std::string& workflow_id, const std::string& type,
                                 const std::string& queue, json extra) {
  extra["workflow_id"] = workflow_id;
  extra["workflow_type"] = type;
  extra["task_queue"] = queue;
  auto r = start(extra);
  if (r.status != 201) throw std::runtime_error("start failed: " + std::to_string(r.status) + " " + r.raw);
  return r.body.at("run_id").get<std::string>();
}

HttpResponse RepriseApi::signal(const std::string& wid, const json& body) {
  return http_.post_json(path("/workflows/" + wid + "/signal"), body);
}
HttpResponse RepriseApi::signal_with_start(const std::string& wid, const json& body) {
  return http_.post_json(path("/workflows/" + wid + "/signal-with-start"), body);
}
HttpResponse RepriseApi::cancel(const std::string& wid, const json& body) {
  return http_.post_json(path("/workflows/" + wid + "/cancel"), body);
}
HttpResponse RepriseApi::terminate(const std::string& wid, const json& body) {
  return http_.post_json(path("/workflows/" + wid + "/terminate"), body);
}
HttpResponse RepriseApi::describe(const std::string& wid, const std::string& run_id) {
  return http_.get_json(path("/workflows/" + wid + (run_id.empty() ? "" : "?run_id=" + run_id)));
}
HttpResponse RepriseApi::list(const std::string& query) {
  return http_.get_json(path("/workflows" + (query.empty() ? "" : "?" + query)));
}
HttpResponse RepriseApi::history(const std::string& wid, const std::string& query) {
  return http_.get_json(path("/workflows/" + wid + "/history" + (query.empty() ? "" : "?" + query)));
}

std::vector<std::string> RepriseApi::event_types(const std::string& wid, const std::string& run_id) {
  auto events = history_events(*this, wid, run_id);
  std::vector<std::string> out;
  std::int64_t expected_id = 1;
  for (const auto& e : events) {
    if (e.at("event_id").get<std::int64_t>() != expected_id++)
      throw std::runtime_error("history is not contiguous from 1: " + events.dump());
    out.push_back(e.at("event_type").get<std::string>());
  }
  return out;
}

namespace {
std::optional<json> poll(HttpClient& http, const std::string& target, const std::string& timeout,
                         const std::string& identity) {
  auto r = http.post_json(target, {{"identity", identity}, {"timeout", timeout}});
  if (r.status != 200) throw std::runtime_error("poll failed: " + std::to_string(r.status) + " " + r.raw);
  if (r.body.at("task").is_null()) return std::nullopt;
  return r.body.at("task");
}
}  // namespace

std::optional<json> RepriseApi::poll_workflow_task(const std::string& queue, const std::string& timeout,
                                                   const std::string& identity) {
  return poll(http_, path("/task-queues/" + queue + "/workflow-tasks/poll"), timeout, identity);
}
std::optional<json> RepriseApi::poll_activity_task(const std::string& queue, const std::string& timeout,
                                                   const std::string& identity) {
  return poll(http_, path("/task-queues/" + queue + "/activity-tasks/poll"), timeout, identity);
}

json RepriseApi::expect_workflow_task(const std::string& queue, const std::string& timeout) {
  if (auto t = poll_workflow_task(queue, timeout)) return *t;
  throw std::runtime_error("no workflow task on queue " + queue + " within " + timeout);
}
json RepriseApi::expect_activity_task(const std::string& queue, const std::string& timeout) {
  if (auto t = poll_activity_task(queue, timeout)) return *t;
  throw std::runtime_error("no activity task on queue " + queue + " within " + timeout);
}

HttpResponse RepriseApi::complete_workflow_task(const std::string& token, const std::vector<json>& commands,
                                                json extra) {
  extra["task_token"] = token;
  extra["commands"] = commands;
  return http_.post_json(path("/workflow-tasks/complete"), extra);
}
HttpResponse RepriseApi::fail_workflow_task(const std::string& token, const std::string& cause,
                                            const std::string& message) {
  return http_.post_json(path("/workflow-tasks/fail"),
                         {{"task_token", token}, {"cause", cause}, {"failure", {{"message", message}}}});
}
HttpResponse RepriseApi::complete_activity(const std::string& token, const json& result, json extra) {
  extra["task_token"] = token;
  extra["result"] = result;
  return http_.post_json(path("/activity-tasks/complete"), extra);
}
HttpResponse RepriseApi::fail_activity(const std::string& token, const json& failure) {
  return http_.post_json(path("/activity-tasks/fail"), {{"task_token", token}, {"failure", failure}});
}
HttpResponse RepriseApi::heartbeat_activity(const std::string& token, const json& details) {
  return http_.post_json(path("/activity-tasks/heartbeat"), {{"task_token", token}, {"details", details}});
}
HttpResponse RepriseApi::cancel_activity(const std::string& token, const json& details) {
  return http_.post_json(path("/activity-tasks/cancel"), {{"task_token", token}, {"details", details}});
}

json RepriseApi::command(const std::string& type, json attributes) {
  return {{"command_type", type}, {"attributes", std::move(attributes)}};
}
json RepriseApi::schedule_activity(const std::string& activity_id, const std::string& type, json attributes) {
  attributes["activity_id"] = activity_id;
  attributes["activity_type"] = type;
  if (!attributes.contains("start_to_close_timeout") && !attributes.contains("schedule_to_close_timeout"))
    attributes["start_to_close_timeout"] = "30s";
  return command("ScheduleActivityTask", std::move(attributes));
}
json RepriseApi::start_timer(const std::string& timer_id, const std::string& duration) {
  return command("StartTimer", {{"timer_id", timer_id}, {"start_to_fire_timeout", duration}});
}
json RepriseApi::complete_workflow(const json& result) {
  return command("CompleteWorkflowExecution", {{"result", result}});
}

std::future<std::optional<json>> poll_in_background(int port, const std::string& queue, const std::string& identity,
                                                    const std::string& timeout) {
  return std::async(std::launch::async, [port, queue, identity, timeout] {
    RepriseApi worker(port);
    return worker.poll_workflow_task(queue, timeout, identity);
  });
}

void wait_for_waiting_polls(RepriseApi& api, const std::string& queue, std::size_t count) {
  wait_until([&] {
    auto r = api.http().get_json(api.path("/task-queues/" + queue));
    return r.status == 200 && r.body["waiting_polls"].size() == count;
  }, std::chrono::seconds(10), "the poll waits at the server");
}

std::future<std::optional<json>> poll_on_the_idle_list(RepriseApi& api, int port, const std::string& queue,
                                                       const std::string& identity) {
  auto poll = poll_in_background(port, queue, identity);
  wait_for_waiting_polls(api, queue, 1);
  return poll;
}

json history_events(RepriseApi& api, const std::string& workflow_id, const std::string& run_id) {
  json events = json::array();
  for (std::int64_t from = 1;;) {
    auto r = api.history(workflow_id, "page_size=10000&from_event_id=" + std::to_string(from) +
                                          (run_id.empty() ? "" : "&run_id=" + run_id));
    if (r.status != 200) throw std::runtime_error("history failed: " + r.raw);
    for (auto& e : r.body.at("events")) events.push_back(std::move(e));
    if (!r.body.value("has_more", false)) return events;
    from = r.body.at("next_event_id").get<std::int64_t>();
  }
}

std::vector<json> events_of_type(const json& events, const std::string& type) {
  std::vector<json> out;
  for (const auto& e : events)
    if (e.at("event_type") == type) out.push_back(e);
  return out;
}

std::ptrdiff_t count_of(const std::vector<std::string>& types, const std::string& type) {
  return std::count(types.begin(), types.end(), type);
}

}  // namespace reprise::test

// ---------------------------------------------------------------------------------------
// Fault-test helpers (restart / multi-instance / dev-mode fault tests). Appended block.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/wait.hpp"

extern char** environ;

namespace reprise::test {

std::int64_t event_time_ms(const std::string& timestamp) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0;
  if (std::sscanf(timestamp.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &y, &mo, &d, &h, &mi, &s, &ms) != 7)
    throw std::runtime_error("not an event time: \"" + timestamp + "\"");
  using namespace std::chrono;
  auto day = sys_days{year{y} / month{static_cast<unsigned>(mo)} / static_cast<unsigned>(d)};
  auto t = day + hours{h} + minutes{mi} + seconds{s} + milliseconds{ms};
  return duration_cast<milliseconds>(t.time_since_epoch()).count();
}

std::filesystem::path reprise_server_binary() {
  if (const char* env = std::getenv("REPRISE_SERVER_BINARY"); env != nullptr && *env != '\0') return env;
#ifdef REPRISE_SERVER_BINARY
  return REPRISE_SERVER_BINARY;
#else
  return std::filesystem::canonical("/proc/self/exe").parent_path().parent_path() / "history-service" /
         "reprise-server";
#endif
}

SpawnedServer::SpawnedServer(std::vector<std::string> args, std::filesystem::path output_file)
    : output_file_(std::move(output_file)) {
  args.insert(args.begin(), reprise_server_binary().string());
  std::string command_line;
  for (const auto& a : args) command_line += (command_line.empty() ? "" : " ") + a;
  std::ofstream(output_file_, std::ios::app) << "=== starting: " << command_line << "\n";
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const int out = ::open(output_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out < 0 || devnull < 0) throw std::runtime_error("cannot open " + output_file_.string());
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(devnull, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::closefrom(3);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv.data(), environ);
    ::_exit(127);
  }
  ::close(out);
  ::close(devnull);
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  pid_ = pid;
}

SpawnedServer::~SpawnedServer() {
  if (pid_ > 0) kill();
}

bool SpawnedServer::try_reap() {
  if (pid_ <= 0) return true;
  int status = 0;
  pid_t got;
  while ((got = ::waitpid(pid_, &status, WNOHANG)) < 0 && errno == EINTR) {
  }
  if (got != pid_) return false;
  exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
  pid_ = -1;
  return true;
}

int SpawnedServer::wait_ready(const std::filesystem::path& ready_file, std::chrono::milliseconds timeout) {
  int port = 0;
  auto read_port = [&] {
    std::ifstream in(ready_file);
    int p = 0;
    if (in >> p && p > 0 && p < 65536) port = p;
    return port != 0;
  };
  wait_until(
      [&] {
        if (read_port()) return true;
        if (try_reap())
          throw std::runtime_error("reprise-server exited with status " + std::to_string(exit_status_) +
                                   " before it was ready; its output:\n" + output());
        return false;
      },
      timeout, "reprise-server writes its ready file " + ready_file.string() + "; output so far:\n" + output(),
      std::chrono::milliseconds(20));
  return port;
}

void SpawnedServer::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int SpawnedServer::wait_exit(std::chrono::milliseconds timeout) {
  try {
    wait_until([&] { return try_reap(); }, timeout, "reprise-server exits");
  } catch (const std::runtime_error&) {
    return -1;
  }
  return exit_status_;
}

int SpawnedServer::kill() {
  if (pid_ <= 0) return exit_status_;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
  pid_ = -1;
  return exit_status_;
}

std::string SpawnedServer::output() const {
  std::ifstream in(output_file_, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace reprise::test
// End of fault-test helpers.
// ---------------------------------------------------------------------------------------
