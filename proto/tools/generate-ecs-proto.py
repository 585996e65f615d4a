#!/usr/bin/env python3
"""Generates proto/ecslite/v1/ecs.proto from the ECS API model.

Every message is an ECS shape with the same name and members, so the proto3 JSON
names are ECS's JSON names and a task definition written for ECS parses unchanged.
Rules:
  - field names are ECS's member names verbatim (camelCase), so json_name == ECS name;
  - field numbers never change: every field already in ecs.proto keeps its number (stored records and
    clients depend on them); a new member gets the next unused number of its message; a member the
    model no longer has is removed and its number reserved, never reused;
  - every scalar is `optional`: absent differs from zero (essential, hostPort, ...),
    and responses omit what was never set, as ECS's do;
  - ECS enums stay strings: the JSON is ECS's own ("awsvpc", "tcp") and the core
    validates them with an error that names the field;
  - timestamps are google.protobuf.Timestamp.
It also writes the model's per-member rules (required, enum values, min/max,
pattern) as a C# table the core's shape validator walks, so the model stays the
single spelling authority for enum words too.
Usage (from the repo root): proto/tools/generate-ecs-proto.py [MODEL] [--out DIR]
MODEL defaults to proto/model/ecs-api-model.json; --out writes the two files under DIR (same relative
paths) instead of into the repository, reading the numbers to keep from the repository's ecs.proto.
Add an action to ACTIONS once it is implemented, then run it again.
"""
import html, json, os, re, sys

ACTIONS = [
    "CreateCluster", "DescribeClusters", "ListClusters", "DeleteCluster",
    "RegisterTaskDefinition", "DescribeTaskDefinition", "ListTaskDefinitions",
    "ListTaskDefinitionFamilies", "DeregisterTaskDefinition", "DeleteTaskDefinitions",
    "TagResource", "UntagResource", "ListTagsForResource",
    "ListContainerInstances", "DescribeContainerInstances", "DeregisterContainerInstance",
    "UpdateContainerInstancesState", "PutAttributes", "DeleteAttributes", "ListAttributes",
    "RunTask", "StartTask", "StopTask", "DescribeTasks", "ListTasks",
    "CreateService", "UpdateService", "DeleteService", "DescribeServices", "ListServices",
]

SCALARS = {"string": "string", "boolean": "bool", "integer": "int32", "long": "int64",
           "double": "double", "float": "float", "blob": "bytes"}


def summary(doc, width=76):
    text = html.unescape(re.sub(r"<[^>]+>", "", doc or "")).strip()
    first = re.split(r"(?<=\.)\s", text, maxsplit=1)[0] if text else ""
    lines, line = [], ""
    for word in first.split():
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return lines


def existing_numbers(proto_path):
    """{message: ({field: number}, {reserved numbers})} from an ecs.proto this script wrote before."""
    numbers = {}
    if not os.path.exists(proto_path):
        return numbers
    text = open(proto_path).read()
    for name, body in re.findall(r"^message (\w+) \{\n(.*?)^\}", text, re.S | re.M):
        fields = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+(?:[\w.<>, ]+ )?(\w+) = (\d+);$", body, re.M)}
        reserved = {int(n) for line in re.findall(r"^\s+reserved ([\d, ]+);$", body, re.M) for n in line.split(",")}
        numbers[name] = (fields, reserved)
    return numbers


def number_fields(name, members, kept):
    """(member, number) in model order: kept numbers first claimed, new members after the highest ever used."""
    fields, reserved = kept.get(name, ({}, set()))
    used = set(fields.values()) | reserved
    next_number = max(used, default=0) + 1
    numbered = []
    for member in members:
        if member in fields:
            numbered.append((member, fields[member]))
        else:
            numbered.append((member, next_number))
            next_number += 1
    gone = sorted(reserved | {n for m, n in fields.items() if m not in members})
    return numbered, gone


