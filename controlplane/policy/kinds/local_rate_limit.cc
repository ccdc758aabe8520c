// The `outrigger.dev/v1alpha1` `LocalRateLimit` kind: a token bucket that HTTPRoute rules apply
// to their requests by naming it in an ExtensionRef filter (group outrigger.dev, kind
// LocalRateLimit, same namespace). Each sidecar enforces it on its own: a limit is per calling
// proxy, not mesh-wide.
#include "controlplane/policy/kinds/kind_support.h"
#include "controlplane/policy/kinds/token_bucket.h"

namespace outrigger::policy {
namespace {

void Load(const PolicyDocument& doc, PolicySet* set, PolicyErrors* errors) {
  v1::LocalRateLimit msg;
  auto fields = ParseDocument(doc, &msg, errors);
  if (fields == nullptr) return;
  FieldErrors err(*fields, errors);
  LocalRateLimit limit;
  limit.meta = ConvertMeta(doc, msg.metadata(), fields, &err);
  std::optional<TokenBucket> bucket = ConvertTokenBucket("spec", msg.spec(), &err);
  if (bucket) limit.bucket = *bucket;
  set->local_rate_limits.emplace(limit.meta.key(), std::move(limit));
}

}  // namespace

const PolicyKind& LocalRateLimitKind() {
  static const PolicyKind kind{"outrigger.dev/v1alpha1", "LocalRateLimit", /*namespaced=*/true,
                               &Load, nullptr};
  return kind;
}

}  // namespace outrigger::policy
