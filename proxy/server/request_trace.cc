// See request_trace.h. The application must copy the trace headers from its incoming request to
// its outgoing calls for the trace to continue (as with Envoy and Linkerd).
#include "proxy/server/request_trace.h"

#include "absl/strings/str_cat.h"
#include "proxy/server/worker.h"

namespace outrigger::proxy {

void RequestTrace::Begin(const tracing::HeaderLookup& header, Worker& worker,
                         absl::FunctionRef<bool(double)> chance) {
  caller = tracing::Extract(header);
  span_id = 0;
  sampled = false;
  lines.clear();
  if (!worker.tracing()) {
    trace_id = caller.valid() ? caller.trace_id.Hex() : std::string();
    return;
  }
  if (!caller.valid()) {
    // A new trace (a caller's lone sampling decision, e.g. "b3: 0", still counts).
    caller.trace_id = {worker.Random(), worker.Random()};
    caller.span_id = 0;
  }
  do {
    span_id = worker.Random();
  } while (span_id == 0);
  sampled = caller.sampled.has_value() ? *caller.sampled
                                       : chance(worker.telemetry().tracing_sampling);
  trace_id = caller.trace_id.Hex();
  absl::StrAppend(&lines, "traceparent: ",
                  tracing::FormatTraceparent(caller.trace_id, span_id, sampled), "\r\n");
  if (caller.b3_multi) {
    absl::StrAppend(&lines, "x-b3-traceid: ", caller.trace_id.B3Hex(),
                    "\r\nx-b3-spanid: ", tracing::SpanIdHex(span_id), "\r\n");
    if (caller.span_id != 0) {
      absl::StrAppend(&lines, "x-b3-parentspanid: ", tracing::SpanIdHex(caller.span_id), "\r\n");
    }
    absl::StrAppend(&lines, "x-b3-sampled: ", sampled ? "1" : "0", "\r\n");
  }
  if (caller.b3_single) {
    absl::StrAppend(&lines, "b3: ",
                    tracing::FormatB3(caller.trace_id, span_id, sampled, caller.span_id), "\r\n");
  }
}

tracing::Span RequestTrace::StartSpan(bool server, int64_t start_us, double duration_ms) const {
  tracing::Span span;
  span.trace_id = caller.trace_id;
  span.span_id = span_id;
  span.parent_id = caller.span_id;
  span.server = server;
  span.start_us = start_us;
  span.duration_us = static_cast<int64_t>(duration_ms * 1000);
  return span;
}

}  // namespace outrigger::proxy
