// Elastic Common Schema (ECS) output shared by the process log ([log] format = "ecs") and
// the access log: the fields every ecs-logging line starts with, and the table that gives
// each key=value field of a log call its ECS name and type. Depends only on log.h; no I/O.
// The names and types used are listed in tests/fixtures/ecs-fields.json, which the
// integration tests check every emitted line against; keep the two in step.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "proxy/common/log.h"

namespace proxy::log {

inline constexpr std::string_view kEcsVersion = "8.11.0";
inline constexpr std::string_view kServiceName = "apm-tls-proxy";

// Opens a JSON object with the ecs-logging fields, in the spec's order: "@timestamp"
// (now, UTC, microseconds), "log.level", "message", then "ecs.version", "service.name",
// "log.logger" and "event.dataset". The caller appends more members (appendEcs*) and '}'.
void appendEcsPrologue(std::string& out, std::string_view level, std::string_view message,
                       std::string_view logger, std::string_view dataset);

// Appends ,"name":value members (the name is written as given: dotted ECS names are flat
// keys, as the ecs-logging libraries write them).
void appendEcsString(std::string& out, std::string_view name, std::string_view value);
void appendEcsNumber(std::string& out, std::string_view name, uint64_t value);
void appendEcsBool(std::string& out, std::string_view name, bool value);

// One process-log line in ECS, newline-terminated: known keys under their ECS names
// ("error" -> error.message, "peer" -> source.ip, "reason" -> event.reason, ...), the rest
// as labels.<key> (ECS keyword labels); a few messages also carry event.* facts (a failed
// TLS handshake is event.outcome "failure"). A second field with the same ECS name goes to
// labels too, so no key repeats.
std::string formatEcsLine(Level level, std::string_view message,
                          std::initializer_list<Field> fields);

}  // namespace proxy::log
