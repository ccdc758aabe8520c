// A token bucket as policy writes it (maxTokens, tokensPerFill, fillInterval): the spec of the
// LocalRateLimit kind and TrafficPolicy's rateLimit, converted and checked the same way.
#ifndef OUTRIGGER_CONTROLPLANE_POLICY_KINDS_TOKEN_BUCKET_H_
#define OUTRIGGER_CONTROLPLANE_POLICY_KINDS_TOKEN_BUCKET_H_

#include <optional>
#include <string>

#include "controlplane/policy/kinds/kind_support.h"
#include "controlplane/policy/policy_set.h"
#include "outrigger/policy/v1/kinds.pb.h"

namespace outrigger::policy {

// The bucket at `path` ("spec.rateLimit"): maxTokens is required (at least 1), tokensPerFill at
// least 1, fillInterval longer than 0. nullopt when maxTokens is missing or bad.
std::optional<TokenBucket> ConvertTokenBucket(const std::string& path,
                                              const v1::TokenBucketSpec& in, FieldErrors* err);

}  // namespace outrigger::policy

#endif  // OUTRIGGER_CONTROLPLANE_POLICY_KINDS_TOKEN_BUCKET_H_
