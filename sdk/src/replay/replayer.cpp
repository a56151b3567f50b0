#include <reprise/replayer.hpp>

#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <optional>
#include <ostream>
#include <span>
#include <system_error>

#include <fmt/format.h>
#include <reprise/errors.hpp>
#include <reprise/protocol/timestamp.hpp>

#include "engine/run_cache.hpp"
#include "engine/workflow_task_handler.hpp"
#include "fiber/fiber.hpp"
#include "replay/history_reader.hpp"
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

namespace detail {

/// What ParsedHistory holds: the document's identifying fields and its events, read.
struct ParsedHistoryData {
  bool document = false;  ///< an object with an "events" array (docs/history-format.md)
  std::string ns = "default", workflow_id, run_id, workflow_type;
  std::vector<HistoryEvent> events;
  /// The first event that could not be read (events holds those before it), and whether it
  /// began a workflow task; replaying reports it where the worker's path would have.
  std::exception_ptr error;
  bool error_starts_task = false;

  static ParsedHistory wrap(std::shared_ptr<const ParsedHistoryData> data) { return ParsedHistory(std::move(data)); }
  void take_header(const json& header) {
    ns = header.value("namespace", "default");
    workflow_id = header.value("workflow_id", "");
    run_id = header.value("run_id", "");
    workflow_type = header.value("workflow_type", "");
  }
  void add(ReadEvent&& read) {
    if (error) return;  // nothing after an unreadable event is ever looked at
    if (read.error) {
      error = std::move(read.error);
      error_starts_task = read.starts_task;
    } else {
      events.push_back(std::move(read.event));
    }
  }
};

}  // namespace detail

using detail::HistoryEvent;
using detail::ParsedHistoryData;
using detail::ReadEvent;

ParsedHistory ParsedHistory::from_json(const json& document) {
  auto data = std::make_shared<ParsedHistoryData>();
  data->document = document.is_object() && document.contains("events") && document["events"].is_array();
  if (!data->document) return ParsedHistory(std::move(data));
  data->take_header(document);
  const auto& events = document["events"];
  data->events.reserve(events.size());
  for (const auto& e : events) {
    if (data->error) break;
    ReadEvent read;
    try {
      read.event = HistoryEvent::from_json(e);
    } catch (...) {
      read.error = std::current_exception();
      read.starts_task = e.is_object() && e.value("event_type", "") == "WorkflowTaskScheduled";
    }
    data->add(std::move(read));
  }
  return ParsedHistory(std::move(data));
}

ParsedHistory ParsedHistory::parse(std::string_view text) {
  auto data = std::make_shared<ParsedHistoryData>();
  data->events.reserve(text.size() / 256);  // a guess from typical events, to avoid most regrowth
  detail::HistorySax reader([&](ReadEvent&& read) { data->add(std::move(read)); });
  json::sax_parse(text, &reader);
  data->document = reader.is_document();
  if (data->document) data->take_header(reader.header);
  return ParsedHistory(std::move(data));
}

std::size_t ParsedHistory::size() const { return data_->events.size(); }

namespace {

std::string excerpt_around(std::span<const HistoryEvent> events, std::int64_t event_id) {
  std::string out;
  for (const auto& e : events) {
    if (e.id < event_id - 4 || e.id > event_id + 2) continue;
    auto attrs = e.attributes.dump();
    if (attrs.size() > 100) attrs = attrs.substr(0, 97) + "...";
    out += fmt::format("  {} {:>5}  {}  {}\n", e.id == event_id ? ">" : " ", e.id, protocol::to_string(e.type), attrs);
  }
  return out;
}

/// Feeds a run's history, one piece at a time, through the worker's workflow-task handler into
/// one warm run, and records the first divergence in `result`. Whole, the history is one piece;
/// task by task, a piece starts at each WorkflowTaskScheduled and runs through that task's
/// completion and the command events it recorded, so a task the history shows completed is
/// replayed as such (its markers seen ahead), not run as new.
class TaskFeeder {
 public:
  TaskFeeder(const Registry& registry, std::string ns, ReplayResult& result)
      : handler_(registry, stacks_, cache_, /*fail_workflow_on_nondeterminism=*/false), ns_(std::move(ns)), result_(result) {}

