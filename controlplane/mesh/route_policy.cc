// See route_policy.h. Retry conditions when retryOn is not written: the proxies' default
// (connect-failure, reset, gateway-error) when no codes are given either; with codes,
// connect-failure, reset and retriable-status-codes, so that connection errors are retried as
// GEP-1731 asks and only the listed statuses are. A rule with timeouts.backendRequest but no
// retry keeps the proxies' no-policy behaviour (one retry, on connect-failure) and adds the
// per-try timeout.
#include "controlplane/mesh/route_policy.h"

#include <algorithm>

#include "controlplane/mesh/proto_values.h"
#include "controlplane/mesh/view_builder.h"

namespace outrigger::controlplane {
namespace {

constexpr char kRetriableStatusCodes[] = "retriable-status-codes";

void SetRetry(const policy::RouteRetry& in, v1::RetryPolicy* out) {
  if (in.attempts) out->set_num_retries(*in.attempts);
  for (const std::string& c : in.retry_on) out->add_retry_on(c);
  if (!in.codes.empty()) {
    if (in.retry_on.empty()) {
      out->add_retry_on("connect-failure");
      out->add_retry_on("reset");
    }
    if (std::find(in.retry_on.begin(), in.retry_on.end(), kRetriableStatusCodes) ==
        in.retry_on.end()) {
      out->add_retry_on(kRetriableStatusCodes);
    }
  }
  for (uint32_t code : in.codes) out->add_retriable_status_codes(code);
  if (in.backoff) SetDuration(*in.backoff, out->mutable_base_interval());
  if (in.max_backoff) SetDuration(*in.max_backoff, out->mutable_max_interval());
  out->set_retry_non_idempotent(in.retry_non_idempotent);
  if (in.max_retry_body_bytes) out->set_max_retry_body_bytes(*in.max_retry_body_bytes);
}

void SetFault(const policy::HttpFault& in, v1::FaultInjection* out) {
  if (in.delay) {
    SetDuration(in.delay->fixed_delay, out->mutable_delay()->mutable_fixed_delay());
    out->mutable_delay()->set_percentage(in.delay->percentage);
  }
  if (in.abort) {
    out->mutable_abort()->set_http_status(in.abort->http_status);
    out->mutable_abort()->set_percentage(in.abort->percentage);
  }
}

}  // namespace

void ApplyRulePolicy(const policy::PolicySet& set, const policy::RouteRule& rule,
                     v1::Route* route) {
  for (const policy::RouteFilter& f : rule.filters) {
    if (!f.extension_ref) continue;
    const policy::ObjectKey key = f.extension_ref->key();
    if (const policy::HttpFault* fault =
            f.extension_ref->kind == "HTTPFault" ? set.FindHttpFault(key) : nullptr) {
      SetFault(*fault, route->mutable_fault());
    }
    if (const policy::LocalRateLimit* limit =
            f.extension_ref->kind == "LocalRateLimit" ? set.FindLocalRateLimit(key) : nullptr) {
      SetLocalRateLimit(limit->bucket, route->mutable_local_rate_limit());
    }
  }
  if (!route->has_route()) return;
  v1::RouteAction* action = route->mutable_route();
  if (rule.retry) SetRetry(*rule.retry, action->mutable_retry_policy());
  const std::optional<absl::Duration>& per_try = rule.timeouts.backend_request;
  if (per_try && *per_try > absl::ZeroDuration()) {
    v1::RetryPolicy* retry = action->mutable_retry_policy();
    if (!rule.retry) {
      retry->set_num_retries(1);
      retry->add_retry_on("connect-failure");
    }
    SetDuration(*per_try, retry->mutable_per_try_timeout());
  }
  for (const policy::RouteFilter& f : rule.filters) {
    if (!f.request_mirror) continue;
    v1::RequestMirrorPolicy* m = action->add_request_mirror_policies();
    m->set_cluster(ClusterName(f.request_mirror->backend_ref.key()));
    if (f.request_mirror->percent) m->set_percentage(*f.request_mirror->percent);
  }
}

}  // namespace outrigger::controlplane
