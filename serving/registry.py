"""Finding and loading the served models: each task's `champion` in the MLflow model registry.

Reads the registry at `settings.tracking_uri` (SQLite by default) and the model artefacts it
points to; writes only the local copies (a SQLite registry that does not exist is an error,
never created).
`resolve_champions` turns aliases into pinned versions (name, version, run id),
`download_models` copies exactly those versions' artefacts to a local folder, and `load_models`
loads them and checks that the service can serve them: every model input is a feature the
request schema accepts, with the same kind, and the task spec is valid.
Any problem raises `RegistryError` naming the registry, model and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from configs import TenureError
from configs.settings import redact_url
from models.layout import CHAMPION
from serving.scoring import ServedModel


class RegistryError(TenureError):
    """The registry is unreachable, a champion is missing, or a champion cannot be served."""


@dataclass(frozen=True)
class ChampionRef:
    """A task's model version pinned at start: what every worker loads."""

    task: str
    model_name: str
    alias: str
    version: str
    run_id: str
    path: str = ""  # local copy of the Tenure artefact, once downloaded

    @property
    def uri(self) -> str:
        return f"models:/{self.model_name}/{self.version}"


redact_uri = redact_url  # the URI without a password (`http://user:***@host`)


def _check_reachable(tracking_uri: str) -> None:
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        if not db.exists():
            raise RegistryError(
                f"the MLflow registry {tracking_uri} does not exist: no model has been trained here. Train and "
                "promote models first (`tenure train ...`, `tenure promote ...`), or point MLFLOW_TRACKING_URI "
                "(or --settings) at your registry")


def _mlflow_error_code(exc: Exception) -> str:
    return str(getattr(exc, "error_code", ""))


def resolve_champions(tracking_uri: str, tasks: Sequence[str], alias: str = CHAMPION,
                      model_names: Mapping[str, str] | None = None) -> dict[str, ChampionRef]:
    """Each task's model version at `alias` (model name = task unless `model_names` says otherwise)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    _check_reachable(tracking_uri)
    where = redact_uri(tracking_uri)
    try:
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    except Exception as exc:  # any client failure means: cannot reach it
        raise RegistryError(f"cannot open the MLflow registry {where}: {redact_uri(str(exc))}") from exc
    refs: dict[str, ChampionRef] = {}
    problems: list[str] = []
    for task in tasks:
        name = (model_names or {}).get(task, task)
        try:
            registered = client.get_registered_model(name)
        except MlflowException as exc:
            if _mlflow_error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                problems.append(f"no registered model {name!r} (task {task}): train it with `tenure train` "
                                "and promote it with `tenure promote`")
                continue
            raise RegistryError(f"cannot reach the MLflow registry {where} (reading model {name!r}): "
                                f"{redact_uri(str(exc))}") from exc
        except Exception as exc:  # connection errors, timeouts
            raise RegistryError(f"cannot reach the MLflow registry {where} (reading model {name!r}): "
                                f"{redact_uri(str(exc))}") from exc
        aliases = dict(getattr(registered, "aliases", {}) or {})
        version = aliases.get(alias)
        if version is None:
            have = ", ".join(f"{a} -> version {v}" for a, v in sorted(aliases.items())) or "no aliases"
            problems.append(f"model {name!r} has no version with alias {alias!r} ({have}); promote one with "
                            f"`tenure promote --task {task}`")
            continue
        try:
            mv = client.get_model_version(name, str(version))
        except Exception as exc:
            raise RegistryError(f"cannot read {name!r} version {version} from the MLflow registry {where}: "
                                f"{redact_uri(str(exc))}") from exc
        refs[task] = ChampionRef(task=task, model_name=name, alias=alias, version=str(mv.version),
                                 run_id=str(mv.run_id or ""))
    if problems:
        raise RegistryError(f"cannot serve: {len(problems)} of {len(tasks)} tasks have no {alias!r} model in the "
                            f"MLflow registry {where}: " + "; ".join(problems))
    return refs


def refs_to_json(refs: Mapping[str, ChampionRef]) -> str:
    return json.dumps({task: asdict(ref) for task, ref in refs.items()})


def refs_from_json(text: str) -> dict[str, ChampionRef]:
    try:
        data = json.loads(text)
        return {task: ChampionRef(**ref) for task, ref in data.items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise RegistryError(f"pinned champions are not valid JSON of model references: {exc}") from exc


def check_servable(ref: ChampionRef, model: Any, accepted: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Why `model` (a TenureModel) cannot be served with a request schema of `accepted` features."""
    from models import TaskSpec

    problems = []
    for f in model.features:
        want = accepted.get(f["name"])
        if want is None:
            problems.append(f"input {f['name']!r} is not a feature the service accepts")
        elif want["kind"] != f["kind"]:
            problems.append(f"input {f['name']!r} is {f['kind']} in the model but {want['kind']} in the request schema")
    if model.booster is not None and model.booster.num_feature() != len(model.feature_names):
        problems.append(f"the booster has {model.booster.num_feature()} inputs, the artefact lists "
                        f"{len(model.feature_names)}")
    try:
        TaskSpec.model_validate(model.task_spec)
    except Exception as exc:  # noqa: BLE001 - pydantic's message is the detail
        problems.append(f"its task spec is missing or invalid: {exc}")
    return [f"{ref.model_name} version {ref.version}: {p}" for p in problems]


def download_models(tracking_uri: str, refs: Mapping[str, ChampionRef], dst: Path) -> dict[str, ChampionRef]:
    """Copy each pinned version's Tenure artefact to `dst/<task>`; returns the refs with their local `path`."""
    import mlflow

    from models.layout import ARTIFACT_KEY
    from models.tracking import unreachable_artifacts

    _check_reachable(tracking_uri)
    where = redact_uri(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    out = {}
    for task, ref in refs.items():
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=ref.uri, dst_path=str(Path(dst) / task))
        except Exception as exc:  # missing artefacts, unreadable store
            raise RegistryError(unreachable_artifacts(ref.uri) or f"cannot download {ref.uri} (alias {ref.alias!r}) "
                                f"from {where}: {redact_uri(str(exc))}") from exc
        path = Path(local) / "artifacts" / ARTIFACT_KEY
        if not path.is_dir():
            raise RegistryError(unreachable_artifacts(ref.uri) or f"{ref.uri} (alias {ref.alias!r}) in {where} is not "
                                f"a Tenure model (no artifacts/{ARTIFACT_KEY}); was it logged by `tenure train`?")
        out[task] = replace(ref, path=str(path))
    return out


def load_models(refs: Mapping[str, ChampionRef], accepted: Mapping[str, Mapping[str, Any]]) -> dict[str, ServedModel]:
    """Load each downloaded version (`ref.path`) once and prepare it for serving; refuses what it cannot serve."""
    from models.artifact import TenureModel

    served: dict[str, ServedModel] = {}
    problems: list[str] = []
    for task, ref in refs.items():
        if not ref.path:
            raise RegistryError(f"{ref.uri}: no local copy to load (download it first)")
        try:
            model = TenureModel.load(Path(ref.path))
        except Exception as exc:  # unreadable files, wrong format, other artefact version
            raise RegistryError(f"cannot load {ref.uri} (alias {ref.alias!r}) from {ref.path}: {exc}") from exc
        issues = check_servable(ref, model, accepted)
        if issues:
            problems.extend(issues)
            continue
        served[task] = ServedModel.build(task=ref.task, model_name=ref.model_name, version=ref.version,
                                         run_id=ref.run_id, alias=ref.alias, model=model)
    if problems:
        raise RegistryError("cannot serve these models: " + "; ".join(problems))
    return served
