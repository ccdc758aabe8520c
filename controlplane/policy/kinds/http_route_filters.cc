// HTTPRoute filters (see http_route_parts.h). A filter is a tagged union: `type` names the one
// field that must be set, and every other must be absent. We implement RequestHeaderModifier,
// URLRewrite, RequestRedirect and RequestMirror; ResponseHeaderModifier and ExtensionRef are
// known to the schema (so they read as "unsupported" rather than "unknown") but refused.
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "controlplane/policy/field_checks.h"
#include "controlplane/policy/kinds/http_route_parts.h"

namespace outrigger::policy {
namespace {

using Type = RouteFilter::Type;

constexpr absl::string_view kSupported =
    "RequestHeaderModifier, URLRewrite or RequestRedirect";

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
      {"ExtensionRef", "extensionRef", f.has_extension_ref(), std::nullopt},
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
  std::map<Type, int> first_of;  // type -> index of its first filter
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
      case Type::kRequestMirror: {
        const std::string mirror = absl::StrCat(item, ".requestMirror.backendRef");
        const v1::BackendObjectReference& b = in.request_mirror().backend_ref();
        if (!in.request_mirror().has_backend_ref()) {
          err->Add(mirror, "required");
          break;
        }
        f.request_mirror = ConvertBackend(
            mirror, b.group(), b.kind(), b.name(), b.namespace_(),
            b.has_port() ? std::optional<int>(b.port()) : std::nullopt, route_ns, err);
        // Refused rather than silently ignored until the proxies can mirror (traffic management).
        err->Add(absl::StrCat(item, ".type"),
                 "RequestMirror is not supported by the proxies yet; remove this filter");
        break;
      }
    }
    // Only mirrors may repeat; a redirect answers the request, so it cannot also be rewritten.
    if (auto [it, fresh] = first_of.emplace(*type, i); !fresh && *type != Type::kRequestMirror) {
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
