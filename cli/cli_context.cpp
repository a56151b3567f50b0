#include "cli_context.hpp"

#include <iostream>

namespace reprise::cli {

void print_json(const nlohmann::json& value) { std::cout << value.dump(2) << '\n'; }

nlohmann::json parse_json_argument(const std::string& option, const std::string& text) {
  auto value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    // A ValidationError is a CLI11 parse error, so main() reports it as a usage error (exit 2).
    throw CLI::ValidationError(option, "is not valid JSON: " + text + " (quote strings: '\"text\"')");
  }
  return value;
}

void add_workflow_id_options(CLI::App& command, std::string& workflow_id, std::string& run_id) {
  command.add_option("-w,--id,--workflow-id", workflow_id, "Workflow id")->required();
  command.add_option("-r,--run-id", run_id, "Run id (default: the current run)");
}

}  // namespace reprise::cli
