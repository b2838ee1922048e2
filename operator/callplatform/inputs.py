"""Reading what `callplatform validate` judges: manifests (files, directories, stdin) and env files.

Manifests are multi-document YAML holding CallPlatforms and the Secrets they
reference (`data` in base64 and `stringData`). Every problem that stops a file
from being read raises `InputError` naming the file and line, and never quotes
the file's content: it may be a Secret.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gc
import io
import os
import stat
import sys
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml
from dotenv.parser import parse_stream
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from callplatform.model import Platform, parse_platform

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# Per input (file or stdin). kubectl's own limit for one object is about 1.5 MiB (etcd's request
# size); 8 MiB leaves room for many objects in one file and stops /dev/zero-like inputs early.
MAX_INPUT_BYTES = 8 * 2**20
MAX_MERGED_ENTRIES = 5_000_000  # merge keys (<<) may not expand a document beyond this (like kubectl)
STDIN = "-"
CALLPLATFORM_GROUP = "callplatform.io/"

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it
_SCALAR_RESOLVER: Any = yaml.resolver.Resolver()


@functools.lru_cache(maxsize=8192)
def _resolve_scalar(value: str, implicit: tuple[bool, bool]) -> str:
    return str(_SCALAR_RESOLVER.resolve(ScalarNode, value, implicit))


class _Loader(_BaseLoader):  # type: ignore[misc]
    """The safe loader, with implicit scalar tags memoised: manifests repeat the same keys and values,
    and PyYAML resolves every scalar with Python regular expressions even under libyaml."""

    def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and not self.yaml_path_resolvers:
            return _resolve_scalar(value, implicit)
        return str(super().resolve(kind, value, implicit))


class InputError(Exception):
    """Input that cannot be read or parsed; str() is `file:line: what is wrong`."""

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        self.source = source
        self.line = line
        self.problem = problem
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class LoadedPlatform:
    platform: Platform
    secrets: Mapping[str, Mapping[str, str]]  # the Secrets of its namespace, by name
    location: str  # file:line of the CallPlatform document


@dataclass(frozen=True, slots=True)
class _Document:
    obj: Mapping[str, Any]
    node: Node
    source: str

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1

    def line_of(self, *path: str) -> int:
        """Line of the value at `path` (mapping keys), or of the deepest part of it that exists."""
        node = self.node
        for key in path:
            if not isinstance(node, MappingNode):
                break
            child = next((value for k, value in node.value if getattr(k, "value", None) == key), None)
            if child is None:
                break
            node = child
        return node.start_mark.line + 1


def load_manifests(paths: Sequence[str], stdin: TextIO | None = None) -> list[LoadedPlatform]:
    """Every CallPlatform under `paths`, each with the Secrets of its namespace from the same inputs."""
    with _cycle_collection_paused():
        return _load_manifests(paths, stdin)


def _load_manifests(paths: Sequence[str], stdin: TextIO | None) -> list[LoadedPlatform]:
    documents: list[_Document] = []
    for source, text in _read_sources(paths, stdin):
        documents.extend(_documents(source, text))
    secrets: dict[tuple[str, str], dict[str, str]] = {}
    platforms: list[_Document] = []
    for doc in documents:
        kind, api_version = doc.obj.get("kind"), str(doc.obj.get("apiVersion", ""))
        if kind == "Secret" and api_version == "v1":
            namespace, name, data = _secret(doc)
            secrets.setdefault((namespace, name), {}).update(data)
        elif kind == "CallPlatform" and api_version.startswith(CALLPLATFORM_GROUP):
            platforms.append(doc)
    by_name: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for (namespace, name), data in secrets.items():
        by_name.setdefault(name, []).append((namespace, data))
    loaded = []
    for doc in platforms:
        platform = parse_platform(doc.obj)
        loaded.append(
            LoadedPlatform(platform, _visible_secrets(platform, by_name), f"{doc.source}:{doc.line}")
        )
    return loaded


@contextmanager
def _cycle_collection_paused() -> Iterator[None]:
    """Loading keeps every document's node tree (three objects a node, with its marks) alive until
    the platforms are built, and the cyclic garbage collector's passes over that growing heap took
    half of the loading time (bench/bench_validate.py). Loading makes no reference cycles that need
    collecting early (a recursive alias is refused; its nodes are collected once collection
    resumes), and the node trees are freed by reference counting before it resumes."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _visible_secrets(
    platform: Platform, by_name: Mapping[str, list[tuple[str, dict[str, str]]]]
) -> dict[str, dict[str, str]]:
    """The Secrets a platform references that share its namespace (or either has none); the last wins.

    Only referenced names are looked up, so a repository of many platforms and Secrets stays linear.
    """
    visible: dict[str, dict[str, str]] = {}
    for name in sorted(platform.secret_names()):
        for namespace, data in by_name.get(name, ()):
            if not namespace or not platform.namespace or namespace == platform.namespace:
                visible[name] = data
    return visible


