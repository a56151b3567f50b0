#include "e2e/e2e_support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include <reprise/protocol/event_type.hpp>

#include "e2e/e2e_workflows.hpp"
#include "support/postgres_fixture.hpp"
#include "support/server_process.hpp"

namespace e2e {

namespace fs = std::filesystem;

namespace {

reprise::test::ServerProcess& shared_server() {
  // Constructed after the shared PostgreSQL cluster (fresh_database starts it), so destroyed
  // before it.
  static reprise::test::ServerProcess server({.database_url = reprise::test::fresh_database("e2e")});
  return server;
}

}  // namespace

const std::string& server_address() {
  static const std::string address = [] {
    return "127.0.0.1:" + std::to_string(shared_server().port());
  }();
  return address;
}

std::string server_output() { return shared_server().output(); }

std::string unique_queue(const std::string& label) {
  static std::atomic<int> counter{0};
  return label + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

// ---- TestWorker -----------------------------------------------------------------------------

TestWorker::TestWorker(const std::string& task_queue, std::size_t cache_size, std::string identity,
                       const std::function<void(reprise::Registry&)>& extra,
                       const std::function<void(reprise::WorkerOptions&)>& configure) {
  reprise::WorkerOptions options{.address = server_address(), .task_queue = task_queue,
                                 .identity = std::move(identity), .cache_size = cache_size,
                                 .sticky_schedule_to_start_timeout = std::chrono::seconds(1),
                                 .poll_timeout = std::chrono::seconds(1), .handle_signals = false};
  if (configure) configure(options);
  worker_ = std::make_unique<reprise::Worker>(options);
  register_all(worker_->registry());
  if (extra) extra(worker_->registry());
  worker_->start();
}

TestWorker::~TestWorker() { shutdown(); }

void TestWorker::shutdown() {
  if (worker_) worker_->shutdown();
}

// ---- WorkerProcess --------------------------------------------------------------------------

WorkerProcess::WorkerProcess(const std::string& task_queue, std::size_t cache_size, const fs::path& output_file,
                             const std::vector<std::string>& extra_args) {
  std::vector<std::string> args = {REPRISE_E2E_WORKER_BINARY, "--address", server_address(),
                                   "--task-queue", task_queue, "--cache-size", std::to_string(cache_size),
                                   "--sticky-timeout-ms", "1000"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int out = ::open(output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) throw std::runtime_error("open " + output_file.string() + ": " + std::strerror(errno));
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The child of a multi-threaded process: async-signal-safe calls only.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(out, 1);
    ::dup2(out, 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out);
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  pid_ = pid;
}

WorkerProcess::~WorkerProcess() { kill(); }

void WorkerProcess::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

bool WorkerProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

// ---- Histories ------------------------------------------------------------------------------

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> event_types(const json& history) {
  std::vector<std::string> out;
  for (const auto& e : history.at("events")) out.push_back(e.at("event_type").get<std::string>());
  return out;
}

int count_events(const json& history, const std::string& type) {
  int n = 0;
  for (const auto& e : history.at("events"))
    if (e.at("event_type") == type) ++n;
  return n;
}

std::vector<json> events_of(const json& history, const std::string& type) {
  std::vector<json> out;
  for (const auto& e : history.at("events"))
    if (e.at("event_type") == type) out.push_back(e);
  return out;
}

std::string summarize(const json& history) {
  std::string out;
  for (const auto& e : history.at("events")) {
    auto attributes = e.value("attributes", json::object()).dump();
    if (attributes.size() > 160) attributes = attributes.substr(0, 157) + "...";
    out += e.at("event_id").dump() + " " + e.value("event_time", "") + " " + e.at("event_type").get<std::string>() +
           " " + attributes + "\n";
  }
  return out;
}

std::vector<std::string> invariant_violations(const json& history) {
  std::vector<std::string> problems;
  const auto& events = history.at("events");
  std::int64_t expected_id = 1;
  int terminal = 0;
  std::map<std::int64_t, int> outcomes;  // scheduled_event_id -> completion events
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    auto id = e.at("event_id").get<std::int64_t>();
    auto type_name = e.at("event_type").get<std::string>();
    if (id != expected_id) problems.push_back("event " + std::to_string(id) + " where " + std::to_string(expected_id) + " was expected");
    expected_id = id + 1;
    auto type = reprise::protocol::event_type_from_string(type_name);
    if (type && reprise::protocol::is_terminal(*type)) {
      ++terminal;
      if (i + 1 != events.size()) problems.push_back("terminal event " + type_name + " is not last");
    }
    if (type_name == "ActivityTaskCompleted" || type_name == "ActivityTaskFailed" ||
        type_name == "ActivityTaskTimedOut" || type_name == "ActivityTaskCanceled") {
      auto scheduled = e.at("attributes").value("scheduled_event_id", std::int64_t{0});
      if (++outcomes[scheduled] > 1)
        problems.push_back("activity scheduled at event " + std::to_string(scheduled) + " has a second outcome " +
                           type_name + " (event " + std::to_string(id) + ")");
    }
  }
  if (terminal != 1) problems.push_back(std::to_string(terminal) + " terminal events");
  return problems;
}

}  // namespace e2e
