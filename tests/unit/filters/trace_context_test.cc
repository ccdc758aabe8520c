// Trace context parsing and formatting (W3C traceparent, B3 single and multi) and the span
// encodings sent to collectors.
#include "filters/tracing/trace_context.h"

#include <catch2/catch.hpp>
#include <map>

#include "filters/tracing/span.h"

using namespace outrigger::tracing;

namespace {

HeaderLookup Headers(std::map<std::string, std::string> h) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(h));
  return [shared](absl::string_view name) -> std::optional<absl::string_view> {
    auto it = shared->find(std::string(name));
    if (it == shared->end()) return std::nullopt;
    return absl::string_view(it->second);
  };
}

}  // namespace

TEST_CASE("traceparent parses and formats (W3C Trace Context)", "[tracing]") {
  auto ctx = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  REQUIRE(ctx);
  CHECK(ctx->trace_id.Hex() == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(ctx->span_id == 0x00f067aa0ba902b7ull);
  CHECK(ctx->sampled == true);
  CHECK(FormatTraceparent(ctx->trace_id, 0xabcdef, false) ==
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000abcdef-00");
  // Invalid: all-zero ids, version ff, upper case, wrong lengths, extra fields on version 00.
  CHECK_FALSE(ParseTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  CHECK_FALSE(ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
  CHECK_FALSE(ParseTraceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(ParseTraceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"));
  CHECK_FALSE(ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"));
  CHECK_FALSE(ParseTraceparent("garbage"));
  // A future version may append fields.
  CHECK(ParseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-later"));
}

TEST_CASE("B3 headers are read when there is no traceparent", "[tracing]") {
  auto multi = Extract(Headers({{"x-b3-traceid", "463ac35c9f6413ad"},
                                {"x-b3-spanid", "a2fb4a1d1a96d312"},
                                {"x-b3-sampled", "1"}}));
  REQUIRE(multi.valid());
  CHECK(multi.trace_id.hi == 0);
  CHECK(multi.trace_id.B3Hex() == "463ac35c9f6413ad");
  CHECK(multi.span_id == 0xa2fb4a1d1a96d312ull);
  CHECK(multi.sampled == true);
  CHECK(multi.b3_multi);
  CHECK_FALSE(multi.b3_single);

  auto single = Extract(Headers(
      {{"b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0-05e3ac9a4f6e3b90"}}));
  REQUIRE(single.valid());
  CHECK(single.trace_id.Hex() == "80f198ee56343ba864fe8b2a57d3eff7");
  CHECK(single.span_id == 0xe457b5a2e4d86bd1ull);
  CHECK(single.sampled == false);
  CHECK(single.b3_single);
  CHECK(FormatB3(single.trace_id, 0x1, true, single.span_id) ==
        "80f198ee56343ba864fe8b2a57d3eff7-0000000000000001-1-e457b5a2e4d86bd1");

  // A lone sampling decision: no context, but the decision is kept.
  auto deny = Extract(Headers({{"b3", "0"}}));
  CHECK_FALSE(deny.valid());
  CHECK(deny.sampled == false);
  // traceparent wins over B3, and the B3 forms present are remembered.
  auto both = Extract(Headers({{"traceparent",
                                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
                               {"x-b3-traceid", "463ac35c9f6413ad"},
                               {"x-b3-spanid", "a2fb4a1d1a96d312"}}));
  CHECK(both.trace_id.Hex() == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(both.b3_multi);
  // Malformed B3: no context.
  CHECK_FALSE(Extract(Headers({{"x-b3-traceid", "xyz"}, {"x-b3-spanid", "1"}})).valid());
  CHECK_FALSE(Extract(Headers({})).valid());
  CHECK(IsTraceHeader("X-B3-SpanId"));
  CHECK(IsTraceHeader("traceparent"));
  CHECK_FALSE(IsTraceHeader("tracestate"));
}

TEST_CASE("spans encode as Zipkin v2 and OTLP JSON", "[tracing]") {
  Span s;
  s.trace_id = {0x4bf92f3577b34da6ull, 0xa3ce929d0e0e4736ull};
  s.span_id = 0x10;
  s.parent_id = 0x20;
  s.server = true;
  s.name = "GET catalog.default";
  s.start_us = 1700000000000000;
  s.duration_us = 1500;
  s.status = 503;
  s.method = "GET";
  s.path = "/items";
  s.request_id = "r\"1";
  const SpanSource src{"catalog", "catalog-1"};
  const std::string zipkin = EncodeSpans(Format::kZipkin, src, {s});
  CHECK(zipkin.find("\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\"") != std::string::npos);
  CHECK(zipkin.find("\"id\":\"0000000000000010\",\"parentId\":\"0000000000000020\"") !=
        std::string::npos);
  CHECK(zipkin.find("\"kind\":\"SERVER\"") != std::string::npos);
  CHECK(zipkin.find("\"timestamp\":1700000000000000,\"duration\":1500") != std::string::npos);
  CHECK(zipkin.find("\"serviceName\":\"catalog\"") != std::string::npos);
  CHECK(zipkin.find("\"guid:x-request-id\":\"r\\\"1\"") != std::string::npos);
  CHECK(zipkin.find("\"error\":\"503\"") != std::string::npos);
  CHECK(zipkin.front() == '[');
  CHECK(zipkin.back() == ']');
  const std::string otlp = EncodeSpans(Format::kOtlp, src, {s, s});
  CHECK(otlp.find("\"parentSpanId\":\"0000000000000020\"") != std::string::npos);
  CHECK(otlp.find("\"kind\":2") != std::string::npos);
  CHECK(otlp.find("\"startTimeUnixNano\":\"1700000000000000000\"") != std::string::npos);
  CHECK(otlp.find("\"endTimeUnixNano\":\"1700000000001500000\"") != std::string::npos);
  CHECK(otlp.find("{\"key\":\"service.name\",\"value\":{\"stringValue\":\"catalog\"}}") !=
        std::string::npos);
  CHECK(otlp.find("\"status\":{\"code\":2}") != std::string::npos);
}
