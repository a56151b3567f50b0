#include <reprise/saga.hpp>

#include "order.hpp"

namespace order_saga {

using namespace std::chrono_literals;

OrderResult order_workflow(reprise::WorkflowContext& ctx, Order order) {
  const reprise::ActivityOptions options{
      .start_to_close_timeout = 10s,
      .retry_policy = reprise::RetryPolicy{.initial_interval = 200ms, .maximum_attempts = 3}};
  std::string status = "received";
  ctx.on_query<std::string>("status", [&] { return status; });

  reprise::Saga saga(ctx);
  try {
    OrderResult result{.order_id = order.id};
    result.reservation = ctx.execute_activity(reserve_inventory, order, options);
    saga.add_compensation(release_inventory, result.reservation);
    status = "reserved";

    if (order.amount_cents >= kApprovalThresholdCents) {
      // A person decides; the run waits (durably, for days if need be) for the signal.
      std::optional<bool> approved;
      ctx.on_signal<bool>("approve", [&](bool yes) { approved = yes; });
      status = "awaiting approval";
      if (!ctx.wait_condition([&] { return approved.has_value(); }, 24h) || !*approved)
        throw reprise::ApplicationError("the order was not approved", "NotApproved", true);
    }

    result.charge = ctx.execute_activity(charge_card, order, options);
    saga.add_compensation(refund_card, result.charge);
    status = "charged";

    ctx.sleep(1s);  // a cooling-off period before shipping, as a durable timer
    result.tracking = ctx.execute_activity(ship_order, order, options);
    status = "shipped";
    return result;
  } catch (const reprise::Error&) {
    status = "compensating";
    saga.compensate();  // refund, then release: newest first
    status = "compensated";
    throw;
  }
}

}  // namespace order_saga
