// The retry budget (linkerd2 and Finagle): retries may add at most `percent` of the requests seen
// over the last `ttl`, plus a floor of `min_per_second` retries per second, so that when every
// host fails, retries add a bounded share of load instead of multiplying it. One budget per
// cluster per worker; time is passed in (steady-clock nanoseconds) so tests use a fake clock.
#ifndef OUTRIGGER_FILTERS_RETRY_RETRY_BUDGET_H_
#define OUTRIGGER_FILTERS_RETRY_RETRY_BUDGET_H_

#include <array>
#include <cstdint>

namespace outrigger::retry {

class RetryBudget {
 public:
  // `min_per_second` may be fractional (a worker's share of the cluster's floor).
  RetryBudget(double percent, double min_per_second, int64_t ttl_ns);
  // Every first try of a request deposits.
  void RecordRequest(int64_t now_ns);
  // A retry withdraws; false when the budget is spent (the retry is not sent).
  bool TryWithdraw(int64_t now_ns);

 private:
  static constexpr int kSlots = 10;  // the ttl window in 10 slots
  void Advance(int64_t now_ns);
  double percent_;
  double min_per_second_;
  int64_t ttl_ns_;
  int64_t slot_ns_;
  int64_t slot_start_ns_ = 0;
  int current_ = 0;
  std::array<uint64_t, kSlots> requests_{};
  std::array<uint64_t, kSlots> retries_{};
};

}  // namespace outrigger::retry

#endif  // OUTRIGGER_FILTERS_RETRY_RETRY_BUDGET_H_
