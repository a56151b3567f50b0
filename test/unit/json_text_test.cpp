// append_json_string: what the service writes as text reads back as the same string.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "store/json_text.hpp"

using reprise::store::append_json_string;

TEST_CASE("a string written as JSON text parses back to itself", "[json]") {
  std::string every_control;
  for (char c = 1; c < 0x20; ++c) every_control += c;
  for (const std::string& text : {std::string(), std::string("plain"), std::string("say \"hi\""),
                                 std::string(R"(C:\dir\ \" \\)"), std::string("one\ntwo\tthree\r\b\f"),
                                 every_control, std::string("naïve — 東京 🚀"), std::string("\x7f"),
                                 std::string("nul\0inside", 10)}) {
    std::string out = "[";
    append_json_string(out, text);
    out += "]";
    INFO(out);
    auto parsed = nlohmann::json::parse(out);
    CHECK(parsed.at(0).get<std::string>() == text);
    CHECK(out.find('\n') == std::string::npos);  // history batches are cut at raw newlines
  }
}

TEST_CASE("a JSON string is escaped as nlohmann escapes it", "[json]") {
  for (const std::string& text : {std::string("a\"b\\c\nd"), std::string("\x01\x1f"), std::string("ünï")}) {
    std::string out;
    append_json_string(out, text);
    CHECK(out == nlohmann::json(text).dump());
  }
}
