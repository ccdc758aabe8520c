// See authorization.h.
#include "filters/authz/authorization.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "outrigger/v1/config.pb.h"

namespace outrigger::authz {

namespace {

absl::StatusOr<StringMatch> ParseMatch(absl::string_view text, absl::string_view field) {
  StringMatch m;
  if (text == "*") {
    m.kind = StringMatch::Kind::kAny;
  } else if (absl::EndsWith(text, "*")) {
    m.kind = StringMatch::Kind::kPrefix;
    m.value = std::string(text.substr(0, text.size() - 1));
  } else if (absl::StartsWith(text, "*")) {
    m.kind = StringMatch::Kind::kSuffix;
    m.value = std::string(text.substr(1));
  } else {
    m.value = std::string(text);
  }
  if (m.value.find('*') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": '", text, "': '*' only at the start or the end"));
  }
  if (text.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": empty"));
  return m;
}

absl::Status ParseMatches(const google::protobuf::RepeatedPtrField<std::string>& in,
                          const std::string& field, std::vector<StringMatch>* out) {
  for (int i = 0; i < in.size(); ++i) {
    auto m = ParseMatch(in[i], absl::StrCat(field, "[", i, "]"));
    if (!m.ok()) return m.status();
    out->push_back(*std::move(m));
  }
  return absl::OkStatus();
}

// The namespace of spiffe://<td>/ns/<ns>/sa/<sa>, or "".
absl::string_view NamespaceOf(absl::string_view principal) {
  const size_t ns = principal.find("/ns/");
  if (ns == absl::string_view::npos) return {};
  absl::string_view rest = principal.substr(ns + 4);
  return rest.substr(0, rest.find('/'));
}

template <typename T, typename F>
bool AnyOf(const std::vector<T>& list, F f) {
  for (const auto& x : list) {
    if (f(x)) return true;
  }
  return false;
}

bool RuleMatches(const Rule& r, const Request& q, absl::string_view path) {
  // Identity conditions need an authenticated caller; a plaintext caller has no principal.
  if (!r.principals.empty() &&
      (q.principal.empty() ||
       !AnyOf(r.principals, [&](const StringMatch& m) { return m.Matches(q.principal); }))) {
    return false;
  }
  if (!r.namespaces.empty()) {
    const absl::string_view ns = NamespaceOf(q.principal);
    if (ns.empty() || !AnyOf(r.namespaces, [&](const std::string& n) { return n == ns; })) {
      return false;
    }
  }
  if (!r.paths.empty() &&
      !AnyOf(r.paths, [&](const StringMatch& m) { return m.Matches(path); })) {
    return false;
  }
  if (!r.methods.empty() &&
      !AnyOf(r.methods, [&](const std::string& m) { return m == q.method; })) {
    return false;
  }
  for (const auto& h : r.headers) {
    auto v = q.header(h.name);
    if (!v || !AnyOf(h.values, [&](const std::string& want) { return want == *v; })) {
      return false;
    }
  }
  if (!q.principal.empty() &&
      AnyOf(r.not_principals, [&](const StringMatch& m) { return m.Matches(q.principal); })) {
    return false;
  }
  if (AnyOf(r.not_paths, [&](const StringMatch& m) { return m.Matches(path); })) return false;
  return true;
}

bool PolicyMatches(const Policy& p, const Request& q, absl::string_view path) {
  return AnyOf(p.rules, [&](const Rule& r) { return RuleMatches(r, q, path); });
}

}  // namespace

bool StringMatch::Matches(absl::string_view s) const {
  switch (kind) {
    case Kind::kAny: return !s.empty();
    case Kind::kExact: return s == value;
    case Kind::kPrefix: return absl::StartsWith(s, value);
    case Kind::kSuffix: return absl::EndsWith(s, value);
  }
  return false;
}

absl::StatusOr<std::shared_ptr<const Authorizer>> Authorizer::FromProto(
    const google::protobuf::RepeatedPtrField<v1::AuthorizationPolicy>& policies) {
  auto out = std::make_shared<Authorizer>();
  for (int i = 0; i < policies.size(); ++i) {
    const auto& p = policies[i];
    const std::string pf = absl::StrCat("authorization[", i, "]");
    Policy policy;
    policy.name = p.name().empty() ? pf : p.name();
    policy.deny = p.action() == v1::AuthorizationPolicy::DENY;
    policy.dry_run = p.dry_run();
    for (int j = 0; j < p.rules_size(); ++j) {
      const auto& r = p.rules(j);
      const std::string rf = absl::StrCat(pf, ".rules[", j, "]");
      Rule rule;
      if (auto s = ParseMatches(r.principals(), rf + ".principals", &rule.principals); !s.ok()) {
        return s;
      }
      if (auto s = ParseMatches(r.paths(), rf + ".paths", &rule.paths); !s.ok()) return s;
      if (auto s = ParseMatches(r.not_principals(), rf + ".not_principals",
                                &rule.not_principals);
          !s.ok()) return s;
      if (auto s = ParseMatches(r.not_paths(), rf + ".not_paths", &rule.not_paths); !s.ok()) {
        return s;
      }
      rule.namespaces.assign(r.namespaces().begin(), r.namespaces().end());
      rule.methods.assign(r.methods().begin(), r.methods().end());
      for (int k = 0; k < r.headers_size(); ++k) {
        const auto& h = r.headers(k);
        if (h.name().empty()) {
          return absl::InvalidArgumentError(absl::StrCat(rf, ".headers[", k, "].name: empty"));
        }
        rule.headers.push_back({absl::AsciiStrToLower(h.name()),
                                {h.values().begin(), h.values().end()}});
      }
      policy.rules.push_back(std::move(rule));
    }
    out->policies_.push_back(std::move(policy));
  }
  return std::shared_ptr<const Authorizer>(std::move(out));
}

Decision Authorizer::Decide(const Request& q) const {
  Decision d;
  const absl::string_view path = q.path.substr(0, q.path.find('?'));
  // Dry-run policies: what they would say, reported only.
  std::string dry_allow_names;
  bool dry_allowed = false;
  for (const Policy& p : policies_) {
    if (!p.dry_run) continue;
    const bool match = PolicyMatches(p, q, path);
    if (p.deny && match && d.dry_run_denied_by.empty()) d.dry_run_denied_by = p.name;
    if (!p.deny) {
      absl::StrAppend(&dry_allow_names, dry_allow_names.empty() ? "" : ", ", p.name);
      dry_allowed = dry_allowed || match;
    }
  }
  if (d.dry_run_denied_by.empty() && !dry_allow_names.empty() && !dry_allowed) {
    d.dry_run_denied_by = absl::StrCat("no ALLOW policy matches: ", dry_allow_names);
  }
  // Enforced: DENY first, then ALLOW.
  bool allow_exists = false;
  for (const Policy& p : policies_) {
    if (p.dry_run || !p.deny) continue;
    if (PolicyMatches(p, q, path)) {
      d.allowed = false;
      d.policy = p.name;
      return d;
    }
  }
  for (const Policy& p : policies_) {
    if (p.dry_run || p.deny) continue;
    allow_exists = true;
    if (PolicyMatches(p, q, path)) {
      d.policy = p.name;
      return d;
    }
  }
  if (allow_exists) d.allowed = false;  // policies allow some callers, not this one
  return d;
}

}  // namespace outrigger::authz
