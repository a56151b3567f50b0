#pragma once
// Cleanup that survives its owner: a throwaway PostgreSQL cluster (a test harness's, a
// benchmark's) is stopped and its directory removed when the process that made it ends,
// however it ends: normally, by an exception, by Ctrl-C, or by SIGKILL. pg_ctl starts the
// server in a session of its own, so without this a killed owner leaves it running.

#include <filesystem>

#include <sys/types.h>

namespace reprise::dev {

/// A small /bin/sh process that waits for end of file on a socket only this object holds. The
/// socket closes when this object is destroyed or its process dies; the watcher then stops the
/// server of `data_dir` (SIGQUIT: immediate shutdown, as nothing in it is worth keeping) and
/// removes `remove_dir` (unless it is empty: to keep the logs of a run, say). It runs in its own
/// process group, so a Ctrl-C or a kill of the owner's group does not take it along.
///
///     TempDir dir;
///     ClusterWatcher watcher(dir / "pgdata", dir);  // before the cluster starts
///     auto cluster = LocalCluster::open({.data_dir = dir / "pgdata"});
class ClusterWatcher {
 public:
  /// Throws std::runtime_error when /bin/sh cannot be started. An empty `remove_dir` removes nothing.
  ClusterWatcher(const std::filesystem::path& data_dir, const std::filesystem::path& remove_dir);
  ClusterWatcher(const ClusterWatcher&) = delete;
  ClusterWatcher& operator=(const ClusterWatcher&) = delete;
  /// Lets the watcher go to work (or, after keep(), leave), and waits for it to finish.
  ~ClusterWatcher();

  /// Keeps the cluster running and the directory after all: the watcher leaves without touching
  /// them (`reprise-bench --keep` at its end). Before this call, a killed owner's cluster is
  /// still stopped. Safe to call twice.
  void keep();

 private:
  int write_end_ = -1;
  pid_t pid_ = -1;
};

}  // namespace reprise::dev
