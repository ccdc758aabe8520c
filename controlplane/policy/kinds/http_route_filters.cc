// HTTPRoute filters (see http_route_parts.h). A filter is a tagged union: `type` names the one
// field that must be set, and every other must be absent. We implement RequestHeaderModifier,
// URLRewrite, RequestRedirect, RequestMirror and ExtensionRef to our own kinds (HTTPFault,
// LocalRateLimit); ResponseHeaderModifier is known to the schema (so it reads as "unsupported"
// rather than "unknown") but refused.
#include <algorithm>
#include <iterator>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/policy/field_checks.h"
#include "controlplane/policy/kinds/http_route_parts.h"

namespace outrigger::policy {
namespace {

using Type = RouteFilter::Type;

constexpr absl::string_view kSupported =
    "RequestHeaderModifier, URLRewrite, RequestRedirect, RequestMirror or ExtensionRef";
// The group and kinds an ExtensionRef may name.
constexpr absl::string_view kExtensionGroup = "outrigger.dev";
constexpr absl::string_view kExtensionKinds[] = {"HTTPFault", "LocalRateLimit"};

// The union's members: the YAML field name, whether it is set, and the type that selects it
// (nullopt for the members we do not support).
struct Member {
  absl::string_view type_name;
  absl::string_view field;
  bool set;
  std::optional<Type> type;
};

std::vector<Member> Members(const v1::HTTPRouteFilter& f) {
  return {
      {"RequestHeaderModifier", "requestHeaderModifier", f.has_request_header_modifier(),
       Type::kRequestHeaderModifier},
      {"URLRewrite", "urlRewrite", f.has_url_rewrite(), Type::kUrlRewrite},
      {"RequestRedirect", "requestRedirect", f.has_request_redirect(), Type::kRequestRedirect},
      {"RequestMirror", "requestMirror", f.has_request_mirror(), Type::kRequestMirror},
      {"ResponseHeaderModifier", "responseHeaderModifier", f.has_response_header_modifier(),
       std::nullopt},
      {"ExtensionRef", "extensionRef", f.has_extension_ref(), Type::kExtensionRef},
  };
}

void ConvertHeaders(const std::string& path,
                    const google::protobuf::RepeatedPtrField<v1::HTTPHeader>& in,
                    std::vector<HeaderValue>* out, FieldErrors* err) {
  std::set<std::string> seen;
  for (int i = 0; i < in.size(); ++i) {
    const std::string item = Item(path, i);
    err->Check(absl::StrCat(item, ".name"), CheckHeaderName(in[i].name()));
    if (!in[i].name().empty() && !seen.insert(absl::AsciiStrToLower(in[i].name())).second) {
      err->Add(absl::StrCat(item, ".name"),
               absl::StrCat("header '", in[i].name(), "' is given twice"));
    }
    out->push_back({in[i].name(), in[i].value()});
  }
}

HeaderModifier ConvertHeaderModifier(const std::string& path, const v1::HTTPHeaderFilter& in,
                                     FieldErrors* err) {
  HeaderModifier out;
  ConvertHeaders(absl::StrCat(path, ".set"), in.set(), &out.set, err);
  ConvertHeaders(absl::StrCat(path, ".add"), in.add(), &out.add, err);
  std::set<std::string> seen;
  for (int i = 0; i < in.remove_size(); ++i) {
    const std::string item = Item(absl::StrCat(path, ".remove"), i);
    err->Check(item, CheckHeaderName(in.remove(i)));
    if (!seen.insert(absl::AsciiStrToLower(in.remove(i))).second) {
      err->Add(item, absl::StrCat("header '", in.remove(i), "' is given twice"));
    }
    out.remove.push_back(in.remove(i));
  }
  return out;
}

// ReplacePrefixMatch only makes sense when every match of the rule is a path prefix.
void CheckPrefixMatches(const std::string& path, const std::vector<RouteMatch>& matches,
                        FieldErrors* err) {
  for (size_t i = 0; i < matches.size(); ++i) {
    if (matches[i].path.type != PathMatchType::kPathPrefix) {
      err->Add(path, absl::StrCat("ReplacePrefixMatch needs every match of the rule to be a "
                                  "PathPrefix match; matches[",
                                  i, "] is not"));
      return;
    }
  }
}

PathModifier ConvertPathModifier(const std::string& path, const v1::HTTPPathModifier& in,
                                 const std::vector<RouteMatch>& matches, FieldErrors* err) {
  PathModifier out;
  const bool full = in.type() == "ReplaceFullPath";
  if (!full && in.type() != "ReplacePrefixMatch") {
    err->Add(absl::StrCat(path, ".type"),
             in.type().empty() ? std::string("required: ReplaceFullPath or ReplacePrefixMatch")
                               : absl::StrCat("'", in.type(),
                                              "' is not ReplaceFullPath or "
                                              "ReplacePrefixMatch"));
    return out;
  }
  // The field the type names must be set, and the other must not.
  const std::string set_field = full ? "replaceFullPath" : "replacePrefixMatch";
  const std::string other_field = full ? "replacePrefixMatch" : "replaceFullPath";
  const bool has_set = full ? in.has_replace_full_path() : in.has_replace_prefix_match();
  const bool has_other = full ? in.has_replace_prefix_match() : in.has_replace_full_path();
  if (!has_set)
    err->Add(absl::StrCat(path, ".", set_field), absl::StrCat("required when type is ", in.type()));
  if (has_other) {
    err->Add(absl::StrCat(path, ".", other_field),
             absl::StrCat("must not be set when type is ", in.type()));
  }
  out.type = full ? PathModifier::Type::kReplaceFullPath : PathModifier::Type::kReplacePrefixMatch;
  out.value = full ? in.replace_full_path() : in.replace_prefix_match();
  if (has_set && !absl::StartsWith(out.value, "/")) {
    err->Add(absl::StrCat(path, ".", set_field),
             absl::StrCat("'", out.value, "' must start with '/'"));
  }
  if (!full) CheckPrefixMatches(absl::StrCat(path, ".type"), matches, err);
  return out;
}

UrlRewrite ConvertUrlRewrite(const std::string& path, const v1::HTTPURLRewriteFilter& in,
                             const std::vector<RouteMatch>& matches, FieldErrors* err) {
  UrlRewrite out;
  if (in.has_hostname()) {
    err->Check(absl::StrCat(path, ".hostname"), CheckHostname(in.hostname(), false));
    out.hostname = in.hostname();
  }
  if (in.has_path()) {
    out.path = ConvertPathModifier(absl::StrCat(path, ".path"), in.path(), matches, err);
  }
  if (!out.hostname && !out.path) err->Add(path, "sets neither hostname nor path");
  return out;
}

RequestRedirect ConvertRedirect(const std::string& path, const v1::HTTPRequestRedirectFilter& in,
                                const std::vector<RouteMatch>& matches, FieldErrors* err) {
  RequestRedirect out;
  if (in.has_scheme()) {
    if (in.scheme() != "http" && in.scheme() != "https") {
      err->Add(absl::StrCat(path, ".scheme"),
               absl::StrCat("'", in.scheme(), "' is not http or https"));
    }
    out.scheme = in.scheme();
  }
  if (in.has_hostname()) {
    err->Check(absl::StrCat(path, ".hostname"), CheckHostname(in.hostname(), false));
    out.hostname = in.hostname();
  }
  if (in.has_path()) {
    out.path = ConvertPathModifier(absl::StrCat(path, ".path"), in.path(), matches, err);
  }
  if (in.has_port()) {
    err->Check(absl::StrCat(path, ".port"), CheckPort(in.port()));
    out.port = in.port();
  }
  if (in.has_status_code()) {
    const int code = in.status_code();
    if (code != 301 && code != 302 && code != 303 && code != 307 && code != 308) {
      err->Add(absl::StrCat(path, ".statusCode"),
               absl::StrCat(code, " is not a redirect status (301, 302, 303, 307 or 308)"));
    }
    out.status_code = code;
  }
  return out;
}

// percent (0-100) or fraction (numerator/denominator, at most 1): the share of requests copied.
std::optional<double> ConvertMirrorShare(const std::string& path,
                                         const v1::HTTPRequestMirrorFilter& in, FieldErrors* err) {
  if (in.has_percent() && in.has_fraction()) {
    err->Add(absl::StrCat(path, ".fraction"), "give percent or fraction, not both");
    return std::nullopt;
  }
  if (in.has_percent()) {
    std::optional<uint32_t> p =
        RangeField(absl::StrCat(path, ".percent"), true, in.percent(), 0, 100, err);
    if (!p) return std::nullopt;
    return static_cast<double>(*p);
  }
  if (!in.has_fraction()) return std::nullopt;
  const v1::Fraction& f = in.fraction();
  const std::string fp = absl::StrCat(path, ".fraction");
  if (!f.has_numerator()) err->Add(absl::StrCat(fp, ".numerator"), "required");
  std::optional<uint32_t> num = RangeField(absl::StrCat(fp, ".numerator"), f.has_numerator(),
                                           f.numerator(), 0, kMaxCount, err);
  std::optional<uint32_t> den = RangeField(absl::StrCat(fp, ".denominator"), f.has_denominator(),
                                           f.denominator(), 1, kMaxCount, err);
  if (f.has_denominator() && !den) return std::nullopt;
  const uint32_t denominator = den.value_or(100);
  if (!num) return std::nullopt;
  if (*num > denominator) {
    err->Add(absl::StrCat(fp, ".numerator"),
             absl::StrCat(*num, " is more than the denominator (", denominator, ")"));
    return std::nullopt;
  }
  return 100.0 * *num / denominator;
}

RequestMirror ConvertMirror(const std::string& path, const v1::HTTPRequestMirrorFilter& in,
                            const std::string& route_ns, FieldErrors* err) {
  RequestMirror out;
  const std::string ref_path = absl::StrCat(path, ".backendRef");
  const v1::BackendObjectReference& b = in.backend_ref();
  if (!in.has_backend_ref()) {
    err->Add(ref_path, "required: the Service that receives the copies");
  } else {
    out.backend_ref =
        ConvertBackend(ref_path, b.group(), b.kind(), b.name(), b.namespace_(),
                       b.has_port() ? std::optional<int>(b.port()) : std::nullopt, route_ns, err);
  }
  out.percent = ConvertMirrorShare(path, in, err);
  return out;
}

// group outrigger.dev, kind HTTPFault or LocalRateLimit, and a name; the document itself is
// looked up once the whole policy is loaded (http_route.cc).
std::optional<ExtensionRef> ConvertExtensionRef(const std::string& path,
                                                const v1::LocalObjectReference& in,
                                                const std::string& route_ns, FieldErrors* err) {
  bool ok = true;
  if (in.group() != kExtensionGroup) {
    err->Add(absl::StrCat(path, ".group"),
             absl::StrCat(in.group().empty() ? std::string("required")
                                             : absl::StrCat("'", in.group(), "' is not supported"),
                          ": extension filters are of group ", kExtensionGroup, " (kinds ",
                          absl::StrJoin(kExtensionKinds, ", "), ")"));
    ok = false;
  }
  if (std::find(std::begin(kExtensionKinds), std::end(kExtensionKinds), in.kind()) ==
      std::end(kExtensionKinds)) {
    err->Add(
        absl::StrCat(path, ".kind"),
        absl::StrCat(in.kind().empty() ? std::string("required")
                                       : absl::StrCat("'", in.kind(), "' is not supported"),
                     ": an extension filter is one of ", absl::StrJoin(kExtensionKinds, ", ")));
    ok = false;
  }
  if (in.name().empty()) {
    err->Add(absl::StrCat(path, ".name"), "required");
    ok = false;
  } else if (std::string e = CheckDnsSubdomain(in.name()); !e.empty()) {
    err->Add(absl::StrCat(path, ".name"), e);
    ok = false;
  }
  if (!ok) return std::nullopt;
  return ExtensionRef{in.kind(), in.name(), route_ns};
}

// Checks the union's tag against its members; returns the type when the filter is usable.
std::optional<Type> CheckUnion(const std::string& path, const v1::HTTPRouteFilter& f,
                               FieldErrors* err) {
  const std::vector<Member> members = Members(f);
  const Member* chosen = nullptr;
  for (const Member& m : members) {
    if (m.type_name == f.type()) chosen = &m;
  }
  if (f.type().empty()) {
    err->Add(absl::StrCat(path, ".type"), absl::StrCat("required: ", kSupported));
  } else if (chosen == nullptr) {
    err->Add(absl::StrCat(path, ".type"),
             absl::StrCat("'", f.type(), "' is not a filter type (", kSupported, ")"));
  } else if (!chosen->type) {
    err->Add(
        absl::StrCat(path, ".type"),
        absl::StrCat("filter type ", f.type(), " is not supported (supported: ", kSupported, ")"));
  } else if (!chosen->set) {
    err->Add(absl::StrCat(path, ".", chosen->field),
             absl::StrCat("required when type is ", f.type()));
  }
  for (const Member& m : members) {
    if (m.set && &m != chosen) {
      err->Add(
          absl::StrCat(path, ".", m.field),
          absl::StrCat("must not be set when type is ", f.type().empty() ? "not set" : f.type(),
                       ": a filter sets only the field its type names"));
    }
  }
  if (chosen == nullptr || !chosen->type || !chosen->set) return std::nullopt;
  return chosen->type;
}

}  // namespace

std::vector<RouteFilter> ConvertFilters(const std::string& path, const v1::HTTPRouteRule& rule,
                                        const std::vector<RouteMatch>& matches,
                                        const std::string& route_ns, FieldErrors* err) {
  std::vector<RouteFilter> out;
  std::map<Type, int> first_of;                   // type -> index of its first filter
  std::map<std::string, int> first_extension_of;  // extension kind -> index of its filter
  for (int i = 0; i < rule.filters_size(); ++i) {
    const v1::HTTPRouteFilter& in = rule.filters(i);
    const std::string item = Item(absl::StrCat(path, ".filters"), i);
    std::optional<Type> type = CheckUnion(item, in, err);
    if (!type) continue;
    RouteFilter f;
    f.type = *type;
    switch (*type) {
      case Type::kRequestHeaderModifier:
        f.request_header_modifier = ConvertHeaderModifier(
            absl::StrCat(item, ".requestHeaderModifier"), in.request_header_modifier(), err);
        break;
      case Type::kUrlRewrite:
        f.url_rewrite =
            ConvertUrlRewrite(absl::StrCat(item, ".urlRewrite"), in.url_rewrite(), matches, err);
        break;
      case Type::kRequestRedirect:
        f.request_redirect = ConvertRedirect(absl::StrCat(item, ".requestRedirect"),
                                             in.request_redirect(), matches, err);
        break;
      case Type::kRequestMirror:
        f.request_mirror =
            ConvertMirror(absl::StrCat(item, ".requestMirror"), in.request_mirror(), route_ns, err);
        break;
      case Type::kExtensionRef:
        f.extension_ref = ConvertExtensionRef(absl::StrCat(item, ".extensionRef"),
                                              in.extension_ref(), route_ns, err);
        if (!f.extension_ref) continue;
        // A route has one fault and one rate limit: each kind at most once per rule.
        if (auto [it, fresh] = first_extension_of.emplace(f.extension_ref->kind, i); !fresh) {
          err->Add(absl::StrCat(item, ".extensionRef.kind"),
                   absl::StrCat("a rule takes one ", f.extension_ref->kind, " (also filters[",
                                it->second, "])"));
        }
        break;
    }
    // Mirrors and extensions may repeat; a redirect answers the request, so it cannot also be
    // rewritten.
    if (auto [it, fresh] = first_of.emplace(*type, i);
        !fresh && *type != Type::kRequestMirror && *type != Type::kExtensionRef) {
      err->Add(
          absl::StrCat(item, ".type"),
          absl::StrCat(in.type(), " is given twice in one rule (also filters[", it->second, "])"));
    }
    out.push_back(std::move(f));
  }
  if (first_of.count(Type::kUrlRewrite) && first_of.count(Type::kRequestRedirect)) {
    err->Add(Item(absl::StrCat(path, ".filters"), first_of[Type::kRequestRedirect]),
             "a rule cannot have both a RequestRedirect and a URLRewrite filter");
  }
  return out;
}

}  // namespace outrigger::policy
