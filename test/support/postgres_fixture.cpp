#include "support/postgres_fixture.hpp"

#include <algorithm>
#include <atomic>
#include <string>

#include <unistd.h>

#include "dev/cluster_watcher.hpp"
#include "dev/local_cluster.hpp"
#include "support/temp_dir.hpp"

namespace reprise::test {
namespace {

struct SharedCluster {
  TempDir dir{"pg"};
  dev::ClusterWatcher watcher{dir.path() / "pgdata", dir.path()};
  dev::LocalCluster cluster = dev::LocalCluster::open({
      .data_dir = dir.path() / "pgdata",
      .settings = {"fsync=off", "full_page_writes=off", "max_connections=300"},
  });
  // Destroyed in reverse: the cluster stops, then the watcher exits, then the directory goes.
};

std::string sanitize(std::string_view label) {
  std::string out;
  for (char c : label) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') {
      out += c;
    } else if (c >= 'A' && c <= 'Z') {
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += '_';
    }
  }
  return out;
}

}  // namespace

dev::LocalCluster& shared_cluster() {
  // Function-local static: started on first use, stopped by exit(), and a failed start is
  // retried by the next test rather than poisoning them all with one exception.
  static SharedCluster shared;
  return shared.cluster;
}

std::string fresh_database(std::string_view label) {
  static std::atomic<int> counter{0};
  std::string name = "t" + std::to_string(::getpid()) + "_" + std::to_string(++counter) + "_" + sanitize(label);
  name.resize(std::min<std::size_t>(name.size(), 63));  // PostgreSQL's identifier limit
  return shared_cluster().create_database(name);
}

}  // namespace reprise::test
