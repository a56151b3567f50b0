#pragma once
/// The workflows and activities a worker (or a replayer) can run, by name.
///
///     reprise::Registry registry;
///     registry.add_workflow("OrderWorkflow", order_workflow);
///     registry.add_activity("ChargeCard", charge_card);

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <reprise/activity.hpp>
#include <reprise/converter.hpp>
#include <reprise/workflow.hpp>

namespace reprise {

namespace detail {
/// Lets workflow code call an activity by its function: ctx.execute_activity(charge, ...).
void remember_activity_name(const void* function, const std::string& name);
}  // namespace detail

class Registry {
 public:
  using WorkflowFunction = std::function<Payload(WorkflowContext&, const Payload&)>;
  using ActivityFunction = std::function<Payload(ActivityContext&, const Payload&)>;

  template <class R, class... P>
  void add_workflow(const std::string& name, R (*fn)(WorkflowContext&, P...)) {
    workflows_[name] = adapt<WorkflowContext>(fn);
  }

  template <class R, class... P>
  void add_activity(const std::string& name, R (*fn)(ActivityContext&, P...)) {
    detail::remember_activity_name(reinterpret_cast<const void*>(fn), name);
    activities_[name] = adapt<ActivityContext>(fn);
  }

  const WorkflowFunction* workflow(std::string_view name) const {
    auto it = workflows_.find(name);
    return it == workflows_.end() ? nullptr : &it->second;
  }
  const ActivityFunction* activity(std::string_view name) const {
    auto it = activities_.find(name);
    return it == activities_.end() ? nullptr : &it->second;
  }
  std::vector<std::string> workflow_names() const { return names(workflows_); }
  std::vector<std::string> activity_names() const { return names(activities_); }

 private:
  /// A typed function as one that takes and returns payloads: arguments unpacked, result packed.
  template <class Context, class R, class... P>
  static std::function<Payload(Context&, const Payload&)> adapt(R (*fn)(Context&, P...)) {
    static_assert(is_payload_convertible_v<R>, "the function's result type has no payload conversion");
    return [fn](Context& ctx, const Payload& input) -> Payload {
      auto args = unpack_arguments<P...>(input);
      auto call = [&](auto&&... a) { return fn(ctx, std::forward<decltype(a)>(a)...); };
      if constexpr (std::is_void_v<R>) {
        std::apply(call, std::move(args));
        return nullptr;
      } else {
        return to_payload(std::apply(call, std::move(args)));
      }
    };
  }

  template <class Map>
  static std::vector<std::string> names(const Map& m) {
    std::vector<std::string> out;
    for (const auto& [name, fn] : m) out.push_back(name);
    return out;
  }
  std::map<std::string, WorkflowFunction, std::less<>> workflows_;
  std::map<std::string, ActivityFunction, std::less<>> activities_;
};

}  // namespace reprise
