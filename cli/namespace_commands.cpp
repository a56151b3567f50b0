// Subcommands of the namespace registry: namespace create, namespace list. They act on the
// server, not in the --namespace the other commands use.
#include <iostream>
#include <memory>

#include "cli_context.hpp"

namespace reprise::cli {
namespace {

void add_create(CLI::App& group, const GlobalOptions& global) {
  struct Options {
    std::string name, description;
  };
  auto o = std::make_shared<Options>();
  auto* command = group.add_subcommand("create", "Register a namespace");
  command->add_option("name", o->name, "The namespace's name")->required();
  command->add_option("-d,--description", o->description, "What the namespace is for");
  command->callback([o, &global] {
    NamespaceClient(global.address).create(o->name, o->description);
    if (global.json) print_json({{"name", o->name}});
    else std::cout << "registered namespace " << o->name << '\n';
  });
}

void add_list(CLI::App& group, const GlobalOptions& global) {
  struct Options {
    int page_size = 0;
    std::string page_token;
  };
  auto o = std::make_shared<Options>();
  auto* command = group.add_subcommand("list", "List namespaces by name");
  command->add_option("--page-size", o->page_size, "Namespaces per page (1-1000; default 100)")
      ->check(CLI::Range(1, 1000));
  command->add_option("--page-token", o->page_token, "Token of the page to show");
  command->callback([o, &global] {
    auto page = NamespaceClient(global.address).list(o->page_size, o->page_token);
    if (global.json) {
      nlohmann::json namespaces = nlohmann::json::array();
      for (const auto& ns : page.namespaces) namespaces.push_back({{"name", ns.name}, {"description", ns.description}});
      print_json({{"namespaces", std::move(namespaces)}, {"next_page_token", page_token_json(page.next_page_token)}});
      return;
    }
    for (const auto& ns : page.namespaces)
      std::cout << ns.name << (ns.description.empty() ? "" : "  " + ns.description) << '\n';
    print_next_page_hint("namespaces", page.next_page_token);
  });
}

}  // namespace

void add_namespace_commands(CLI::App& app, const GlobalOptions& global) {
  auto* group = app.add_subcommand("namespace", "Register or list namespaces");
  group->require_subcommand(1);
  add_create(*group, global);
  add_list(*group, global);
}

}  // namespace reprise::cli
