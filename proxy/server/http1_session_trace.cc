// Http1Session's part in distributed tracing: read the caller's trace context (W3C traceparent,
// else B3), decide whether this request is recorded, pick our span id, write the context onward
// with our span as the parent, and record the span when the request ends. The application must
// copy these headers from its incoming request to its outgoing calls for the trace to continue
// (as with Envoy and Linkerd); docs/life-of-a-request.md shows the flow.
#include "absl/strings/str_cat.h"
#include "filters/tracing/span.h"
#include "proxy/server/http1_session.h"

namespace outrigger::proxy {

void Http1Session::BeginTrace() {
  auto header = [this](absl::string_view name) { return req_.headers.Get(name); };
  trace_ = tracing::Extract(header);
  span_id_ = 0;
  sampled_ = false;
  trace_lines_.clear();
  if (!worker_.tracing()) {
    // Not taking part: the headers pass through untouched; the log still names the trace.
    trace_id_ = trace_.valid() ? trace_.trace_id.Hex() : std::string();
    return;
  }
  if (!trace_.valid()) {
    // A new trace (a caller's lone sampling decision, e.g. "b3: 0", still counts).
    trace_.trace_id = {worker_.Random(), worker_.Random()};
    trace_.span_id = 0;
  }
  do {
    span_id_ = worker_.Random();
  } while (span_id_ == 0);
  sampled_ = trace_.sampled.has_value() ? *trace_.sampled
                                        : Chance(worker_.telemetry().tracing_sampling);
  trace_id_ = trace_.trace_id.Hex();
  absl::StrAppend(&trace_lines_, "traceparent: ",
                  tracing::FormatTraceparent(trace_.trace_id, span_id_, sampled_), "\r\n");
  if (trace_.b3_multi) {
    absl::StrAppend(&trace_lines_, "x-b3-traceid: ", trace_.trace_id.B3Hex(),
                    "\r\nx-b3-spanid: ", tracing::SpanIdHex(span_id_), "\r\n");
    if (trace_.span_id != 0) {
      absl::StrAppend(&trace_lines_, "x-b3-parentspanid: ", tracing::SpanIdHex(trace_.span_id),
                      "\r\n");
    }
    absl::StrAppend(&trace_lines_, "x-b3-sampled: ", sampled_ ? "1" : "0", "\r\n");
  }
  if (trace_.b3_single) {
    absl::StrAppend(&trace_lines_, "b3: ",
                    tracing::FormatB3(trace_.trace_id, span_id_, sampled_, trace_.span_id),
                    "\r\n");
  }
}

void Http1Session::RecordSpan(double duration_ms) {
  tracing::Span span;
  span.trace_id = trace_.trace_id;
  span.span_id = span_id_;
  span.parent_id = trace_.span_id;
  span.server = inbound_;
  const absl::string_view service =
      inbound_ ? absl::string_view(worker_.service_label())
      : route_ != nullptr ? absl::string_view(route_->virtual_host)
      : !cluster_name_.empty() ? cluster_name_
                               : absl::string_view(req_.authority);
  span.name = absl::StrCat(req_.method, " ", service);
  span.start_us = absl::ToUnixMicros(start_time_);
  span.duration_us = static_cast<int64_t>(duration_ms * 1000);
  span.status = status_;
  span.method = req_.method;
  span.authority = req_.authority;
  const absl::string_view path =
      req_.path.empty() ? absl::string_view(req_.target) : absl::string_view(req_.path);
  span.path = std::string(path.substr(0, path.find('?')));
  span.upstream_cluster = std::string(cluster_name_);
  if (host_) span.upstream_host = host_->address_text;
  span.peer_address = client_ip_;
  span.request_id = request_id_;
  span.response_flags = ResponseFlagsString(flags_);
  span.peer_identity = peer_identity_;
  worker_.RecordSpan(std::move(span));
}

}  // namespace outrigger::proxy
