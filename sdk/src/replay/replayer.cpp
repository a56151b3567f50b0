#include <reprise/replayer.hpp>

#include <fstream>
#include <functional>
#include <ostream>

#include <fmt/format.h>
#include <reprise/protocol/timestamp.hpp>

#include "engine/run_cache.hpp"
#include "engine/workflow_task_handler.hpp"
#include "fiber/fiber.hpp"
#include "transport/service_connection.hpp"

namespace reprise {

using nlohmann::json;
using detail::TaskAnswer;

std::string ReplayResult::report() const {
  if (ok()) return fmt::format("run {} of {} ({}) replays cleanly\n", run_id, workflow_id, workflow_type);
  std::string out = fmt::format("run {} of {} ({}) does not replay:\n  {}\n", run_id, workflow_id,
                                workflow_type, message);
  if (!excerpt.empty()) out += "history around event " + std::to_string(event_id) + ":\n" + excerpt;
  return out;
}

Replayer::Replayer(const Registry& registry) : registry_(registry) {}
Replayer::~Replayer() = default;

namespace {

std::string excerpt_around(const json& events, std::int64_t event_id) {
  std::string out;
  for (const auto& e : events) {
    auto id = e.value("event_id", std::int64_t{0});
    if (id < event_id - 4 || id > event_id + 2) continue;
    auto attrs = e.value("attributes", json::object()).dump();
    if (attrs.size() > 100) attrs = attrs.substr(0, 97) + "...";
    out += fmt::format("  {} {:>5}  {}  {}\n", id == event_id ? ">" : " ", id, e.value("event_type", ""), attrs);
  }
  return out;
}

/// The history in pieces, one per workflow task, fed one after another into the same warm
/// run as a worker with the run cached gets them. A piece starts at a WorkflowTaskScheduled
/// and runs through that task's completion and the command events it recorded, so a task
/// the history shows completed is replayed as such (its markers seen ahead), not run as new.
std::vector<json> split_by_task(const json& events) {
  std::vector<json> chunks(1, json::array());
  for (const auto& e : events) {
    if (e.value("event_type", "") == "WorkflowTaskScheduled" && !chunks.back().empty())
      chunks.push_back(json::array());
    chunks.back().push_back(e);
  }
  return chunks;
}

/// Feeds a run's history, one piece at a time, through the worker's workflow-task handler into
/// one warm run, and records the first divergence in `result`.
class TaskFeeder {
 public:
  TaskFeeder(const Registry& registry, const json& header, ReplayResult& result)
      : handler_(registry, stacks_, cache_, /*fail_workflow_on_nondeterminism=*/false), header_(header), result_(result) {}

  /// Returns false once the history diverged.
  bool feed(const json& events) {
    if (events.empty() || failed_) return !failed_;
    if (result_.workflow_type.empty())
      result_.workflow_type = events[0].value("attributes", json::object()).value("workflow_type", "");
    json task = {{"namespace", header_.value("namespace", "default")},
                 {"workflow_id", result_.workflow_id},
                 {"run_id", result_.run_id.empty() ? "replay" : result_.run_id},
                 {"workflow_type", result_.workflow_type},
                 {"history_from_event_id", from_},
                 {"history", events}};
    auto answer = handler_.handle(task, [](const std::string&, const std::string&) -> std::vector<detail::HistoryEvent> {
      throw std::runtime_error("the replayer has the whole history; nothing to fetch");
    });
    if (answer.kind == TaskAnswer::Kind::kFail) {
      failed_ = true;
      result_.code = answer.error_code;
      result_.message = answer.error;
      result_.event_id = answer.event_id;
      if (result_.event_id) result_.excerpt = excerpt_around(events, result_.event_id);
      return false;
    }
    handler_.finished(handler_.release_run(), /*accepted=*/true);
    from_ += static_cast<std::int64_t>(events.size());
    return true;
  }

