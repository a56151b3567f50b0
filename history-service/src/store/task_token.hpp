#pragma once
/// Task tokens name one attempt of one task and cannot be forged: the service signs them with
/// HMAC-SHA256 under a secret kept in PostgreSQL (shared by every instance). A token that
/// fails the check is rejected as InvalidTaskToken; a genuine token for an attempt that is no
/// longer current is rejected as StaleTaskToken by the store.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "store/run_key.hpp"

namespace reprise::store {

struct TaskToken {
  enum class Kind { kWorkflow, kActivity, kQuery };
  Kind kind = Kind::kWorkflow;
  RunKey run;
  std::int64_t scheduled_event_id = 0;
  std::int64_t started_event_id = 0;  // workflow tasks only
  std::int32_t attempt = 0;
  std::string query_id;  // query tasks only
};

class TaskTokenSigner {
 public:
  /// Throws std::runtime_error if OpenSSL cannot provide HMAC-SHA256.
  explicit TaskTokenSigner(std::string_view secret);
  std::string sign(const TaskToken& token) const;
  /// Throws protocol::ApiError(kInvalidTaskToken) when the token is mangled or not ours.
  TaskToken verify(std::string_view token, TaskToken::Kind expected) const;

 private:
  std::string mac(std::string_view payload) const;
  /// SHA-256 and the key's two padded blocks, set up once and only read (safe across threads).
  /// OpenSSL's one-shot HMAC() looked the algorithm up and hashed the key again on every call
  /// (4% of the server's CPU in the benchmark); copying a keyed EVP_MAC context per MAC was
  /// still 2.5%.
  struct Keyed;
  std::shared_ptr<const Keyed> keyed_;
};

}  // namespace reprise::store
