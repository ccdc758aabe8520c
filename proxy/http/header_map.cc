// See header_map.h.
#include "proxy/http/header_map.h"

#include "absl/strings/string_view.h"
#include "absl/strings/match.h"

namespace outrigger::http {

bool EqualsIgnoreCase(absl::string_view a, absl::string_view b) {
  return absl::EqualsIgnoreCase(a, b);
}

void HeaderMap::Add(absl::string_view n, absl::string_view v) {
  Entry e;
  e.name_off = static_cast<uint32_t>(buf_.size());
  e.name_len = static_cast<uint32_t>(n.size());
  buf_.append(n.data(), n.size());
  e.value_off = static_cast<uint32_t>(buf_.size());
  e.value_len = static_cast<uint32_t>(v.size());
  buf_.append(v.data(), v.size());
  entries_.push_back(e);
}

std::optional<absl::string_view> HeaderMap::Get(absl::string_view n) const {
  for (const Entry& e : entries_) {
    if (e.name_len == n.size() && http::EqualsIgnoreCase(name(e), n)) return value(e);
  }
  return std::nullopt;
}

size_t HeaderMap::Count(absl::string_view n) const {
  size_t count = 0;
  for (const Entry& e : entries_) {
    if (e.name_len == n.size() && http::EqualsIgnoreCase(name(e), n)) ++count;
  }
  return count;
}

size_t HeaderMap::Remove(absl::string_view n) {
  size_t removed = 0;
  for (Entry& e : entries_) {
    if (e.name_len == n.size() && http::EqualsIgnoreCase(name(e), n)) {
      e.name_len = 0;
      ++removed;
    }
  }
  return removed;
}

size_t HeaderMap::size() const {
  size_t n = 0;
  for (const Entry& e : entries_) n += e.name_len != 0;
  return n;
}

}  // namespace outrigger::http
