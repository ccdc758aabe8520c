// Loads YAML into protobuf messages: YAML -> JSON -> protobuf's JSON parser, guided by the message
// descriptor so that every error names the file, line, column, field path and problem.
#ifndef OUTRIGGER_XDS_YAML_PROTO_H_
#define OUTRIGGER_XDS_YAML_PROTO_H_

#include <map>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"

namespace google::protobuf {
class Message;
}

namespace outrigger::xds {

// Where each field of a loaded document came from, so that errors found later (an unknown
// cluster, a duplicate name) can point at the YAML too.
class SourceMap {
 public:
  // "mesh.yaml:12:7" for "routes[0].virtual_hosts[0].routes[1].route.cluster", or for the nearest
  // enclosing field that has a position; nullopt when the path did not come from the file.
  std::optional<std::string> Locate(absl::string_view field_path) const;
  // Rewrites "field.path: problem" as "FILE:LINE:COL: field.path: problem" when it can.
  std::string Annotate(absl::string_view error) const;

  std::string source;
  std::map<std::string, std::pair<int, int>> positions;  // normalized path -> (line, column)
};

// Parses `yaml` (one document) into `msg`. Unknown fields, wrong shapes and bad values are errors
// of the form "SOURCE:LINE:COL: field.path: problem". `source` names the input in errors.
absl::Status YamlToProto(absl::string_view yaml, absl::string_view source,
                         google::protobuf::Message* msg, SourceMap* map = nullptr);

// Reads the file at `path` and parses it as above.
absl::Status YamlFileToProto(const std::string& path, google::protobuf::Message* msg,
                             SourceMap* map = nullptr);

}  // namespace outrigger::xds

#endif  // OUTRIGGER_XDS_YAML_PROTO_H_
