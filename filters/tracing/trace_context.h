// Trace context on the wire: W3C Trace Context (`traceparent`) and Zipkin's B3 (the multi-header
// `x-b3-*` form and the single `b3` header). The proxy reads the caller's context, starts a span
// of its own as the caller's child (or starts a new trace), and writes the context onward with its
// own span as the parent. Pure functions, no I/O.
#ifndef OUTRIGGER_FILTERS_TRACING_TRACE_CONTEXT_H_
#define OUTRIGGER_FILTERS_TRACING_TRACE_CONTEXT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace outrigger::tracing {

struct TraceId {
  uint64_t hi = 0;  // 0 for a 64-bit B3 trace id
  uint64_t lo = 0;
  bool valid() const { return hi != 0 || lo != 0; }
  std::string Hex() const;    // 32 lowercase hex digits
  std::string B3Hex() const;  // 16 digits for a 64-bit id (hi == 0), else 32
  friend bool operator==(const TraceId&, const TraceId&) = default;
};

struct TraceContext {
  TraceId trace_id;
  uint64_t span_id = 0;          // the caller's span: the parent of ours
  std::optional<bool> sampled;   // unset: the caller left the decision to us
  bool b3_multi = false;         // the request carried x-b3-* headers: update them too
  bool b3_single = false;        // the request carried a `b3` header: update it too
  bool valid() const { return trace_id.valid() && span_id != 0; }
};

using HeaderLookup = std::function<std::optional<absl::string_view>(absl::string_view)>;

// "00-<32 hex trace id>-<16 hex span id>-<2 hex flags>". Future versions (not 00, not ff) are
// read by their first four fields, as the spec asks. Nullopt when malformed or all-zero.
std::optional<TraceContext> ParseTraceparent(absl::string_view value);
// "<trace id>-<span id>[-<sampling>[-<parent span id>]]" (trace id 16 or 32 hex digits), or a
// lone sampling state "0" / "1" / "d" (which yields no context).
std::optional<TraceContext> ParseB3Single(absl::string_view value);

// The caller's context: `traceparent` first, else `b3`, else `x-b3-traceid`/`x-b3-spanid`
// (with `x-b3-sampled` / `x-b3-flags`). The returned context's b3 flags record which B3 forms
// the request carried, even when traceparent won. An invalid context has trace_id unset.
TraceContext Extract(const HeaderLookup& header);

std::string FormatTraceparent(const TraceId& trace, uint64_t span_id, bool sampled);
// The single-header B3 form for our span.
std::string FormatB3(const TraceId& trace, uint64_t span_id, bool sampled, uint64_t parent_id);
// 16 lowercase hex digits.
std::string SpanIdHex(uint64_t id);

// Request headers the proxy rewrites when it takes part in a trace (it writes its own values).
bool IsTraceHeader(absl::string_view lowercase_or_any_case_name);

}  // namespace outrigger::tracing

#endif  // OUTRIGGER_FILTERS_TRACING_TRACE_CONTEXT_H_
