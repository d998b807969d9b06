"""The graphs a service hosts, by name, from `name=module:attr` specs or a langgraph.json."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph._internal._typing import MISSING
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import StateGraph
from langgraph.pregel import Pregel
from pydantic import TypeAdapter

from glassbox.errors import GraphNotFoundError, InvalidInputError

DEMO_SPEC = "demo=agent_service.demo:graph"


@dataclass
class HostedGraph:
    name: str
    graph: Pregel[Any, Any, Any, Any]
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)
    state_schema: dict[str, Any] = field(default_factory=dict)
    output_schema: dict[str, Any] = field(default_factory=dict)
    config_schema: dict[str, Any] = field(default_factory=dict)
    context_schema: dict[str, Any] = field(default_factory=dict)
    # State keys LangGraph fills itself when the input leaves them out (reducers).
    defaulted: frozenset[str] = frozenset()

    @property
    def nodes(self) -> list[str]:
        return [n for n in self.graph.nodes if not n.startswith("__")]

    def check_input(self, value: Any) -> None:
        """Reject input that cannot fit the input schema: the shape, not every detail.

        The JSON type, missing keys and top-level value types are checked; nested values
        are left to the graph, since LangGraph accepts looser forms than its schemas state
        (a message may be a dict with a role, not only a typed message). What LangGraph
        itself takes passes: keys it does not know (it ignores them), and leaving out a key
        with a reducer (it starts empty). Null input is LangGraph's "carry on from the
        checkpoint", judged against the thread (`runs`), not here.
        """
        if value is None:
            return
        problem = _shape_problem(self.input_schema, value, self.defaulted)
        if problem:
            raise InvalidInputError(f"input for graph {self.name!r} {problem}")

    def drawing(self, xray: int) -> Any:
        """The graph as LangGraph Server draws it: `get_graph(xray).to_json()`; `xray` 0
        draws no subgraph, N that many levels, -1 every level."""
        depth: bool | int = True if xray < 0 else (xray or False)
        return self.graph.get_graph(xray=depth).to_json()


class GraphRegistry:
    def __init__(self, graphs: Mapping[str, Pregel[Any, Any, Any, Any]]) -> None:
        self._graphs = {name: _describe(name, g) for name, g in graphs.items()}

    @classmethod
    def from_specs(
        cls, specs: Iterable[str], *, langgraph_json: str | Path | None = None
    ) -> GraphRegistry:
        """Load graphs; a bad spec raises ValueError naming it and what is wrong."""
        named: dict[str, str] = {}
        if langgraph_json:
            named.update(_specs_from_langgraph_json(Path(langgraph_json)))
        for spec in specs:
            name, sep, target = spec.partition("=")
            if not sep or not name or ":" not in target:
                raise ValueError(f"graph spec {spec!r} must look like name=module:attr")
            named[name.strip()] = target.strip()
        return cls({name: load_graph(target) for name, target in named.items()})

    def get(self, name: str) -> HostedGraph:
        try:
            return self._graphs[name]
        except KeyError:
            known = ", ".join(sorted(self._graphs)) or "none"
            raise GraphNotFoundError(f"no graph named {name!r} (hosted: {known})") from None

    def __iter__(self) -> Any:
        return iter(self._graphs.values())

    def bind_checkpointer(self, checkpointer: BaseCheckpointSaver[Any]) -> None:
        """Give every graph the service's checkpointer.

        A graph compiled with its own checkpointer gets ours instead: pause and resume
        must survive restarts and work across replicas, which only the service's can do.
        """
        for hosted in self._graphs.values():
            hosted.graph = hosted.graph.copy({"checkpointer": checkpointer})


def load_graph(target: str) -> Pregel[Any, Any, Any, Any]:
    """Import `module:attr` (or `path/to/file.py:attr`); compile a StateGraph, call a factory."""
    module_name, _, attr = target.partition(":")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).resolve()
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
        obj = getattr(module, attr)
    except (ImportError, AttributeError, FileNotFoundError) as exc:
        raise ValueError(f"cannot load graph {target!r}: {exc}") from exc
    if isinstance(obj, StateGraph):
        obj = obj.compile()
    elif callable(obj) and not isinstance(obj, Pregel):
        obj = obj()
    if not isinstance(obj, Pregel):
        raise ValueError(f"{target!r} is a {type(obj).__name__}, not a LangGraph graph")
    return obj


def _specs_from_langgraph_json(path: Path) -> dict[str, str]:
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    graphs = config.get("graphs")
    if not isinstance(graphs, dict):
        raise ValueError(f"{path} has no 'graphs' object")
    base = path.resolve().parent
    specs: dict[str, str] = {}
    for name, target in graphs.items():
        module, _, attr = str(target).partition(":")
        if module.endswith(".py") or "/" in module:
            module = str((base / module).resolve())
        specs[name] = f"{module}:{attr}"
    return specs


def _describe(name: str, graph: Pregel[Any, Any, Any, Any]) -> HostedGraph:
    return HostedGraph(
        name=name,
        graph=graph,
        input_schema=_schema(graph.get_input_jsonschema),
        state_schema=_state_schema(graph),
        output_schema=_schema(graph.get_output_jsonschema),
        config_schema=_schema(graph.get_config_jsonschema),
        context_schema=_schema(graph.get_context_jsonschema),
        defaulted=frozenset(k for k, c in graph.channels.items() if _starts_filled(c)),
    )


def _starts_filled(channel: Any) -> bool:
    """Whether a state channel holds a value before anything is written to it (a reducer
    starts empty; a plain key has none until the input sets it)."""
    try:
        return bool(channel.from_checkpoint(MISSING).is_available())
    except Exception:  # a channel of a kind we cannot probe: ask the input for the key
        return False


def _schema(produce: Any) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():
            # get_config_jsonschema is deprecated for context schemas, still what
            # LangGraph Server serves as config_schema.
            warnings.simplefilter("ignore")
            schema = produce()
    except Exception:  # a schema LangGraph cannot express is not worth refusing the graph
        return {}
    return schema if isinstance(schema, dict) else {}


def _state_schema(graph: Pregel[Any, Any, Any, Any]) -> dict[str, Any]:
    builder = getattr(graph, "builder", None)
    state = getattr(builder, "state_schema", None)
    if state is None:
        return _schema(graph.get_output_jsonschema)
    return _schema(lambda: TypeAdapter(state).json_schema())


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _shape_problem(schema: dict[str, Any], value: Any, defaulted: frozenset[str]) -> str:
    if not schema:
        return ""
    kinds = _declared_types(schema)
    if kinds and "object" not in kinds:  # an entrypoint taking a string, a list, …
        if _is_one_of(value, kinds):
            return ""
        return f"must be {' or '.join(sorted(kinds))}, got {type(value).__name__}"
    if not isinstance(value, dict):
        return f"must be a JSON object, got {type(value).__name__}"
    properties: dict[str, Any] = schema.get("properties", {})
    missing = sorted(set(schema.get("required", ())) - set(value) - defaulted)
    if missing:
        return f"lacks required keys {missing}"
    for key, item in value.items():
        expected = _declared_types(properties.get(key, {}))
        if expected and not _is_one_of(item, expected):
            return f"key {key!r} must be {' or '.join(sorted(expected))}, got {type(item).__name__}"
    return ""


def _declared_types(prop: dict[str, Any]) -> set[str]:
    if "type" in prop:
        kinds = prop["type"]
        return set(kinds) if isinstance(kinds, list) else {kinds}
    options = prop.get("anyOf")
    if options and all(isinstance(o, dict) and "type" in o for o in options):
        return {t for o in options for t in _declared_types(o)}
    return set()  # $ref, allOf, …: not checked here


def _is_one_of(item: Any, kinds: set[str]) -> bool:
    if isinstance(item, bool) and not ({"boolean"} & kinds):
        return False  # JSON true is not a number
    return any(isinstance(item, _JSON_TYPES.get(k, (object,))) for k in kinds)