  /// Returns false once the history diverged. `error`: the piece's next event could not be
  /// read; it is thrown before any of the piece is applied, as the worker's path does.
  bool feed(std::span<const HistoryEvent> events, std::exception_ptr error = nullptr) {
    if (failed_) return false;
    if (events.empty() && !error) return true;
    if (result_.workflow_type.empty() && !events.empty())
      result_.workflow_type = events[0].attributes.value("workflow_type", "");
    if (error) std::rethrow_exception(error);
    WorkflowInfo info;
    info.ns = ns_;
    info.workflow_id = result_.workflow_id;
    info.run_id = result_.run_id.empty() ? "replay" : result_.run_id;
    info.workflow_type = result_.workflow_type;
    auto answer = handler_.handle(info, from_, events, fetch_);
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
  detail::WorkflowTaskHandler::FetchHistory fetch_ = [](const std::string&, const std::string&) -> std::vector<HistoryEvent> {
    throw std::runtime_error("the replayer has the whole history; nothing to fetch");
  };
  std::string ns_;
  ReplayResult& result_;
  std::int64_t from_ = 1;
  bool failed_ = false;
};

void take_header(const ParsedHistoryData& data, ReplayResult& result) {
  result.workflow_id = data.workflow_id;
  result.run_id = data.run_id;
  result.workflow_type = data.workflow_type;
}

}  // namespace

ReplayResult Replayer::replay(const json& history, Mode mode) const {
  return replay(ParsedHistory::from_json(history), mode);
}

ReplayResult Replayer::replay(const ParsedHistory& history, Mode mode) const {
  const auto& data = *history.data_;
  ReplayResult result;
  if (!data.document) {
    result.message = "not a history document: it needs an \"events\" array (docs/history-format.md)";
    return result;
  }
  take_header(data, result);
  const std::span<const HistoryEvent> events = data.events;
  TaskFeeder feeder(registry_, data.ns, result);
  if (mode == Mode::kWhole) {
    feeder.feed(events, data.error);
  } else {
    std::size_t piece = 0;  // where the current piece begins
    bool ok = true;
    for (std::size_t i = 1; i < events.size() && ok; ++i)
      if (events[i].type == protocol::EventType::kWorkflowTaskScheduled) {
        ok = feeder.feed(events.subspan(piece, i - piece));
        piece = i;
      }
    // The last piece; an unreadable event after it fails the piece it belongs to.
    auto tail = events.subspan(piece);
    if (ok && data.error && data.error_starts_task) {
      if (feeder.feed(tail)) feeder.feed({}, data.error);
    } else if (ok) {
      feeder.feed(tail, data.error);
    }
  }
  if (!result.ok() && result.event_id) result.excerpt = excerpt_around(events, result.event_id);
  return result;
}

ReplayResult Replayer::replay_file(const std::filesystem::path& path, Mode mode) const {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ReplayResult r;
    r.message = "cannot open history file " + path.string();
    return r;
  }
  if (mode == Mode::kWhole) {
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::optional<ParsedHistory> history;
    try {
      history = ParsedHistory::parse(text);
    } catch (const detail::HistoryTextError& e) {
      ReplayResult r;
      r.message = fmt::format("history file {} is not JSON: {}", path.string(), e.what());
      return r;
    }
    return replay(*history, mode);
  }

