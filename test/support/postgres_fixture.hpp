#pragma once

#include <string>
#include <string_view>

namespace reprise::dev {
class LocalCluster;
}

namespace reprise::test {

/// The PostgreSQL cluster shared by every test of this executable: started on first use in a
/// temporary directory (with fsync off: test data need not survive an OS crash) and stopped
/// when the executable exits. If the executable dies without running its static destructors
/// (a crash, SIGKILL), a small watcher process stops the server and removes the directory.
dev::LocalCluster& shared_cluster();

/// Creates a database with a new, unique name on shared_cluster() and returns its connection
/// string, so that each test starts from an empty database. `label` (letters, digits, '_')
/// goes into the name to tell databases apart when debugging.
///
///     auto conninfo = fresh_database("start_workflow");
///     // "host=127.0.0.1 port=40123 user=reprise dbname=t4711_3_start_workflow"
std::string fresh_database(std::string_view label = "test");

}  // namespace reprise::test
