// See token_bucket.h.
//
// There is no timer: TryTake() adds the tokens of every whole fill interval since the last fill.
// The fill time then advances by those whole intervals, not to "now", so asking often (every
// request) does not lose the partial interval each time and the long-run rate is exactly
// tokens_per_fill per fill_interval, as with Envoy's timer-driven bucket.
#include "filters/ratelimit/token_bucket.h"

#include <algorithm>

namespace outrigger::ratelimit {
namespace {

constexpr int64_t kDefaultFillIntervalNs = 1'000'000'000;

}  // namespace

TokenBucket::TokenBucket(uint32_t max_tokens, uint32_t tokens_per_fill, int64_t fill_interval_ns,
                         int64_t now_ns)
    : max_tokens_(max_tokens),
      // 0 would never refill; Envoy's default is to refill the whole bucket.
      tokens_per_fill_(tokens_per_fill > 0 ? tokens_per_fill : max_tokens),
      fill_interval_ns_(fill_interval_ns > 0 ? fill_interval_ns : kDefaultFillIntervalNs),
      last_fill_ns_(now_ns),
      tokens_(max_tokens) {}

bool TokenBucket::TryTake(int64_t now_ns) {
  // A clock going backwards (it should not: it is steady) refills nothing.
  if (now_ns > last_fill_ns_) {
    // Unsigned, because the difference of two int64 may not fit one.
    const uint64_t elapsed = static_cast<uint64_t>(now_ns) - static_cast<uint64_t>(last_fill_ns_);
    const uint64_t fills = elapsed / static_cast<uint64_t>(fill_interval_ns_);
    if (fills > 0) {
      if (tokens_per_fill_ > 0 && fills > max_tokens_ / tokens_per_fill_) {
        // Enough fills to top up from empty; also keeps fills * tokens_per_fill_ from
        // overflowing after a long idle time.
        tokens_ = max_tokens_;
      } else {
        // Here fills * tokens_per_fill_ <= max_tokens_, so the sum fits easily in 64 bits.
        const uint64_t filled = uint64_t{tokens_} + fills * tokens_per_fill_;
        tokens_ = static_cast<uint32_t>(std::min<uint64_t>(filled, max_tokens_));
      }
      // fills * interval <= elapsed, so this stays <= now_ns.
      last_fill_ns_ += static_cast<int64_t>(fills * static_cast<uint64_t>(fill_interval_ns_));
    }
  }
  if (tokens_ == 0) return false;
  --tokens_;
  return true;
}

}  // namespace outrigger::ratelimit
