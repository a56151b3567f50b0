// NamespaceClient: registering and listing namespaces (docs/api.md, section 2).
#include <reprise/namespace_client.hpp>

#include "transport/service_connection.hpp"

namespace reprise {

NamespaceClient::NamespaceClient(std::string address)
    : connection_(std::make_shared<detail::ServiceConnection>(std::move(address))) {}

void NamespaceClient::create(std::string_view name, std::string_view description) const {
  connection_->post_unscoped("/namespaces", {{"name", name}, {"description", description}});
}

NamespaceListPage NamespaceClient::list(int page_size, std::string_view page_token) const {
  std::string query;
  if (page_size != 0) detail::append_query(query, "page_size", std::to_string(page_size));
  detail::append_query(query, "page_token", page_token);
  auto answer = connection_->get_unscoped("/namespaces" + query);
  NamespaceListPage page;
  for (const auto& ns : answer.at("namespaces"))
    page.namespaces.push_back({ns.at("name").get<std::string>(), ns.value("description", std::string())});
  page.next_page_token = detail::next_page_token(answer);
  return page;
}

}  // namespace reprise
