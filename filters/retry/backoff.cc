// See backoff.h.
//
// Everything is computed in int64 nanoseconds. The doubling is done by comparing against the cap
// before shifting, so a large retry number (or a huge base) saturates at `max` instead of
// overflowing. The random bits are mapped onto [0, bound] by a 64x64->128 multiply (keeping the
// high half) rather than `random % (bound + 1)`: that uses the generator's high bits, has a
// negligible bias, and maps 0 to 0 and all-ones to exactly `bound`, which tests rely on.
#include "filters/retry/backoff.h"

#include <algorithm>

#include "absl/numeric/int128.h"

namespace outrigger::retry {

absl::Duration FullJitterBackoff(int retry, absl::Duration base, absl::Duration max,
                                 uint64_t random) {
  // Negative durations make no sense as waits; an infinite one saturates to INT64_MAX here.
  const int64_t base_ns = std::max<int64_t>(0, absl::ToInt64Nanoseconds(base));
  const int64_t max_ns = std::max<int64_t>(0, absl::ToInt64Nanoseconds(max));
  const int shift = std::max(retry, 1) - 1;

  int64_t bound;
  if (base_ns == 0) {
    bound = 0;
  } else if (shift >= 63 || base_ns > (max_ns >> shift)) {
    // base * 2^shift > max: the cap applies (and the shift itself could overflow).
    bound = max_ns;
  } else {
    bound = std::min(max_ns, base_ns << shift);
  }

  const absl::uint128 scaled =
      absl::uint128(random) * absl::uint128(static_cast<uint64_t>(bound) + 1);
  return absl::Nanoseconds(static_cast<int64_t>(absl::Uint128High64(scaled)));
}

}  // namespace outrigger::retry
