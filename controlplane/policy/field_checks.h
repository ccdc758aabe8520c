// Checks of single values shared by the kinds: Kubernetes names and labels, ports, HTTP header
// names, hostnames, IP addresses and regular expressions. Each returns "" when the value is fine,
// else the problem in words (the caller adds the field path and the position).
#ifndef OUTRIGGER_CONTROLPLANE_POLICY_FIELD_CHECKS_H_
#define OUTRIGGER_CONTROLPLANE_POLICY_FIELD_CHECKS_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace outrigger::policy {

// RFC 1123 label: at most 63 of [a-z0-9-], starting and ending alphanumeric (namespaces).
std::string CheckDnsLabel(absl::string_view value);
// RFC 1123 subdomain: at most 253, dot-separated labels (resource names).
std::string CheckDnsSubdomain(absl::string_view value);
// A label (or selector) key: [prefix/]name, name at most 63 of [A-Za-z0-9-_.] starting and ending
// alphanumeric, prefix a DNS subdomain.
std::string CheckLabelKey(absl::string_view key);
// A label value: empty, or like a key's name part.
std::string CheckLabelValue(absl::string_view value);
// 1..65535.
std::string CheckPort(int64_t port);
// A named port (IANA_SVC_NAME): at most 15 of [a-z0-9-], with a letter, no "--", not starting or
// ending with '-'.
std::string CheckPortName(absl::string_view name);
// An HTTP field name (RFC 9110 token).
std::string CheckHeaderName(absl::string_view name);
// A cookie name (RFC 6265: an RFC 9110 token).
std::string CheckCookieName(absl::string_view name);
// A hostname as HTTPRoute takes it: DNS subdomain, optionally "*." first; no IP, no port.
std::string CheckHostname(absl::string_view host, bool allow_wildcard);
// An address of the given family (6 == IPv6, else IPv4).
std::string CheckIpAddress(absl::string_view address, bool ipv6);
// A regular expression in RE2 syntax (what the data plane matches with: linear time).
std::string CheckRegex(absl::string_view pattern);
// A SPIFFE trust domain: lower-case letters, digits, '.', '-', '_'; at most 255.
std::string CheckTrustDomain(absl::string_view domain);

}  // namespace outrigger::policy

#endif  // OUTRIGGER_CONTROLPLANE_POLICY_FIELD_CHECKS_H_
