// Full-jitter exponential backoff: the bounds of the wait per retry, its spread, and overflow
// safety for absurd retry numbers and durations.
#include "filters/retry/backoff.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <random>

using outrigger::retry::FullJitterBackoff;

namespace {

constexpr uint64_t kAllOnes = std::numeric_limits<uint64_t>::max();
const absl::Duration kBase = absl::Milliseconds(25);
const absl::Duration kMax = absl::Milliseconds(250);

}  // namespace

TEST_CASE("backoff stays within [0, min(max, base * 2^(n-1))]", "[backoff]") {
  const absl::Duration expected_bound[] = {absl::Milliseconds(25),  absl::Milliseconds(50),
                                           absl::Milliseconds(100), absl::Milliseconds(200),
                                           absl::Milliseconds(250), absl::Milliseconds(250),
                                           absl::Milliseconds(250), absl::Milliseconds(250),
                                           absl::Milliseconds(250), absl::Milliseconds(250)};
  std::mt19937_64 rng(20240601);
  for (int retry = 1; retry <= 10; ++retry) {
    INFO("retry " << retry);
    const absl::Duration bound = expected_bound[retry - 1];
    // The extremes of the random bits reach the ends of the range exactly.
    CHECK(FullJitterBackoff(retry, kBase, kMax, 0) == absl::ZeroDuration());
    CHECK(FullJitterBackoff(retry, kBase, kMax, kAllOnes) == bound);

    constexpr int kSamples = 20000;
    absl::Duration lowest = absl::InfiniteDuration();
    absl::Duration highest = -absl::InfiniteDuration();
    absl::Duration sum;
    for (int i = 0; i < kSamples; ++i) {
      const absl::Duration wait = FullJitterBackoff(retry, kBase, kMax, rng());
      lowest = std::min(lowest, wait);
      highest = std::max(highest, wait);
      sum += wait;
    }
    CHECK(lowest >= absl::ZeroDuration());
    CHECK(highest <= bound);
    // Spread over the whole range: near both ends, and the mean near the middle (uniform:
    // the standard error of the mean is ~0.2% of the bound here, so 5% is a wide margin).
    CHECK(lowest < bound * 0.01);
    CHECK(highest > bound * 0.99);
    const double mean_fraction = absl::FDivDuration(sum / kSamples, bound);
    CHECK(mean_fraction == Approx(0.5).margin(0.05));
  }
}

TEST_CASE("backoff is deterministic and treats retry < 1 as 1", "[backoff]") {
  const uint64_t random = 0x9e3779b97f4a7c15;
  CHECK(FullJitterBackoff(3, kBase, kMax, random) == FullJitterBackoff(3, kBase, kMax, random));
  CHECK(FullJitterBackoff(0, kBase, kMax, random) == FullJitterBackoff(1, kBase, kMax, random));
  CHECK(FullJitterBackoff(-7, kBase, kMax, kAllOnes) == kBase);
}

TEST_CASE("backoff does not overflow for large retry numbers or durations", "[backoff]") {
  std::mt19937_64 rng(7);
  for (int retry : {31, 32, 62, 63, 64, 65, 100, 1000, std::numeric_limits<int>::max()}) {
    INFO("retry " << retry);
    CHECK(FullJitterBackoff(retry, kBase, kMax, kAllOnes) == kMax);
    for (int i = 0; i < 1000; ++i) {
      const absl::Duration wait = FullJitterBackoff(retry, kBase, kMax, rng());
      CHECK(wait >= absl::ZeroDuration());
      CHECK(wait <= kMax);
    }
  }
  // A cap too large for the doubling to reach before int64 nanoseconds overflow.
  const absl::Duration huge = absl::Hours(24 * 365 * 200);
  CHECK(FullJitterBackoff(100, absl::Hours(1), huge, kAllOnes) == huge);
  // An infinite cap: the wait is finite and non-negative all the same.
  const absl::Duration wait =
      FullJitterBackoff(100, absl::Hours(1), absl::InfiniteDuration(), kAllOnes);
  CHECK(wait > absl::ZeroDuration());
  CHECK(wait < absl::InfiniteDuration());
}

TEST_CASE("backoff with a zero or negative base or cap waits zero", "[backoff]") {
  CHECK(FullJitterBackoff(5, absl::ZeroDuration(), kMax, kAllOnes) == absl::ZeroDuration());
  CHECK(FullJitterBackoff(5, kBase, absl::ZeroDuration(), kAllOnes) == absl::ZeroDuration());
  CHECK(FullJitterBackoff(5, -kBase, kMax, kAllOnes) == absl::ZeroDuration());
}
