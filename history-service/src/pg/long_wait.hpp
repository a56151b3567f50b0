#pragma once
/// A lone request's long waits. A job the io thread runs itself (Database::run_here_if_idle)
/// holds up every connection that thread serves while it waits; each of its waits (for a
/// pipeline's results, a statement's outside one, a commit group, a held start) reports
/// itself once it has lasted the patience, and the Database has the io thread's other work
/// served meanwhile (Database::on_lone_request_stall). On any other thread both are no-ops.

#include <chrono>

namespace reprise::pg {

/// How long the calling thread's job may wait before report_long_wait(): the Database's
/// lone_request_patience on a job running here, nanoseconds::max() on any other thread.
std::chrono::nanoseconds long_wait_patience() noexcept;
/// Tells the Database whose job runs here on the calling thread that the job has waited its
/// patience. Nothing on any other thread.
void report_long_wait();

}  // namespace reprise::pg
