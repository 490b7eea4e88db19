"""Reading the YAML users write (configs, cards, sweeps, suites, ``--set`` values), with errors that name the file.

Every YAML read goes through :func:`loads`, which is ``yaml.safe_load`` made strict:

- a key repeated in one mapping is an error (plain YAML silently keeps the last one);
- aliases may not expand a document past :data:`MAX_NODES` nodes or :data:`MAX_BYTES` characters
  of text (a few hundred bytes of nested aliases, a "billion laughs", would otherwise take
  gigabytes; one long string aliased many times would stall every later step), and may not refer
  to themselves;
- a mapping may hold one merge key (``<<: [*a, *b]`` merges several); a repeated ``<<`` is an
  error, as a repeated key is;
- an integer too long for Python to convert (over 4,300 digits) is an error naming the file;
- a file must be UTF-8 text; error messages are cut to a readable length.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import RftbenchError

#: The most nodes a document may hold once its aliases are expanded.
MAX_NODES = 100_000
#: The most characters of scalar text a document may hold once its aliases are expanded (16 Mi).
MAX_BYTES = 16 * 1024 * 1024
#: The longest YAML error message shown (the rest is summarised).
MAX_ERROR = 600


class YamlError(RftbenchError):
    """A YAML document is not valid, repeats a key, or expands past the size limit."""


class _Recursive(Exception):
    """An alias inside the node it refers to."""


#: libyaml's safe loader when PyYAML was built with it (10-20x faster parsing: `rftbench plugins` reads every zoo card).
_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_BASE_LOADER):  # type: ignore[misc,valid-type]
    """The safe loader (libyaml's where available) refusing duplicate keys; alias expansion is bounded in :func:`loads`."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        merges = [k for k, _ in node.value if isinstance(k, ScalarNode) and k.tag == "tag:yaml.org,2002:merge"]
        if len(merges) > 1:
            raise yaml.constructor.ConstructorError(
                None, None,
                f"the merge key '<<' appears twice in the same mapping (line {merges[0].start_mark.line + 1} and "
                f"line {merges[1].start_mark.line + 1}); merge several with one key: <<: [*a, *b]",
                merges[1].start_mark,
            )
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node, deep=deep)
                try:
                    if key in seen:
                        mark = key_node.start_mark
                        raise yaml.constructor.ConstructorError(
                            None, None,
                            f"key {key!r} appears twice in the same mapping (line {seen[key].line + 1} and line {mark.line + 1}); keep one",
                            mark,
                        )
                    seen[key] = key_node.start_mark
                except TypeError:  # an unhashable key: the base class reports it
                    pass
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: Node, limit: int, byte_limit: int | None = None) -> int:
    """Nodes in the document with every alias expanded (stops counting past ``limit``).

    Scalar text counts too: once the expanded text passes ``byte_limit`` (default
    :data:`MAX_BYTES`) the result is ``limit + 1``, so one long string aliased many times is
    refused like many nodes are.
    """
    byte_limit = MAX_BYTES if byte_limit is None else byte_limit
    sizes: dict[int, tuple[int, int]] = {}
    active: set[int] = set()

    def size(node: Node) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Recursive
        active.add(key)
        total, text = 1, 0
        if isinstance(node, SequenceNode):
            children = node.value
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
            text = len(node.value) if isinstance(node.value, str) else 0
        for child in children:
            nodes, chars = size(child)
            total += nodes
            text += chars
            if total > limit or text > byte_limit:
                break
        active.discard(key)
        sizes[key] = (min(total, limit + 1), min(text, byte_limit + 1))
        return sizes[key]

    nodes, chars = size(root)
    return limit + 1 if chars > byte_limit else nodes


def _shorten(text: str) -> str:
    text = "\n".join(line if len(line) <= 200 else f"{line[:200]}…" for line in text.splitlines())
    return text if len(text) <= MAX_ERROR else f"{text[:MAX_ERROR]}… ({len(text) - MAX_ERROR} more characters)"


def loads(text: str | bytes, where: str = "YAML", error: type[RftbenchError] = YamlError) -> Any:
    """Parse one YAML document strictly (see the module docstring); ``error`` names ``where``."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise error(f"{where}: not UTF-8 text (byte {err.start}); save the file as UTF-8") from None
    too_big = False
    try:
        loader = _StrictLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            too_big = _expanded_size(node, MAX_NODES) > MAX_NODES
            if not too_big:
                return loader.construct_document(node)
        finally:
            loader.dispose()
    except _Recursive:
        raise error(f"{where}: an alias (*name) is used inside the value it names (a recursive document); write the value out") from None
    except yaml.YAMLError as err:
        raise error(f"{where}: not valid YAML:\n  {_shorten(str(err))}") from None
    except RecursionError:
        raise error(f"{where}: the YAML is nested too deeply") from None
    except ValueError as err:  # int() past sys.get_int_max_str_digits (4,300 digits), and the like
        if "integer string conversion" in str(err):
            raise error(f"{where}: an integer has more than 4,300 digits; no setting takes a number that long") from None
        raise error(f"{where}: a value cannot be read: {_shorten(str(err))}") from None
    raise error(
        f"{where}: the document expands to more than {MAX_NODES:,} values or {MAX_BYTES:,} characters "
        "through its aliases (&/*); write it out without nested aliases"
    )


def read_mapping(path: Path, error: type[RftbenchError], what: str, *, empty_ok: bool = False) -> dict[str, Any]:
    """The YAML mapping in ``path``; ``error`` names the file for bad YAML or another shape.

    ``what`` says what the file should be (e.g. ``"a sweep file (base, axes, …)"``); an empty
    file is ``{}`` when ``empty_ok``.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise error(f"{path}: cannot read it ({err.strerror or err})") from None
    data = loads(raw, str(path), error)
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: {what} must be a YAML mapping, got {type(data).__name__}")
    return data
