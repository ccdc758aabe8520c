// See field_checks.h. The rules are Kubernetes' own (apimachinery validation) where they exist,
// so that what we accept a cluster accepts too.
#include "controlplane/policy/field_checks.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "re2/re2.h"

namespace outrigger::policy {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); }

std::string Quote(absl::string_view v) { return absl::StrCat("'", v, "'"); }

}  // namespace

std::string CheckDnsLabel(absl::string_view value) {
  if (value.empty()) return "must not be empty";
  if (value.size() > 63) return absl::StrCat(Quote(value), " is longer than 63 characters");
  for (char c : value) {
    if (!IsLowerAlnum(c) && c != '-') {
      return absl::StrCat(Quote(value),
                          " may hold only lower-case letters, digits and '-' (RFC 1123 label)");
    }
  }
  if (value.front() == '-' || value.back() == '-') {
    return absl::StrCat(Quote(value), " must start and end with a letter or digit");
  }
  return "";
}

std::string CheckDnsSubdomain(absl::string_view value) {
  if (value.empty()) return "must not be empty";
  if (value.size() > 253) return absl::StrCat(Quote(value), " is longer than 253 characters");
  for (absl::string_view label : absl::StrSplit(value, '.')) {
    if (label.empty() || label.front() == '-' || label.back() == '-' ||
        std::any_of(label.begin(), label.end(),
                    [](char c) { return !IsLowerAlnum(c) && c != '-'; })) {
      return absl::StrCat(Quote(value),
                          " is not a valid name: lower-case letters, digits, '-' and '.', "
                          "starting and ending with a letter or digit (RFC 1123 subdomain)");
    }
  }
  return "";
}

std::string CheckLabelValue(absl::string_view value) {
  if (value.empty()) return "";
  if (value.size() > 63) return absl::StrCat(Quote(value), " is longer than 63 characters");
  if (!IsAlnum(value.front()) || !IsAlnum(value.back()) ||
      std::any_of(value.begin(), value.end(),
                  [](char c) { return !IsAlnum(c) && c != '-' && c != '_' && c != '.'; })) {
    return absl::StrCat(Quote(value),
                        " may hold only letters, digits, '-', '_' and '.', starting and ending "
                        "with a letter or digit");
  }
  return "";
}

std::string CheckLabelKey(absl::string_view key) {
  absl::string_view name = key;
  if (size_t slash = key.find('/'); slash != absl::string_view::npos) {
    if (std::string e = CheckDnsSubdomain(key.substr(0, slash)); !e.empty()) {
      return absl::StrCat("the prefix of ", Quote(key), ": ", e);
    }
    name = key.substr(slash + 1);
  }
  if (name.empty()) return absl::StrCat(Quote(key), " has an empty name");
  if (std::string e = CheckLabelValue(name); !e.empty()) return e;
  return "";
}

std::string CheckPort(int64_t port) {
  if (port < 1 || port > 65535) return absl::StrCat(port, " is not a port (1 to 65535)");
  return "";
}

std::string CheckPortName(absl::string_view name) {
  bool letter = false;
  for (char c : name) {
    if (c >= 'a' && c <= 'z') letter = true;
    if (!IsLowerAlnum(c) && c != '-') {
      return absl::StrCat(Quote(name), " may hold only lower-case letters, digits and '-'");
    }
  }
  if (name.empty() || name.size() > 15 || !letter || name.front() == '-' || name.back() == '-' ||
      absl::StrContains(name, "--")) {
    return absl::StrCat(Quote(name),
                        " is not a port name: 1 to 15 of a-z, 0-9 and '-', with at least one "
                        "letter, no '--', not starting or ending with '-'");
  }
  return "";
}

std::string CheckHeaderName(absl::string_view name) {
  if (name.empty()) return "must not be empty";
  for (char c : name) {
    if (!IsAlnum(c) && !absl::StrContains("!#$%&'*+-.^_`|~", c)) {
      return absl::StrCat(Quote(name), " is not a valid HTTP header name");
    }
  }
  return "";
}

std::string CheckCookieName(absl::string_view name) {
  if (name.empty()) return "must not be empty";
  if (!CheckHeaderName(name).empty()) {
    return absl::StrCat(Quote(name), " is not a valid cookie name (RFC 6265 token)");
  }
  return "";
}

std::string CheckHostname(absl::string_view host, bool allow_wildcard) {
  absl::string_view rest = host;
  if (allow_wildcard) absl::ConsumePrefix(&rest, "*.");
  if (absl::StrContains(rest, ':')) {
    return absl::StrCat(Quote(host), " is not a hostname (no port here)");
  }
  if (std::string e = CheckDnsSubdomain(rest); !e.empty()) {
    return absl::StrCat(Quote(host), " is not a hostname",
                        allow_wildcard ? " (a DNS name, optionally starting with \"*.\")" : "");
  }
  if (std::all_of(rest.begin(), rest.end(),
                  [](char c) { return c == '.' || absl::ascii_isdigit(c); })) {
    return absl::StrCat(Quote(host), " is an IP address, not a hostname");
  }
  return "";
}

std::string CheckIpAddress(absl::string_view address, bool ipv6) {
  unsigned char buf[16];
  const std::string a(address);
  if (inet_pton(ipv6 ? AF_INET6 : AF_INET, a.c_str(), buf) != 1) {
    return absl::StrCat(Quote(address), " is not an ", ipv6 ? "IPv6" : "IPv4", " address");
  }
  return "";
}

std::string CheckRegex(absl::string_view pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  RE2 re(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re.ok()) {
    return absl::StrCat(Quote(pattern),
                        " is not a valid regular expression (RE2 syntax): ", re.error());
  }
  return "";
}

std::string CheckTrustDomain(absl::string_view domain) {
  if (domain.empty()) return "must not be empty";
  if (domain.size() > 255) return absl::StrCat(Quote(domain), " is longer than 255 characters");
  for (char c : domain) {
    if (!IsLowerAlnum(c) && c != '.' && c != '-' && c != '_') {
      return absl::StrCat(Quote(domain),
                          " is not a trust domain: lower-case letters, digits, '.', '-' and '_'");
    }
  }
  return "";
}

}  // namespace outrigger::policy
