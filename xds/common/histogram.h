// A Prometheus histogram with fixed buckets, for one thread (no atomics): the proxy keeps one per
// worker and sums them on scrape; the control plane updates its own on the control loop.
// Two bucket layouts: milliseconds (0.5 ms .. 5 min, like Istio's duration buckets) and bytes
// (1 B .. 100 MB, powers of ten).
#ifndef OUTRIGGER_XDS_COMMON_HISTOGRAM_H_
#define OUTRIGGER_XDS_COMMON_HISTOGRAM_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace outrigger {

class Histogram {
 public:
  enum class Unit : uint8_t { kMilliseconds, kBytes };
  static constexpr std::array<double, 17> kMillisecondBounds = {
      0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000};
  static constexpr std::array<double, 9> kByteBounds = {1,     10,     100,     1000,     10000,
                                                        100000, 1000000, 10000000, 100000000};

  explicit Histogram(Unit unit = Unit::kMilliseconds) : unit_(unit) {}
  void Record(double value);
  void Merge(const Histogram& other);
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  absl::Span<const double> bounds() const;
  // Appends `name`_bucket / _sum / _count lines; `labels` is "a=\"b\",c=\"d\"" or "".
  void Render(absl::string_view name, absl::string_view labels, std::string* out) const;

 private:
  std::array<uint64_t, kMillisecondBounds.size() + 1> counts_{};
  double sum_ = 0;
  uint64_t count_ = 0;
  Unit unit_;
};

}  // namespace outrigger

#endif  // OUTRIGGER_XDS_COMMON_HISTOGRAM_H_
