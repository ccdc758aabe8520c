// See proto_values.h.
#include "controlplane/mesh/proto_values.h"

namespace outrigger::controlplane {

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t ns = absl::ToInt64Nanoseconds(d);
  out->set_seconds(ns / 1000000000);
  out->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

void SetLocalRateLimit(const policy::TokenBucket& bucket, v1::LocalRateLimit* out) {
  out->set_max_tokens(bucket.max_tokens);
  if (bucket.tokens_per_fill) out->set_tokens_per_fill(*bucket.tokens_per_fill);
  if (bucket.fill_interval) SetDuration(*bucket.fill_interval, out->mutable_fill_interval());
}

}  // namespace outrigger::controlplane
