// A token bucket for local rate limiting: `max_tokens` at most, `tokens_per_fill` added every
// `fill_interval`, refilled lazily when asked. One per route (or listener) per worker: no locks.
#ifndef OUTRIGGER_FILTERS_RATELIMIT_TOKEN_BUCKET_H_
#define OUTRIGGER_FILTERS_RATELIMIT_TOKEN_BUCKET_H_

#include <cstdint>

namespace outrigger::ratelimit {

class TokenBucket {
 public:
  // Starts full.
  TokenBucket(uint32_t max_tokens, uint32_t tokens_per_fill, int64_t fill_interval_ns,
              int64_t now_ns);
  // Takes one token; false when none is left (answer 429).
  bool TryTake(int64_t now_ns);
  uint32_t tokens() const { return tokens_; }

 private:
  uint32_t max_tokens_;
  uint32_t tokens_per_fill_;
  int64_t fill_interval_ns_;
  int64_t last_fill_ns_;
  uint32_t tokens_;
};

}  // namespace outrigger::ratelimit

#endif  // OUTRIGGER_FILTERS_RATELIMIT_TOKEN_BUCKET_H_
