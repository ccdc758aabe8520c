// The `outrigger.dev/v1alpha1` `AuthorizationPolicy` kind: who may call the workloads of a
// Service (its targetRef) or, without a targetRef, every workload of the policy's namespace; the
// workloads' own sidecars enforce it (filters/authz). An ALLOW (default) or DENY policy, enforced
// or (mode DryRun) only logged, with rules on the caller's SPIFFE ID and namespace and on the
// request's path, method and headers. The patterns are checked here as the proxies will match
// them, so that a policy the control plane accepts is never refused by a proxy.
#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "controlplane/policy/field_checks.h"
#include "controlplane/policy/kinds/kind_support.h"

namespace outrigger::policy {
namespace {

constexpr absl::string_view kSpiffeScheme = "spiffe://";

std::string Quote(absl::string_view v) { return absl::StrCat("'", v, "'"); }

bool HasSpaceOrControl(absl::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; });
}

// The path of a whole SPIFFE ID ("/ns/shop/sa/cart"): '/'-separated non-empty segments of
// letters, digits, '.', '-' and '_' (the SPIFFE ID spec).
bool IsSpiffePath(absl::string_view path) {
  if (path.size() < 2 || path[0] != '/' || path.back() == '/') return false;
  if (absl::StrContains(path, "//")) return false;
  return std::all_of(path.begin(), path.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == '-' ||
           c == '_';
  });
}

// A caller identity as the proxies match it: "*" (any authenticated caller), a whole SPIFFE ID
// ("spiffe://cluster.local/ns/shop/sa/cart"), a prefix of one ("spiffe://cluster.local/ns/shop/*")
// or a suffix ("*/sa/cart").
std::string CheckPrincipal(absl::string_view p) {
  if (p.empty()) return "must not be empty";
  if (p == "*") return "";
  absl::string_view body = p;
  const bool suffix = absl::ConsumePrefix(&body, "*");
  const bool prefix = !suffix && absl::ConsumeSuffix(&body, "*");
  if (absl::StrContains(body, '*')) {
    return absl::StrCat(Quote(p), ": '*' only once, at the start or the end (\"spiffe://",
                        "cluster.local/ns/shop/*\", \"*/sa/cart\" or \"*\")");
  }
  if (HasSpaceOrControl(p)) {
    return absl::StrCat(Quote(p), " must not contain spaces or control characters");
  }
  if (suffix) return "";
  if (!absl::StartsWith(body, kSpiffeScheme)) {
    return absl::StrCat(Quote(p),
                        " is not a SPIFFE ID (spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/ACCOUNT), a "
                        "prefix of one ending in '*', a suffix starting with '*', or \"*\"");
  }
  if (prefix) return "";
  const absl::string_view rest = body.substr(kSpiffeScheme.size());
  const size_t slash = rest.find('/');
  const absl::string_view domain = rest.substr(0, slash);
  if (std::string e = CheckTrustDomain(domain); !e.empty()) {
    return absl::StrCat(Quote(p), ": trust domain ", e);
  }
  if (slash == absl::string_view::npos || !IsSpiffePath(rest.substr(slash))) {
    return absl::StrCat(Quote(p), " is not a SPIFFE ID: spiffe://", domain,
                        "/ then '/'-separated segments of letters, digits, '.', '-' and '_' "
                        "(a workload is spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/ACCOUNT)");
  }
  return "";
}

// A request path as the proxies match it (without the query): exact, or a prefix ending in '*'.
std::string CheckPathPattern(absl::string_view p) {
  if (p.empty()) return "must not be empty";
  if (p[0] != '/') {
    return absl::StrCat(
        Quote(p), " must start with '/' (an exact path, or a prefix ending in '*': \"/api/*\")");
  }
  absl::string_view body = p;
  absl::ConsumeSuffix(&body, "*");
  if (absl::StrContains(body, '*')) {
    return absl::StrCat(Quote(p), ": '*' only at the end (a prefix: \"/api/*\")");
  }
  if (absl::StrContains(p, '?') || absl::StrContains(p, '#')) {
    return absl::StrCat(Quote(p), ": paths are matched without the query: no '?' or '#'");
  }
  if (HasSpaceOrControl(p)) {
    return absl::StrCat(Quote(p), " must not contain spaces or control characters");
  }
  return "";
}

// Methods are compared exactly, and HTTP methods are case-sensitive: "get" would match nothing.
std::string CheckMethod(absl::string_view m) {
  if (m.empty()) return "must not be empty";
  if (!CheckHeaderName(m).empty()) {
    return absl::StrCat(Quote(m), " is not an HTTP method (a token such as GET)");
  }
  if (std::any_of(m.begin(), m.end(),
                  [](char c) { return absl::ascii_islower(static_cast<unsigned char>(c)); })) {
    return absl::StrCat(Quote(m), " must be upper-case (", absl::AsciiStrToUpper(m),
                        "): methods are case-sensitive");
  }
  return "";
}

