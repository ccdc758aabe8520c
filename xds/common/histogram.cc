// See histogram.h. Rendering follows the Prometheus text exposition format 0.0.4.
#include "xds/common/histogram.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace outrigger {

absl::Span<const double> Histogram::bounds() const {
  if (unit_ == Unit::kBytes) return absl::MakeConstSpan(kByteBounds);
  return absl::MakeConstSpan(kMillisecondBounds);
}

void Histogram::Record(double value) {
  const auto b = bounds();
  const size_t i = std::lower_bound(b.begin(), b.end(), value) - b.begin();
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::Merge(const Histogram& o) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
  sum_ += o.sum_;
  count_ += o.count_;
}

void Histogram::Render(absl::string_view name, absl::string_view labels,
                       std::string* out) const {
  const auto b = bounds();
  const absl::string_view sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    cumulative += counts_[i];
    absl::StrAppend(out, name, "_bucket{", labels, sep, "le=\"", b[i], "\"} ", cumulative, "\n");
  }
  cumulative += counts_[b.size()];
  absl::StrAppend(out, name, "_bucket{", labels, sep, "le=\"+Inf\"} ", cumulative, "\n");
  const absl::string_view open = labels.empty() ? "" : "{";
  const absl::string_view close = labels.empty() ? "" : "}";
  absl::StrAppend(out, name, "_sum", open, labels, close, " ", absl::StrFormat("%.3f", sum_),
                  "\n");
  absl::StrAppend(out, name, "_count", open, labels, close, " ", count_, "\n");
}

}  // namespace outrigger
