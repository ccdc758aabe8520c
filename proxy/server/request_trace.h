// One request's part in distributed tracing, whatever protocol carried it: read the caller's
// trace context (W3C traceparent, else B3), decide whether the request is recorded, pick our span
// id, prepare the header lines that carry the context onward with our span as the parent, and
// build the span when the request ends. Used by Http1Session and H2Session.
#ifndef OUTRIGGER_PROXY_SERVER_REQUEST_TRACE_H_
#define OUTRIGGER_PROXY_SERVER_REQUEST_TRACE_H_

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "filters/tracing/span.h"
#include "filters/tracing/trace_context.h"

namespace outrigger::proxy {

class Worker;

struct RequestTrace {
  tracing::TraceContext caller;  // the caller's context (span_id: the parent of ours)
  uint64_t span_id = 0;          // ours; 0 when not taking part
  bool sampled = false;          // record a span
  std::string lines;             // "traceparent: ...\r\n" (and B3) to send on; "" when not
  std::string trace_id;          // 32 hex digits for the access log, "" without a trace

  // Without tracing on the worker only the trace id is noted (headers pass through untouched).
  void Begin(const tracing::HeaderLookup& header, Worker& worker,
             absl::FunctionRef<bool(double)> chance);
  // A span with ids, kind and timing filled in; the caller adds the request's details.
  tracing::Span StartSpan(bool server, int64_t start_us, double duration_ms) const;
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_REQUEST_TRACE_H_
