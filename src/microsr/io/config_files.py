"""Read YAML configuration files and explain their validation errors in one line."""

from __future__ import annotations

import collections.abc
import difflib
import typing
from pathlib import Path

import pydantic
import yaml

from microsr.errors import InputError

# Beyond this many problems the line would stop being readable; the count still says how many.
MAX_PROBLEMS_SHOWN = 4


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key given twice in one mapping."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML silently keeps the last)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first_line: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *defaults" may be overridden
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    twice = key in first_line
                except TypeError:  # an unhashable key: the base class says so
                    break
                if twice:
                    raise _DuplicateKeyError(None, None, f"key {key!r} is given twice (first on line "
                                             f"{first_line[key] + 1})", key_node.start_mark)
                first_line[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict:
    """The top-level mapping of a YAML file; an empty file gives ``{}``.

    Parameters
    ----------
    path : str or Path
        A YAML file (UTF-8, or UTF-16 with a byte-order mark).

    Returns
    -------
    dict
        The file's keys and values, as YAML's safe loader builds them.

    Raises
    ------
    InputError
        If the file is missing or unreadable; if its syntax is broken, naming the line and column
        (counted from 1) where the parser stopped; if a key is given twice in one mapping; or if
        the top level is not ``key: value`` pairs.

    Examples
    --------
    >>> read_yaml("examples/sfsrm_srn_filaments_x4.yaml")["output_dir"]  # doctest: +SKIP
    'runs/srn_filaments_x4'
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"config {path} does not exist: check the path")
    if path.is_dir():
        raise InputError(f"config {path} is a folder: give the YAML file inside it")
    try:
        with open(path, "rb") as stream:
            data = yaml.load(stream, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except OSError as exc:
        raise InputError(f"cannot read config {path} ({exc.strerror or exc}): check its permissions") from None
    except _DuplicateKeyError as exc:
        mark = exc.problem_mark
        raise InputError(f"config {path}: line {mark.line + 1}: {exc.problem}, and YAML would keep only the "
                         "last: delete one of them") from None
    except yaml.MarkedYAMLError as exc:
        raise InputError(f"config {path} is not valid YAML: {_syntax_problem(exc)}") from None
    except yaml.YAMLError as exc:  # e.g. a ReaderError: bytes that are not text
        reason = " ".join(str(exc).split())
        raise InputError(f"config {path} is not valid YAML ({reason}): save it as UTF-8 text") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"config {path} holds a {type(data).__name__} at the top level, not 'key: value' "
                         "lines: write one setting per line as 'name: value'")
    return data


def _syntax_problem(exc: yaml.MarkedYAMLError) -> str:
    """Where and what: ``line 4, column 7: found character '\\t' ... (while scanning ...)``."""
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = " ".join(str(exc.problem or "").split()) or "syntax error"
    context = " ".join(str(exc.context or "").split())
    if context and exc.context_mark is not None and exc.context_mark is not mark:
        context += f" started on line {exc.context_mark.line + 1}"
    advice = ("indent with spaces, not tabs" if "\\t" in problem else
              "check the indentation, the ':' after each key and that quotes and brackets are closed")
    return f"{where}{problem}{f' ({context})' if context else ''}; {advice}"


def validation_message(exc: pydantic.ValidationError, source, schema: type[pydantic.BaseModel] | None = None
                       ) -> str:
    """A pydantic validation error as one line, unknown keys first, each with the nearest known key.

    A misspelt key is reported by pydantic as two problems, the unknown key and (when the field
    has no default) the missing one, in the model's field order; the unknown key is the cause,
    so it comes first.

    Parameters
    ----------
    exc : pydantic.ValidationError
        From ``schema.model_validate(...)``.
    source : str or Path
        What was validated, for the message (a file, or e.g. "from the command line").
    schema : pydantic model class, optional
        The model validated; its fields (nested models included, through lists, dicts and
        optional fields) are where a misspelt key's suggestion comes from.

    Returns
    -------
    str
        ``config <source>: <first problem>; also: <next>; ... (<n> problems in all)``.

    Examples
    --------
    >>> class Stage(pydantic.BaseModel):
    ...     model_config = pydantic.ConfigDict(extra="forbid")
    ...     learning_rate: float
    >>> try:
    ...     Stage.model_validate({"learning_rat": 1e-4})
    ... except pydantic.ValidationError as exc:
    ...     print(validation_message(exc, "run.yaml", Stage))  # doctest: +NORMALIZE_WHITESPACE
    config run.yaml: unknown key 'learning_rat' (did you mean 'learning_rate'?);
    also: learning_rate: Field required (2 problems in all)
    """
    errors = exc.errors()
    unknown = [error for error in errors if error["type"] == "extra_forbidden"]
    others = [error for error in errors if error["type"] != "extra_forbidden"]
    problems = [_unknown_key(error["loc"], schema) for error in unknown] + [_problem(error) for error in others]
    if not problems:
        return f"config {source}: {' '.join(str(exc).split())}"
    shown = problems[:MAX_PROBLEMS_SHOWN]
    line = f"config {source}: {shown[0]}"
    if len(shown) > 1:
        line += "; also: " + "; ".join(shown[1:])
    if len(problems) > len(shown):
        line += f"; and {len(problems) - len(shown)} more"
    if len(problems) > 1:
        line += f" ({len(problems)} problems in all)"
    return line


def _dotted(loc) -> str:
    return ".".join(str(part) for part in loc)


def _unknown_key(loc, schema) -> str:
    where = _dotted(loc)
    known = _known_keys(schema, loc[:-1]) if schema is not None else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    hint = f" (did you mean '{_dotted((*loc[:-1], close[0]))}'?)" if close else ""
    return f"unknown key '{where}'{hint}"


def _problem(error: dict) -> str:
    message = error["msg"]
    if error["type"] == "value_error":  # pydantic prefixes the validator's own words with "Value error, "
        message = message.removeprefix("Value error, ")
    value = error.get("input")
    if error["type"] not in ("missing", "value_error") and isinstance(value, (str, int, float, bool)) \
            and len(repr(value)) <= 40:
        message += f" (got {value!r})"
    where = _dotted(error["loc"])
    return f"{where}: {message}" if where else message


def _known_keys(schema, loc) -> list[str]:
    """Field names (and aliases) of the model(s) reached from ``schema`` along ``loc``."""
    types = [schema]
    for part in loc:
        types = [reached for kind in types for member in _members(kind) for reached in _step(member, part)]
    keys = []
    for kind in types:
        for member in _members(kind):
            if isinstance(member, type) and issubclass(member, pydantic.BaseModel):
                for name, field in member.model_fields.items():
                    keys += [key for key in (name, field.alias, field.validation_alias) if isinstance(key, str)]
    return list(dict.fromkeys(keys))


def _members(kind) -> list:
    """``kind`` with ``Optional``, unions and ``Annotated`` taken apart."""
    origin = typing.get_origin(kind)
    if origin is typing.Annotated:
        return _members(typing.get_args(kind)[0])
    if origin is typing.Union or type(kind).__name__ == "UnionType":  # X | Y
        return [member for arg in typing.get_args(kind) for member in _members(arg)]
    return [kind]


def _step(kind, part) -> list:
    """The type(s) found at key or index ``part`` inside ``kind``."""
    if isinstance(kind, type) and issubclass(kind, pydantic.BaseModel):
        fields = [field.annotation for name, field in kind.model_fields.items()
                  if part in (name, field.alias, field.validation_alias)]
        # in a union of models pydantic names the member tried: ('folder', 'FolderData', 'lr_dir')
        return fields or ([kind] if part == kind.__name__ else [])
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (list, set, frozenset, collections.abc.Sequence, collections.abc.MutableSequence,
                  collections.abc.Set) and args:
        return [args[0]]
    if origin is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis:
            return [args[0]]
        return [args[part]] if isinstance(part, int) and part < len(args) else []
    if origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping) and len(args) == 2:
        return [args[1]]
    return []  # a union member's tag in the location (e.g. 'int') or a type without fields
