// reprise-bench: the benchmark driver (issue #5). Starts a private PostgreSQL 15 with default
// durability, reprise-server and reprise-bench-worker as child processes, runs the scenarios
// with reprise::Client from many threads, prints one table and writes JSON (--json-out).
// Every figure has a baseline measured in the same run, and the ratio to it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <nlohmann/json.hpp>
#include <reprise/client.hpp>
#include <reprise/replayer.hpp>
#include <reprise/testing.hpp>

#include "bench_workflows.hpp"
#include "dev/cluster_watcher.hpp"
#include "dev/local_cluster.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void log(const std::string& line) {
  std::fprintf(stderr, "[bench] %s\n", line.c_str());
  std::fflush(stderr);
}

// ---- results ----------------------------------------------------------------------------

struct Row {
  std::string id, metric;
  double value = NAN;
  std::string unit;
  std::string baseline_name;
  double baseline = NAN;
  std::string target;         ///< empty: no target
  std::optional<bool> met;
  std::string note;
};
std::vector<Row> rows;

Row& add(Row row) {
  rows.push_back(std::move(row));
  return rows.back();
}

double ratio(const Row& r) { return (std::isnan(r.value) || std::isnan(r.baseline) || r.baseline == 0) ? NAN : r.value / r.baseline; }

std::string num(double v) {
  if (std::isnan(v)) return "-";
  double a = std::fabs(v);
  if (a >= 100000) return fmt::format("{:.0f}", v);
  if (a >= 100) return fmt::format("{:.0f}", v);
  if (a >= 10) return fmt::format("{:.1f}", v);
  if (a >= 1) return fmt::format("{:.2f}", v);
  return fmt::format("{:.3f}", v);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(std::min<double>(v.size() - 1, std::floor(p / 100.0 * (v.size() - 1) + 0.5)));
  return v[i];
}

/// The mean time of one step in each block of a loop run (bench_workflows.cpp, loop_workflow),
/// on the workflow clock. The last block may be short.
std::vector<double> block_step_ms(const json& result) {
  const int steps = result.at("steps").get<int>(), size = result.at("block").get<int>();
  const auto& starts = result.at("block_start_ms");
  const auto& ends = result.at("block_end_ms");
  std::vector<double> out;
  for (std::size_t i = 0; i < std::min(starts.size(), ends.size()); ++i)
    out.push_back((ends[i].get<double>() - starts[i].get<double>()) /
                  std::min<int>(size, steps - static_cast<int>(i) * size));
  return out;
}

/// The median of v[from, to).
double median_of(const std::vector<double>& v, std::size_t from, std::size_t to) {
  to = std::min(to, v.size());
  return from < to ? percentile({v.begin() + from, v.begin() + to}, 50) : NAN;
}

/// An earlier run's results (--compare), checked to be what --json-out writes.
json read_earlier_run(const std::string& path) {
  std::ifstream in(path);
  auto j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.contains("rows") || !j["rows"].is_array())
    throw std::runtime_error("--compare " + path + ": not a reprise-bench result (JSON with \"rows\", as --json-out writes)");
  return j;
}

/// Each figure of this run beside the same figure (id and metric) of `earlier`, with the
/// change, and the same for its ratio to the baseline: machines drift, ratios less.
void print_comparison(const json& earlier, const std::string& path) {
  std::map<std::pair<std::string, std::string>, const json*> before;
  for (const auto& r : earlier["rows"]) before[{r.value("id", ""), r.value("metric", "")}] = &r;
  auto change = [](double was, double now) {
    return std::isnan(was) || std::isnan(now) || was == 0 ? std::string("-") : fmt::format("{:+.1f}%", (now / was - 1) * 100);
  };
  auto number = [](const json& v) { return v.is_number() ? v.get<double>() : NAN; };
  std::string settings;
  for (const auto& setting : earlier.value("pg_settings", json::array())) settings += " " + setting.get<std::string>();
  std::printf("\nCompared with %s%s%s%s:\n\n", path.c_str(), earlier.value("quick", false) ? " (a --quick run)" : "",
              settings.empty() ? "" : ", run with PostgreSQL settings", settings.c_str());
  std::printf("| id | metric | before | now | change | ratio before | ratio now | ratio change |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& r : rows) {
    auto it = before.find({r.id, r.metric});
    if (it == before.end()) continue;
    const double was = number(it->second->value("value", json())), ratio_was = number(it->second->value("ratio", json()));
    std::printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.id.c_str(), r.metric.c_str(), num(was).c_str(),
                num(r.value).c_str(), change(was, r.value).c_str(), num(ratio_was).c_str(), num(ratio(r)).c_str(),
                change(ratio_was, ratio(r)).c_str());
  }
}

// ---- child processes ----------------------------------------------------------------------

struct Child {
  pid_t pid = -1;
  fs::path output;
  int status = 0;  // once exited(): how, as waitpid tells it
  void terminate(std::chrono::seconds timeout = std::chrono::seconds(10)) {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    const auto deadline = Clock::now() + timeout;
    int status = 0;
    while (Clock::now() < deadline) {
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    pid = -1;
  }
  bool exited() {
    if (pid <= 0) return true;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      pid = -1;
      return true;
    }
    return false;
  }
};

Child spawn(std::vector<std::string> args, const fs::path& output) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + output.string());
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    const int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fd);
  if (pid < 0) throw std::runtime_error("fork failed");
  return Child{pid, output};
}

/// "worker exited with status 3", "... was killed by signal 11", or, when it could not even be
/// started (spawn's child exits 127 when execv fails), which file could not be run.
std::string how_it_ended(const Child& child, const std::string& program) {
  if (WIFSIGNALED(child.status)) return fmt::format("the worker was killed by signal {}", WTERMSIG(child.status));
  const int code = WEXITSTATUS(child.status);
  if (code == 127) return fmt::format("the worker could not be run: is {} an executable file?", program);
  return fmt::format("the worker exited with status {}", code);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---- /proc ---------------------------------------------------------------------------------

/// utime+stime (clock ticks) and ppid of a process; nullopt if gone.
std::optional<std::pair<long long, long>> proc_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return std::nullopt;
  const auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(text.substr(close + 2));
  std::vector<std::string> f;
  std::string tok;
  while (rest >> tok) f.push_back(tok);
  // f[0] = state (field 3), f[1] = ppid (4), f[11] = utime (14), f[12] = stime (15)
  if (f.size() < 13) return std::nullopt;
  return std::make_pair(std::stoll(f[11]) + std::stoll(f[12]), std::stol(f[1]));
}

