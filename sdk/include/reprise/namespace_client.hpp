#pragma once
/// The server's registry of namespaces (docs/api.md, section 2). Every Client and Worker acts
/// in one namespace, which must be registered first; "default" always is.
///
///     reprise::NamespaceClient namespaces("127.0.0.1:7233");
///     namespaces.create("orders", "order processing");
///     reprise::Client client("127.0.0.1:7233", "orders");

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace reprise {

namespace detail {
class ServiceConnection;
}

/// A namespace as registered.
struct NamespaceInfo {
  std::string name;
  std::string description;
};

/// One page of NamespaceClient::list, ordered by name.
struct NamespaceListPage {
  std::vector<NamespaceInfo> namespaces;
  /// Pass back as list()'s `page_token`; empty on the last page.
  std::string next_page_token;
};

class NamespaceClient {
 public:
  /// A client of the server at `address` ("host:port"). Connects lazily: constructing one makes
  /// no call.
  explicit NamespaceClient(std::string address = "127.0.0.1:7233");

  /// Registers namespace `name`. Throws ServiceError "AlreadyExists" when it is registered
  /// already, and "InvalidArgument" naming what is wrong with the name (empty, over 1,000
  /// bytes, or holding a control character). Not retried when the server is unreachable: a
  /// retry of a registration that did arrive would answer "AlreadyExists".
  void create(std::string_view name, std::string_view description = {}) const;

  /// One page of namespaces by name: at most `page_size` (1-1000; 0 for the server's default,
  /// 100), starting after the page whose next_page_token is `page_token` (empty: the first).
  NamespaceListPage list(int page_size = 0, std::string_view page_token = {}) const;

 private:
  std::shared_ptr<detail::ServiceConnection> connection_;
};

}  // namespace reprise
