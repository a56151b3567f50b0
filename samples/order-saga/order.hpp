#pragma once
// The order-saga sample's types, workflow and activities.

#include <string>

#include <reprise/activity.hpp>
#include <reprise/registry.hpp>
#include <reprise/workflow.hpp>

namespace order_saga {

struct Order {
  std::string id;
  std::string item;
  int quantity = 1;
  int amount_cents = 0;
  std::string card;  // "declined" makes the charge fail
  std::string address = "1 Main St";  // "nowhere" makes shipping fail
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Order, id, item, quantity, amount_cents, card, address)

struct OrderResult {
  std::string order_id;
  std::string reservation;
  std::string charge;
  std::string tracking;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(OrderResult, order_id, reservation, charge, tracking)

/// Orders at or above this need a person's approval (the "approve" signal).
inline constexpr int kApprovalThresholdCents = 100'000;

OrderResult order_workflow(reprise::WorkflowContext& ctx, Order order);

std::string reserve_inventory(reprise::ActivityContext& ctx, Order order);
std::string release_inventory(reprise::ActivityContext& ctx, std::string reservation);
std::string charge_card(reprise::ActivityContext& ctx, Order order);
std::string refund_card(reprise::ActivityContext& ctx, std::string charge);
std::string ship_order(reprise::ActivityContext& ctx, Order order);

/// Registers the workflow ("OrderWorkflow") and its activities under their names.
void register_order_saga(reprise::Registry& registry);

}  // namespace order_saga