long long cpu_ticks(pid_t pid) {
  auto s = proc_stat(pid);
  return s ? s->first : 0;
}

/// Wake-ups of a process: the voluntary context switches of its threads (each a sleep the
/// thread was woken from). Involuntary ones, preemptions, count the machine's contention, not
/// the design, and are left out. A thread that exited is not counted (the server's and
/// worker's threads live as long as they do).
long long wakeups(pid_t pid) {
  long long total = 0;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) total += std::stoll(line.substr(line.find(':') + 1));
  }
  return total;
}

/// What a process (or several) has cost so far; the difference of two is a window's cost.
struct ProcessCost {
  long long ticks = 0;    ///< utime+stime
  long long wakeups = 0;  ///< voluntary context switches
  ProcessCost operator+(const ProcessCost& o) const { return {ticks + o.ticks, wakeups + o.wakeups}; }
  ProcessCost operator-(const ProcessCost& o) const { return {ticks - o.ticks, wakeups - o.wakeups}; }
};

ProcessCost process_cost(pid_t pid) { return {cpu_ticks(pid), wakeups(pid)}; }

/// The postmaster and every process it forked (backends, walwriter, checkpointer...).
ProcessCost postgres_cost(pid_t postmaster) {
  ProcessCost total;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    const pid_t pid = std::stoi(name);
    auto s = proc_stat(pid);
    if (!s || (pid != postmaster && s->second != postmaster)) continue;
    total = total + ProcessCost{s->first, wakeups(pid)};
  }
  return total;
}

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

// ---- PostgreSQL ----------------------------------------------------------------------------

struct Pg {
  PGconn* conn = nullptr;
  explicit Pg(const std::string& conninfo) {
    conn = PQconnectdb(conninfo.c_str());
    if (PQstatus(conn) != CONNECTION_OK) throw std::runtime_error(std::string("connect: ") + PQerrorMessage(conn));
  }
  ~Pg() { PQfinish(conn); }
  Pg(const Pg&) = delete;
  std::string one(const std::string& sql) {
    PGresult* r = PQexec(conn, sql.c_str());
    const auto status = PQresultStatus(r);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      std::string error = PQerrorMessage(conn);
      PQclear(r);
      throw std::runtime_error(sql + ": " + error);
    }
    std::string v = (status == PGRES_TUPLES_OK && PQntuples(r) > 0) ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    return v;
  }
  void exec(const std::string& sql) { one(sql); }
};

/// Prints what pg_stat_statements saw, per workflow, busiest first (the --pg-statements profile).
void print_statements(const std::string& db_url, double workflows) {
  Pg db(db_url);
  PGresult* r = PQexec(db.conn,
                       "SELECT calls, total_exec_time, total_plan_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 150) "
                       "FROM pg_stat_statements WHERE calls > 0 ORDER BY total_exec_time DESC LIMIT 40");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    std::cerr << "pg_stat_statements: " << PQerrorMessage(db.conn);
    PQclear(r);
    return;
  }
  std::cerr << fmt::format("{:>8} {:>10}  statement (per workflow, {} workflows)\n", "calls", "exec ms", workflows);
  double calls = 0, ms = 0;
  for (int i = 0; i < PQntuples(r); ++i) {
    const double c = std::atof(PQgetvalue(r, i, 0)) / workflows, t = std::atof(PQgetvalue(r, i, 1)) / workflows;
    calls += c, ms += t;
    std::cerr << fmt::format("{:8.2f} {:10.4f}  {}\n", c, t, PQgetvalue(r, i, 3));
  }
  std::cerr << fmt::format("{:8.2f} {:10.4f}  (top 40 in all)\n", calls, ms);
  PQclear(r);
  db.exec("SELECT pg_stat_statements_reset()");
}

/// A point in time for the resource deltas: CPU of each process, WAL position, commits.
struct Snapshot {
  ProcessCost server, worker, postgres;
  double wal_lsn = 0;         ///< bytes, pg_current_wal_lsn()
  double xact_commit = 0;     ///< pg_stat_database of the reprise database
  double next_xid = 0;        ///< write transactions are the xids handed out
};

struct Env {
  std::string conninfo_admin;  ///< "postgres" database, for monitoring
  std::string dbname = "reprise_bench";
  pid_t postmaster = 0, server = 0, worker = 0;
  std::string address;
  std::string server_bin, worker_bin, db_url;
  long clk_tck = ::sysconf(_SC_CLK_TCK);
};

