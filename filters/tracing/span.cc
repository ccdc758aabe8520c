// See span.h. Zipkin v2: https://zipkin.io/zipkin-api/ (span list). OTLP/HTTP JSON: the protobuf
// JSON mapping of ExportTraceServiceRequest, with trace and span ids as hex strings as the
// OTLP specification requires (not base64) and 64-bit integers as strings.
#include "filters/tracing/span.h"

#include "absl/strings/str_cat.h"
#include "xds/common/json.h"

namespace outrigger::tracing {
namespace {

bool IsError(const Span& s) { return s.status >= 500 || s.status == 0; }

void ZipkinSpan(const SpanSource& src, const Span& s, std::string* out) {
  absl::StrAppend(out, "{\"traceId\":\"", s.trace_id.B3Hex(), "\",\"id\":\"", SpanIdHex(s.span_id),
                  "\"");
  if (s.parent_id != 0) absl::StrAppend(out, ",\"parentId\":\"", SpanIdHex(s.parent_id), "\"");
  absl::StrAppend(out, ",\"kind\":\"", s.server ? "SERVER" : "CLIENT", "\",\"name\":");
  AppendJsonString(s.name, out);
  absl::StrAppend(out, ",\"timestamp\":", s.start_us, ",\"duration\":",
                  s.duration_us > 0 ? s.duration_us : 1, ",\"localEndpoint\":{\"serviceName\":");
  AppendJsonString(src.service_name, out);
  out->append("},\"tags\":{");
  bool first = true;
  auto tag = [&](absl::string_view key, absl::string_view value) {
    if (value.empty()) return;
    absl::StrAppend(out, first ? "" : ",", "\"", key, "\":");
    AppendJsonString(value, out);
    first = false;
  };
  tag("http.method", s.method);
  tag("http.host", s.authority);
  tag("http.path", s.path);
  tag("http.status_code", s.status ? absl::StrCat(s.status) : "");
  tag("upstream_cluster", s.upstream_cluster);
  tag("upstream_host", s.upstream_host);
  tag("peer.address", s.peer_address);
  tag("peer.identity", s.peer_identity);
  tag("guid:x-request-id", s.request_id);
  tag("response_flags", s.response_flags);
  tag("node_id", src.node_id);
  tag("component", "proxy");
  if (IsError(s)) tag("error", s.status ? absl::StrCat(s.status) : "no response");
  out->append("}}");
}

void OtlpAttribute(absl::string_view key, absl::string_view value, bool* first,
                   std::string* out) {
  if (value.empty()) return;
  absl::StrAppend(out, *first ? "" : ",", "{\"key\":\"", key, "\",\"value\":{\"stringValue\":");
  AppendJsonString(value, out);
  out->append("}}");
  *first = false;
}

void OtlpSpan(const Span& s, std::string* out) {
  absl::StrAppend(out, "{\"traceId\":\"", s.trace_id.Hex(), "\",\"spanId\":\"",
                  SpanIdHex(s.span_id), "\"");
  if (s.parent_id != 0) {
    absl::StrAppend(out, ",\"parentSpanId\":\"", SpanIdHex(s.parent_id), "\"");
  }
  out->append(",\"name\":");
  AppendJsonString(s.name, out);
  // SPAN_KIND_SERVER = 2, SPAN_KIND_CLIENT = 3.
  absl::StrAppend(out, ",\"kind\":", s.server ? 2 : 3, ",\"startTimeUnixNano\":\"",
                  s.start_us * 1000, "\",\"endTimeUnixNano\":\"",
                  (s.start_us + s.duration_us) * 1000, "\",\"attributes\":[");
  bool first = true;
  OtlpAttribute("http.request.method", s.method, &first, out);
  OtlpAttribute("server.address", s.authority, &first, out);
  OtlpAttribute("url.path", s.path, &first, out);
  if (s.status != 0) {
    absl::StrAppend(out, first ? "" : ",",
                    "{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"", s.status,
                    "\"}}");
    first = false;
  }
  OtlpAttribute("outrigger.upstream_cluster", s.upstream_cluster, &first, out);
  OtlpAttribute("outrigger.upstream_host", s.upstream_host, &first, out);
  OtlpAttribute("client.address", s.peer_address, &first, out);
  OtlpAttribute("outrigger.peer_identity", s.peer_identity, &first, out);
  OtlpAttribute("outrigger.request_id", s.request_id, &first, out);
  OtlpAttribute("outrigger.response_flags", s.response_flags, &first, out);
  // STATUS_CODE_ERROR = 2, STATUS_CODE_UNSET = 0.
  absl::StrAppend(out, "],\"status\":{\"code\":", IsError(s) ? 2 : 0, "}}");
}

}  // namespace

std::string EncodeSpans(Format format, const SpanSource& source, const std::vector<Span>& spans) {
  std::string out;
  out.reserve(spans.size() * 600 + 256);
  if (format == Format::kZipkin) {
    out.push_back('[');
    for (size_t i = 0; i < spans.size(); ++i) {
      if (i > 0) out.push_back(',');
      ZipkinSpan(source, spans[i], &out);
    }
    out.push_back(']');
    return out;
  }
  out.append("{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
  bool first = true;
  OtlpAttribute("service.name", source.service_name, &first, &out);
  OtlpAttribute("service.instance.id", source.node_id, &first, &out);
  out.append("]},\"scopeSpans\":[{\"scope\":{\"name\":\"outrigger-proxy\"},\"spans\":[");
  for (size_t i = 0; i < spans.size(); ++i) {
    if (i > 0) out.push_back(',');
    OtlpSpan(spans[i], &out);
  }
  out.append("]}]}]}");
  return out;
}

}  // namespace outrigger::tracing
