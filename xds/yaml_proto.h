// Loads YAML into protobuf messages: YAML -> JSON -> protobuf's JSON parser, guided by the message
// descriptor so that every error names the file, line, column, field path and problem.
#ifndef OUTRIGGER_XDS_YAML_PROTO_H_
#define OUTRIGGER_XDS_YAML_PROTO_H_

#include <string>
#include <string_view>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"

namespace google::protobuf {
class Message;
}

namespace outrigger::xds {

// Parses `yaml` (one document) into `msg`. Unknown fields, wrong shapes and bad values are errors
// of the form "SOURCE:LINE:COL: field.path: problem". `source` names the input in errors.
absl::Status YamlToProto(absl::string_view yaml, absl::string_view source,
                         google::protobuf::Message* msg);

// Reads the file at `path` and parses it as above.
absl::Status YamlFileToProto(const std::string& path, google::protobuf::Message* msg);

}  // namespace outrigger::xds

#endif  // OUTRIGGER_XDS_YAML_PROTO_H_
