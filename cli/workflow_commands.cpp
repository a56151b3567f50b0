// Subcommands that act on workflows: start, signal, query, describe, list, cancel, terminate,
// result. Each keeps its options in a struct shared with its callback, which runs after parsing.
#include <iostream>
#include <memory>

#include <reprise/protocol/duration.hpp>

#include "cli_context.hpp"

namespace reprise::cli {
namespace {

std::chrono::milliseconds parse_duration_argument(const std::string& option, const std::string& text) {
  try {
    return protocol::parse_duration(text);
  } catch (const std::invalid_argument& e) {
    throw CLI::ValidationError(option, e.what());
  }
}

std::string text_of(const nlohmann::json& value) {
  if (value.is_null()) return "-";
  return value.is_string() ? value.get<std::string>() : value.dump();
}

void add_start(CLI::App& app, const GlobalOptions& global) {
  struct Options {
    std::string type, id, task_queue, input = "null", memo, request_id, id_reuse_policy;
    std::string execution_timeout, run_timeout, task_timeout;
  };
  auto o = std::make_shared<Options>();
  auto* command = app.add_subcommand("start", "Start a workflow run");
  command->add_option("-t,--type", o->type, "Workflow type")->required();
  command->add_option("-w,--id,--workflow-id", o->id, "Workflow id")->required();
  command->add_option("-q,--task-queue", o->task_queue, "Task queue")->required();
  command->add_option("-i,--input", o->input, "Input as JSON (a string is '\"text\"')");
  command->add_option("--execution-timeout", o->execution_timeout, "Deadline of the whole execution, e.g. 24h");
  command->add_option("--run-timeout", o->run_timeout, "Deadline of one run, e.g. 1h");
  command->add_option("--task-timeout", o->task_timeout, "Workflow task timeout, e.g. 10s");
  command->add_option("--id-reuse-policy", o->id_reuse_policy, "What to do if the id was used before")
      ->check(CLI::IsMember({"AllowDuplicate", "AllowDuplicateFailedOnly", "RejectDuplicate", "TerminateIfRunning"}));
  command->add_option("--memo", o->memo, "Memo as JSON");
  command->add_option("--request-id", o->request_id, "Idempotency key (default: a new UUID)");
  command->callback([o, &global] {
    StartWorkflowOptions options{.id = o->id, .task_queue = o->task_queue};
    if (!o->execution_timeout.empty())
      options.execution_timeout = parse_duration_argument("--execution-timeout", o->execution_timeout);
    if (!o->run_timeout.empty()) options.run_timeout = parse_duration_argument("--run-timeout", o->run_timeout);
    if (!o->task_timeout.empty()) options.task_timeout = parse_duration_argument("--task-timeout", o->task_timeout);
    if (o->id_reuse_policy == "AllowDuplicateFailedOnly")
      options.id_reuse_policy = WorkflowIdReusePolicy::kAllowDuplicateFailedOnly;
    if (o->id_reuse_policy == "RejectDuplicate") options.id_reuse_policy = WorkflowIdReusePolicy::kRejectDuplicate;
    if (o->id_reuse_policy == "TerminateIfRunning")
      options.id_reuse_policy = WorkflowIdReusePolicy::kTerminateIfRunning;
    if (!o->memo.empty()) options.memo = parse_json_argument("--memo", o->memo);
    options.request_id = o->request_id;
    auto input = parse_json_argument("--input", o->input);

    auto handle = make_client(global).start(o->type, input, options);
    if (global.json) {
      print_json({{"workflow_id", handle.workflow_id()}, {"run_id", handle.run_id()}});
    } else {
      std::cout << "started workflow \"" << handle.workflow_id() << "\" run " << handle.run_id() << '\n';
    }
  });
}

void add_signal(CLI::App& app, const GlobalOptions& global) {
  struct Options {
    std::string id, run_id, name, input = "null";
  };
  auto o = std::make_shared<Options>();
  auto* command = app.add_subcommand("signal", "Send a signal to a workflow");
  add_workflow_id_options(*command, o->id, o->run_id);
  command->add_option("-s,--name,--signal", o->name, "Signal name")->required();
  command->add_option("-i,--input", o->input, "Signal input as JSON");
  command->callback([o, &global] {
    auto input = parse_json_argument("--input", o->input);
    make_client(global).handle(o->id, o->run_id).signal(o->name, input);
    if (global.json) print_json(nlohmann::json::object());
    else std::cout << "signaled workflow \"" << o->id << "\" with " << o->name << '\n';
  });
}

void add_query(CLI::App& app, const GlobalOptions& global) {
  struct Options {
    std::string id, run_id, type, args = "null", timeout = "30s";
  };
  auto o = std::make_shared<Options>();
  auto* command = app.add_subcommand("query", "Ask a workflow a question; prints the answer as JSON");
  add_workflow_id_options(*command, o->id, o->run_id);
  command->add_option("-t,--type,--query-type", o->type, "Query type")->required();
  command->add_option("-a,--args,--input", o->args, "Query arguments as JSON");
  command->add_option("--timeout", o->timeout, "How long to wait for a worker's answer")->capture_default_str();
  command->callback([o, &global] {
    auto args = parse_json_argument("--args", o->args);
    auto timeout = parse_duration_argument("--timeout", o->timeout);
    print_json(make_client(global).handle(o->id, o->run_id).query_json(o->type, args, timeout));
  });
}

void print_description(const nlohmann::json& described) {
  const auto& e = described.at("execution");
  std::cout << "workflow_id   " << text_of(e.value("workflow_id", nlohmann::json())) << '\n'
            << "run_id        " << text_of(e.value("run_id", nlohmann::json())) << '\n'
            << "type          " << text_of(e.value("workflow_type", nlohmann::json())) << '\n'
            << "task_queue    " << text_of(e.value("task_queue", nlohmann::json())) << '\n'
            << "status        " << text_of(e.value("status", nlohmann::json())) << '\n'
            << "start_time    " << text_of(e.value("start_time", nlohmann::json())) << '\n'
            << "close_time    " << text_of(e.value("close_time", nlohmann::json())) << '\n'
            << "history       " << text_of(e.value("history_length", nlohmann::json())) << " events\n";
  if (auto task = described.value("pending_workflow_task", nlohmann::json()); !task.is_null())
    std::cout << "workflow task " << text_of(task.value("state", nlohmann::json())) << ", attempt "
              << text_of(task.value("attempt", nlohmann::json())) << '\n';
  for (const auto& a : described.value("pending_activities", nlohmann::json::array())) {
    std::cout << "activity      " << text_of(a.value("activity_type", nlohmann::json())) << " id="
              << text_of(a.value("activity_id", nlohmann::json())) << " "
              << text_of(a.value("state", nlohmann::json())) << " attempt="
              << text_of(a.value("attempt", nlohmann::json())) << '\n';
    // Why an activity keeps retrying is what a stuck run's reader looks for first.
    if (auto failure = a.value("last_failure", nlohmann::json()); failure.is_object())
      std::cout << "  last failure " << text_of(failure.value("type", nlohmann::json())) << ": "
                << text_of(failure.value("message", nlohmann::json())) << '\n';
    if (a.value("details_omitted", false))
      std::cout << "  (last failure and heartbeat details left out: over describe's budget for them)\n";
  }
  if (described.value("pending_activities_truncated", false))
    std::cout << "activity      ... more pending activities than describe lists\n";
  for (const auto& t : described.value("pending_timers", nlohmann::json::array()))
    std::cout << "timer         " << text_of(t.value("timer_id", nlohmann::json())) << " fires at "
              << text_of(t.value("fire_time", nlohmann::json())) << '\n';
  if (described.value("pending_timers_truncated", false))
    std::cout << "timer         ... more timers than describe lists\n";
  if (auto close = described.value("close_event", nlohmann::json()); !close.is_null())
    std::cout << "closed by     " << text_of(close.value("event_type", nlohmann::json())) << " "
              << close.value("attributes", nlohmann::json::object()).dump() << '\n';
}

void add_describe(CLI::App& app, const GlobalOptions& global) {
  struct Options {
    std::string id, run_id;
  };
  auto o = std::make_shared<Options>();
  auto* command = app.add_subcommand("describe", "Show a run's state, pending activities and timers");
  add_workflow_id_options(*command, o->id, o->run_id);
  command->callback([o, &global] {
    auto described = make_client(global).handle(o->id, o->run_id).describe();
    if (global.json) print_json(described);
    else print_description(described);
  });
}

void add_list(CLI::App& app, const GlobalOptions& global) {
  auto filter = std::make_shared<ListWorkflowsOptions>();
  auto* command = app.add_subcommand("list", "List runs, newest first");
  command->add_option("--status", filter->status, "Running, Completed, Failed, Canceled, Terminated, ...");
  command->add_option("-t,--type", filter->workflow_type, "Workflow type");
  command->add_option("-w,--id,--workflow-id", filter->workflow_id, "Workflow id");
  command->add_option("--page-size", filter->page_size, "Runs per page (1-1000; default 100)")
      ->check(CLI::Range(1, 1000));
  command->add_option("--page-token", filter->page_token, "Token of the page to show");
  command->callback([filter, &global] {
    auto page = make_client(global).list(*filter);
    if (global.json) {
      print_json({{"workflows", page.workflows}, {"next_page_token", page_token_json(page.next_page_token)}});
      return;
    }
    for (const auto& run : page.workflows) {
      std::cout << text_of(run.value("status", nlohmann::json())) << "  "
                << text_of(run.value("workflow_id", nlohmann::json())) << "  "
                << text_of(run.value("workflow_type", nlohmann::json())) << "  "
                << text_of(run.value("start_time", nlohmann::json())) << "  "
                << text_of(run.value("run_id", nlohmann::json())) << '\n';
    }
    print_next_page_hint("runs", page.next_page_token);
  });
}

void add_cancel_and_terminate(CLI::App& app, const GlobalOptions& global) {
  struct Options {
    std::string id, run_id, reason;
  };
  for (const bool terminate : {false, true}) {
    auto o = std::make_shared<Options>();
    auto* command = terminate ? app.add_subcommand("terminate", "Close a run at once, running no more code")
                              : app.add_subcommand("cancel", "Ask a workflow to cancel itself");
    add_workflow_id_options(*command, o->id, o->run_id);
    command->add_option("--reason", o->reason, "Why; recorded in the history");
    command->callback([o, terminate, &global] {
      auto handle = make_client(global).handle(o->id, o->run_id);
      terminate ? handle.terminate(o->reason) : handle.cancel(o->reason);
      if (global.json) print_json(nlohmann::json::object());
      else std::cout << (terminate ? "terminated" : "asked to cancel") << " workflow \"" << o->id << "\"\n";
    });
  }
}

void add_result(CLI::App& app, const GlobalOptions& global) {
  struct Options {
    std::string id, run_id, timeout;
  };
  auto o = std::make_shared<Options>();
  auto* command = app.add_subcommand("result", "Wait for a workflow to close and print its result as JSON");
  add_workflow_id_options(*command, o->id, o->run_id);
  command->add_option("--timeout", o->timeout, "Give up after this long (default: wait forever)");
  command->callback([o, &global] {
    auto timeout = o->timeout.empty() ? kWaitForever : parse_duration_argument("--timeout", o->timeout);
    print_json(make_client(global).handle(o->id, o->run_id).result_json(timeout));
  });
}

}  // namespace

void add_workflow_commands(CLI::App& app, const GlobalOptions& global) {
  add_start(app, global);
  add_signal(app, global);
  add_query(app, global);
  add_describe(app, global);
  add_list(app, global);
  add_cancel_and_terminate(app, global);
  add_result(app, global);
}

}  // namespace reprise::cli
