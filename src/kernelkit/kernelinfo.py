"""kernel_info_reply content: what the spec requires filled in, and every field's type checked.

Strict clients (the Rust runtimelib crates) refuse a reply without
``language_info.version``; wrapper kernels often leave it (and sometimes ``name``)
out, or set a field to the wrong type. The dispatcher completes the kernel's info
and checks it before each reply; start-up checks it once and refuses a kernel whose
info clients would reject.
"""

from __future__ import annotations

from typing import Any

from .wire import JSONDict

# The feature name kernel_info_reply lists for JEP 91 subshells.
SUBSHELLS_FEATURE = "kernel subshells"


def complete(kernel: Any, subshells: bool) -> JSONDict:
    """The kernel's ``kernel_info`` with what the spec requires filled in (never changed in place).

    ``language_info.version`` comes from ``language_version`` and ``name`` from
    ``language`` when the author did not set them; ``supported_features`` lists
    subshells when the kernel takes them.
    """
    raw = kernel.kernel_info
    if not isinstance(raw, dict):
        raise TypeError(f"kernel_info is {type(raw).__name__}, not a dict")
    info = dict(raw)
    language_info = info.get("language_info")
    if isinstance(language_info, dict):
        language_info = dict(language_info)
        if "version" not in language_info:
            language_info["version"] = str(getattr(kernel, "language_version", "") or "")
        if "name" not in language_info:
            language_info["name"] = str(getattr(kernel, "language", "") or "")
        info["language_info"] = language_info
    features = info.get("supported_features", [])
    if isinstance(features, list):
        features = [f for f in features if f != SUBSHELLS_FEATURE]
        if subshells:
            features.append(SUBSHELLS_FEATURE)
        info["supported_features"] = features
    return info


# kernel_info_reply fields and their JSON types (messaging spec, "Kernel info").
_INFO_TYPES: dict[str, tuple[type, ...]] = {
    "protocol_version": (str,),
    "implementation": (str,),
    "implementation_version": (str,),
    "language_info": (dict,),
    "banner": (str,),
    "help_links": (list,),
    "debugger": (bool,),
    "supported_features": (list,),
}
_INFO_REQUIRED = ("protocol_version", "implementation", "implementation_version",
                  "language_info", "banner")
LANGUAGE_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "version": (str,),
    "mimetype": (str,),
    "file_extension": (str,),
    "pygments_lexer": (str,),
    "codemirror_mode": (str, dict),
    "nbconvert_exporter": (str,),
}


def kernel_info_problems(info: JSONDict) -> list[str]:
    """What in a kernel_info_reply's content does not have the spec's type ([] if all does)."""
    problems = [f"{key} is missing" for key in _INFO_REQUIRED if key not in info]
    problems += _type_problems(info, _INFO_TYPES, "")
    language_info = info.get("language_info")
    if isinstance(language_info, dict):
        problems += [
            f"language_info.{key} is missing"
            for key in ("name", "version")
            if key not in language_info
        ]
        problems += _type_problems(language_info, LANGUAGE_TYPES, "language_info.")
    for i, link in enumerate(info.get("help_links") or []):
        if not (
            isinstance(link, dict)
            and isinstance(link.get("text"), str)
            and isinstance(link.get("url"), str)
        ):
            problems.append(f"help_links[{i}] is not an object with text and url strings")
    features = info.get("supported_features")
    if isinstance(features, list) and not all(isinstance(f, str) for f in features):
        problems.append("supported_features must list strings")
    return problems


def _type_problems(obj: JSONDict, types: dict[str, tuple[type, ...]], prefix: str) -> list[str]:
    out = []
    for key, allowed in types.items():
        if key in obj and not isinstance(obj[key], allowed):
            names = " or ".join(_JSON_NAMES[t] for t in allowed)
            out.append(f"{prefix}{key} must be {names}, not {type(obj[key]).__name__}")
    return out


_JSON_NAMES = {str: "a string", dict: "an object", list: "an array", bool: "a boolean"}
