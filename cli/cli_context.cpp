#include "cli_context.hpp"

#include <iostream>

#include <reprise/protocol/shell_word.hpp>

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

nlohmann::json page_token_json(const std::string& next_page_token) {
  return next_page_token.empty() ? nlohmann::json() : nlohmann::json(next_page_token);
}

void print_next_page_hint(std::string_view what, const std::string& next_page_token) {
  if (!next_page_token.empty())
    std::cerr << "more " << what << ": add --page-token " << protocol::shell_word(next_page_token) << '\n';
}

void add_workflow_id_options(CLI::App& command, std::string& workflow_id, std::string& run_id) {
  command.add_option("-w,--id,--workflow-id", workflow_id, "Workflow id")->required();
  command.add_option("-r,--run-id", run_id, "Run id (default: the current run)");
}

}  // namespace reprise::cli
