// See retry_budget.h.
//
// The window is a ring of kSlots counters, each covering ttl / kSlots; slots are aligned to
// multiples of the slot length, and a slot is cleared when the ring wraps onto it. So the window
// holds between (kSlots - 1) / kSlots of the ttl and the whole ttl of history, and anything
// recorded at time t is forgotten by t + ttl at the latest. A budget costs 2 * kSlots counters and
// no allocation, which matters because there is one per cluster per worker.
#include "filters/retry/retry_budget.h"

#include <algorithm>

namespace outrigger::retry {
namespace {

// linkerd2's default ttl, used when the configured one is not positive.
constexpr int64_t kDefaultTtlNs = 10'000'000'000;

// Also maps NaN to 0, so a bad double from config cannot poison every comparison.
double NonNegative(double value) { return value >= 0 ? value : 0; }

}  // namespace

RetryBudget::RetryBudget(double percent, double min_per_second, int64_t ttl_ns)
    : percent_(NonNegative(percent)),
      min_per_second_(NonNegative(min_per_second)),
      ttl_ns_(ttl_ns > 0 ? ttl_ns : kDefaultTtlNs),
      // Rounded down, so that the window never remembers longer than the ttl.
      slot_ns_(std::max<int64_t>(1, ttl_ns_ / kSlots)) {}

void RetryBudget::Advance(int64_t now_ns) {
  // A clock that goes backwards (it should not: it is steady) counts into the current slot.
  if (now_ns <= slot_start_ns_) return;
  const uint64_t elapsed = static_cast<uint64_t>(now_ns) - static_cast<uint64_t>(slot_start_ns_);
  const uint64_t steps = elapsed / static_cast<uint64_t>(slot_ns_);
  if (steps == 0) return;
  if (steps >= kSlots) {
    // Idle for a whole window or more (or the first call): everything has expired.
    requests_.fill(0);
    retries_.fill(0);
  } else {
    for (uint64_t i = 0; i < steps; ++i) {
      current_ = (current_ + 1) % kSlots;
      requests_[current_] = 0;
      retries_[current_] = 0;
    }
  }
  // Whole slots only, so the slot boundaries never drift with the times we happen to be called.
  // steps * slot_ns_ <= elapsed, so this stays <= now_ns.
  slot_start_ns_ += static_cast<int64_t>(steps * static_cast<uint64_t>(slot_ns_));
}

void RetryBudget::RecordRequest(int64_t now_ns) {
  Advance(now_ns);
  ++requests_[current_];
}

bool RetryBudget::TryWithdraw(int64_t now_ns) {
  Advance(now_ns);
  uint64_t requests = 0;
  uint64_t retries = 0;
  for (int i = 0; i < kSlots; ++i) {
    requests += requests_[i];
    retries += retries_[i];
  }
  // percent * requests before dividing keeps whole results exact (29 * 100 / 100 == 29, where
  // 0.29 * 100 is 28.999...); the `requests > 0` test keeps an infinite percent from giving NaN.
  const double share = requests > 0 ? percent_ * static_cast<double>(requests) / 100.0 : 0.0;
  const double floor = min_per_second_ * (static_cast<double>(ttl_ns_) / 1e9);
  const double allowance = share + floor;
  // A hair of tolerance for the rounding left in `floor` (e.g. 0.1 per second over 30 s).
  if (static_cast<double>(retries) + 1 > allowance + 1e-9 * std::max(1.0, allowance)) {
    return false;
  }
  ++retries_[current_];
  return true;
}

}  // namespace outrigger::retry
