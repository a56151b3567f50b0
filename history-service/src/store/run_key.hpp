#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace reprise::store {

/// A run's identity; every run-scoped table is keyed by it first.
struct RunKey {
  std::string ns;
  std::string workflow_id;
  std::string run_id;

  bool operator==(const RunKey&) const = default;
};

/// A task queue of one kind ("workflow" or "activity") in a namespace.
struct QueueKey {
  std::string ns;
  std::string task_queue;
  std::string kind;

  bool operator==(const QueueKey&) const = default;
};

/// The parts joined by '/': the keys of the service's maps, built on every request (plain
/// appends: a runtime fmt::format parsing its pattern each time showed in profiles).
inline std::string join_key(std::initializer_list<std::string_view> parts) {
  std::size_t size = parts.size();
  for (auto part : parts) size += part.size();
  std::string key;
  key.reserve(size);
  for (auto part = parts.begin(); part != parts.end(); ++part) {
    if (part != parts.begin()) key += '/';
    key += *part;
  }
  return key;
}

inline std::string to_string(const RunKey& k) { return join_key({k.ns, k.workflow_id, k.run_id}); }
/// The commit-group key of every transaction that changes a run of `k`'s workflow id (see
/// pg::Connection::set_group_key): a start and a completion of the id's open run may refuse
/// or fence each other, so they never share a group either.
inline std::string group_key(const RunKey& k) { return join_key({k.ns, k.workflow_id}); }
inline std::string to_string(const QueueKey& k) { return join_key({k.ns, k.kind, k.task_queue}); }

}  // namespace reprise::store
