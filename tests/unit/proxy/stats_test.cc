// Per-worker stats: Istio-style request series, merging across workers, the Prometheus text
// rendering and the bound on the number of series.
#include "proxy/server/stats.h"

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "proxy/server/telemetry.h"

using namespace outrigger::proxy;

namespace {

ListenerStats::LabelView Labels(absl::string_view sw, absl::string_view dv, uint16_t code,
                                uint16_t flags = 0) {
  ListenerStats::LabelView l;
  l.source_workload = sw;
  l.source_version = "v1";
  l.destination_service = "catalog.default";
  l.destination_version = dv;
  l.response_code = code;
  l.response_flags = flags;
  l.mutual_tls = true;
  return l;
}

}  // namespace

TEST_CASE("response flags render like Envoy's", "[stats]") {
  CHECK(ResponseFlagsString(0) == "-");
  CHECK(ResponseFlagsString(kNoRoute) == "NR");
  CHECK(ResponseFlagsString(kUpstreamConnectFailure | kUpstreamTermination) == "UF,UC");
}

TEST_CASE("worker stats merge and render as Prometheus text with Istio's labels", "[stats]") {
  WorkerStats a, b;
  std::string key;
  a.listeners["outbound"].reporter = "source";
  for (int i = 0; i < 3; ++i) {
    a.listeners["outbound"].RecordRequest(Labels("frontend", "v2", 200), 0.7, 10, 2000, &key);
  }
  b.listeners["outbound"].RecordRequest(Labels("frontend", "v2", 200), 30, 0, 5, &key);
  b.listeners["outbound"].RecordRequest(Labels("frontend", "v1", 503, kUpstreamConnectFailure),
                                        1.5, 0, 90, &key);
  b.clusters["local_app"].cx_total = 4;
  a.Merge(b);
  const std::string text = a.RenderPrometheus();
  const std::string v2 =
      "listener=\"outbound\",reporter=\"source\",source_workload=\"frontend\",source_version="
      "\"v1\",destination_service=\"catalog.default\",destination_version=\"v2\",response_code="
      "\"200\",response_flags=\"-\",connection_security_policy=\"mutual_tls\","
      "grpc_response_status=\"\"";
  CHECK(text.find(absl::StrCat("outrigger_requests_total{", v2, "} 4\n")) != std::string::npos);
  CHECK(text.find("destination_version=\"v1\",response_code=\"503\",response_flags=\"UF\","
                  "connection_security_policy=\"mutual_tls\",grpc_response_status=\"\"} 1\n") !=
        std::string::npos);
  CHECK(text.find(absl::StrCat("outrigger_request_duration_milliseconds_bucket{", v2,
                               ",le=\"1\"} 3\n")) != std::string::npos);
  CHECK(text.find(absl::StrCat("outrigger_request_duration_milliseconds_bucket{", v2,
                               ",le=\"+Inf\"} 4\n")) != std::string::npos);
  CHECK(text.find(absl::StrCat("outrigger_request_duration_milliseconds_count{", v2, "} 4\n")) !=
        std::string::npos);
  // 3 x 2000 bytes and 1 x 5 bytes: 1 in le=10, all 4 in le=10000.
  CHECK(text.find(absl::StrCat("outrigger_response_bytes_bucket{", v2, ",le=\"10\"} 1\n")) !=
        std::string::npos);
  CHECK(text.find(absl::StrCat("outrigger_response_bytes_bucket{", v2, ",le=\"10000\"} 4\n")) !=
        std::string::npos);
  CHECK(text.find(absl::StrCat("outrigger_request_bytes_sum{", v2, "} 30.000\n")) !=
        std::string::npos);
  CHECK(text.find("outrigger_upstream_cx_total{cluster=\"local_app\"} 4\n") != std::string::npos);
  CHECK(text.find("# TYPE outrigger_requests_total counter\n") != std::string::npos);
  CHECK(text.find("# TYPE outrigger_request_duration_milliseconds histogram\n") !=
        std::string::npos);
}

TEST_CASE("the number of series per listener is bounded", "[stats]") {
  ListenerStats s;
  s.reporter = "destination";
  std::string key;
  const size_t n = ListenerStats::kMaxSeries + 500;
  for (size_t i = 0; i < n; ++i) {
    const std::string caller = absl::StrCat("caller-", i);
    s.RecordRequest(Labels(caller, "v1", 200), 1, 0, 0, &key);
  }
  CHECK(s.series.size() == ListenerStats::kMaxSeries + 1);  // + the overflow series
  CHECK(s.series_overflow == 500);
  uint64_t total = 0;
  for (const auto& [k, v] : s.series) total += v.requests;
  CHECK(total == n);  // nothing lost, only folded
}

TEST_CASE("raw TCP relays are counted with Istio's labels, merged and bounded", "[stats]") {
  WorkerStats a, b;
  std::string key;
  a.listeners["inbound"].reporter = "destination";
  for (WorkerStats* w : {&a, &b}) {
    TcpSeries& t = w->listeners["inbound"].TcpSeriesFor(Labels("frontend", "v1", 0), &key);
    ++t.relays;
    t.received_bytes += 100;
    t.sent_bytes += 7;
  }
  // The same labels give the same series (its address is kept by the session meanwhile).
  CHECK(&a.listeners["inbound"].TcpSeriesFor(Labels("frontend", "v1", 0), &key) ==
        &a.listeners["inbound"].tcp_series.begin()->second);
  a.Merge(b);
  const std::string text = a.RenderPrometheus();
  const std::string labels =
      "listener=\"inbound\",reporter=\"destination\",source_workload=\"frontend\","
      "source_version=\"v1\",destination_service=\"catalog.default\",destination_version=\"v1\","
      "response_flags=\"-\",connection_security_policy=\"mutual_tls\"";
  CHECK(text.find(absl::StrCat("outrigger_tcp_relays_total{", labels, "} 2\n")) !=
        std::string::npos);
  CHECK(text.find(absl::StrCat("outrigger_tcp_received_bytes_total{", labels, "} 200\n")) !=
        std::string::npos);
  CHECK(text.find(absl::StrCat("outrigger_tcp_sent_bytes_total{", labels, "} 14\n")) !=
        std::string::npos);

  ListenerStats s;
  for (size_t i = 0; i < ListenerStats::kMaxSeries + 10; ++i) {
    ++s.TcpSeriesFor(Labels(absl::StrCat("caller-", i), "v1", 0), &key).relays;
  }
  CHECK(s.tcp_series.size() == ListenerStats::kMaxSeries + 1);
  CHECK(s.series_overflow == 10);
}

TEST_CASE("label values from peers are sanitized", "[stats]") {
  CHECK(SanitizeLabel("catalog-v2") == "catalog-v2");
  CHECK(SanitizeLabel("v1.2_3") == "v1.2_3");
  CHECK(SanitizeLabel("") == "unknown");
  CHECK(SanitizeLabel("a\"b") == "unknown");
  CHECK(SanitizeLabel("a b") == "unknown");
  CHECK(SanitizeLabel(std::string(64, 'x')) == "unknown");
}
