// Activities stand in for the services an order touches. They print what they do, so the
// sample shows the order of steps and compensations.
#include <cstdio>

#include "order.hpp"

namespace order_saga {

std::string reserve_inventory(reprise::ActivityContext& ctx, Order order) {
  std::printf("  [activity] reserve %d x %s for order %s\n", order.quantity, order.item.c_str(), order.id.c_str());
  return "reservation-" + ctx.info().idempotency_key.substr(ctx.info().idempotency_key.rfind('/') + 1) + "-" + order.id;
}

std::string release_inventory(reprise::ActivityContext&, std::string reservation) {
  std::printf("  [activity] release %s\n", reservation.c_str());
  return reservation;
}

std::string charge_card(reprise::ActivityContext&, Order order) {
  if (order.card == "declined")
    throw reprise::ApplicationError("card declined for order " + order.id, "CardDeclined", /*non_retryable=*/true);
  std::printf("  [activity] charge %d.%02d for order %s\n", order.amount_cents / 100, order.amount_cents % 100,
              order.id.c_str());
  return "charge-" + order.id;
}

std::string refund_card(reprise::ActivityContext&, std::string charge) {
  std::printf("  [activity] refund %s\n", charge.c_str());
  return charge;
}

void register_order_saga(reprise::Registry& r) {
  r.add_workflow("OrderWorkflow", order_workflow);
  r.add_activity("ReserveInventory", reserve_inventory);
  r.add_activity("ReleaseInventory", release_inventory);
  r.add_activity("ChargeCard", charge_card);
  r.add_activity("RefundCard", refund_card);
  r.add_activity("ShipOrder", ship_order);
}

std::string ship_order(reprise::ActivityContext&, Order order) {
  if (order.address == "nowhere")
    throw reprise::ApplicationError("no carrier delivers to " + order.address, "Undeliverable", true);
  std::printf("  [activity] ship order %s to %s\n", order.id.c_str(), order.address.c_str());
  return "track-" + order.id;
}

}  // namespace order_saga
