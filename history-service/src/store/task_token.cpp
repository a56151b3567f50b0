#include "store/task_token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include <memory>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <reprise/protocol/api_error.hpp>
#include <reprise/protocol/json_dump.hpp>
#include <reprise/protocol/json_parse.hpp>

namespace reprise::store {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(std::string_view in) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

bool unbase64url(std::string_view in, std::string& out) {
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    auto pos = kAlphabet.find(c);
    if (pos == std::string_view::npos) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return true;
}

const char* kind_letter(TaskToken::Kind k) {
  return k == TaskToken::Kind::kWorkflow ? "w" : k == TaskToken::Kind::kActivity ? "a" : "q";
}
const char* kind_name(TaskToken::Kind k) {
  return k == TaskToken::Kind::kWorkflow   ? "a workflow task"
         : k == TaskToken::Kind::kActivity ? "an activity task"
                                           : "a query task";
}

protocol::ApiError invalid(std::string_view why) {
  return protocol::ApiError(protocol::ErrorCode::kInvalidTaskToken,
                            std::string("task_token is not valid: ") + std::string(why) +
                                "; pass the token exactly as the poll returned it");
}

}  // namespace

struct TaskTokenSigner::Keyed {
  EVP_MAC_CTX* context = nullptr;
  ~Keyed() { EVP_MAC_CTX_free(context); }
};

TaskTokenSigner::TaskTokenSigner(std::string_view secret) {
  auto keyed = std::make_shared<Keyed>();
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (hmac) keyed->context = EVP_MAC_CTX_new(hmac);
  EVP_MAC_free(hmac);  // the context holds its own reference
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  if (!keyed->context || !EVP_MAC_init(keyed->context, reinterpret_cast<const unsigned char*>(secret.data()),
                                       secret.size(), params))
    throw std::runtime_error("cannot set up HMAC-SHA256 for task tokens: OpenSSL has no HMAC or SHA256 provider");
  keyed_ = std::move(keyed);
}

std::string TaskTokenSigner::mac(std::string_view payload) const {
  std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> c(EVP_MAC_CTX_dup(keyed_->context), &EVP_MAC_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  std::size_t length = 0;
  if (!c || !EVP_MAC_update(c.get(), reinterpret_cast<const unsigned char*>(payload.data()), payload.size()) ||
      !EVP_MAC_final(c.get(), digest, &length, sizeof digest))
    throw std::runtime_error("HMAC-SHA256 of a task token failed (OpenSSL)");
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string TaskTokenSigner::sign(const TaskToken& t) const {
  nlohmann::json j = {{"k", kind_letter(t.kind)},
                      {"n", t.run.ns},
                      {"w", t.run.workflow_id},
                      {"r", t.run.run_id},
                      {"s", t.scheduled_event_id},
                      {"t", t.started_event_id},
                      {"a", t.attempt}};
  if (!t.query_id.empty()) j["q"] = t.query_id;
  std::string payload = base64url(protocol::dump_json(j));
  return payload + "." + base64url(mac(payload));
}

TaskToken TaskTokenSigner::verify(std::string_view token, TaskToken::Kind expected) const {
  auto dot = token.find('.');
  if (dot == std::string_view::npos) throw invalid("it has no signature");
  auto payload = token.substr(0, dot);
  std::string given_mac, expected_mac = mac(payload);
  if (!unbase64url(token.substr(dot + 1), given_mac) || given_mac.size() != expected_mac.size() ||
      CRYPTO_memcmp(given_mac.data(), expected_mac.data(), given_mac.size()) != 0)
    throw invalid("its signature does not match (forged, altered, or issued by another cluster)");
  std::string text;
  if (!unbase64url(payload, text)) throw invalid("it is not base64url");
  try {
    auto j = protocol::parse_json(text);
    TaskToken t;
    auto letter = j.at("k").get<std::string>();
    t.kind = letter == "w" ? TaskToken::Kind::kWorkflow
             : letter == "a" ? TaskToken::Kind::kActivity
                             : TaskToken::Kind::kQuery;
    t.query_id = j.value("q", "");
    t.run = {j.at("n"), j.at("w"), j.at("r")};
    t.scheduled_event_id = j.at("s");
    t.started_event_id = j.at("t");
    t.attempt = j.at("a");
    if (t.kind != expected)
      throw invalid(fmt::format("it is {} token, and this call takes {} token", kind_name(t.kind),
                                kind_name(expected)));
    return t;
  } catch (const nlohmann::json::exception&) {
    throw invalid("its payload is malformed");
  }
}

}  // namespace reprise::store