def main(model_path, out_dir=None):
    model = json.load(open(model_path))
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    kept = existing_numbers(os.path.join(root, "proto", "ecslite", "v1", "ecs.proto"))
    shapes, ops = model["shapes"], model["operations"]
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        shape = shapes[name]
        if shape["type"] == "structure":
            for member in shape.get("members", {}).values():
                visit(member["shape"])
            order.append(name)
        elif shape["type"] == "list":
            visit(shape["member"]["shape"])
        elif shape["type"] == "map":
            visit(shape["value"]["shape"])

    for action in ACTIONS:
        visit(ops[action]["input"]["shape"])
        visit(ops[action]["output"]["shape"])

    def field_type(shape_name):
        shape = shapes[shape_name]
        kind = shape["type"]
        if kind == "timestamp":
            return "optional", "google.protobuf.Timestamp"
        if kind in SCALARS:
            return "optional", SCALARS[kind]
        if kind == "structure":
            return "", shape_name
        if kind == "list":
            label, inner = field_type(shape["member"]["shape"])
            return "repeated", inner
        if kind == "map":
            _, value = field_type(shape["value"]["shape"])
            return "", f"map<string, {value}>"
        raise ValueError(f"unhandled shape type {kind} ({shape_name})")

    out = []
    w = out.append
    w("// Generated by proto/tools/generate-ecs-proto.py from the ECS API model; do not edit by hand.")
    w("// Messages are ECS shapes with ECS's member names, so proto3 JSON is ECS JSON.")
    w('syntax = "proto3";')
    w("")
    w("package ecslite.v1;")
    w("")
    w('option csharp_namespace = "EcsLite.Api.V1";')
    w("")
    w('import "google/protobuf/timestamp.proto";')
    w("")
    w("// Amazon ECS's control-plane actions, one RPC per action, named as ECS names them.")
    w("service Ecs {")
    for action in ACTIONS:
        op = ops[action]
        for line in summary(op.get("documentation")):
            w(f"  // {line}")
        w(f"  rpc {action}({op['input']['shape']}) returns ({op['output']['shape']});")
    w("}")
    for name in sorted(order):
        shape = shapes[name]
        w("")
        for line in summary(shape.get("documentation")):
            w(f"// {line}")
        w(f"message {name} {{")
        members = shape.get("members", {})
        numbered, gone = number_fields(name, list(members), kept)
        for member, number in numbered:
            label, type_name = field_type(members[member]["shape"])
            prefix = f"{label} " if label else ""
            w(f"  {prefix}{type_name} {member} = {number};")
        if gone:
            w(f"  reserved {', '.join(str(n) for n in gone)};")
        w("}")
    target = out_dir or root
    for relative, text in [
        (os.path.join("proto", "ecslite", "v1", "ecs.proto"), "\n".join(out) + "\n"),
        (os.path.join("coordinator", "EcsLite.Coordinator.Core", "Validation", "ShapeRules.g.cs"), rules_table(shapes, order)),
    ]:
        path = os.path.join(target, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def cs_string(value):
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rules_table(shapes, order):
    rows = []
    for name in sorted(order):
        shape = shapes[name]
        required = set(shape.get("required", []))
        for member, ref in shape.get("members", {}).items():
            target = shapes[ref["shape"]]
            if target["type"] == "list" and "enum" in shapes[target["member"]["shape"]]:
                enum = shapes[target["member"]["shape"]]["enum"]
            else:
                enum = target.get("enum")
            lo, hi, pattern = target.get("min"), target.get("max"), target.get("pattern")
            if not (member in required or enum or lo is not None or hi is not None or pattern):
                continue
            args = [f"Required: {'true' if member in required else 'false'}"]
            if enum:
                args.append("Enum: [" + ", ".join(cs_string(e) for e in enum) + "]")
            if lo is not None:
                args.append(f"Min: {lo}")
            if hi is not None:
                args.append(f"Max: {hi}")
            if pattern:
                args.append(f"Pattern: @\"^{pattern}$\"")
            rows.append(f'        ["{name}.{member}"] = new({", ".join(args)}),')
    return "\n".join([
        "// <auto-generated>Generated by proto/tools/generate-ecs-proto.py from the ECS API model; do not edit by hand.</auto-generated>",
        "namespace EcsLite.Coordinator.Core.Validation;",
        "",
        "internal static partial class ShapeRules",
        "{",
        "    /// <summary>Per-member rules of the ECS model, keyed by \"Shape.member\".</summary>",
        "    private static readonly Dictionary<string, MemberRule> Table = new(StringComparer.Ordinal)",
        "    {",
        *rows,
        "    };",
        "}",
        "",
    ])


if __name__ == "__main__":
    args = sys.argv[1:]
    out = None
    if "--out" in args:
        out = args[args.index("--out") + 1]
        del args[args.index("--out"):args.index("--out") + 2]
    here = os.path.dirname(os.path.abspath(__file__))
    main(args[0] if args else os.path.join(here, "..", "model", "ecs-api-model.json"), out)
