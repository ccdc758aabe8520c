// See trace_context.h. W3C Trace Context level 1 (https://www.w3.org/TR/trace-context/) and
// B3 propagation (https://github.com/openzipkin/b3-propagation).
#include "filters/tracing/trace_context.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace outrigger::tracing {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Exactly 1-16 hex digits into *out.
bool ParseHex64(absl::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    const int d = HexValue(c);
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

bool LowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A B3 trace id: 16 or 32 hex digits.
bool ParseB3TraceId(absl::string_view s, TraceId* out) {
  if (s.size() == 32) {
    return ParseHex64(s.substr(0, 16), &out->hi) && ParseHex64(s.substr(16), &out->lo);
  }
  out->hi = 0;
  return s.size() == 16 && ParseHex64(s, &out->lo);
}

std::optional<bool> ParseB3Sampled(absl::string_view s) {
  if (s == "1" || s == "d" || absl::EqualsIgnoreCase(s, "true")) return true;
  if (s == "0" || absl::EqualsIgnoreCase(s, "false")) return false;
  return std::nullopt;
}

}  // namespace

std::string TraceId::Hex() const {
  return absl::StrCat(absl::Hex(hi, absl::kZeroPad16), absl::Hex(lo, absl::kZeroPad16));
}

std::string TraceId::B3Hex() const {
  return hi == 0 ? absl::StrCat(absl::Hex(lo, absl::kZeroPad16)) : Hex();
}

std::string SpanIdHex(uint64_t id) { return absl::StrCat(absl::Hex(id, absl::kZeroPad16)); }

std::optional<TraceContext> ParseTraceparent(absl::string_view v) {
  v = absl::StripAsciiWhitespace(v);
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55.
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return std::nullopt;
  const absl::string_view version = v.substr(0, 2);
  if (!LowerHex(version) || version == "ff") return std::nullopt;
  if (version == "00" && v.size() != 55) return std::nullopt;
  if (version != "00" && v.size() > 55 && v[55] != '-') return std::nullopt;
  const absl::string_view trace = v.substr(3, 32);
  const absl::string_view span = v.substr(36, 16);
  const absl::string_view flags = v.substr(53, 2);
  if (!LowerHex(trace) || !LowerHex(span) || !LowerHex(flags)) return std::nullopt;
  TraceContext ctx;
  uint64_t f = 0;
  if (!ParseHex64(trace.substr(0, 16), &ctx.trace_id.hi) ||
      !ParseHex64(trace.substr(16), &ctx.trace_id.lo) || !ParseHex64(span, &ctx.span_id) ||
      !ParseHex64(flags, &f)) {
    return std::nullopt;
  }
  if (!ctx.valid()) return std::nullopt;  // all-zero ids are invalid
  ctx.sampled = (f & 1) != 0;
  return ctx;
}

std::optional<TraceContext> ParseB3Single(absl::string_view v) {
  v = absl::StripAsciiWhitespace(v);
  TraceContext ctx;
  const size_t a = v.find('-');
  if (a == absl::string_view::npos) return std::nullopt;  // sampling state only (or garbage)
  if (!ParseB3TraceId(v.substr(0, a), &ctx.trace_id)) return std::nullopt;
  absl::string_view rest = v.substr(a + 1);
  const size_t b = rest.find('-');
  if (!ParseHex64(rest.substr(0, b), &ctx.span_id) || rest.substr(0, b).size() != 16) {
    return std::nullopt;
  }
  if (b != absl::string_view::npos) {
    rest = rest.substr(b + 1);
    const size_t c = rest.find('-');
    ctx.sampled = ParseB3Sampled(rest.substr(0, c));
    if (!ctx.sampled) return std::nullopt;
  }
  if (!ctx.valid()) return std::nullopt;
  return ctx;
}

TraceContext Extract(const HeaderLookup& header) {
  TraceContext out;
  const auto single = header("b3");
  const auto multi_trace = header("x-b3-traceid");
  const bool b3_single = single.has_value();
  const bool b3_multi = multi_trace.has_value() || header("x-b3-sampled").has_value();
  if (auto tp = header("traceparent")) {
    if (auto ctx = ParseTraceparent(*tp)) out = *ctx;
  }
  if (!out.valid() && single) {
    if (auto ctx = ParseB3Single(*single)) {
      out = *ctx;
    } else if (auto s = ParseB3Sampled(*single)) {
      out.sampled = s;  // "b3: 0" alone: a sampling decision without a context
    }
  }
  if (!out.valid() && multi_trace) {
    TraceContext ctx;
    uint64_t span = 0;
    const auto span_header = header("x-b3-spanid");
    if (ParseB3TraceId(absl::StripAsciiWhitespace(*multi_trace), &ctx.trace_id) &&
        span_header && span_header->size() == 16 && ParseHex64(*span_header, &span) &&
        span != 0 && ctx.trace_id.valid()) {
      ctx.span_id = span;
      out = ctx;
    }
  }
  if (!out.sampled.has_value() && b3_multi) {
    if (auto flags = header("x-b3-flags"); flags && *flags == "1") {
      out.sampled = true;  // debug
    } else if (auto s = header("x-b3-sampled")) {
      out.sampled = ParseB3Sampled(*s);
    }
  }
  out.b3_single = b3_single;
  out.b3_multi = b3_multi;
  return out;
}

std::string FormatTraceparent(const TraceId& trace, uint64_t span_id, bool sampled) {
  return absl::StrCat("00-", trace.Hex(), "-", SpanIdHex(span_id), sampled ? "-01" : "-00");
}

std::string FormatB3(const TraceId& trace, uint64_t span_id, bool sampled, uint64_t parent_id) {
  std::string out = absl::StrCat(trace.B3Hex(), "-", SpanIdHex(span_id), sampled ? "-1" : "-0");
  if (parent_id != 0) absl::StrAppend(&out, "-", SpanIdHex(parent_id));
  return out;
}

bool IsTraceHeader(absl::string_view name) {
  return absl::EqualsIgnoreCase(name, "traceparent") || absl::EqualsIgnoreCase(name, "b3") ||
         (name.size() > 5 && absl::StartsWithIgnoreCase(name, "x-b3-"));
}

}  // namespace outrigger::tracing
