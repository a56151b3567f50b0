#pragma once
/// Replays recorded histories against the workflow code compiled in now: the proof that new
/// code still fits the runs in flight. It goes through the worker's own workflow-task path;
/// only the source of the history differs (a file, memory, or the live service).
///
///     reprise::Replayer replayer(registry);
///     auto result = replayer.replay_file("test/histories/order-completed.json");
///     if (!result.ok()) std::cerr << result.report();

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <reprise/registry.hpp>

namespace reprise {

/// What a replay found. ok() when the code fits the history.
struct ReplayResult {
  std::string workflow_id, run_id, workflow_type;
  std::string code;        ///< the non-determinism code (RPR1101...); empty when ok or another failure
  std::string message;     ///< the error, naming the event, both sides and the call site
  std::int64_t event_id = 0;  ///< where it diverged
  std::string excerpt;     ///< the history around event_id, one event a line, the diverging one marked
  bool ok() const { return message.empty(); }
  /// A readable report: what diverged, where in the code, and the excerpt.
  std::string report() const;
};

namespace detail {
struct ParsedHistoryData;
}

/// A history document read once into the engine's own form, to be replayed any number of
/// times without reading JSON again (reading JSON costs more than replaying it). Immutable;
/// copies share it.
///
///     auto history = reprise::ParsedHistory::parse(text);    // or from_json(document)
///     auto result = replayer.replay(history);
class ParsedHistory {
 public:
  /// From a document already parsed as JSON.
  static ParsedHistory from_json(const nlohmann::json& document);
  /// From the document's text, read straight into events (no JSON tree is built). Throws
  /// std::runtime_error with the JSON parser's message when the text is not JSON.
  static ParsedHistory parse(std::string_view text);
  /// The events read (up to the first that cannot be read; replaying reports that one).
  std::size_t size() const;

 private:
  friend class Replayer;
  friend struct detail::ParsedHistoryData;
  explicit ParsedHistory(std::shared_ptr<const detail::ParsedHistoryData> data) : data_(std::move(data)) {}
  std::shared_ptr<const detail::ParsedHistoryData> data_;
};

class Replayer {
 public:
  /// Replays with the workflows registered in `registry` (the same Registry type as a Worker's).
  explicit Replayer(const Registry& registry);
  ~Replayer();

  /// How the history is fed. kWhole: all at once, as a worker without the run in its cache.
  /// kTaskByTask: one workflow task at a time into the same warm run, as a worker with the
  /// run cached (sticky) sees it.
  enum class Mode { kWhole, kTaskByTask };

  /// A history document as exported (docs/history-format.md).
  ReplayResult replay(const nlohmann::json& history, Mode mode = Mode::kWhole) const;
  /// The same, for a history already read: only the replay itself is done here.
  ReplayResult replay(const ParsedHistory& history, Mode mode = Mode::kWhole) const;
  /// Task by task, the file is streamed: only one workflow task's events are in memory at a
  /// time, whatever the history's length. Whole, it is read at once.
  ReplayResult replay_file(const std::filesystem::path& path, Mode mode = Mode::kWhole) const;
  /// Fetches a run's history from a live reprise-server and replays it.
  ReplayResult replay_from_service(const std::string& address, const std::string& ns,
                                   const std::string& workflow_id, const std::string& run_id = "",
                                   Mode mode = Mode::kWhole) const;

 private:
  const Registry& registry_;
};

/// The pre-deploy check: replay the open runs (and optionally the recently closed ones) of
/// chosen workflow types, fetched from the live service, against the code compiled in.
struct ReplayGateOptions {
  std::string address = "127.0.0.1:7233";
  std::string ns = "default";
  std::vector<std::string> workflow_types;             ///< empty: every type registered
  std::optional<std::chrono::hours> closed_within;     ///< also runs closed this recently
};

/// Prints progress and a summary to `out`; returns 0 when every run replays, 1 when any
/// diverges (or cannot be read), so a deploy pipeline can gate on the exit code.
int run_replay_gate(const Registry& registry, const ReplayGateOptions& options, std::ostream& out);

}  // namespace reprise