Snapshot snapshot(Env& env, Pg& monitor, bool wait_for_stats) {
  // Backends flush their statistics at most once a second while busy and within 10 s when
  // idle (PostgreSQL 15): wait for them before reading pg_stat_database.
  if (wait_for_stats) std::this_thread::sleep_for(std::chrono::milliseconds(11'000));
  Snapshot s;
  s.server = process_cost(env.server);
  s.worker = process_cost(env.worker);
  s.postgres = postgres_cost(env.postmaster);
  monitor.exec("SELECT pg_stat_clear_snapshot()");
  s.wal_lsn = std::stod(monitor.one("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"));
  s.xact_commit = std::stod(monitor.one("SELECT xact_commit FROM pg_stat_database WHERE datname = '" + env.dbname + "'"));
  s.next_xid = std::stod(monitor.one("SELECT pg_snapshot_xmax(pg_current_snapshot())::text"));
  return s;
}

// ---- B0: raw INSERT commits ------------------------------------------------------------------

struct InsertResult {
  double commits_per_s = 0, p50_ms = 0, p99_ms = 0;
  double wal_per_commit = 0, pg_cpu_ms_per_commit = 0, pg_wakeups_per_commit = 0;
};

/// One single-row INSERT, committed on its own: B0's unit of work. Returns its latency in ms.
double timed_insert(PGconn* c) {
  const auto t = Clock::now();
  PGresult* r = PQexec(c, "INSERT INTO b0 (v) VALUES ('small payload')");
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  if (!ok) throw std::runtime_error(std::string("insert: ") + PQerrorMessage(c));
  return seconds_since(t) * 1000;
}

InsertResult insert_loop(Env& env, const std::string& conninfo, int connections, double duration_s) {
  std::vector<std::unique_ptr<Pg>> conns;
  for (int i = 0; i < connections; ++i) conns.push_back(std::make_unique<Pg>(conninfo));
  Pg monitor(env.conninfo_admin);
  const double wal0 = std::stod(monitor.one("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"));
  const auto pg0 = postgres_cost(env.postmaster);
  std::atomic<bool> stop{false};
  std::atomic<long long> count{0};
  std::vector<std::vector<double>> latencies(connections);
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int i = 0; i < connections; ++i) {
    threads.emplace_back([&, i] {
      PGconn* c = conns[i]->conn;
      while (!stop) {
        latencies[i].push_back(timed_insert(c));
        ++count;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(duration_s));
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = seconds_since(start);
  const double wal1 = std::stod(monitor.one("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"));
  const auto pg1 = postgres_cost(env.postmaster);
  std::vector<double> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  InsertResult r;
  r.commits_per_s = count / elapsed;
  r.p50_ms = percentile(all, 50);
  r.p99_ms = percentile(all, 99);
  r.wal_per_commit = (wal1 - wal0) / std::max<long long>(1, count);
  r.pg_cpu_ms_per_commit = (pg1.ticks - pg0.ticks) * 1000.0 / env.clk_tck / std::max<long long>(1, count);
  r.pg_wakeups_per_commit = double(pg1.wakeups - pg0.wakeups) / std::max<long long>(1, count);
  return r;
}

// ---- workflows through the service --------------------------------------------------------------

struct Batch {
  std::vector<double> latency_ms;
  std::vector<json> results;
  double elapsed_s = 0;
  int errors = 0;
  std::string first_error;
  double per_s() const { return latency_ms.size() / elapsed_s; }
};

std::atomic<long> id_counter{0};

/// Runs `count` workflows, `in_flight` at a time, each from start to result (Client::execute).
Batch run_batch(const Env& env, const std::string& type, std::function<json(int)> input, int count, int in_flight,
                const std::string& task_queue = "bench",
                std::chrono::seconds result_timeout = std::chrono::minutes(10)) {
  reprise::Client client(env.address);
  std::atomic<int> next{0};
  std::mutex mu;
  Batch batch;
  batch.results.resize(count);
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int t = 0; t < in_flight; ++t) {
    threads.emplace_back([&] {
      std::vector<double> local;
      for (int i; (i = next++) < count;) {
        const auto t0 = Clock::now();
        try {
          // Start and wait in one call, as an application that wants the result does.
          auto result = client.execute_json(type, input(i),
                                            {.id = fmt::format("{}-{}", type, id_counter++), .task_queue = task_queue},
                                            result_timeout);
          local.push_back(seconds_since(t0) * 1000);
          batch.results[i] = std::move(result);
        } catch (const std::exception& e) {
          std::lock_guard lock(mu);
          if (batch.errors++ == 0) batch.first_error = e.what();
        }
      }
      std::lock_guard lock(mu);
      batch.latency_ms.insert(batch.latency_ms.end(), local.begin(), local.end());
    });
  }
  for (auto& t : threads) t.join();
  batch.elapsed_s = seconds_since(start);
  if (batch.errors) log(fmt::format("{}: {} errors, first: {}", type, batch.errors, batch.first_error));
  return batch;
}

/// Starts a reprise-server (`name` prefixes its log) with `server_flags` over the bench database,
/// and a worker on task queue `queue`, warms them up, and points `env` at them. The caller
/// stops both (they are killed with the driver in any case).
void start_engine(const fs::path& dir, const std::string& name, std::vector<std::string> server_flags,
                  const std::string& queue, Child& server, Child& worker, Env& env) {
  const fs::path ready = dir / (name + "server.ready");
  std::vector<std::string> args = {env.server_bin, "--database-url", env.db_url, "--port", "0", "--ready-file",
                                   ready.string(), "--history-max-events", "1000000", "--log-level", "warn"};
  args.insert(args.end(), server_flags.begin(), server_flags.end());
  server = spawn(args, dir / (name + "server.log"));
  int port = 0;
  for (const auto deadline = Clock::now() + std::chrono::seconds(60); port == 0;) {
    if (server.exited()) throw std::runtime_error("reprise-server exited:\n" + read_file(dir / (name + "server.log")));
    if (Clock::now() > deadline) throw std::runtime_error("reprise-server did not start");
    std::string text = read_file(ready);
    if (!text.empty() && text.back() == '\n') port = std::atoi(text.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  env.server = server.pid;
  env.address = fmt::format("127.0.0.1:{}", port);
  log(fmt::format("reprise-server on {} {}", env.address, fmt::join(server_flags, " ")));
  // As many workflow polls as workflows in flight: a start then finds a poll waiting and hands
  // it the run's first task in its own transaction (sync match), with no task row to claim.
  worker = spawn({env.worker_bin, "--address", env.address, "--task-queue", queue, "--workflow-pollers", "64",
                  "--activity-pollers", "16", "--eager-activity-threads", "64"},
                 dir / (name + "worker.log"));
  env.worker = worker.pid;
  // Warm up, and find out early if the worker could not start (a bad option, say): a run
  // nobody picks up would otherwise wait out the full result timeout.
  auto warm = run_batch(env, "Empty", [](int) { return json(nullptr); }, 20, 20, queue, std::chrono::seconds(30));
  if (worker.exited())
    throw std::runtime_error(how_it_ended(worker, env.worker_bin) + "; its output:\n" +
                             read_file(dir / (name + "worker.log")));
  if (warm.errors) throw std::runtime_error("the warm-up runs failed: " + warm.first_error);
}

struct Sizes {
  double b0_seconds;
  int b1_latency_n, b1_throughput_n;
  int b2_throughput_n3, b2_throughput_n10, b2_latency_n;
  int b3_runs;
  int b4_n;
  std::vector<int> b5_events;
  int b6_parked;
  int b7_steps;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"reprise-bench: the Reprise benchmark suite (see README, Performance)"};
  bool quick = false;
  std::string json_out = "bench-results.json";
  std::string server_bin = REPRISE_BENCH_SERVER, worker_bin = REPRISE_BENCH_WORKER;
  std::string skip;
  bool keep = false;
  bool pg_statements = false;
  int b2_workflows = 0;
  int b2_one_in_flight = 0;
  app.add_flag("--quick", quick, "Small sizes: a ~1 minute smoke run");
  app.add_option("--json-out", json_out, "Where to write the results as JSON")->capture_default_str();
  app.add_option("--server", server_bin, "reprise-server executable")->capture_default_str();
  app.add_option("--worker", worker_bin, "reprise-bench-worker executable")->capture_default_str();
  app.add_option("--skip", skip, "Scenarios to skip, e.g. B3,B7");
  app.add_flag("--keep", keep, "Keep the temporary directory (cluster, logs)");
  app.add_flag("--pg-statements", pg_statements,
               "Profile: load pg_stat_statements and print, after B2's 3-step batch, the statements each "
               "workflow ran (calls and ms per workflow)");
  app.add_option("--b2-workflows", b2_workflows,
                 "Profile: how many 3-step workflows B2 runs with 64 in flight (a longer window for perf)");
  std::vector<std::string> pg_settings_extra;
  app.add_option("--pg-setting", pg_settings_extra,
                 "Experiment: an extra PostgreSQL setting, name=value (repeatable); the header line names it");
  std::string compare_with;
  app.add_option("--compare", compare_with,
                 "An earlier run's JSON (--json-out): print, after the table, each figure beside its value there")
      ->check(CLI::ExistingFile);
  app.add_option("--b2-one-in-flight", b2_one_in_flight,
                 "Profile: how many workflows B2 runs one at a time, for each step count (a longer window for "
                 "tracing the chain)");
  CLI11_PARSE(app, argc, argv);
  auto enabled = [&](const std::string& id) { return skip.find(id) == std::string::npos; };

  // Full sizes: B2's 3-step batch is 5,000 workflows, so its ramp-up and draining tail (64 in
  // flight falling to none) weigh a few percent, and each one-in-flight batch is 1,000, so its
  // p50 moves little from run to run.
  Sizes sizes = quick ? Sizes{3, 30, 200, 256, 128, 30, 1, 128, {1000, 10000, 50000}, 2000, 1000}
                            : Sizes{5, 100, 1000, 5000, 1000, 1000, 3, 10000, {1000, 10000, 50000}, 10000, 10000};
  // Read now: it may be the file this run is about to write.
  json earlier;
  if (!compare_with.empty()) try {
      earlier = read_earlier_run(compare_with);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "reprise-bench: %s\n", e.what());
      return 2;
    }
  if (b2_workflows > 0) sizes.b2_throughput_n3 = b2_workflows;
  if (b2_one_in_flight > 0) sizes.b2_latency_n = b2_one_in_flight;
  const auto wall_start = Clock::now();

  char tmpl[] = "/tmp/reprise-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  const fs::path dir = tmpl;
  fs::permissions(dir, fs::perms::others_exec | fs::perms::group_exec, fs::perm_options::add);
  log("working in " + dir.string());
  // Stops the cluster if this process is interrupted or killed (pg_ctl runs PostgreSQL in a
  // session of its own, which a Ctrl-C would not reach), and removes `dir` unless asked to keep
  // it: the logs of an interrupted --keep run are what its user wants to read.
  reprise::dev::ClusterWatcher watcher(dir / "pgdata", keep ? fs::path() : dir);

  Env env;
  std::vector<Child*> children;
  Child server, worker, park_worker, mode_server, mode_worker;
  int exit_code = 0;
  try {
    // ---- the cluster, with default durability (fsync and synchronous_commit on) ------------
    std::vector<std::string> pg_extra = pg_settings_extra;
    if (pg_statements) pg_extra.push_back("shared_preload_libraries=pg_stat_statements");
    auto cluster = reprise::dev::LocalCluster::open({.data_dir = dir / "pgdata", .settings = pg_extra});
    {
      std::ifstream pm(dir / "pgdata" / "postmaster.pid");
      pm >> env.postmaster;
    }
    env.conninfo_admin = cluster.connection_string("postgres");
    const std::string db_url = cluster.create_database(env.dbname);
    env.db_url = db_url;
    env.server_bin = server_bin;
    env.worker_bin = worker_bin;
    const std::string b0_url = cluster.create_database("b0");
    Pg monitor(env.conninfo_admin);
    const std::string pg_settings = fmt::format(
        "PostgreSQL {} fsync={} synchronous_commit={} shared_buffers={} wal_level={}", monitor.one("SHOW server_version"),
        monitor.one("SHOW fsync"), monitor.one("SHOW synchronous_commit"), monitor.one("SHOW shared_buffers"),
        monitor.one("SHOW wal_level"));
    log(pg_settings_extra.empty() ? pg_settings : fmt::format("{} {}", pg_settings, fmt::join(pg_settings_extra, " ")));

    // ---- B0 ------------------------------------------------------------------------------
    InsertResult b0_1, b0_64;
    {
      Pg b0(b0_url);
      b0.exec("CREATE TABLE b0 (id bigserial PRIMARY KEY, v text NOT NULL)");
    }
    log("B0: INSERT commits at 1 and 64 connections");
    b0_1 = insert_loop(env, b0_url, 1, sizes.b0_seconds);
    b0_64 = insert_loop(env, b0_url, 64, sizes.b0_seconds);
    add({"B0", "INSERT commits/s, 1 connection", b0_1.commits_per_s, "/s"});
    add({"B0", "INSERT commits/s, 64 connections", b0_64.commits_per_s, "/s", "B0 1 conn", b0_1.commits_per_s});
    add({"B0", "INSERT commit latency p50, 1 connection", b0_1.p50_ms, "ms"});
    add({"B0", "INSERT commit latency p99, 1 connection", b0_1.p99_ms, "ms", "B0 p50", b0_1.p50_ms});
    add({"B0", "WAL bytes per INSERT (64 conn)", b0_64.wal_per_commit, "B"});
    add({"B0", "PostgreSQL CPU ms per INSERT (64 conn)", b0_64.pg_cpu_ms_per_commit, "ms"});
    add({"B0", "PostgreSQL wake-ups per INSERT (64 conn)", b0_64.pg_wakeups_per_commit, ""});

    // ---- reprise-server and the worker ------------------------------------------------------
    children.push_back(&server);
    children.push_back(&worker);
    start_engine(dir, "", {}, "bench", server, worker, env);

    // ---- B1: empty workflow --------------------------------------------------------------------
    if (enabled("B1")) {
      log("B1: empty workflow");
      auto lat = run_batch(env, "Empty", [](int i) { return json(i); }, sizes.b1_latency_n, 1);
      auto thr = run_batch(env, "Empty", [](int i) { return json(i); }, sizes.b1_throughput_n, 64);
      add({"B1", "empty wf latency p50 (1 in flight)", percentile(lat.latency_ms, 50), "ms", "B0 commit p50", b0_1.p50_ms});
      add({"B1", "empty wf latency p99 (1 in flight)", percentile(lat.latency_ms, 99), "ms", "B0 commit p50", b0_1.p50_ms});
      add({"B1", "empty wf/s (64 in flight)", thr.per_s(), "/s", "B0 64-conn commits/s", b0_64.commits_per_s});
      add({"B1", "empty wf latency p50 (64 in flight)", percentile(thr.latency_ms, 50), "ms", "B0 commit p50", b0_1.p50_ms});
    }

    // ---- B2: 3-step and 10-step workflows ---------------------------------------------------------
    if (enabled("B2")) {
      // One in flight first, on a database the batches at 64 in flight have not yet filled with
      // dead rows: their vacuuming would otherwise land in these (a run measured 2.78 ms so).
      // `flags`, the server's beyond the defaults, are named in the rows; the CPU a workflow
      // costs at one in flight shows what idle polling trades for its latency.
      // `durable`: nothing acknowledged can be lost, so the figure counts for the target.
      // B0's one-connection commit latency is sampled again between blocks of these workflows,
      // and their rows are ratios to that: this machine's fsync latency drifts by 2x within
      // minutes (B0 p50 0.21 and 0.45 ms in runs of one hour), and the workflow's four commits
      // drift with it, so a baseline measured minutes apart moved the ratio from 12x to 21x.
      Pg b0_interleaved(b0_url);
      auto one_in_flight = [&](Env& e, const std::string& queue, int steps, const std::vector<std::string>& flags,
                               bool durable = true) {
        const std::string mode = flags.empty() ? "" : fmt::format(", {}", fmt::join(flags, " "));
        log(fmt::format("B2: {}-step workflows, one in flight{}", steps, mode));
        constexpr int kBlocks = 10, kCommitsPerBlock = 100;
        std::vector<double> latency_ms, b0_ms;
        ProcessCost server_used, worker_used, pg_used;
        for (int b = 0; b < kBlocks; ++b) {
          for (int i = 0; i < kCommitsPerBlock; ++i) b0_ms.push_back(timed_insert(b0_interleaved.conn));
          const int n = sizes.b2_latency_n * (b + 1) / kBlocks - sizes.b2_latency_n * b / kBlocks;
          const Snapshot s0 = snapshot(e, monitor, false);
          auto block = run_batch(e, "Steps", [steps](int) { return json(steps); }, n, 1, queue);
          const Snapshot s1 = snapshot(e, monitor, false);
          server_used = server_used + (s1.server - s0.server);
          worker_used = worker_used + (s1.worker - s0.worker);
          pg_used = pg_used + (s1.postgres - s0.postgres);
          latency_ms.insert(latency_ms.end(), block.latency_ms.begin(), block.latency_ms.end());
        }
        const double p50 = percentile(latency_ms, 50), b0_p50 = percentile(b0_ms, 50);
        const double done = std::max<std::size_t>(1, latency_ms.size());
        const std::string p = fmt::format("{}-step ", steps);
        const std::string base = "B0 commit p50, interleaved";
        const bool target = steps == 3 && durable;
        add({"B2", p + "latency p50 (1 in flight" + mode + ")", p50, "ms", base, b0_p50, target ? "<= 16x" : "",
             target ? std::optional<bool>(p50 <= 16 * b0_p50) : std::nullopt});
        add({"B2", p + "latency p99 (1 in flight" + mode + ")", percentile(latency_ms, 99), "ms", base, b0_p50});
        if (steps == 3) {
          const ProcessCost used = server_used + worker_used + pg_used;
          const auto ms = [&](const ProcessCost& c) { return c.ticks * 1000.0 / e.clk_tck / done; };
          const auto woken = [&](const ProcessCost& c) { return double(c.wakeups) / done; };
          add({"B2", p + "CPU ms per wf, all processes (1 in flight" + mode + ")", ms(used), "ms", "B0 PG CPU/INSERT",
               b0_64.pg_cpu_ms_per_commit, "", std::nullopt,
               fmt::format("server {:.2f}, worker {:.2f}, PostgreSQL {:.2f}", ms(server_used), ms(worker_used),
                           ms(pg_used))});
          add({"B2", p + "wake-ups per wf, all processes (1 in flight" + mode + ")", woken(used), "",
               "B0 PG wake-ups/INSERT", b0_64.pg_wakeups_per_commit, "", std::nullopt,
               fmt::format("server {:.1f}, worker {:.1f}, PostgreSQL {:.1f}", woken(server_used), woken(worker_used),
                           woken(pg_used))});
        }
      };
      one_in_flight(env, "bench", 3, {});
      children.push_back(&mode_server);
      children.push_back(&mode_worker);
      // The opt-in latency modes beside the default, right after it, each with a server and
      // worker of its own over the same database, stopped after it (docs/architecture.md, "Idle
      // polling" and "Relaxed durability"). The relaxed one does not count for the target.
      struct Mode {
        std::string name;
        std::vector<std::string> flags;
        bool durable;
      };
      for (const Mode& m : {Mode{"idle-poll", {"--idle-poll", "1ms"}, true},
                            Mode{"synchronous-commit-off", {"--synchronous-commit", "off"}, false}}) {
        Env mode_env = env;
        start_engine(dir, m.name + "-", m.flags, "bench-" + m.name, mode_server, mode_worker, mode_env);
        one_in_flight(mode_env, "bench-" + m.name, 3, m.flags, m.durable);
        mode_worker.terminate();
        mode_server.terminate();
      }
      one_in_flight(env, "bench", 10, {});
      if (pg_statements) {
        Pg db(db_url);
        db.exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
        db.exec("SELECT pg_stat_statements_reset()");
      }
      Snapshot s0 = snapshot(env, monitor, true);
      for (int steps : {3, 10}) {
        const int n = steps == 3 ? sizes.b2_throughput_n3 : sizes.b2_throughput_n10;
        log(fmt::format("B2: {}-step workflows, {} with 64 in flight", steps, n));
        auto thr = run_batch(env, "Steps", [steps](int) { return json(steps); }, n, 64);
        Snapshot s1 = snapshot(env, monitor, false);
        Snapshot s1s = snapshot(env, monitor, true);  // after stats flushed (xact_commit)
        const double done = std::max<std::size_t>(1, thr.latency_ms.size());
        const double tick_ms = 1000.0 / env.clk_tck;
        const auto server_used = s1.server - s0.server, worker_used = s1.worker - s0.worker,
                   pg_used = s1.postgres - s0.postgres;
        const double cpu_server = server_used.ticks * tick_ms / done;
        const double cpu_worker = worker_used.ticks * tick_ms / done;
        const double cpu_pg = pg_used.ticks * tick_ms / done;
        const std::string p = fmt::format("{}-step ", steps);
        if (pg_statements && steps == 3) print_statements(db_url, done);
        add({"B2", p + "wf/s (64 in flight)", thr.per_s(), "/s", "B0 64-conn commits/s", b0_64.commits_per_s,
             steps == 3 ? ">= 0.05x" : "", steps == 3 ? std::optional<bool>(thr.per_s() >= 0.05 * b0_64.commits_per_s)
                                                      : std::nullopt,
             fmt::format("{} done, {} errors", thr.latency_ms.size(), thr.errors)});
        add({"B2", p + "latency p50 (64 in flight)", percentile(thr.latency_ms, 50), "ms", "B0 commit p50", b0_1.p50_ms});
        add({"B2", p + "PG transactions per wf (xact_commit)", (s1s.xact_commit - s0.xact_commit) / done, "xact",
             "B0 INSERT", 1.0});
        add({"B2", p + "PG write transactions per wf (xids)", (s1.next_xid - s0.next_xid) / done, "xact", "B0 INSERT",
             1.0});
        add({"B2", p + "WAL bytes per wf", (s1.wal_lsn - s0.wal_lsn) / done, "B", "B0 INSERT", b0_64.wal_per_commit});
        add({"B2", p + "CPU ms per wf: reprise-server", cpu_server, "ms", "B0 PG CPU/INSERT", b0_64.pg_cpu_ms_per_commit});
        add({"B2", p + "CPU ms per wf: worker", cpu_worker, "ms", "B0 PG CPU/INSERT", b0_64.pg_cpu_ms_per_commit});
        add({"B2", p + "CPU ms per wf: PostgreSQL", cpu_pg, "ms", "B0 PG CPU/INSERT", b0_64.pg_cpu_ms_per_commit});
        const double cpu_all = cpu_server + cpu_worker + cpu_pg;
        add({"B2", p + "CPU ms per wf: all processes", cpu_all, "ms", "B0 PG CPU/INSERT", b0_64.pg_cpu_ms_per_commit,
             steps == 3 ? "<= 1.5 ms" : "", steps == 3 ? std::optional<bool>(cpu_all <= 1.5) : std::nullopt});
        // Wake-ups cost CPU on every machine; their count moves much less than CPU time does
        // with the machine's speed (it still moves with timing: how commits group, say).
        const double woken_server = server_used.wakeups / done;
        const double woken_worker = worker_used.wakeups / done;
        const double woken_pg = pg_used.wakeups / done;
        const char* woken_base = "B0 PG wake-ups/INSERT";
        const double pg_woken = b0_64.pg_wakeups_per_commit;
        add({"B2", p + "wake-ups per wf: reprise-server", woken_server, "", woken_base, pg_woken});
        add({"B2", p + "wake-ups per wf: worker", woken_worker, "", woken_base, pg_woken});
        add({"B2", p + "wake-ups per wf: PostgreSQL", woken_pg, "", woken_base, pg_woken});
        add({"B2", p + "wake-ups per wf: all processes", woken_server + woken_worker + woken_pg, "", woken_base,
             pg_woken});
        s0 = snapshot(env, monitor, false);  // stats already flushed above
      }
    }

    // ---- B5 warm: replay in memory ----------------------------------------------------------------
    // Warm means the history is in memory and already read into events (a reprise::ParsedHistory,
    // as a replay test or gate reuses it): the replay alone is timed. Reading the same text into
    // events, and nlohmann's DOM parse of it (the baseline), are timed beside it; the note gives
    // the replay of the JSON document (reading its tree into events, then replaying).
    if (enabled("B5")) {
      std::vector<std::pair<double, double>> per_event;  // events, warm replay seconds
      auto best_of = [](int reps, const std::function<void()>& fn) {
        double best = 1e9;
        for (int rep = 0; rep < reps; ++rep) {
          const auto t = Clock::now();
          fn();
          best = std::min(best, seconds_since(t));
        }
        return best;
      };
      for (int events : sizes.b5_events) {
        log(fmt::format("B5 warm: recording a {}-event history in a TestEnvironment", events));
        reprise::testing::TestEnvironment test_env;
        reprise_bench::register_bench(test_env.registry());
        const int steps = std::max(1, (events - 5) / 6);
        auto run = test_env.start("Steps", steps);
        run.result<int>();
        json history = run.history();
        const double n = history["events"].size();
        // ~0.2 s of replays, and at least ten: the best of a few runs of the longest history,
        // against the best of hundreds of the shortest's, read up to 1.9x on this machine's noise.
        const int reps = std::max(10, static_cast<int>(200000 / n));
        reprise::Replayer replayer(test_env.registry());
        const std::string text = history.dump();
        std::string error;
        const double dom_s = best_of(reps, [&] { auto parsed = json::parse(text); });
        const double read_s = best_of(reps, [&] { auto parsed = reprise::ParsedHistory::parse(text); });
        const auto parsed = reprise::ParsedHistory::parse(text);
        const double replay_s = best_of(reps, [&] {
          auto result = replayer.replay(parsed);
          if (!result.ok()) error = result.message;
        });
        const double document_s = best_of(3, [&] {
          auto result = replayer.replay(history);
          if (!result.ok()) error = result.message;
        });
        per_event.emplace_back(n, replay_s);
        add({"B5", fmt::format("warm replay, {:.0f} events (read beforehand)", n), n / replay_s, "events/s",
             "JSON parse of it (nlohmann DOM)", n / dom_s, ">= 1,000,000/s", n / replay_s >= 1e6,
             fmt::format("{:.2f} ms; replay of the JSON document {:.0f}/s{}", replay_s * 1000, n / document_s,
                         error.empty() ? "" : " FAILED: " + error)});
        add({"B5", fmt::format("read history text into events, {:.0f} events", n), n / read_s, "events/s",
             "JSON parse of it (nlohmann DOM)", n / dom_s, "", {}, fmt::format("{:.2f} ms", read_s * 1000)});
      }
      if (per_event.size() >= 2) {
        // Linear in length: the time per event of the longest history against the shortest's,
        // and the least-squares slope of time against length.
        const auto& [n0, t0] = per_event.front();
        const auto& [n1, t1] = per_event.back();
        double mean_n = 0, mean_t = 0;
        for (auto [n, t] : per_event) mean_n += n / per_event.size(), mean_t += t / per_event.size();
        double sxy = 0, sxx = 0;
        for (auto [n, t] : per_event) sxy += (n - mean_n) * (t - mean_t), sxx += (n - mean_n) * (n - mean_n);
        const double slope_us = sxx > 0 ? sxy / sxx * 1e6 : NAN;
        add({"B5", fmt::format("replay time per event at {:.0f} events", n1), t1 / n1 * 1e6, "us",
             fmt::format("at {:.0f} events", n0), t0 / n0 * 1e6, "<= 1.5x (linear)", t1 / n1 <= 1.5 * t0 / n0,
             fmt::format("slope {:.3f} us/event", slope_us)});
      }
    }

    // ---- B3: fan-out --------------------------------------------------------------------------
    if (enabled("B3")) {
      log(fmt::format("B3: fan-out of 1,000 activities, {} run(s)", sizes.b3_runs));
      auto fan = run_batch(env, "FanOut", [](int) { return json(1000); }, sizes.b3_runs, 1);
      const double p50 = percentile(fan.latency_ms, 50);
      add({"B3", "fan-out 1,000 activities: wf latency p50", p50, "ms", "1,000 x B0 commit p50 / 64 conns",
           1000 * 1000.0 / b0_64.commits_per_s});
      add({"B3", "fan-out activities/s", 1000 / (p50 / 1000), "/s", "B0 64-conn commits/s", b0_64.commits_per_s});
    }

    // ---- B4: timers ------------------------------------------------------------------------------
    if (enabled("B4")) {
      log(fmt::format("B4: {} workflows sleeping 1-5 s", sizes.b4_n));
      std::mt19937 rng(42);
      std::vector<int> sleeps(sizes.b4_n);
      for (auto& s : sleeps) s = 1000 + static_cast<int>(rng() % 4001);
      // All started first (64 starters), then the results collected: every timer is pending at
      // once, and the lateness is the workflow's own clock, unaffected by when it is collected.
      reprise::Client client(env.address);
      std::vector<std::string> ids(sizes.b4_n);
      std::vector<json> results(sizes.b4_n);
      std::atomic<int> next{0}, failures{0};
      auto in_parallel = [&](const std::function<void(int)>& each) {
        next = 0;
        std::vector<std::thread> threads;
        for (int t = 0; t < 64; ++t)
          threads.emplace_back([&] {
            for (int i; (i = next++) < sizes.b4_n;) try {
                each(i);
              } catch (const std::exception& e) {
                if (failures++ == 0) log(std::string("B4: ") + e.what());
              }
          });
        for (auto& t : threads) t.join();
      };
      in_parallel([&](int i) {
        ids[i] = fmt::format("Sleep-{}", id_counter++);
        client.start("Sleep", sleeps[i], {.id = ids[i], .task_queue = "bench"});
      });
      in_parallel([&](int i) { results[i] = client.handle(ids[i]).result_json(std::chrono::minutes(10)); });
      std::vector<double> late;
      for (auto& r : results)
        if (r.is_number()) late.push_back(r.get<double>());
      add({"B4", "timer lateness p50 (workflow clock)", percentile(late, 50), "ms", "B0 commit p50", b0_1.p50_ms, "", {},
           fmt::format("{} timers, {} errors", late.size(), failures.load())});
      add({"B4", "timer lateness p99 (workflow clock)", percentile(late, 99), "ms", "B0 commit p50", b0_1.p50_ms});
    }

    // ---- B5 cold and B7: long histories through the service -------------------------------------------
    if (enabled("B7") || enabled("B5")) {
      reprise::Registry registry;
      reprise_bench::register_bench(registry);
      reprise::Replayer replayer(registry);
      reprise::Client client(env.address);
      std::vector<int> loop_steps = {166, 1666};
      if (sizes.b7_steps > 1666) loop_steps.push_back(sizes.b7_steps);
      // The baseline of a cold replay is the warm replay of the history size nearest to it.
      std::vector<std::pair<double, double>> warm;  // events, events/s
      for (auto& r : rows)
        if (r.id == "B5" && r.metric.find("warm") != std::string::npos)
          warm.emplace_back(std::stod(r.metric.substr(r.metric.find(", ") + 2)), r.value);
      auto warm_rate = [&](double events) {
        double best = NAN, distance = 1e18;
        for (auto [e, rate] : warm)
          if (std::fabs(std::log(e / events)) < distance) distance = std::fabs(std::log(e / events)), best = rate;
        return best;
      };
      if (enabled("B7")) loop_steps.back() = std::max(1000, loop_steps.back() / 100 * 100);  // whole blocks of 100
      for (int k : loop_steps) {
        const bool b7 = k == loop_steps.back() && enabled("B7");
        log(fmt::format("B7/B5 cold: a loop of {} sequential activities, one in flight{}", k,
                        b7 ? ", its last 1000 taking turns with a fresh run's first 1000" : ""));
        const std::string id = fmt::format("Loop-{}", k);
        const auto t = Clock::now();
        json result, fresh_result;
        try {
          if (b7) {
            // B7 compares the long run's last steps with a fresh run's first ones, in blocks of
            // 100 that take turns: each alone on the machine, and the two a fraction of a second
            // apart, while the speed of a shared host drifts by more than the 20% under test
            // between the start and the end of a long run. (Side by side instead, the two runs'
            // commits are grouped, and each step waits for the slower of the two.)
            const std::string fresh_id = id + "-fresh";
            auto fresh = client.start("Loop", json{{"steps", 1000}, {"partner", id}, {"turns", 10}},
                                      {.id = fresh_id, .task_queue = "bench"});
            try {
              auto run = client.start("Loop", json{{"steps", k}, {"partner", fresh_id}, {"turns", 10}, {"leads", true}},
                                      {.id = id, .task_queue = "bench"});
              result = run.result_json(std::chrono::minutes(30));
              fresh_result = fresh.result_json(std::chrono::minutes(30));
            } catch (...) {
              try {
                fresh.terminate("B7: the long run it takes turns with failed");  // else it waits for a turn forever
              } catch (const std::exception&) {
              }
              throw;
            }
          } else {
            result = client.start("Loop", k, {.id = id, .task_queue = "bench"}).result_json(std::chrono::minutes(30));
          }
        } catch (const std::exception& e) {
          log(std::string("loop failed: ") + e.what());
          continue;
        }
        const double loop_s = seconds_since(t);
        if (b7) {
          const auto long_run = block_step_ms(result);
          const auto blocks = long_run.size();
          const double late_ms = median_of(long_run, blocks - std::min<std::size_t>(blocks, 10), blocks);
          const double fresh_ms = median_of(block_step_ms(fresh_result), 0, 10);
          add({"B7", "per-step latency, a fresh run's steps 1-1000", fresh_ms, "ms", "B0 commit p50", b0_1.p50_ms});
          add({"B7", fmt::format("per-step latency, steps {}-{} (turns with the fresh run)", k - 999, k), late_ms, "ms",
               "fresh run", fresh_ms, "<= 1.2x (no slowdown)", late_ms <= 1.2 * fresh_ms,
               fmt::format("medians of 10 blocks of 100; the long run's steps 1-1000: {:.2f} ms; loop took {:.1f} s",
                           median_of(long_run, 0, 10), loop_s)});
        }
        if (enabled("B5")) {
          const auto t2 = Clock::now();
          auto replay = replayer.replay_from_service(env.address, "default", id);
          const double cold_s = seconds_since(t2);
          const double events = client.handle(id).describe()["execution"].value("history_length", 0.0);
          const bool big = events >= 45000;
          add({"B5", fmt::format("cold replay (fetch + replay), {:.0f} events", events), events / cold_s, "events/s",
               "warm replay, same size", warm_rate(events), big ? "50k < 0.5 s" : "", big ? std::optional<bool>(cold_s < 0.5) : std::nullopt,
               fmt::format("{:.0f} ms{}", cold_s * 1000, replay.ok() ? "" : " FAILED: " + replay.message)});
        }
      }
    }

    // ---- B6: worker memory per parked workflow -------------------------------------------------------
    if (enabled("B6")) {
      const int n = sizes.b6_parked;
      log(fmt::format("B6: {} runs parked on a 1 h timer in a fresh worker", n));
      const fs::path status = dir / "park.status";
      park_worker = spawn({worker_bin, "--address", env.address, "--task-queue", "park", "--cache-size",
                           std::to_string(n + 1000), "--status-file", status.string()},
                          dir / "park-worker.log");
      children.push_back(&park_worker);
      std::this_thread::sleep_for(std::chrono::seconds(2));
      const long rss0 = rss_kib(park_worker.pid);
      reprise::Client client(env.address);
      std::atomic<int> next{0};
      std::vector<std::thread> threads;
      for (int t = 0; t < 32; ++t)
        threads.emplace_back([&] {
          for (int i; (i = next++) < n;) {
            try {
              client.start("Park", 1, {.id = fmt::format("park-{}", i), .task_queue = "park"});
            } catch (const std::exception& e) {
              log(std::string("park start: ") + e.what());
            }
          }
        });
      for (auto& t : threads) t.join();
      long cached = 0;
      for (const auto deadline = Clock::now() + std::chrono::seconds(quick ? 60 : 180); Clock::now() < deadline;) {
        cached = std::atol(read_file(status).c_str());
        if (cached >= n) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
      const long rss1 = rss_kib(park_worker.pid);
      const double per = cached > 0 ? static_cast<double>(rss1 - rss0) / cached : NAN;
      add({"B6", "worker RSS per parked workflow", per, "KiB", "fiber stack reserved", 128.0, "<= 32 KiB",
           per <= 32, fmt::format("{} parked, RSS {} -> {} KiB", cached, rss0, rss1)});
      park_worker.terminate();
    }

    for (auto* c : children) c->terminate();
    if (!keep) {
      cluster.stop();
    } else {
      cluster.detach();
    }
  } catch (const std::exception& e) {
    log(std::string("FAILED: ") + e.what());
    for (auto* c : children) c->terminate();
    exit_code = 1;
  }

  // ---- the table ------------------------------------------------------------------------------------
  std::printf("\nReprise benchmark (%s), %u cores, total %.0f s\n\n", quick ? "--quick" : "full",
              std::thread::hardware_concurrency(), seconds_since(wall_start));
  std::printf("| id | metric | value | unit | baseline | baseline value | ratio | target | met | note |\n");
  std::printf("|---|---|---:|---|---|---:|---:|---|---|---|\n");
  json out = json::array();
  for (const auto& r : rows) {
    std::printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.id.c_str(), r.metric.c_str(),
                num(r.value).c_str(), r.unit.c_str(), r.baseline_name.c_str(), num(r.baseline).c_str(),
                std::isnan(ratio(r)) ? "-" : fmt::format("{:.3g}x", ratio(r)).c_str(), r.target.c_str(),
                r.met ? (*r.met ? "met" : "NOT met") : "", r.note.c_str());
    auto jnum = [](double v) { return std::isnan(v) ? json(nullptr) : json(v); };
    out.push_back({{"id", r.id}, {"metric", r.metric}, {"value", jnum(r.value)}, {"unit", r.unit},
                   {"baseline_name", r.baseline_name}, {"baseline", jnum(r.baseline)}, {"ratio", jnum(ratio(r))},
                   {"target", r.target}, {"met", r.met ? json(*r.met) : json(nullptr)}, {"note", r.note}});
  }
  std::ofstream(json_out) << json{{"quick", quick},
                                  {"cores", std::thread::hardware_concurrency()},
                                  {"pg_settings", pg_settings_extra},
                                  {"rows", out}}
                                 .dump(2)
                          << "\n";
  std::printf("\nJSON: %s\n", json_out.c_str());
  if (!earlier.is_null()) print_comparison(earlier, compare_with);
  if (!keep) {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  } else {
    watcher.keep();
    std::printf("kept %s (PostgreSQL still runs: pg_ctl -D %s/pgdata stop)\n", dir.c_str(), dir.c_str());
  }
  return exit_code;
}
