"""The Kubernetes manifests: the production overlay renders, and every service's Deployment
has the probes, resources, restricted securityContext, image and NATS user the code and
deploy/nats expect; Services, autoscalers, disruption budgets and network policies fit."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deployfiles import DEPLOY, SERVICE_NAMES, ServiceInfo, read_nats_conf

K8S = DEPLOY / "k8s"


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render_overlay() -> list[dict[str, Any]]:
    """``kubectl kustomize`` when it is installed; otherwise a small stand-in that applies
    the overlay's namespace, images and strategic-merge patches the way we use them."""
    overlay = K8S / "overlays" / "production"
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        rendered = subprocess.run(
            [kubectl, "kustomize", str(overlay)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        return [doc for doc in yaml.safe_load_all(rendered) if doc]
    return standin_render(overlay)


def merge(target: Any, patch: Any) -> Any:
    """Strategic merge as our patches need it: maps merge, lists of named items merge by
    name, other values replace."""
    if isinstance(target, dict) and isinstance(patch, dict):
        merged = dict(target)
        for key, value in patch.items():
            merged[key] = merge(target[key], value) if key in target else value
        return merged
    lists = isinstance(target, list) and isinstance(patch, list)
    named = lists and all(isinstance(item, dict) and "name" in item for item in [*target, *patch])
    if named:
        by_name = {item["name"]: item for item in target}
        for item in patch:
            by_name[item["name"]] = merge(by_name.get(item["name"], {}), item)
        return list(by_name.values())
    return patch


def json_patch(document: dict[str, Any], operations: list[dict[str, Any]]) -> None:
    """The JSON patch operations our component uses: ``add`` (``-`` appends) and
    ``replace``, on paths that exist up to their last step."""
    for operation in operations:
        assert operation["op"] in ("add", "replace"), operation
        *parents, last = [
            step.replace("~1", "/").replace("~0", "~") for step in operation["path"][1:].split("/")
        ]
        node: Any = document
        for step in parents:
            node = node[int(step)] if isinstance(node, list) else node[step]
        value = copy.deepcopy(operation["value"])
        if isinstance(node, list):
            if last == "-":
                node.append(value)
            elif operation["op"] == "add":
                node.insert(int(last), value)
            else:
                node[int(last)] = value
        else:
            node[last] = value


def selected(document: dict[str, Any], target: dict[str, Any]) -> bool:
    if target.get("kind", document["kind"]) != document["kind"]:
        return False
    labels = document["metadata"].get("labels", {})
    wanted = dict(pair.split("=", 1) for pair in target.get("labelSelector", "").split(",") if pair)
    return wanted.items() <= labels.items()


def apply_component(component: Path, documents: list[dict[str, Any]]) -> None:
    """A kustomize Component as ours is written: JSON patches on the resources a target
    (kind, labelSelector) selects."""
    kustomization = yaml.safe_load((component / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Component"
    assert set(kustomization) <= {"apiVersion", "kind", "patches"}, "the stand-in's scope"
    for patch in kustomization["patches"]:
        operations = yaml.safe_load((component / patch["path"]).read_text())
        matched = [doc for doc in documents if selected(doc, patch["target"])]
        assert matched, patch
        for doc in matched:
            json_patch(doc, operations)


def render_base(path: Path) -> list[dict[str, Any]]:
    base = yaml.safe_load((path / "kustomization.yaml").read_text())
    documents: list[dict[str, Any]] = []
    for item in base["resources"]:
        documents += load_documents(path / item)
    for component in base.get("components", []):
        apply_component((path / component).resolve(), documents)
    return documents


def standin_render(overlay: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    documents: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        path = overlay / resource
        if path.is_dir():
            documents += render_base(path)
        else:
            documents += load_documents(path)
    for patch in kustomization.get("patches", []):
        for patch_doc in load_documents(overlay / patch["path"]):
            index = next(
                i
                for i, doc in enumerate(documents)
                if doc["kind"] == patch_doc["kind"]
                and doc["metadata"]["name"] == patch_doc["metadata"]["name"]
            )
            documents[index] = merge(documents[index], patch_doc)
    images = {image["name"]: image for image in kustomization.get("images", [])}
    for doc in documents:
        if doc["kind"] != "Namespace":
            doc["metadata"]["namespace"] = kustomization["namespace"]
        template = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in template.get("containers", []):
            name = container["image"].split(":")[0]
            if name in images:
                image = images[name]
                container["image"] = f"{image.get('newName', name)}:{image['newTag']}"
    return documents


def comparable(documents: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """Documents by kind and name, lists of named items in name order, labels ignored (the
    overlay's ``labels`` the stand-in does not add)."""

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items() if k != "labels"}
        if isinstance(value, list):
            items = [norm(item) for item in value]
            if all(isinstance(item, dict) and "name" in item for item in items):
                items.sort(key=lambda item: str(item["name"]))
            return items
        return value

    return {(doc["kind"], doc["metadata"]["name"]): norm(doc) for doc in documents}


def test_the_standin_renders_what_kubectl_kustomize_renders() -> None:
    """The stand-in (components and JSON patches included) is what CI uses without kubectl."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    overlay = K8S / "overlays" / "production"
    assert comparable(standin_render(overlay)) == comparable(render_overlay())


def test_the_service_component_reaches_every_service_resource() -> None:
    """Each service's Deployment, Service, autoscaler and disruption budget carries the label
    the component selects, so none misses the shared securityContext, probes or /tmp."""
    component = yaml.safe_load((K8S / "components" / "service" / "kustomization.yaml").read_text())
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    assert "../components/service" in base["components"]
    targets = {patch["target"]["kind"]: patch["target"] for patch in component["patches"]}
    assert set(targets) == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    for name in SERVICE_NAMES:
        for doc in load_documents(K8S / "base" / f"{name}.yaml"):
            assert selected(doc, targets[doc["kind"]]), (name, doc["kind"])


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render_overlay()


def find(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}"
    return matches[0]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def cpu_millis(value: str) -> float:
    return float(value[:-1]) if value.endswith("m") else float(value) * 1000


def mebibytes(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", value).groups()  # type: ignore[union-attr]
    return float(number) * (1024 if unit == "Gi" else 1)


def test_the_overlay_patches_only_resources_the_base_has() -> None:
    overlay = K8S / "overlays" / "production"
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    base_docs = [
        doc
        for item in yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())["resources"]
        for doc in load_documents(K8S / "base" / item)
    ]
    base_names = {(doc["kind"], doc["metadata"]["name"]) for doc in base_docs}
    for patch in kustomization["patches"]:
        for doc in load_documents(overlay / patch["path"]):
            assert (doc["kind"], doc["metadata"]["name"]) in base_names, patch["path"]
    images = {image["name"] for image in kustomization["images"]}
    used = {
        container["image"].split(":")[0]
        for doc in base_docs
        for container in doc.get("spec", {})
        .get("template", {})
        .get("spec", {})
        .get("containers", [])
    }
    assert used == images, "every image gets a pinned production tag"


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_each_deployment_is_probed_sized_locked_down_and_uses_its_own_nats_user(
    name: str,
    rendered: list[dict[str, Any]],
    services: dict[str, ServiceInfo],
    nats_users: dict[str, dict[str, Any]],
) -> None:
    service = services[name]
    deployment = find(rendered, "Deployment", name)
    assert deployment["metadata"]["namespace"] == "cctelegram"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # The image of this service, pinned to a release tag.
    assert re.fullmatch(rf"[\w./-]*cctelegram/{name}:\d+\.\d+\.\d+", container["image"])
    # The port the settings default to, and the probes on it.
    (port,) = container["ports"]
    assert port["containerPort"] == service.http_port
    assert port["name"] == "http"
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    # Requests and limits for CPU and memory, requests within limits.
    resources = container["resources"]
    for kind, parse in (("cpu", cpu_millis), ("memory", mebibytes)):
        assert parse(resources["requests"][kind]) <= parse(resources["limits"][kind])
    # Restricted securityContext (the namespace also enforces Pod Security "restricted").
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert "/tmp" in mounts, "a writable /tmp on a read-only root filesystem"
    # Its own NATS user, inbox and no stream creation; the password from a Secret.
    env = env_of(container)
    prefix = service.env_prefix
    user = env[f"{prefix}NATS__USER"]["value"]
    assert user == name
    inbox = env[f"{prefix}NATS__INBOX_PREFIX"]["value"]
    assert f"{inbox}.>" in nats_users[user]["permissions"]["subscribe"]["allow"]
    assert env[f"{prefix}NATS__PROVISION"]["value"] == "false"
    assert env[f"{prefix}NATS__REPLICAS"]["value"] == "3"
    assert env[f"{prefix}HTTP__PORT"]["value"] == str(service.http_port)
    for key, item in env.items():
        if re.search(r"PASSWORD|TOKEN|SECRET(?!_FILE)", key):
            assert "value" not in item, f"{key} must come from a Secret"
    assert env[f"{prefix}NATS__PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == user


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_each_service_has_a_service_an_autoscaler_and_a_disruption_budget(
    name: str, rendered: list[dict[str, Any]], services: dict[str, ServiceInfo]
) -> None:
    deployment = find(rendered, "Deployment", name)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = find(rendered, "Service", name)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["port"] == services[name].http_port
    hpa = find(rendered, "HorizontalPodAutoscaler", name)
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert deployment["spec"]["replicas"] >= hpa["spec"]["minReplicas"]
    pdb = find(rendered, "PodDisruptionBudget", name)
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1


def test_network_policies_deny_by_default_and_open_only_what_is_needed(
    rendered: list[dict[str, Any]],
) -> None:
    policies = [doc for doc in rendered if doc["kind"] == "NetworkPolicy"]
    deny = find(policies, "NetworkPolicy", "default-deny-all")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    # Ingress from anywhere: only the gateway.
    open_ingress = [
        policy["spec"]["podSelector"]
        for policy in policies
        for rule in policy["spec"].get("ingress", [])
        if "from" not in rule
    ]
    assert open_ingress == [{"matchLabels": {"app.kubernetes.io/name": "gateway"}}]
    # Egress beyond the cluster (ipBlock): only the notifier, only 443.
    external = [
        (policy["spec"]["podSelector"], rule["ports"])
        for policy in policies
        for rule in policy["spec"].get("egress", [])
        if any("ipBlock" in peer for peer in rule.get("to", []))
    ]
    assert external == [
        (
            {"matchLabels": {"app.kubernetes.io/name": "notifier"}},
            [{"port": 443, "protocol": "TCP"}],
        )
    ]
    # Every suite pod may reach DNS and NATS's client port.
    suite_egress = find(policies, "NetworkPolicy", "suite-egress-dns-and-nats")
    ports = {port["port"] for rule in suite_egress["spec"]["egress"] for port in rule["ports"]}
    assert ports == {53, 4222}


def test_nats_chart_values_give_a_replicated_cluster_with_the_same_users(
    nats_users: dict[str, dict[str, Any]],
) -> None:
    values = yaml.safe_load((K8S / "nats-values.yaml").read_text())
    config = values["config"]
    assert config["cluster"] == {"enabled": True, "replicas": 3}
    jetstream = config["jetstream"]
    assert jetstream["enabled"] is True
    assert jetstream["fileStore"]["enabled"] is True
    assert jetstream["fileStore"]["pvc"]["enabled"] is True
    assert jetstream["merge"]["sync_interval"] == "always"
    chart_users = {user["user"]: user for user in config["merge"]["authorization"]["users"]}
    assert chart_users.keys() == nats_users.keys()
    env = values["container"]["env"]
    for name, entry in nats_users.items():
        variable = entry["password"].lstrip("$")
        assert chart_users[name]["password"] == f"<< ${variable} >>"
        assert chart_users[name]["permissions"] == entry["permissions"], name
        assert "secretKeyRef" in env[variable]["valueFrom"]


def test_secrets_are_templates_and_cover_every_reference(rendered: list[dict[str, Any]]) -> None:
    examples = load_documents(K8S / "secrets.example.yaml")
    keys = {(doc["metadata"]["name"], key) for doc in examples for key in doc["stringData"]}
    for doc in examples:
        assert set(doc["stringData"].values()) == {"REPLACE_ME"}
    referenced: set[tuple[str, str]] = set()
    for doc in rendered:
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add((ref["name"], ref["key"]))
        for volume in pod.get("volumes", []):
            secret = volume.get("secret")
            if secret is None:
                continue
            names = {name for name, _key in keys}
            assert secret["secretName"] in names, secret["secretName"]
            for item in secret.get("items", []):
                referenced.add((secret["secretName"], item["key"]))
    values = yaml.safe_load((K8S / "nats-values.yaml").read_text())
    for item in values["container"]["env"].values():
        ref = item["valueFrom"]["secretKeyRef"]
        referenced.add((ref["name"], ref["key"]))
    assert referenced <= keys
    # The NATS users of users.conf and the per-service Secret keys are the same names.
    users = read_nats_conf(DEPLOY / "nats" / "users.conf")["authorization"]["users"]
    assert {
        ("cctelegram-nats-credentials", u["user"]) for u in users if u["user"] != "admin"
    } <= keys
