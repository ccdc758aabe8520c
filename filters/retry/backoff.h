// Exponential backoff with full jitter (the AWS architecture blog's "full jitter"): the wait
// before retry n (1-based) is uniformly random in [0, min(max, base * 2^(n-1))].
#ifndef OUTRIGGER_FILTERS_RETRY_BACKOFF_H_
#define OUTRIGGER_FILTERS_RETRY_BACKOFF_H_

#include <cstdint>

#include "absl/time/time.h"

namespace outrigger::retry {

// `random` is uniformly random bits; the same inputs give the same wait (tests pin it).
absl::Duration FullJitterBackoff(int retry, absl::Duration base, absl::Duration max,
                                 uint64_t random);

}  // namespace outrigger::retry

#endif  // OUTRIGGER_FILTERS_RETRY_BACKOFF_H_
