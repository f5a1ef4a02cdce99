"""A griffe extension for the API reference (mkdocs.yml): attrs classes' ``__init__``.

attrs writes ``__init__`` at run time, so griffe's static analysis sees a class with
no parameters, and the ``:param:`` lines of every ``@frozen`` class look like
parameters of nothing. This rebuilds the signature attrs makes, from the annotated
attributes, as griffe's built-in extension does for ``@dataclass``: ``field(init=False)``
left out, ``default=``/``factory=`` kept, ``kw_only`` honoured, a leading underscore
dropped from the parameter's name (attrs' alias), parents' attributes first.
"""

from __future__ import annotations

from typing import Any

from griffe import (
    Attribute,
    Class,
    Expr,
    ExprCall,
    Extension,
    Function,
    Module,
    Parameter,
    ParameterKind,
    Parameters,
)

ATTRS_DECORATORS = {
    f"{module}.{name}"
    for module in ("attrs", "attr")
    for name in ("frozen", "define", "mutable", "s", "attrs", "dataclass")
}
FIELDS = {f"{module}.{name}" for module in ("attrs", "attr") for name in ("field", "ib", "attrib")}


def _call_args(expr: object) -> dict[str, Any]:
    if not isinstance(expr, ExprCall):
        return {}
    args: dict[str, Any] = {}
    for argument in expr.arguments:
        name = getattr(argument, "name", None)
        if name is not None:
            args[name] = argument.value
    return args


def _decorator(cls: Class) -> Expr | None:
    for decorator in cls.decorators:
        value = decorator.value
        if isinstance(value, ExprCall):
            path = value.function.canonical_path if isinstance(value.function, Expr) else ""
        else:
            path = value.canonical_path if isinstance(value, Expr) else ""
        if path in ATTRS_DECORATORS:
            return value if isinstance(value, Expr) else None
    return None


def _own_parameters(cls: Class) -> list[Parameter]:
    decorator = _decorator(cls)
    options = _call_args(decorator)
    if str(options.get("init", "True")) == "False":
        return []
    kw_only = str(options.get("kw_only", "False")) == "True"
    parameters = []
    for member in cls.members.values():
        if member.is_alias or not member.is_attribute:
            continue
        attribute: Attribute = member  # type: ignore[assignment]
        if attribute.annotation is None or "property" in attribute.labels:
            continue
        if "class-attribute" in attribute.labels and "instance-attribute" not in attribute.labels:
            continue
        value = attribute.value
        field_args: dict[str, Any] = {}
        if isinstance(value, ExprCall) and value.function.canonical_path in FIELDS:  # type: ignore[union-attr]
            field_args = _call_args(value)
            if str(field_args.get("init", "True")) == "False":
                continue
            if "factory" in field_args:
                default: Any = ExprCall(function=field_args["factory"], arguments=[])
            else:
                default = field_args.get("default")
        else:
            default = value
        name = str(field_args.get("alias", "")).strip("'\"") or attribute.name.lstrip("_")
        kind = (
            ParameterKind.keyword_only
            if kw_only or str(field_args.get("kw_only", "False")) == "True"
            else ParameterKind.positional_or_keyword
        )
        parameters.append(
            Parameter(
                name,
                annotation=attribute.annotation,
                kind=kind,
                default=default,
                docstring=attribute.docstring,
            )
        )
    return parameters


def _set_init(cls: Class) -> None:
    if _decorator(cls) is None or "__init__" in cls.members:
        return
    parameters: dict[str, Parameter] = {}
    try:
        parents = list(reversed(cls.mro()))
    except ValueError:
        parents = []
    for parent in [*parents, cls]:
        if _decorator(parent) is not None:
            for parameter in _own_parameters(parent):
                parameters[parameter.name] = parameter
    ordered = [p for p in parameters.values() if p.kind is not ParameterKind.keyword_only]
    ordered += [p for p in parameters.values() if p.kind is ParameterKind.keyword_only]
    init = Function(
        "__init__",
        lineno=0,
        endlineno=0,
        parent=cls,
        parameters=Parameters(
            Parameter("self", kind=ParameterKind.positional_or_keyword), *ordered
        ),
        returns="None",
    )
    cls.set_member("__init__", init)


def _walk(obj: Module | Class, seen: set[str]) -> None:
    if obj.path in seen:
        return
    seen.add(obj.path)
    if isinstance(obj, Class):
        _set_init(obj)
    for member in list(obj.members.values()):
        if not member.is_alias and (member.is_module or member.is_class):
            _walk(member, seen)  # type: ignore[arg-type]


class AttrsInit(Extension):
    """Give every attrs class the ``__init__`` attrs generates for it."""

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        """Walk the loaded package.

        :param pkg: the package griffe loaded.
        :param kwargs: what else griffe passes.
        """
        _walk(pkg, set())
