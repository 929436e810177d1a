"""``chaosali schedule``: the experiment and its var files read as ``chaos run`` reads them, the
manifests rendered, and applied (server-side apply) through chaosali's own Kubernetes layer."""

from __future__ import annotations

from pathlib import Path

from chaoslib import convert_vars, merge_vars
from chaoslib.types import Configuration, Secrets

from chaosali.cluster import resources, rollout
from chaosali.plan.build import load
from chaosali.plan.rbac import rbac
from chaosali.schedule.manifests import Bundle, Options, drill_name, render

__all__ = ["schedule", "apply"]


def schedule(experiment: str, var_files: list[str], variables: list[str],
             options: Options) -> tuple[list[dict], Configuration, Secrets]:
    """The schedule's manifests, and the configuration and secrets to apply them with (the var
    files' kubeconfig)."""
    loaded, configuration, secrets = load(experiment, var_files, variables)
    config_vars, secret_vars = merge_vars(convert_vars(variables), var_files)
    bundle = Bundle.of(Path(experiment).read_text(encoding="utf-8"), config_vars, secret_vars)
    documents = render(drill_name(experiment), loaded, configuration, secrets, bundle,
                       rbac(loaded, configuration, secrets), options)
    return documents, configuration, secrets


def apply(documents: list[dict], configuration: Configuration, secrets: Secrets) -> list[dict]:
    """Create the schedule's namespace if it is missing, then server-side apply every document."""
    namespace = documents[0]["metadata"]["namespace"]
    with resources.connect(configuration, secrets) as dyn:
        rollout.ensure_namespace(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        return resources.apply(dyn, documents, None, force=True)
