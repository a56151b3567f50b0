-- Sticky execution: a worker that keeps a run's state cached asks for the run's next workflow
-- tasks on a queue of its own, and gets only the events it has not seen. If it does not take
-- a task within sticky_schedule_to_start_ms, the task falls back to the run's own queue.
ALTER TABLE executions
  ADD COLUMN sticky_task_queue           text,
  ADD COLUMN sticky_schedule_to_start_ms bigint NOT NULL DEFAULT 0,
  ADD COLUMN sticky_history_from         bigint NOT NULL DEFAULT 1;  -- first event the sticky worker lacks
