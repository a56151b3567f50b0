// Queries: questions a caller asks a run, answered by a worker that runs the workflow's query
// handler over the run's history. Nothing here writes to the history.
#include <fmt/format.h>
#include <reprise/protocol/api_error.hpp>
#include <reprise/protocol/json_dump.hpp>
#include <reprise/protocol/json_parse.hpp>

#include "pg/database.hpp"
#include "store/operations.hpp"
#include "store/run_state.hpp"
#include "store/query_tasks.hpp"

namespace reprise::store {

using protocol::ApiError;
using protocol::ErrorCode;

RunKey submit_query(pg::Connection& conn, const QueryRequest& req, Effects& effects) {
  return pg::in_transaction(conn, [&](pg::Connection& c) {
    const auto run = RunState::find_or_throw(c, req.run);
    const auto& key = run.key();
    c.exec("query_insert",
           "INSERT INTO queries (namespace, workflow_id, run_id, query_id, query_type, args) "
           "VALUES ($1, $2, $3::uuid, $4::uuid, $5, $6)",
           {key.ns, key.workflow_id, key.run_id, req.query_id, req.query_type, protocol::dump_json(req.args)});
    insert_query_task(c, key, run.row().task_queue, req.query_id);
    effects.new_tasks.push_back({key.ns, run.row().task_queue, "workflow"});
    return key;
  });
}

std::optional<QueryAnswer> take_query_answer(pg::Connection& conn, const RunKey& run,
                                             const std::string& query_id) {
  auto r = conn.exec("query_take",
                     "DELETE FROM queries WHERE namespace = $1 AND workflow_id = $2 AND run_id = "
                     "$3::uuid AND query_id = $4::uuid AND answered RETURNING result, failure",
                     {run.ns, run.workflow_id, run.run_id, query_id});
  if (r.rows() == 0) return std::nullopt;
  return QueryAnswer{r.is_null(0, 0) ? json() : protocol::parse_json(r.text(0, 0)),
                     r.is_null(0, 1) ? json() : protocol::parse_json(r.text(0, 1))};
}

void abandon_query(pg::Connection& conn, const RunKey& run, const std::string& query_id) {
  conn.exec("query_abandon",
            "DELETE FROM queries WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3::uuid "
            "AND query_id = $4::uuid",
            {run.ns, run.workflow_id, run.run_id, query_id});
}

void answer_query(pg::Connection& conn, const TaskToken& token, const json& result,
                  const json& failure, Effects& effects) {
  auto r = conn.exec("query_answer",
                     "UPDATE queries SET answered = true, result = $5, failure = $6 WHERE namespace = "
                     "$1 AND workflow_id = $2 AND run_id = $3::uuid AND query_id = $4::uuid AND NOT "
                     "answered",
                     {token.run.ns, token.run.workflow_id, token.run.run_id, token.query_id,
                      protocol::dump_json(result), failure.is_null() ? pg::Param() : pg::Param(protocol::dump_json(failure))});
  if (r.affected() == 0)
    throw ApiError(ErrorCode::kStaleTaskToken,
                   fmt::format("query {} of {} was already answered, or its caller stopped waiting; "
                               "drop this answer",
                               token.query_id, to_string(token.run)));
  effects.answered_queries.push_back(token.query_id);
}

std::optional<std::string> query_task_answer(pg::Connection& conn, const ClaimedTask& task,
                                             const QueueKey& queue, const TaskTokenSigner& signer) {
  auto q = conn.exec("query_load",
                     "SELECT query_type, args FROM queries WHERE namespace = $1 AND workflow_id = $2 "
                     "AND run_id = $3::uuid AND query_id = $4::uuid AND NOT answered",
                     {task.run.ns, task.run.workflow_id, task.run.run_id, *task.query_id});
  auto run = RunState::load(conn, task.run);
  if (q.rows() == 0 || !run) return std::nullopt;
  auto history = read_history(conn, std::as_const(*run), 1, std::numeric_limits<int>::max());
  TaskToken token{TaskToken::Kind::kQuery, task.run, 0, 0, 0, *task.query_id};
  json head = {{"task_token", signer.sign(token)},
               {"namespace", task.run.ns},
               {"workflow_id", task.run.workflow_id},
               {"run_id", task.run.run_id},
               {"workflow_type", run->row().workflow_type},
               {"task_queue", queue.task_queue},
               {"query", {{"query_id", *task.query_id},
                          {"query_type", q.str(0, 0)},
                          {"args", protocol::parse_json(q.text(0, 1))}}},
               {"history_from_event_id", 1}};
  auto answer = protocol::dump_json(head);
  answer.pop_back();
  // Cut short at kMostHistoryPageBytes: the worker reads the rest as history pages.
  if (1 + history.count < history.next_event_id) answer += fmt::format(R"(,"next_page_event_id":{})", 1 + history.count);
  answer += ",\"history\":" + history.events_json + "}";
  return answer;
}

}  // namespace reprise::store
