// reprise: the command-line client. Exit status: 0 success, 1 the call failed (one line on
// stderr says why), 2 the command line is wrong.
#include <iostream>

#include "cli_context.hpp"

namespace {

/// One line for an error the service or the workflow reported.
void report(const std::exception& error) {
  if (auto* service = dynamic_cast<const reprise::ServiceError*>(&error)) {
    std::cerr << "reprise: " << service->what() << " (" << service->code() << ")\n";
  } else {
    std::cerr << "reprise: " << error.what() << '\n';
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"reprise: start, signal, query and inspect Reprise workflows; register namespaces", "reprise"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand

  reprise::cli::GlobalOptions global;
  app.add_option("--address", global.address, "reprise-server host:port")
      ->envname("REPRISE_ADDRESS")
      ->capture_default_str();
  app.add_option("-n,--namespace", global.ns, "Namespace")->capture_default_str();
  app.add_flag("--json", global.json, "Print the API's JSON instead of text");

  reprise::cli::add_workflow_commands(app, global);
  reprise::cli::add_history_commands(app, global);
  reprise::cli::add_namespace_commands(app, global);

  // Commands run in their callbacks, at the end of parse(): errors from the service surface here.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help exits 0
  } catch (const std::exception& e) {
    report(e);
    return 1;
  }
  return 0;
}
