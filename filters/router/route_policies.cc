// See route_policies.h.
#include "filters/router/route_policies.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "outrigger/v1/config.pb.h"

namespace outrigger::router {
namespace {

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Status Error(absl::string_view field, absl::string_view sub, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ".", sub, ": ", what));
}

bool ValidPercent(double p) { return p >= 0 && p <= 100; }

// The gRPC conditions Envoy and Istio name, and their codes.
struct GrpcCondition {
  absl::string_view name;
  int code;
};
constexpr GrpcCondition kGrpcConditions[] = {{"cancelled", 1},
                                             {"deadline-exceeded", 4},
                                             {"resource-exhausted", 8},
                                             {"internal", 13},
                                             {"unavailable", 14}};

uint64_t NextId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

bool RetryPolicy::RetriableStatus(int status) const {
  if (on_5xx && status >= 500 && status <= 599) return true;
  if (on_gateway_error && (status == 502 || status == 503 || status == 504)) return true;
  if (on_retriable_codes) {
    for (uint32_t c : retriable_codes) {
      if (static_cast<int>(c) == status) return true;
    }
  }
  return false;
}

absl::Status RetryPolicyFromProto(const v1::RetryPolicy& p, absl::string_view field,
                                  RetryPolicy* out) {
  RetryPolicy r;
  r.configured = true;
  r.on_connect_failure = false;
  r.on_refused_stream = false;
  r.num_retries = p.has_num_retries() ? p.num_retries() : 1;
  if (r.num_retries > 10) return Error(field, "num_retries", "at most 10");
  for (int i = 0; i < p.retry_on_size(); ++i) {
    const std::string& c = p.retry_on(i);
    if (c == "5xx") {
      r.on_5xx = true;
    } else if (c == "gateway-error") {
      r.on_gateway_error = true;
    } else if (c == "connect-failure") {
      r.on_connect_failure = true;
    } else if (c == "reset") {
      r.on_reset = true;
    } else if (c == "retriable-status-codes") {
      r.on_retriable_codes = true;
    } else if (c == "refused-stream") {
      r.on_refused_stream = true;
    } else {
      bool grpc = false;
      for (const GrpcCondition& g : kGrpcConditions) {
        if (c == g.name) {
          r.grpc_codes |= 1u << g.code;
          grpc = true;
        }
      }
      if (!grpc) {
        return Error(field, absl::StrCat("retry_on[", i, "]"),
                     absl::StrCat("unknown condition '", c,
                                  "' (5xx, gateway-error, connect-failure, reset, "
                                  "refused-stream, retriable-status-codes, cancelled, "
                                  "deadline-exceeded, internal, resource-exhausted, "
                                  "unavailable)"));
      }
    }
  }
  for (int i = 0; i < p.retriable_status_codes_size(); ++i) {
    const uint32_t c = p.retriable_status_codes(i);
    if (c < 100 || c > 599) {
      return Error(field, absl::StrCat("retriable_status_codes[", i, "]"),
                   absl::StrCat(c, " is not an HTTP status"));
    }
    r.retriable_codes.push_back(c);
    r.on_retriable_codes = true;
  }
  if (p.retry_on_size() == 0) {
    // As Istio's default, for HTTP and gRPC alike.
    r.on_connect_failure = r.on_reset = r.on_gateway_error = true;
    r.grpc_codes = (1u << 14) | (1u << 1);  // unavailable, cancelled
  }
  // Every other condition includes the failures that never produced an answer.
  if (r.on_5xx || r.on_gateway_error) r.on_connect_failure = r.on_reset = true;
  // A refused stream was not processed: retried whenever anything is.
  r.on_refused_stream = r.on_refused_stream || r.on_connect_failure || r.on_reset;
  if (p.has_per_try_timeout()) r.per_try_timeout = FromProto(p.per_try_timeout());
  if (r.per_try_timeout < absl::ZeroDuration()) {
    return Error(field, "per_try_timeout", "must not be negative");
  }
  if (p.has_base_interval()) {
    r.base_interval = FromProto(p.base_interval());
    if (r.base_interval <= absl::ZeroDuration()) {
      return Error(field, "base_interval", "must be positive");
    }
    r.max_interval = r.base_interval * 10;
  }
  if (p.has_max_interval()) {
    r.max_interval = FromProto(p.max_interval());
    if (r.max_interval < r.base_interval) {
      return Error(field, "max_interval", "must not be below base_interval");
    }
  }
  r.retry_non_idempotent = p.retry_non_idempotent();
  if (p.has_max_retry_body_bytes()) r.max_body_bytes = p.max_retry_body_bytes();
  *out = std::move(r);
  return absl::OkStatus();
}

absl::Status FaultFromProto(const v1::FaultInjection& p, absl::string_view field,
                            FaultConfig* out) {
  FaultConfig f;
  if (p.has_delay()) {
    f.delay = FromProto(p.delay().fixed_delay());
    if (f.delay <= absl::ZeroDuration()) {
      return Error(field, "delay.fixed_delay", "must be positive");
    }
    f.delay_percent = p.delay().has_percentage() ? p.delay().percentage() : 100;
    if (!ValidPercent(f.delay_percent)) return Error(field, "delay.percentage", "0 to 100");
  }
  if (p.has_abort()) {
    f.abort_status = static_cast<int>(p.abort().http_status());
    if (f.abort_status < 200 || f.abort_status > 599) {
      return Error(field, "abort.http_status", "200 to 599");
    }
    f.abort_percent = p.abort().has_percentage() ? p.abort().percentage() : 100;
    if (!ValidPercent(f.abort_percent)) return Error(field, "abort.percentage", "0 to 100");
  }
  *out = f;
  return absl::OkStatus();
}

absl::Status MirrorFromProto(const v1::RequestMirrorPolicy& p, absl::string_view field,
                             MirrorPolicy* out) {
  if (p.cluster().empty()) return Error(field, "cluster", "must not be empty");
  out->cluster = p.cluster();
  out->percent = p.has_percentage() ? p.percentage() : 100;
  if (!ValidPercent(out->percent)) return Error(field, "percentage", "0 to 100");
  return absl::OkStatus();
}

absl::Status RateLimitFromProto(const v1::LocalRateLimit& p, absl::string_view field,
                                RateLimitConfig* out) {
  if (p.max_tokens() == 0) return Error(field, "max_tokens", "must be at least 1");
  out->max_tokens = p.max_tokens();
  out->tokens_per_fill = p.tokens_per_fill() == 0 ? p.max_tokens() : p.tokens_per_fill();
  out->fill_interval = absl::Seconds(1);
  if (p.has_fill_interval()) {
    out->fill_interval = FromProto(p.fill_interval());
    if (out->fill_interval < absl::Milliseconds(1)) {
      return Error(field, "fill_interval", "must be at least 1ms");
    }
  }
  out->id = NextId();
  return absl::OkStatus();
}

}  // namespace outrigger::router