 private:
  detail::StackPool stacks_;
  detail::RunCache cache_{1};
  detail::WorkflowTaskHandler handler_;
  const json& header_;
  ReplayResult& result_;
  std::int64_t from_ = 1;
  bool failed_ = false;
};

void take_header(const json& header, ReplayResult& result) {
  result.workflow_id = header.value("workflow_id", "");
  result.run_id = header.value("run_id", "");
  result.workflow_type = header.value("workflow_type", "");
}

}  // namespace

ReplayResult Replayer::replay(const json& history, Mode mode) const {
  ReplayResult result;
  if (!history.is_object() || !history.contains("events") || !history["events"].is_array()) {
    result.message = "not a history document: it needs an \"events\" array (docs/history-format.md)";
    return result;
  }
  take_header(history, result);
  const auto& events = history.at("events");
  TaskFeeder feeder(registry_, history, result);
  for (const auto& piece : mode == Mode::kWhole ? std::vector<json>{events} : split_by_task(events))
    if (!feeder.feed(piece)) break;
  if (!result.ok() && result.event_id) result.excerpt = excerpt_around(events, result.event_id);
  return result;
}

namespace {

/// Reads a history document event by event (nlohmann's SAX interface), so a large file is
/// never held whole: each event is built, handed on, and dropped. Top-level fields are kept.
class HistoryReader : public nlohmann::json_sax<json> {
 public:
  explicit HistoryReader(std::function<void(json)> on_event) : on_event_(std::move(on_event)) {}
  json header = json::object();

  bool null() override { return value(nullptr); }
  bool boolean(bool v) override { return value(v); }
  bool number_integer(number_integer_t v) override { return value(v); }
  bool number_unsigned(number_unsigned_t v) override { return value(v); }
  bool number_float(number_float_t v, const string_t&) override { return value(v); }
  bool string(string_t& v) override { return value(v); }
  bool binary(binary_t&) override { return value(nullptr); }
  bool key(string_t& k) override {
    if (depth_ == 1) top_key_ = k;
    else key_ = k;
    return true;
  }
  bool start_object(std::size_t) override { return open(json::object()); }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    throw std::runtime_error(fmt::format("the history file is not valid JSON at byte {}: {}", position, e.what()));
  }

 private:
  // Adds a value where it belongs: into the event being built, or into the header.
  bool value(json v) {
    if (!stack_.empty()) {
      auto& top = *stack_.back();
      if (top.is_object()) top[key_] = std::move(v);
      else top.push_back(std::move(v));
    } else if (depth_ == 1) {
      header[top_key_] = std::move(v);
    }
    return true;
  }
  bool open(json container) {
    ++depth_;
    if (depth_ == 3 && top_key_ == "events") {  // an event begins
      event_ = std::move(container);
      stack_.push_back(&event_);
    } else if (!stack_.empty()) {
      auto& top = *stack_.back();
      json* child;
      if (top.is_object()) {
        child = &(top[key_] = std::move(container));
      } else {
        top.push_back(std::move(container));
        child = &top.back();
      }
      stack_.push_back(child);
    }
    return true;
  }
  bool close() {
    if (!stack_.empty()) stack_.pop_back();
    if (depth_ == 3 && top_key_ == "events") on_event_(std::move(event_));
    --depth_;
    return true;
  }

  std::function<void(json)> on_event_;
  int depth_ = 0;
  std::string top_key_, key_;  // the current top-level field, and the current key inside an event
  json event_;
  std::vector<json*> stack_;  // containers of the event being built, innermost last
};

}  // namespace

ReplayResult Replayer::replay_file(const std::filesystem::path& path, Mode mode) const {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ReplayResult r;
    r.message = "cannot open history file " + path.string();
    return r;
  }
  if (mode == Mode::kWhole) {
    json history;
    try {
      history = json::parse(in);
    } catch (const json::parse_error& e) {
      ReplayResult r;
      r.message = fmt::format("history file {} is not JSON: {}", path.string(), e.what());
      return r;
    }
    return replay(history, mode);
  }

  // Task by task, the file streams: one workflow task's events in memory at a time. A first
  // pass reads the top-level fields (the code may use its workflow id, and writers put the
  // fields in any order), a second the events.
  ReplayResult result;
  json header;
  try {
    HistoryReader header_reader([](json) {});
    json::sax_parse(in, &header_reader);
    header = std::move(header_reader.header);
  } catch (const std::exception& e) {
    result.message = fmt::format("history file {}: {}", path.string(), e.what());
    return result;
  }
  in.clear();
  in.seekg(0);
  take_header(header, result);
  TaskFeeder feeder(registry_, header, result);
  json chunk = json::array();
  bool failed = false;
  auto feed = [&] {
    if (!failed) failed = !feeder.feed(chunk);
    chunk = json::array();
  };
  HistoryReader reader([&](json event) {
    if (event.value("event_type", "") == "WorkflowTaskScheduled") feed();
    if (!failed) chunk.push_back(std::move(event));
  });
  try {
    json::sax_parse(in, &reader);
    feed();
  } catch (const std::exception& e) {
    result.message = fmt::format("history file {}: {}", path.string(), e.what());
  }
  return result;
}