def load_env_file(path: str, stdin: TextIO | None = None) -> dict[str, str]:
    """The variables of a dotenv file, without interpolation; `-` reads stdin."""
    source, text = _read(path, stdin)
    variables: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise InputError(source, binding.original.line, "cannot parse this line as KEY=VALUE")
        if binding.key is not None:
            variables[binding.key] = binding.value if binding.value is not None else ""
    return variables


# -- reading ------------------------------------------------------------------------------------


def _read_sources(paths: Sequence[str], stdin: TextIO | None) -> Iterator[tuple[str, str]]:
    for path in paths:
        if path != STDIN and _is_dir(path):
            for file in _manifest_files(path):
                yield _read(str(file), stdin)
        else:
            yield _read(path, stdin)


def _is_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except FileNotFoundError:
        return False  # reported when read
    except OSError as exc:
        raise InputError(path, None, f"cannot be read: {exc.strerror or type(exc).__name__}") from None


def _manifest_files(root: str) -> list[Path]:
    """Manifest files under `root` (hidden ones skipped); a directory that cannot be listed is an error,
    so CI never passes because part of a tree was silently left out."""

    def refuse(exc: OSError) -> None:
        where = exc.filename if isinstance(exc.filename, str) else root
        raise InputError(where, None, f"cannot be listed: {exc.strerror or type(exc).__name__}")

    files: list[Path] = []
    for directory, subdirectories, names in os.walk(root, onerror=refuse):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for name in names:
            file = Path(directory) / name
            if file.suffix in MANIFEST_SUFFIXES and not name.startswith(".") and file.is_file():
                files.append(file)
    return sorted(files)


