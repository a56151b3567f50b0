#pragma once
/// What every subcommand shares: the global options and how results are printed.

#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <reprise/client.hpp>

namespace reprise::cli {

/// The options given before (or after) any subcommand.
struct GlobalOptions {
  std::string address = "127.0.0.1:7233";  ///< --address, or $REPRISE_ADDRESS
  std::string ns = "default";              ///< --namespace
  bool json = false;                       ///< --json: print the API's JSON instead of text
};

/// A client for the global options; made when a command runs, after parsing.
inline Client make_client(const GlobalOptions& global) { return Client(global.address, global.ns); }

/// Pretty-printed JSON on stdout.
void print_json(const nlohmann::json& value);

/// Parses text given on the command line as JSON; a usage error (exit 2) when it is not JSON.
nlohmann::json parse_json_argument(const std::string& option, const std::string& text);

/// A page's next_page_token as the API writes it: null on the last page.
nlohmann::json page_token_json(const std::string& next_page_token);
/// After a page printed as text: a line on stderr saying how to get the next page of `what`,
/// when there is one.
void print_next_page_hint(std::string_view what, const std::string& next_page_token);

/// Adds --id (-w, --workflow-id, required) and --run-id to `command`.
void add_workflow_id_options(CLI::App& command, std::string& workflow_id, std::string& run_id);

/// start, signal, query, describe, list, cancel, terminate, result.
void add_workflow_commands(CLI::App& app, const GlobalOptions& global);
/// history show, history export.
void add_history_commands(CLI::App& app, const GlobalOptions& global);
/// namespace create, namespace list.
void add_namespace_commands(CLI::App& app, const GlobalOptions& global);

}  // namespace reprise::cli
