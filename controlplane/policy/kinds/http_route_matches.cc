// HTTPRoute matches (see http_route_parts.h): path (Exact, PathPrefix, RegularExpression),
// headers, query parameters and method, with the Gateway API's defaults and rules. Regular
// expressions are RE2, what the data plane matches with.
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "controlplane/policy/field_checks.h"
#include "controlplane/policy/kinds/http_route_parts.h"

namespace outrigger::policy {
namespace {

constexpr absl::string_view kMethods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                          "CONNECT", "OPTIONS", "TRACE", "PATCH"};

// The Gateway API's rules for Exact and PathPrefix values.
std::string CheckPathValue(absl::string_view value) {
  if (!absl::StartsWith(value, "/")) return absl::StrCat("'", value, "' must start with '/'");
  for (absl::string_view bad : {"//", "/./", "/../", "%2f", "%2F", "#"}) {
    if (absl::StrContains(value, bad)) {
      return absl::StrCat("'", value, "' must not contain '", bad, "'");
    }
  }
  if (absl::EndsWith(value, "/..") || absl::EndsWith(value, "/.")) {
    return absl::StrCat("'", value, "' must not end with '/.' or '/..'");
  }
  return "";
}

PathMatch ConvertPath(const std::string& path, const v1::HTTPPathMatch& in, FieldErrors* err) {
  PathMatch out;
  const std::string& type = in.type();
  if (type.empty() || type == "PathPrefix") {
    out.type = PathMatchType::kPathPrefix;
  } else if (type == "Exact") {
    out.type = PathMatchType::kExact;
  } else if (type == "RegularExpression") {
    out.type = PathMatchType::kRegularExpression;
  } else {
    err->Add(absl::StrCat(path, ".type"),
             absl::StrCat("'", type,
                          "' is not a path match type (Exact, PathPrefix or "
                          "RegularExpression)"));
  }
  if (in.has_value()) out.value = in.value();
  if (out.type == PathMatchType::kRegularExpression) {
    err->Check(absl::StrCat(path, ".value"), CheckRegex(out.value));
  } else {
    err->Check(absl::StrCat(path, ".value"), CheckPathValue(out.value));
  }
  return out;
}

// Headers and query parameters share a shape. Header names compare without case.
template <typename Msg>
std::vector<ValueMatch> ConvertValueMatches(const std::string& path,
                                            const google::protobuf::RepeatedPtrField<Msg>& in,
                                            bool header, FieldErrors* err) {
  std::vector<ValueMatch> out;
  std::set<std::string> seen;
  for (int i = 0; i < in.size(); ++i) {
    const std::string item = Item(path, i);
    ValueMatch m;
    m.name = header ? absl::AsciiStrToLower(in[i].name()) : in[i].name();
    m.value = in[i].value();
    if (header) {
      err->Check(absl::StrCat(item, ".name"), CheckHeaderName(m.name));
    } else if (m.name.empty()) {
      err->Add(absl::StrCat(item, ".name"), "required");
    }
    if (!m.name.empty() && !seen.insert(m.name).second) {
      err->Add(absl::StrCat(item, ".name"),
               absl::StrCat("'", in[i].name(), "' is matched twice in one match"));
    }
    if (in[i].type().empty() || in[i].type() == "Exact") {
      m.type = ValueMatchType::kExact;
    } else if (in[i].type() == "RegularExpression") {
      m.type = ValueMatchType::kRegularExpression;
      err->Check(absl::StrCat(item, ".value"), CheckRegex(m.value));
    } else {
      err->Add(absl::StrCat(item, ".type"), absl::StrCat("'", in[i].type(),
                                                         "' is not a match type (Exact or "
                                                         "RegularExpression)"));
    }
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

std::vector<RouteMatch> ConvertMatches(const std::string& path, const v1::HTTPRouteRule& rule,
                                       FieldErrors* err) {
  std::vector<RouteMatch> out;
  for (int i = 0; i < rule.matches_size(); ++i) {
    const v1::HTTPRouteMatch& in = rule.matches(i);
    const std::string item = Item(absl::StrCat(path, ".matches"), i);
    RouteMatch m;
    m.path = ConvertPath(absl::StrCat(item, ".path"), in.path(), err);
    m.headers = ConvertValueMatches(absl::StrCat(item, ".headers"), in.headers(), true, err);
    m.query_params =
        ConvertValueMatches(absl::StrCat(item, ".queryParams"), in.query_params(), false, err);
    m.method = in.method();
    if (!m.method.empty() &&
        std::find(std::begin(kMethods), std::end(kMethods), m.method) == std::end(kMethods)) {
      err->Add(absl::StrCat(item, ".method"),
               absl::StrCat("'", m.method,
                            "' is not an HTTP method (GET, HEAD, POST, PUT, "
                            "DELETE, CONNECT, OPTIONS, TRACE or PATCH)"));
    }
    out.push_back(std::move(m));
  }
  if (out.empty()) out.emplace_back();  // no matches: every request, as PathPrefix "/"
  return out;
}

}  // namespace outrigger::policy
