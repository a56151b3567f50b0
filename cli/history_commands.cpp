// history show (one readable line per event) and history export (the API's JSON, for replay
// tests and bug reports).
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli_context.hpp"

namespace reprise::cli {
namespace {

/// Values longer than this are cut in `history show`; export has them whole.
constexpr std::size_t kMaxValueWidth = 80;

/// "  5  ActivityTaskScheduled  activity_id=1 activity_type=charge input={...}"
std::string event_line(const nlohmann::json& event) {
  std::ostringstream line;
  line << std::setw(5) << event.value("event_id", 0) << "  " << event.value("event_type", std::string("?"));
  const auto attributes = event.value("attributes", nlohmann::json::object());  // kept alive for items()
  for (const auto& [name, value] : attributes.items()) {
    if (value.is_null()) continue;
    auto text = value.is_string() ? value.get<std::string>() : value.dump();
    if (text.size() > kMaxValueWidth) text = text.substr(0, kMaxValueWidth - 3) + "...";
    line << "  " << name << '=' << text;
  }
  return line.str();
}

struct Options {
  std::string id, run_id, output;
};

void add_show(CLI::App& history, const GlobalOptions& global) {
  auto o = std::make_shared<Options>();
  auto* command = history.add_subcommand("show", "Print a run's events, one line each");
  add_workflow_id_options(*command, o->id, o->run_id);
  command->callback([o, &global] {
    auto exported = make_client(global).handle(o->id, o->run_id).history();
    if (global.json) {
      print_json(exported);
      return;
    }
    std::cout << "workflow \"" << o->id << "\" run " << exported.value("run_id", std::string()) << '\n';
    for (const auto& event : exported.at("events")) std::cout << event_line(event) << '\n';
  });
}

void add_export(CLI::App& history, const GlobalOptions& global) {
  auto o = std::make_shared<Options>();
  auto* command = history.add_subcommand("export", "Write a run's whole history as JSON");
  add_workflow_id_options(*command, o->id, o->run_id);
  command->add_option("-o,--output", o->output, "File to write (default: stdout)");
  command->callback([o, &global] {
    auto exported = make_client(global).handle(o->id, o->run_id).history();
    if (o->output.empty()) {
      print_json(exported);
      return;
    }
    std::ofstream file(o->output);
    file << exported.dump(2) << '\n';
    file.close();
    if (!file) throw std::runtime_error("cannot write " + o->output);
    std::cerr << "wrote " << exported.at("events").size() << " events to " << o->output << '\n';
  });
}

}  // namespace

void add_history_commands(CLI::App& app, const GlobalOptions& global) {
  auto* history = app.add_subcommand("history", "Show or export a run's event history");
  history->require_subcommand(1);
  add_show(*history, global);
  add_export(*history, global);
}

}  // namespace reprise::cli