namespace {

json fetch_history(detail::ServiceConnection& service, const std::string& workflow_id, const std::string& run_id) {
  json events = json::array();
  std::int64_t from = 1;
  std::string resolved = run_id;
  for (;;) {
    auto page = service.get(fmt::format("/workflows/{}/history?from_event_id={}&page_size=10000{}",
                                        detail::url_encode(workflow_id), from,
                                        resolved.empty() ? "" : "&run_id=" + detail::url_encode(resolved)));
    resolved = page.value("run_id", resolved);
    for (auto& e : page.at("events")) events.push_back(std::move(e));
    if (!page.value("has_more", false)) break;
    from = page.at("next_event_id").get<std::int64_t>();
  }
  return {{"workflow_id", workflow_id}, {"run_id", resolved}, {"events", std::move(events)}};
}

}  // namespace

ReplayResult Replayer::replay_from_service(const std::string& address, const std::string& ns,
                                           const std::string& workflow_id, const std::string& run_id,
                                           Mode mode) const {
  detail::ServiceConnection service(address, ns);
  return replay(fetch_history(service, workflow_id, run_id), mode);
}

int run_replay_gate(const Registry& registry, const ReplayGateOptions& options, std::ostream& out) {
  detail::ServiceConnection service(options.address, options.ns);
  Replayer replayer(registry);
  auto types = options.workflow_types.empty() ? registry.workflow_names() : options.workflow_types;
  struct Target {
    std::string workflow_id, run_id, status;
  };
  std::vector<Target> targets;
  auto collect = [&](const std::string& type, const std::string& filter) {
    std::string token;
    do {
      auto page = service.get(fmt::format("/workflows?workflow_type={}&page_size=1000{}{}", detail::url_encode(type),
                                          filter, token.empty() ? "" : "&page_token=" + detail::url_encode(token)));
      for (const auto& w : page.at("workflows"))
        targets.push_back({w.value("workflow_id", ""), w.value("run_id", ""), w.value("status", "")});
      token = page.value("next_page_token", json()).is_string() ? page["next_page_token"].get<std::string>() : "";
    } while (!token.empty());
  };
  for (const auto& type : types) {
    if (options.closed_within) {
      // Every run started within the window (open or closed), plus every open run.
      auto since = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now() -
                                                                          *options.closed_within);
      collect(type, "&started_after=" + detail::url_encode(protocol::format_timestamp(since)));
      auto recent = targets.size();
      collect(type, "&status=Running");
      // drop open runs listed twice
      std::vector<Target> unique(targets.begin(), targets.begin() + static_cast<long>(recent));
      for (auto it = targets.begin() + static_cast<long>(recent); it != targets.end(); ++it) {
        bool seen = false;
        for (const auto& t : unique) seen = seen || t.run_id == it->run_id;
        if (!seen) unique.push_back(*it);
      }
      targets = std::move(unique);
    } else {
      collect(type, "&status=Running");
    }
  }
  out << fmt::format("replaying {} run(s) of {} against this build\n", targets.size(), fmt::join(types, ", "));
  std::size_t failed = 0, done = 0;
  for (const auto& t : targets) {
    ++done;
    ReplayResult r;
    try {
      r = replayer.replay(fetch_history(service, t.workflow_id, t.run_id));
    } catch (const std::exception& e) {
      r.workflow_id = t.workflow_id;
      r.run_id = t.run_id;
      r.message = std::string("cannot read its history: ") + e.what();
    }
    out << fmt::format("  [{}/{}] {:<5} {} {} ({})\n", done, targets.size(), r.ok() ? "ok" : "FAIL", t.workflow_id,
                       t.run_id, t.status);
    if (!r.ok()) {
      ++failed;
      out << r.report();
    }
  }
  out << fmt::format("{} of {} run(s) replay; {} diverge\n", targets.size() - failed, targets.size(), failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace reprise
