// See token_bucket.h. Defaults (tokensPerFill = maxTokens, fillInterval 1s) are the proxies':
// unset members stay unset.
#include "controlplane/policy/kinds/token_bucket.h"

#include "absl/strings/str_cat.h"

namespace outrigger::policy {

std::optional<TokenBucket> ConvertTokenBucket(const std::string& path,
                                              const v1::TokenBucketSpec& in, FieldErrors* err) {
  const std::string max_path = absl::StrCat(path, ".maxTokens");
  if (!in.has_max_tokens()) {
    err->Add(max_path, "required: how many requests the bucket holds (at least 1)");
  }
  std::optional<uint32_t> max_tokens =
      RangeField(max_path, in.has_max_tokens(), in.max_tokens(), 1, kMaxCount, err);
  TokenBucket out;
  out.tokens_per_fill = RangeField(absl::StrCat(path, ".tokensPerFill"), in.has_tokens_per_fill(),
                                   in.tokens_per_fill(), 1, kMaxCount, err);
  out.fill_interval =
      PositiveDurationField(absl::StrCat(path, ".fillInterval"), in.fill_interval(), err);
  if (!max_tokens) return std::nullopt;
  out.max_tokens = *max_tokens;
  return out;
}

}  // namespace outrigger::policy
