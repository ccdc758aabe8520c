// What a route (or listener) asks of the filters besides choosing a cluster: retries, fault
// injection, request mirroring and local rate limits. Plain immutable config, built once from
// the validated protobuf (the *FromProto functions name the offending field) and read by the
// request path.
#ifndef OUTRIGGER_FILTERS_ROUTER_ROUTE_POLICIES_H_
#define OUTRIGGER_FILTERS_ROUTER_ROUTE_POLICIES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace outrigger::v1 {
class RetryPolicy;
class FaultInjection;
class RequestMirrorPolicy;
class LocalRateLimit;
}  // namespace outrigger::v1

namespace outrigger::router {

struct RetryPolicy {
  // Retries after the first try. The default policy (no retry_policy written) retries once, on
  // connect failure only: nothing reached the upstream, so it is always safe.
  uint32_t num_retries = 1;
  bool on_5xx = false;             // any 5xx, and every failure below
  bool on_gateway_error = false;   // 502, 503, 504, and connect failure, reset, per-try timeout
  bool on_connect_failure = true;
  bool on_reset = false;           // closed or reset before the response head
  // An HTTP/2 upstream refused the stream (RST_STREAM REFUSED_STREAM, or beyond a GOAWAY's last
  // stream): it did not process the request, so this is safe like a connect failure.
  bool on_refused_stream = true;
  bool on_retriable_codes = false;
  // gRPC status codes (0-16) retried when a trailers-only answer carries them, one bit each:
  // "cancelled" 1, "deadline-exceeded" 4, "resource-exhausted" 8, "internal" 13,
  // "unavailable" 14. Retried whatever the method (gRPC calls are POSTs): listing a code says
  // the call may be repeated.
  uint32_t grpc_codes = 0;
  std::vector<uint32_t> retriable_codes;
  absl::Duration per_try_timeout = absl::ZeroDuration();  // zero: only the route timeout
  absl::Duration base_interval = absl::Milliseconds(25);
  absl::Duration max_interval = absl::Milliseconds(250);
  bool retry_non_idempotent = false;
  uint32_t max_body_bytes = 64 * 1024;
  // Written in config (not the default policy): running out of retries is then flagged URX.
  bool configured = false;

  // Whether an upstream answer with `status` may be retried under this policy.
  bool RetriableStatus(int status) const;
  // Whether a gRPC status code (from a trailers-only answer) may be retried.
  bool RetriableGrpc(int code) const { return code >= 0 && code < 32 && (grpc_codes >> code) & 1; }
};

struct FaultConfig {
  absl::Duration delay = absl::ZeroDuration();
  double delay_percent = 0;  // 0-100
  int abort_status = 0;      // 0: no abort
  double abort_percent = 0;
};

struct MirrorPolicy {
  std::string cluster;
  double percent = 100;  // 0-100
};

struct RateLimitConfig {
  uint32_t max_tokens = 0;
  uint32_t tokens_per_fill = 0;
  absl::Duration fill_interval = absl::Seconds(1);
  // Identifies the bucket: workers keep one bucket per id (routes and listeners get ids unique
  // within the process when a snapshot is built).
  uint64_t id = 0;
};

// Each returns an error starting with "`field`." or "`field`:" on invalid input.
absl::Status RetryPolicyFromProto(const v1::RetryPolicy& proto, absl::string_view field,
                                  RetryPolicy* out);
absl::Status FaultFromProto(const v1::FaultInjection& proto, absl::string_view field,
                            FaultConfig* out);
absl::Status MirrorFromProto(const v1::RequestMirrorPolicy& proto, absl::string_view field,
                             MirrorPolicy* out);
absl::Status RateLimitFromProto(const v1::LocalRateLimit& proto, absl::string_view field,
                                RateLimitConfig* out);

}  // namespace outrigger::router

#endif  // OUTRIGGER_FILTERS_ROUTER_ROUTE_POLICIES_H_
