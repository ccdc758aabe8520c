// HTTPRoute rule retries (see http_route_parts.h): the Gateway API's `retry` (GEP-1731: codes,
// attempts, backoff) with our additions in the same object (maxBackoff, retryOn,
// retryNonIdempotent, maxRetryBodyBytes). What is not written stays unset, for the proxies'
// defaults; the view builder decides the conditions retried when retryOn is not written.
#include <algorithm>
#include <iterator>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/policy/duration.h"
#include "controlplane/policy/kinds/http_route_parts.h"

namespace outrigger::policy {
namespace {

// HTTP conditions, then the gRPC codes of a trailers-only answer (Envoy's and Istio's names).
constexpr absl::string_view kRetryOn[] = {"5xx",
                                          "gateway-error",
                                          "connect-failure",
                                          "reset",
                                          "refused-stream",
                                          "retriable-status-codes",
                                          "cancelled",
                                          "deadline-exceeded",
                                          "internal",
                                          "resource-exhausted",
                                          "unavailable"};
constexpr int64_t kMaxAttempts = 10;
// Bodies are held in memory for replay, per request: keep that bounded.
constexpr int64_t kMaxRetryBodyBytes = 64 << 20;
// The proxies' first backoff when none is written.
constexpr absl::Duration kDefaultBackoff = absl::Milliseconds(25);

}  // namespace

std::optional<RouteRetry> ConvertRetry(const std::string& path, const v1::HTTPRouteRule& rule,
                                       FieldErrors* err) {
  if (!rule.has_retry()) return std::nullopt;
  const v1::HTTPRouteRetry& in = rule.retry();
  const std::string p = absl::StrCat(path, ".retry");
  RouteRetry out;
  std::set<int> codes;
  for (int i = 0; i < in.codes_size(); ++i) {
    const std::string item = Item(absl::StrCat(p, ".codes"), i);
    const int code = in.codes(i);
    if (code < 400 || code > 599) {
      err->Add(item, absl::StrCat(code, " cannot be retried: only 400 to 599 are"));
    } else if (!codes.insert(code).second) {
      err->Add(item, absl::StrCat(code, " is listed twice"));
    } else {
      out.codes.push_back(static_cast<uint32_t>(code));
    }
  }
  out.attempts = RangeField(absl::StrCat(p, ".attempts"), in.has_attempts(), in.attempts(), 0,
                            kMaxAttempts, err);
  out.backoff = PositiveDurationField(absl::StrCat(p, ".backoff"), in.backoff(), err);
  out.max_backoff = PositiveDurationField(absl::StrCat(p, ".maxBackoff"), in.max_backoff(), err);
  if (out.max_backoff && *out.max_backoff < out.backoff.value_or(kDefaultBackoff)) {
    err->Add(absl::StrCat(p, ".maxBackoff"),
             absl::StrCat(in.max_backoff(), " is shorter than backoff (",
                          out.backoff ? in.backoff() : "25ms, the default", ")"));
  }
  std::set<std::string> conditions;
  for (int i = 0; i < in.retry_on_size(); ++i) {
    const std::string item = Item(absl::StrCat(p, ".retryOn"), i);
    const std::string& c = in.retry_on(i);
    if (std::find(std::begin(kRetryOn), std::end(kRetryOn), c) == std::end(kRetryOn)) {
      err->Add(item, absl::StrCat("'", c, "' is not a retry condition (",
                                  absl::StrJoin(kRetryOn, ", "), ")"));
    } else if (!conditions.insert(c).second) {
      err->Add(item, absl::StrCat("'", c, "' is listed twice"));
    } else {
      out.retry_on.push_back(c);
    }
  }
  if (conditions.count("retriable-status-codes") && in.codes().empty()) {
    err->Add(absl::StrCat(p, ".retryOn"),
             "retriable-status-codes needs the codes to retry (retry.codes)");
  }
  out.retry_non_idempotent = in.retry_non_idempotent();
  out.max_retry_body_bytes =
      RangeField(absl::StrCat(p, ".maxRetryBodyBytes"), in.has_max_retry_body_bytes(),
                 in.max_retry_body_bytes(), 0, kMaxRetryBodyBytes, err);
  return out;
}

}  // namespace outrigger::policy