def _decode(source: str, data: bytes) -> str:
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(
            source, None, f"is larger than {MAX_INPUT_BYTES // 2**20} MiB; split it into smaller files"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(source, line, "is not UTF-8 text") from None


def _read(path: str, stdin: TextIO | None) -> tuple[str, str]:
    if path == STDIN:
        stream = stdin if stdin is not None else sys.stdin
        binary = getattr(stream, "buffer", None)  # bytes: decoded strictly, whatever the locale says
        try:
            if binary is not None:
                return "<stdin>", _decode("<stdin>", binary.read(MAX_INPUT_BYTES + 1))
            text = stream.read(MAX_INPUT_BYTES + 1)
        except UnicodeDecodeError:
            raise InputError("<stdin>", None, "is not UTF-8 text") from None
        except OSError as exc:
            raise InputError(
                "<stdin>", None, f"cannot be read: {exc.strerror or type(exc).__name__}"
            ) from None
        if len(text) > MAX_INPUT_BYTES:
            _decode("<stdin>", b"x" * (MAX_INPUT_BYTES + 1))
        return "<stdin>", text
    try:
        with open(path, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise InputError(path, None, "is not a regular file (a device, pipe or socket is not read)")
            return path, _decode(path, file.read(MAX_INPUT_BYTES + 1))
    except OSError as exc:
        raise InputError(path, None, f"cannot be read: {exc.strerror or type(exc).__name__}") from None


def _documents(source: str, text: str) -> Iterator[_Document]:
    constructor = SafeConstructor()
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(source, line, f"invalid YAML: {problem}") from None
    except yaml.YAMLError:
        raise InputError(source, None, "invalid YAML") from None
    for node in nodes:
        try:
            obj = _construct(node, constructor, {}, set(), _Budget())
        except _DuplicateKey as exc:
            raise InputError(
                source,
                exc.line,
                f"duplicate mapping key (first at line {exc.first_line}); kubectl refuses such a file",
            ) from None
        except _TooLarge as exc:
            raise InputError(
                source, exc.line, f"merge keys (<<) expand to more than {MAX_MERGED_ENTRIES} entries"
            ) from None
        except _InvalidValue as exc:
            raise InputError(source, exc.line, "invalid YAML value") from None
        except RecursionError:
            raise InputError(
                source, node.start_mark.line + 1, "invalid YAML value: nested too deeply"
            ) from None
        yield from _objects(source, obj, node)


_STR, _NULL, _BOOL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool"
_MERGE = "tag:yaml.org,2002:merge"


class _InvalidValue(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class _DuplicateKey(_InvalidValue):
    def __init__(self, line: int, first_line: int) -> None:
        super().__init__(line)
        self.first_line = first_line


class _TooLarge(_InvalidValue):
    pass


class _Budget:
    """Entries copied by merge keys so far in one document."""

    def __init__(self) -> None:
        self.merged = 0


def _construct(
    node: Node, constructor: SafeConstructor, done: dict[int, Any], active: set[int], budget: _Budget
) -> Any:
    """PyYAML's safe construction, with a fast path for the plain strings, maps and lists manifests
    are made of (construction is most of the time `validate` spends). Aliased nodes are built once,
    so an alias bomb costs nothing, and a recursive alias is refused. A key given twice in one
    mapping is refused naming both lines, as kubectl does. Merge keys (<<) merge the already built
    mappings, so a chain of merges costs the size of its result, not PyYAML's quadratic time."""
    key = id(node)
    if key in done:
        return done[key]
    if key in active:  # a recursive alias
        raise _InvalidValue(node.start_mark.line + 1)
    value: Any
    if isinstance(node, ScalarNode):
        if node.tag == _STR:
            value = node.value
        elif node.tag == _NULL:
            value = None
        elif node.tag == _BOOL:
            value = node.value.lower() in ("yes", "true", "on")
        else:
            value = _construct_with_pyyaml(node, constructor)
    elif isinstance(node, MappingNode):
        active.add(key)
        value = _construct_mapping(node, constructor, done, active, budget)
        active.discard(key)
    elif isinstance(node, SequenceNode):
        active.add(key)
        value = [_construct(item, constructor, done, active, budget) for item in node.value]
        active.discard(key)
    else:
        value = _construct_with_pyyaml(node, constructor)
    done[key] = value
    return value


def _construct_mapping(
    node: MappingNode, constructor: SafeConstructor, done: dict[int, Any], active: set[int], budget: _Budget
) -> dict[Any, Any]:
    merged: dict[Any, Any] = {}
    explicit: dict[Any, Any] = {}
    first_lines: dict[Any, int] = {}
    for k, v in node.value:
        if k.tag == _MERGE:
            sources = v.value if isinstance(v, SequenceNode) else [v]
            # The first mapping listed wins, so apply them last to first.
            for source in reversed(sources):
                built = _construct(source, constructor, done, active, budget)
                if not isinstance(source, MappingNode) or not isinstance(built, dict):
                    raise _InvalidValue(source.start_mark.line + 1)
                budget.merged += len(built)
                if budget.merged > MAX_MERGED_ENTRIES:
                    raise _TooLarge(source.start_mark.line + 1)
                merged.update(built)
            continue
        name = _construct(k, constructor, done, active, budget)
        if not isinstance(name, Hashable):
            raise _InvalidValue(k.start_mark.line + 1)
        line = k.start_mark.line + 1
        if name in first_lines:
            raise _DuplicateKey(line, first_lines[name])
        first_lines[name] = line
        explicit[name] = _construct(v, constructor, done, active, budget)
    if not merged:
        return explicit
    merged.update(explicit)  # explicit keys override merged ones
    return merged


def _construct_with_pyyaml(node: Node, constructor: SafeConstructor) -> Any:
    try:
        return constructor.construct_document(node)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError):  # e.g. a 13th month, a mapping as key
        raise _InvalidValue(node.start_mark.line + 1) from None


def _objects(source: str, obj: Any, node: Node) -> Iterator[_Document]:
    """Kubernetes objects in one document, unpacking `kind: List`."""
    if not isinstance(obj, Mapping) or not isinstance(node, MappingNode):
        return
    if obj.get("kind") == "List" and isinstance(obj.get("items"), list):
        items_node = next((v for k, v in node.value if getattr(k, "value", None) == "items"), None)
        if isinstance(items_node, SequenceNode):
            for item, item_node in zip(obj["items"], items_node.value, strict=True):
                yield from _objects(source, item, item_node)
        return
    yield _Document(obj, node, source)


def _secret(doc: _Document) -> tuple[str, str, dict[str, str]]:
    metadata = doc.obj.get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
        raise InputError(doc.source, doc.line, "Secret has no metadata.name")
    namespace = metadata.get("namespace") or ""
    values: dict[str, str] = {}
    data = doc.obj.get("data") or {}
    if not isinstance(data, Mapping):
        raise InputError(doc.source, doc.line_of("data"), "Secret data must be a mapping of key: base64")
    for key, encoded in data.items():
        line = doc.line_of("data", str(key))
        if not isinstance(encoded, str):
            raise InputError(doc.source, line, f"Secret data key {key!r} must be a base64 string")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(doc.source, line, f"Secret data key {key!r} is not valid base64") from None
        values[str(key)] = raw.decode("utf-8", errors="replace")
    string_data = doc.obj.get("stringData") or {}
    if not isinstance(string_data, Mapping):
        raise InputError(doc.source, doc.line_of("stringData"), "Secret stringData must be a mapping")
    for key, value in string_data.items():
        if not isinstance(value, str):
            raise InputError(
                doc.source,
                doc.line_of("stringData", str(key)),
                f"Secret stringData key {key!r} must be a string (quote it)",
            )
        values[str(key)] = value
    return str(namespace), metadata["name"], values
