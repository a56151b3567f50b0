// order-saga: a worker for the order workflow, and a command that starts one order and prints
// its result.
//   order-saga worker [--address 127.0.0.1:7233]
//   order-saga start --id order-1 --amount 25000 [--card declined] [--address ...]
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <reprise/client.hpp>
#include <reprise/replayer.hpp>
#include <reprise/worker.hpp>

#include "order.hpp"

using namespace order_saga;

int main(int argc, char** argv) {
  CLI::App app{"order-saga: an order workflow with compensations, a timer and an approval signal"};
  std::string address = "127.0.0.1:7233";
  app.add_option("--address", address, "reprise-server address")->capture_default_str();
  app.require_subcommand(1);

  auto* worker_cmd = app.add_subcommand("worker", "Run the worker for task queue \"orders\"");
  auto* gate_cmd = app.add_subcommand(
      "replay-gate", "Instead of serving, replay every open OrderWorkflow run against this build; exit 1 on divergence");
  int closed_within_hours = 0;
  gate_cmd->add_option("--closed-within-hours", closed_within_hours, "Also replay runs started this recently");
  auto* start_cmd = app.add_subcommand("start", "Start an order and print its result");
  Order order{.id = "order-1", .item = "teapot", .quantity = 1, .amount_cents = 2500, .card = "4242"};
  start_cmd->add_option("--id", order.id)->capture_default_str();
  start_cmd->add_option("--item", order.item)->capture_default_str();
  start_cmd->add_option("--amount", order.amount_cents, "in cents")->capture_default_str();
  start_cmd->add_option("--card", order.card, "\"declined\" makes the charge fail")->capture_default_str();
  start_cmd->add_option("--ship-to", order.address, "\"nowhere\" makes shipping fail")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const auto register_all = register_order_saga;
  if (worker_cmd->parsed()) {
    reprise::Worker worker({.address = address, .task_queue = "orders"});
    register_all(worker.registry());
    worker.run();
    return 0;
  }
  if (gate_cmd->parsed()) {
    reprise::Registry registry;
    register_all(registry);
    reprise::ReplayGateOptions options{.address = address};
    if (closed_within_hours > 0) options.closed_within = std::chrono::hours(closed_within_hours);
    try {
      return reprise::run_replay_gate(registry, options, std::cout);
    } catch (const reprise::Error& e) {
      std::cerr << "order-saga: " << e.what() << "\n";
      return 1;
    }
  }

  try {
    reprise::Client client(address);
    auto handle = client.start("OrderWorkflow", order, {.id = order.id, .task_queue = "orders"});
    std::printf("started order %s (run %s)\n", handle.workflow_id().c_str(), handle.run_id().c_str());
    if (order.amount_cents >= kApprovalThresholdCents)
      std::printf("it waits for approval: reprise signal -w %s --name approve --input true\n", order.id.c_str());
    auto result = handle.result<OrderResult>();
    std::printf("order %s completed: reservation %s, charge %s, tracking %s\n", result.order_id.c_str(),
                result.reservation.c_str(), result.charge.c_str(), result.tracking.c_str());
    return 0;
  } catch (const reprise::WorkflowFailedError& e) {
    std::printf("order %s %s: %s\n", order.id.c_str(), e.status().c_str(),
                e.cause() ? e.cause()->what() : e.what());
    return 1;
  } catch (const reprise::Error& e) {
    std::fprintf(stderr, "order-saga: %s\n", e.what());
    return 1;
  }
}
