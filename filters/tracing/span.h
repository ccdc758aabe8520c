// A finished span as the proxy records it (one per request per proxy), and its encodings for the
// two collector protocols the exporter speaks: Zipkin v2 JSON (POST /api/v2/spans) and
// OpenTelemetry OTLP/HTTP JSON (POST /v1/traces). Pure functions, no I/O.
#ifndef OUTRIGGER_FILTERS_TRACING_SPAN_H_
#define OUTRIGGER_FILTERS_TRACING_SPAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "filters/tracing/trace_context.h"

namespace outrigger::tracing {

struct Span {
  TraceId trace_id;
  uint64_t span_id = 0;
  uint64_t parent_id = 0;  // 0: a root span
  bool server = false;     // SERVER (inbound: the mesh calls our app) or CLIENT (outbound)
  std::string name;        // "GET catalog.default"
  int64_t start_us = 0;    // Unix time, microseconds
  int64_t duration_us = 0;
  int status = 0;
  std::string method;
  std::string authority;
  std::string path;  // without the query string
  std::string upstream_cluster;
  std::string upstream_host;
  std::string peer_address;  // the downstream client
  std::string request_id;
  std::string response_flags;  // "-" or "UF,URX"
  std::string peer_identity;   // the client's SPIFFE ID (inbound mTLS)
};

// Who reports the spans (the same for every span of one proxy).
struct SpanSource {
  std::string service_name;  // the workload's service, or "outrigger-proxy"
  std::string node_id;
};

enum class Format { kZipkin, kOtlp };

// A JSON document holding `spans` in `format`.
std::string EncodeSpans(Format format, const SpanSource& source, const std::vector<Span>& spans);

}  // namespace outrigger::tracing

#endif  // OUTRIGGER_FILTERS_TRACING_SPAN_H_
