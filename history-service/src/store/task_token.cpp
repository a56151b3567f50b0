#include "store/task_token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <reprise/protocol/api_error.hpp>
#include <reprise/protocol/json_dump.hpp>
#include <reprise/protocol/json_parse.hpp>

namespace reprise::store {
namespace {

/// SHA-256's block size: HMAC pads its key to it.
constexpr std::size_t kBlock = 64;

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding, three bytes to four letters at a time.
std::string base64url(std::string_view in) {
  std::string out((in.size() * 4 + 2) / 3, '\0');
  const auto* from = reinterpret_cast<const unsigned char*>(in.data());
  char* to = out.data();
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3, to += 4) {
    const std::uint32_t v = (from[i] << 16) | (from[i + 1] << 8) | from[i + 2];
    to[0] = kAlphabet[v >> 18];
    to[1] = kAlphabet[(v >> 12) & 63];
    to[2] = kAlphabet[(v >> 6) & 63];
    to[3] = kAlphabet[v & 63];
  }
  if (const auto rest = in.size() - i; rest > 0) {  // one or two bytes: two or three letters
    const std::uint32_t v = (from[i] << 16) | (rest == 2 ? from[i + 1] << 8 : 0);
    to[0] = kAlphabet[v >> 18];
    to[1] = kAlphabet[(v >> 12) & 63];
    if (rest == 2) to[2] = kAlphabet[(v >> 6) & 63];
  }
  return out;
}

/// Each byte's place in kAlphabet, or -1.
constexpr std::array<std::int8_t, 256> kPlaces = [] {
  std::array<std::int8_t, 256> places{};
  places.fill(-1);
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) places[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return places;
}();

/// Appends the bytes of base64url text (no padding) to `out`; false if a letter is not base64url.
bool unbase64url(std::string_view in, std::string& out) {
  const std::size_t start = out.size();
  out.resize(start + in.size() * 3 / 4);
  char* to = out.data() + start;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const auto place = kPlaces[static_cast<unsigned char>(c)];
    if (place < 0) {
      out.resize(start);
      return false;
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(place);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *to++ = static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  out.resize(static_cast<std::size_t>(to - out.data()));
  return true;
}

std::string_view kind_letter(TaskToken::Kind k) {
  return k == TaskToken::Kind::kWorkflow ? "w" : k == TaskToken::Kind::kActivity ? "a" : "q";
}
/// The kind a payload's "k" names; nullopt for a letter no version writes.
std::optional<TaskToken::Kind> kind_of(std::string_view letter) {
  if (letter == "w") return TaskToken::Kind::kWorkflow;
  if (letter == "a") return TaskToken::Kind::kActivity;
  if (letter == "q") return TaskToken::Kind::kQuery;
  return std::nullopt;
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

TaskToken checked_kind(TaskToken t, TaskToken::Kind expected) {
  if (t.kind != expected)
    throw invalid(fmt::format("it is {} token, and this call takes {} token", kind_name(t.kind), kind_name(expected)));
  return t;
}

bool is_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

/// The payload: the JSON text dump() writes for {"a","k","n","q","r","s","t","w"} (keys sorted,
/// "q" for query tasks only). Instances of different versions share a cluster during an
/// upgrade, so every version signs this same text. Written directly: building the document to
/// dump it was most of a token's cost. A name beyond ASCII is written by nlohmann (through
/// append_json), which checks that it is UTF-8 and throws as dump() did.
std::string token_json(const TaskToken& t) {
  std::string out;
  out.reserve(96 + t.run.workflow_id.size() + t.query_id.size());
  auto field = [&](std::string_view key, auto value) {
    out += out.empty() ? "{\"" : ",\"";
    out += key;
    out += "\":";
    if constexpr (std::is_arithmetic_v<decltype(value)>) {
      char digits[24];
      out.append(digits, std::to_chars(digits, digits + sizeof digits, value).ptr);
    } else if (is_ascii(value)) {
      protocol::append_json_string(out, value);
    } else {
      protocol::append_json(out, nlohmann::json(value));
    }
  };
  field("a", t.attempt);
  field("k", kind_letter(t.kind));
  field("n", std::string_view(t.run.ns));
  if (!t.query_id.empty()) field("q", std::string_view(t.query_id));
  field("r", std::string_view(t.run.run_id));
  field("s", t.scheduled_event_id);
  field("t", t.started_event_id);
  field("w", std::string_view(t.run.workflow_id));
  out += '}';
  return out;
}

/// Reads a payload token_json wrote with nothing to escape and nothing beyond ASCII (the common
/// case) without building a document. Anything else (an escape, a control character, a byte
/// beyond ASCII, a leading zero, another layout) is nullopt, and the general parser reads it:
/// what this accepts is a subset of what that accepts. The signature was checked first.
std::optional<TaskToken> read_token_json(std::string_view text) {
  std::size_t at = 0;
  auto take = [&](std::string_view expected) {
    if (text.substr(at, expected.size()) != expected) return false;
    at += expected.size();
    return true;
  };
  auto string = [&](std::string& out) {
    if (!take("\"")) return false;
    auto end = at;
    while (end < text.size() && text[end] != '"') {
      const auto c = static_cast<unsigned char>(text[end]);
      if (c < 0x20 || c >= 0x80 || c == '\\') return false;  // for the general parser
      ++end;
    }
    if (end == text.size()) return false;
    out.assign(text.substr(at, end - at));
    at = end + 1;
    return true;
  };
  auto number = [&](auto& out) {
    const auto first = at < text.size() && text[at] == '-' ? at + 1 : at;
    const auto digit = [&](std::size_t i) { return i < text.size() && text[i] >= '0' && text[i] <= '9'; };
    if (digit(first) && text[first] == '0' && digit(first + 1)) return false;  // a leading zero: not JSON
    const auto [end, error] = std::from_chars(text.data() + at, text.data() + text.size(), out);
    if (error != std::errc()) return false;
    at = static_cast<std::size_t>(end - text.data());
    return true;
  };
  TaskToken t;
  std::string letter;
  if (!take("{\"a\":") || !number(t.attempt) || !take(",\"k\":") || !string(letter) || !take(",\"n\":") ||
      !string(t.run.ns))
    return std::nullopt;
  if (take(",\"q\":") && !string(t.query_id)) return std::nullopt;
  if (!take(",\"r\":") || !string(t.run.run_id) || !take(",\"s\":") || !number(t.scheduled_event_id) ||
      !take(",\"t\":") || !number(t.started_event_id) || !take(",\"w\":") || !string(t.run.workflow_id) ||
      !take("}") || at != text.size())
    return std::nullopt;
  const auto kind = kind_of(letter);
  if (!kind) return std::nullopt;
  t.kind = *kind;
  return t;
}

}  // namespace

struct TaskTokenSigner::Keyed {
  EVP_MD* sha256 = nullptr;
  // The key, padded to SHA-256's block, XOR 0x36 and XOR 0x5c (RFC 2104).
  std::array<unsigned char, kBlock> inner_pad{}, outer_pad{};
  ~Keyed() {
    EVP_MD_free(sha256);
    OPENSSL_cleanse(inner_pad.data(), inner_pad.size());
    OPENSSL_cleanse(outer_pad.data(), outer_pad.size());
  }
};

TaskTokenSigner::TaskTokenSigner(std::string_view secret) {
  auto keyed = std::make_shared<Keyed>();
  keyed->sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (!keyed->sha256)
    throw std::runtime_error("cannot set up HMAC-SHA256 for task tokens: OpenSSL has no SHA256 provider");
  std::array<unsigned char, kBlock> key{};
  unsigned int length = 0;
  if (secret.size() <= kBlock) {
    std::copy(secret.begin(), secret.end(), key.begin());
  } else if (EVP_Digest(secret.data(), secret.size(), key.data(), &length, keyed->sha256, nullptr) != 1) {
    OPENSSL_cleanse(key.data(), key.size());  // a key longer than a block is hashed first
    throw std::runtime_error("cannot hash the task token secret (OpenSSL)");
  }
  for (std::size_t i = 0; i < kBlock; ++i) {
    keyed->inner_pad[i] = key[i] ^ 0x36;
    keyed->outer_pad[i] = key[i] ^ 0x5c;
  }
  OPENSSL_cleanse(key.data(), key.size());
  keyed_ = std::move(keyed);
}

std::string TaskTokenSigner::mac(std::string_view payload) const {
  // HMAC-SHA256 from two digests on this thread's context, which is reset, not reallocated,
  // for the next: EVP_MAC copied OpenSSL's keyed state for each MAC (a dozen allocations),
  // which cost more than the hashing.
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                                    &EVP_MD_CTX_free);
  auto* c = context.get();
  unsigned char inner[EVP_MAX_MD_SIZE], outer[EVP_MAX_MD_SIZE];
  unsigned int inner_length = 0, outer_length = 0;
  const bool ok = c && EVP_DigestInit_ex(c, keyed_->sha256, nullptr) == 1 &&
                  EVP_DigestUpdate(c, keyed_->inner_pad.data(), kBlock) == 1 &&
                  EVP_DigestUpdate(c, payload.data(), payload.size()) == 1 &&
                  EVP_DigestFinal_ex(c, inner, &inner_length) == 1 &&
                  EVP_DigestInit_ex(c, keyed_->sha256, nullptr) == 1 &&
                  EVP_DigestUpdate(c, keyed_->outer_pad.data(), kBlock) == 1 &&
                  EVP_DigestUpdate(c, inner, inner_length) == 1 && EVP_DigestFinal_ex(c, outer, &outer_length) == 1;
  if (!ok) throw std::runtime_error("HMAC-SHA256 of a task token failed (OpenSSL)");
  return std::string(reinterpret_cast<const char*>(outer), outer_length);
}

std::string TaskTokenSigner::sign(const TaskToken& t) const {
  std::string payload = base64url(token_json(t));
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
  if (auto t = read_token_json(text)) return checked_kind(*t, expected);
  try {
    auto j = protocol::parse_json(text);
    TaskToken t;
    t.kind = kind_of(j.at("k").get<std::string>()).value_or(TaskToken::Kind::kQuery);
    t.query_id = j.value("q", "");
    t.run = {j.at("n"), j.at("w"), j.at("r")};
    t.scheduled_event_id = j.at("s");
    t.started_event_id = j.at("t");
    t.attempt = j.at("a");
    return checked_kind(t, expected);
  } catch (const nlohmann::json::exception&) {
    throw invalid("its payload is malformed");
  }
}

}  // namespace reprise::store