// A header value compared exactly with what the caller sent (after HTTP's trimming).
std::string CheckHeaderValue(absl::string_view v) {
  if (v.empty()) return "must not be empty";
  if (std::any_of(v.begin(), v.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; })) {
    return absl::StrCat(Quote(v), ": a header value cannot hold CR, LF or NUL");
  }
  if (absl::ascii_isspace(static_cast<unsigned char>(v.front())) ||
      absl::ascii_isspace(static_cast<unsigned char>(v.back()))) {
    return absl::StrCat(Quote(v),
                        " starts or ends with whitespace, which HTTP strips: it would never match");
  }
  return "";
}

template <typename Check>
std::vector<std::string> StringList(const std::string& path,
                                    const google::protobuf::RepeatedPtrField<std::string>& in,
                                    Check check, FieldErrors* err) {
  std::vector<std::string> out;
  for (int i = 0; i < in.size(); ++i) {
    err->Check(Item(path, i), check(in[i]));
    out.push_back(in[i]);
  }
  return out;
}

AuthorizationRule ConvertRule(const std::string& path, const v1::AuthorizationRuleSpec& in,
                              FieldErrors* err) {
  AuthorizationRule out;
  out.principals =
      StringList(absl::StrCat(path, ".principals"), in.principals(), CheckPrincipal, err);
  out.namespaces =
      StringList(absl::StrCat(path, ".namespaces"), in.namespaces(), CheckDnsLabel, err);
  out.paths = StringList(absl::StrCat(path, ".paths"), in.paths(), CheckPathPattern, err);
  out.methods = StringList(absl::StrCat(path, ".methods"), in.methods(), CheckMethod, err);
  for (int i = 0; i < in.headers_size(); ++i) {
    const v1::HeaderConditionSpec& h = in.headers(i);
    const std::string item = Item(absl::StrCat(path, ".headers"), i);
    err->Check(absl::StrCat(item, ".name"), CheckHeaderName(h.name()));
    if (h.values().empty()) {
      err->Add(absl::StrCat(item, ".values"),
               "required: at least one value (the header must be present with one of them)");
    }
    HeaderCondition condition;
    condition.name = absl::AsciiStrToLower(h.name());
    condition.values = StringList(absl::StrCat(item, ".values"), h.values(), CheckHeaderValue, err);
    out.headers.push_back(std::move(condition));
  }
  out.not_principals =
      StringList(absl::StrCat(path, ".notPrincipals"), in.not_principals(), CheckPrincipal, err);
  out.not_paths =
      StringList(absl::StrCat(path, ".notPaths"), in.not_paths(), CheckPathPattern, err);
  return out;
}

void Load(const PolicyDocument& doc, PolicySet* set, PolicyErrors* errors) {
  v1::AuthorizationPolicy msg;
  auto fields = ParseDocument(doc, &msg, errors);
  if (fields == nullptr) return;
  FieldErrors err(*fields, errors);
  AuthorizationPolicy policy;
  policy.meta = ConvertMeta(doc, msg.metadata(), fields, &err);
  const v1::AuthorizationPolicySpec& spec = msg.spec();
  if (spec.has_target_ref()) {
    policy.target_name = TargetServiceName(spec.target_ref(), "an AuthorizationPolicy", &err);
  }
  if (spec.action() == "DENY") {
    policy.action = AuthorizationAction::kDeny;
  } else if (!spec.action().empty() && spec.action() != "ALLOW") {
    err.Add("spec.action",
            absl::StrCat(Quote(spec.action()), " is not ALLOW (the default) or DENY"));
  }
  if (spec.mode() == "DryRun") {
    policy.dry_run = true;
  } else if (!spec.mode().empty() && spec.mode() != "Enforce") {
    err.Add("spec.mode", absl::StrCat(Quote(spec.mode()),
                                      " is not Enforce (the default) or DryRun (log, never deny)"));
  }
  for (int i = 0; i < spec.rules_size(); ++i) {
    policy.rules.push_back(ConvertRule(Item("spec.rules", i), spec.rules(i), &err));
  }
  set->authorization_policies.emplace(policy.meta.key(), std::move(policy));
}

// A targetRef must name a Service of the policy's namespace. Several policies may apply to one
// workload: the proxies evaluate them all.
void Check(const PolicySet& set, PolicyErrors* errors) {
  for (const AuthorizationPolicy* policy :
       InFileOrder(set, "AuthorizationPolicy", set.authorization_policies)) {
    if (policy->target_name.empty()) continue;
    CheckTargetServiceDefined(set, policy->meta, policy->target(), "an AuthorizationPolicy",
                              errors);
  }
}

}  // namespace

const PolicyKind& AuthorizationPolicyKind() {
  static const PolicyKind kind{"outrigger.dev/v1alpha1", "AuthorizationPolicy",
                               /*namespaced=*/true, &Load, &Check};
  return kind;
}

}  // namespace outrigger::policy
