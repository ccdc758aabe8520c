// Per-worker stats: merging across workers and the Prometheus text rendering.
#include "proxy/server/stats.h"

#include <catch2/catch.hpp>

using namespace outrigger::proxy;

TEST_CASE("response flags render like Envoy's", "[stats]") {
  CHECK(ResponseFlagsString(0) == "-");
  CHECK(ResponseFlagsString(kNoRoute) == "NR");
  CHECK(ResponseFlagsString(kUpstreamConnectFailure | kUpstreamTermination) == "UF,UC");
}

TEST_CASE("worker stats merge and render as Prometheus text", "[stats]") {
  WorkerStats a, b;
  a.listeners["inbound"].direction = "inbound";
  a.listeners["inbound"].requests[(200u << 16)] = 3;
  b.listeners["inbound"].requests[(200u << 16)] = 2;
  b.listeners["inbound"].requests[(503u << 16) | kUpstreamConnectFailure] = 1;
  a.listeners["inbound"].duration.Record(0.7);
  b.listeners["inbound"].duration.Record(30);
  b.clusters["local_app"].cx_total = 4;
  a.Merge(b);
  std::string text = a.RenderPrometheus();
  CHECK(text.find("outrigger_requests_total{listener=\"inbound\",direction=\"inbound\","
                  "response_code=\"200\",response_flags=\"-\"} 5\n") != std::string::npos);
  CHECK(text.find("response_code=\"503\",response_flags=\"UF\"} 1\n") != std::string::npos);
  CHECK(text.find("outrigger_request_duration_ms_bucket{listener=\"inbound\",direction="
                  "\"inbound\",le=\"1\"} 1\n") != std::string::npos);
  CHECK(text.find("le=\"+Inf\"} 2\n") != std::string::npos);
  CHECK(text.find("outrigger_request_duration_ms_count{listener=\"inbound\",direction="
                  "\"inbound\"} 2\n") != std::string::npos);
  CHECK(text.find("outrigger_upstream_cx_total{cluster=\"local_app\"} 4\n") != std::string::npos);
  CHECK(text.find("# TYPE outrigger_requests_total counter\n") != std::string::npos);
}
