"""``POST /prompt`` validation with the real error shapes, order and coercions.

The generator branches on ``error.type`` and ``node_errors[..].errors[].type``, and relies on
numeric strings being coerced and on a prompt with one good output being accepted (200 with
``node_errors``). The walk below follows ComfyUI's algorithm: validate every output node
recursively, coerce literals in place, report errors only on the node that owns them, and
list every output that depends on a bad node.

One node's errors are listed in schema order (as in the capture). The real server walks the
inputs as a ``set``, so its order changes with each process's string hashing: clients must
treat ``errors`` as unordered.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

from .schema import NodeDef

Validated = dict[str, tuple[bool, list[dict[str, Any]], str]]


def full_type_name(kind: type) -> str:
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _error(kind: str, message: str, details: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def types_match(received: Any, wanted: Any) -> bool:
    if received == wanted or received == "*" or wanted == "*":
        return True
    if not isinstance(received, str) or not isinstance(wanted, str):
        return False
    return set(received.split(",")) <= set(wanted.split(","))


COERCE = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}


def _check_literal(
    name: str,
    val: Any,
    kind: Any,
    opts: dict[str, Any],
    info: list[Any],
    inputs: dict[str, Any],
    custom: tuple[str, ...],
) -> dict[str, Any] | None:
    if isinstance(val, dict) and "__value__" in val:
        val = inputs[name] = val["__value__"]
    if isinstance(kind, str) and kind in COERCE:
        try:
            val = inputs[name] = COERCE[kind](val)
        except (TypeError, ValueError) as ex:
            return _error(
                "invalid_input_type",
                f"Failed to convert an input value to a {kind} value",
                f"{name}, {val}, {ex}",
                input_name=name,
                input_config=info,
                received_value=val,
                exception_message=str(ex),
            )
    if name in custom:
        return None
    if "min" in opts and val < opts["min"]:
        return _error(
            "value_smaller_than_min",
            f"Value {val} smaller than min of {opts['min']}",
            name,
            input_name=name,
            input_config=info,
            received_value=val,
        )
    if "max" in opts and val > opts["max"]:
        return _error(
            "value_bigger_than_max",
            f"Value {val} bigger than max of {opts['max']}",
            name,
            input_name=name,
            input_config=info,
            received_value=val,
        )
    if isinstance(kind, list) and val not in kind:
        big = len(kind) > 20
        listing = f"(list of length {len(kind)})" if big else str(kind)
        return _error(
            "value_not_in_list",
            "Value not in list",
            f"{name}: '{val}' not in {listing}",
            input_name=name,
            input_config=None if big else info,
            received_value=val,
        )
    return None


def validate_node(
    prompt: dict[str, Any], node_id: str, validated: Validated, catalog: dict[str, NodeDef]
) -> tuple[bool, list[dict[str, Any]], str]:
    if node_id in validated:
        return validated[node_id]
    inputs = prompt[node_id]["inputs"]
    defn = catalog[prompt[node_id]["class_type"]]
    spec = defn.input_types()
    errors: list[dict[str, Any]] = []
    valid = True
    for category in ("required", "optional"):
        for name, (kind, opts) in spec.get(category, {}).items():
            info = [kind, opts]
            if name not in inputs:
                if category == "required":
                    errors.append(
                        _error("required_input_missing", "Required input is missing", name, input_name=name)
                    )
                continue
            val = inputs[name]
            if not isinstance(val, list):
                problem = _check_literal(name, val, kind, opts, info, inputs, defn.validate_inputs)
                if problem is not None:
                    errors.append(problem)
                continue
            if len(val) != 2:
                errors.append(
                    _error(
                        "bad_linked_input",
                        "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                        name,
                        input_name=name,
                        input_config=info,
                        received_value=val,
                    )
                )
                continue
            source = val[0]
            received = catalog[prompt[source]["class_type"]].outputs[val[1]]
            if not types_match(received, kind):
                errors.append(
                    _error(
                        "return_type_mismatch",
                        "Return type mismatch between linked nodes",
                        f"{name}, received_type({received}) mismatch input_type({kind})",
                        input_name=name,
                        input_config=info,
                        received_type=received,
                        linked_node=val,
                    )
                )
                continue
            try:
                if validate_node(prompt, source, validated, catalog)[0] is False:
                    valid = False
            except Exception as ex:  # noqa: BLE001 - reported to the client, like the real server
                valid = False
                kind_ex, _, tb = sys.exc_info()
                assert kind_ex is not None
                validated[source] = (
                    False,
                    [
                        _error(
                            "exception_during_inner_validation",
                            "Exception when validating inner node",
                            str(ex),
                            input_name=name,
                            input_config=info,
                            exception_message=str(ex),
                            exception_type=full_type_name(kind_ex),
                            traceback=traceback.format_tb(tb),
                            linked_node=val,
                        )
                    ],
                    source,
                )
    if defn.validate is not None:
        literal = {
            k: inputs[k] for k in defn.validate_inputs if k in inputs and not isinstance(inputs[k], list)
        }
        verdict = defn.validate(literal) if literal else True
        if verdict is not True:
            for name in literal:
                details = name if verdict is False else f"{name} - {verdict}"
                errors.append(
                    _error(
                        "custom_validation_failed",
                        "Custom validation failed for node",
                        details,
                        input_name=name,
                    )
                )
    result = (False, errors, node_id) if errors or not valid else (True, [], node_id)
    validated[node_id] = result
    return result


def _invalid(message: str, node_id: str) -> dict[str, Any]:
    return _error("invalid_prompt", message, f"Node ID '#{node_id}'")


def validate_prompt(
    prompt: dict[str, Any], catalog: dict[str, NodeDef], targets: list[str] | None
) -> tuple[bool, dict[str, Any] | None, list[str], dict[str, Any]]:
    """Return ``(ok, error, good_outputs, node_errors)``. Non-dict prompts raise (HTTP 500)."""
    if not isinstance(prompt, dict):
        raise TypeError("prompt must be an object")
    outputs: list[str] = []
    for node_id, node in prompt.items():
        if not isinstance(node, (dict, str)) or "class_type" not in node:
            if not isinstance(node, (dict, str)):
                raise TypeError(f"node {node_id} is not an object")
            return (
                False,
                _invalid("Cannot execute because a node is missing the class_type property.", node_id),
                [],
                {},
            )
        assert isinstance(node, dict)
        defn = catalog.get(node["class_type"])
        if defn is None:
            return (
                False,
                _invalid(f"Cannot execute because node {node['class_type']} does not exist.", node_id),
                [],
                {},
            )
        if defn.output_node and (targets is None or node_id in targets):
            outputs.append(node_id)
    if not outputs:
        return False, _error("prompt_no_outputs", "Prompt has no outputs", ""), [], {}
    good: list[str] = []
    failures: list[tuple[str, list[dict[str, Any]]]] = []
    node_errors: dict[str, Any] = {}
    validated: Validated = {}
    for out in outputs:
        try:
            ok, reasons, _ = validate_node(prompt, out, validated, catalog)
        except Exception as ex:  # noqa: BLE001 - reported to the client, like the real server
            kind_ex, _, tb = sys.exc_info()
            assert kind_ex is not None
            ok = False
            reasons = [
                _error(
                    "exception_during_validation",
                    "Exception when validating node",
                    str(ex),
                    exception_type=full_type_name(kind_ex),
                    traceback=traceback.format_tb(tb),
                )
            ]
            validated[out] = (False, reasons, out)
        if ok:
            good.append(out)
            continue
        failures.append((out, reasons))
        for node_id, (node_ok, node_reasons, _) in validated.items():
            if node_ok or not node_reasons:
                continue
            entry = node_errors.setdefault(
                node_id,
                {
                    "errors": node_reasons,
                    "dependent_outputs": [],
                    "class_type": prompt[node_id]["class_type"],
                },
            )
            entry["dependent_outputs"].append(out)
    if not good:
        details = "\n".join(f"{e['message']}: {e['details']}" for _, errs in failures for e in errs)
        error = _error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details)
        return False, error, [], node_errors
    return True, None, good, node_errors