  // Task by task, the file streams: one workflow task's events in memory at a time. A first
  // pass reads the top-level fields (the code may use its workflow id, and writers put the
  // fields in any order), a second the events.
  ReplayResult result;
  auto not_json = [&](const detail::HistoryTextError& e) {
    return fmt::format("history file {}: the history file is not valid JSON at byte {}: {}", path.string(),
                       e.position, e.what());
  };
  ParsedHistoryData header;
  try {
    detail::HistorySax header_reader([](ReadEvent&&) {}, /*skip_events=*/true);
    json::sax_parse(in, &header_reader);
    header.take_header(header_reader.header);
  } catch (const detail::HistoryTextError& e) {
    result.message = not_json(e);
    return result;
  } catch (const std::exception& e) {
    result.message = fmt::format("history file {}: {}", path.string(), e.what());
    return result;
  }
  in.clear();
  in.seekg(0);
  take_header(header, result);
  TaskFeeder feeder(registry_, header.ns, result);
  std::vector<HistoryEvent> chunk;
  std::exception_ptr chunk_error;  // an event of this piece could not be read
  bool failed = false;
  auto feed = [&] {
    if (!failed) failed = !feeder.feed(chunk, chunk_error);
    chunk.clear();
  };
  detail::HistorySax reader([&](ReadEvent&& read) {
    if (read.starts_task) feed();
    if (failed || chunk_error) return;
    if (read.error) chunk_error = std::move(read.error);
    else chunk.push_back(std::move(read.event));
  });
  try {
    json::sax_parse(in, &reader);
    feed();
  } catch (const detail::HistoryTextError& e) {
    result.message = not_json(e);
  } catch (const std::exception& e) {
    result.message = fmt::format("history file {}: {}", path.string(), e.what());
  }
  return result;
}

namespace {

/// A run's whole history from the service, page after page, each page's text read straight
/// into events (no JSON tree per page). While a page is read, the next is already being
/// fetched: the service writes where it starts before the events (header_before_events), and
/// reading a page takes about as long as serving one, so the two overlap (a 60,000-event
/// history: see docs/architecture.md, Replay). Only one request is in flight at a time, so the
/// connection is never used by two threads at once.
ParsedHistory fetch_history(detail::ServiceConnection& service, const std::string& workflow_id, const std::string& run_id) {
  auto data = std::make_shared<ParsedHistoryData>();
  data->document = true;
  data->workflow_id = workflow_id;
  auto target = [&](std::int64_t from, const std::string& run) {
    return fmt::format("/workflows/{}/history?from_event_id={}&page_size=10000{}", detail::url_encode(workflow_id),
                       from, run.empty() ? "" : "&run_id=" + detail::url_encode(run));
  };
  std::string resolved = run_id;
  // The page after the one whose header is `h`, if there is one.
  auto next_page = [&](const json& h) -> std::optional<std::string> {
    if (!h.value("has_more", false)) return std::nullopt;
    return target(h.at("next_event_id").get<std::int64_t>(), h.value("run_id", resolved));
  };
  std::string asked = target(1, resolved);
  std::string text = service.get_text(asked);
  for (;;) {
    // Known before the events are read (the service writes it first), or after them (an
    // older service writes it last).
    auto next = next_page(detail::header_before_events(text));
    std::future<std::string> fetched_ahead;
    if (next) {
      try {
        fetched_ahead = std::async(std::launch::async, [&service, target = *next] { return service.get_text(target); });
      } catch (const std::system_error&) {
        // No thread to spare: the next page is fetched after this one is read, as before.
      }
    }
    detail::HistorySax page([&](ReadEvent&& read) { data->add(std::move(read)); });
    try {
      if (!text.empty()) json::sax_parse(text, &page);
    } catch (const detail::HistoryTextError&) {
      throw ServiceError("Internal", "reprise-server at " + service.address() + " answered " + asked +
                                         " with a body that is not JSON", 200);
    }
    if (!page.is_document()) (void)page.header.at("events");  // what reading a page without events throws
    resolved = page.header.value("run_id", resolved);
    if (!next) next = next_page(page.header);
    if (!next) break;
    asked = *next;
    text = fetched_ahead.valid() ? fetched_ahead.get() : service.get_text(asked);
  }
  data->run_id = resolved;
  return ParsedHistoryData::wrap(std::move(data));
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
