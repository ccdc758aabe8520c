// See duration.h. A hand-written scanner rather than a regex, so that each error can say which
// rule the text breaks.
#include "controlplane/policy/duration.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace outrigger::policy {

absl::StatusOr<absl::Duration> ParseGatewayDuration(absl::string_view text) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a duration: ", why,
                     " (a duration is 1 to 4 parts, each 1 to 5 digits and a unit h, m, s or ms: "
                     "\"10s\", \"500ms\", \"1h30m\")"));
  };
  if (text.empty()) return bad("it is empty");
  absl::Duration total = absl::ZeroDuration();
  int parts = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    int64_t value = 0;
    while (i < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) {
      value = value * 10 + (text[i] - '0');
      ++i;
      if (i - start > 5) return bad("a number has more than 5 digits");
    }
    if (i == start) {
      if (text[i] == '-') return bad("it is negative");
      return bad(absl::StrCat("expected a digit at '", text.substr(i), "'"));
    }
    if (i == text.size()) return bad("the number has no unit");
    if (text[i] == '.') return bad("fractions are not allowed");
    if (text.substr(i, 2) == "ms") {
      total += absl::Milliseconds(value);
      i += 2;
    } else if (text[i] == 'h') {
      total += absl::Hours(value);
      ++i;
    } else if (text[i] == 'm') {
      total += absl::Minutes(value);
      ++i;
    } else if (text[i] == 's') {
      total += absl::Seconds(value);
      ++i;
    } else {
      size_t end = i;
      while (end < text.size() && !absl::ascii_isdigit(static_cast<unsigned char>(text[end]))) {
        ++end;
      }
      return bad(absl::StrCat("unknown unit '", text.substr(i, end - i), "'"));
    }
    if (++parts > 4) return bad("it has more than 4 parts");
  }
  return total;
}

std::string FormatGatewayDuration(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return "0s";
  std::string out;
  const int64_t ms = absl::ToInt64Milliseconds(d);
  const int64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, rest = ms % 1000;
  if (h > 0) absl::StrAppend(&out, h, "h");
  if (m > 0) absl::StrAppend(&out, m, "m");
  if (s > 0) absl::StrAppend(&out, s, "s");
  if (rest > 0) absl::StrAppend(&out, rest, "ms");
  return out.empty() ? "0s" : out;
}

}  // namespace outrigger::policy
