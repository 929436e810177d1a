"""The lab's cluster DNS: the real CoreDNS, laid out in kube-system as kubeadm lays it out.

kube-system gets what kubeadm's CoreDNS add-on makes: a ServiceAccount ``coredns`` bound to the
ClusterRole ``system:coredns``, the ConfigMap ``coredns`` with the Corefile, the Deployment
``coredns`` (two replicas, pods labelled ``k8s-app=kube-dns``) and the Service ``kube-dns`` at
:data:`CLUSTER_IP`. The lab has no pod network, so the pods use their host's: each serves port 53
on the address of the worker it is bound to (its hostPort keeps two replicas apart), where the
node's ``pods`` service (``podrunner.py``) runs the built binary with the pod's Corefile and its
service account's token, and the ``kubernetes`` plugin reads the lab's API server with them.

The Corefile serves the cluster's domain and the reverse zones and nothing else: no ``forward``,
no upstream. A name outside the cluster is refused, and no query ever leaves the machine.
"""

from __future__ import annotations

from typing import Callable

from kubernetes import client as k8s

from chaosali.lab import k8sbuild

__all__ = ["DOMAIN", "LABELS", "CLUSTER_IP", "NAMESPACE", "SELECTOR", "TARGETS", "IMAGE", "CHECK_NAME", "deploy"]

DOMAIN = "cluster.local"
NAMESPACE = "kube-system"
LABELS = {"k8s-app": "kube-dns"}
SELECTOR = ",".join(f"{key}={value}" for key, value in LABELS.items())
#: The DNS hosts as chaosali's targets know them: the nodes of the kube-dns pods.
TARGETS = {"pods": {"namespace": NAMESPACE, "label_selector": SELECTOR}}
#: kubeadm's choice: the tenth address of the service range (10.96.0.0/16).
CLUSTER_IP = "10.96.0.10"
#: A name every cluster has: the API's Service, at the first address of the service range.
CHECK_NAME = f"kubernetes.default.svc.{DOMAIN}"
#: The image kubeadm names (a lab with real workers has it, built here: see ``nodes.write_images``).
IMAGE = f"registry.k8s.io/coredns/coredns:{k8sbuild.COREDNS_VERSION}"
#: kubeadm's number of CoreDNS pods.
REPLICAS = 2

COREFILE = f"""\
{DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    errors
    log
    health :8080
    ready :8181
    kubernetes {DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        ttl 30
    }}
    prometheus :9153
    cache 30
    loadbalance
}}
"""

_NAME = "coredns"
_PORTS = [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]


def deploy(api: k8s.ApiClient, create: Callable[[Callable[[dict], object], dict], None], replicas: int) -> None:
    """Create the cluster DNS's objects in kube-system with ``create`` (which keeps existing ones)."""
    core, apps, rbac = k8s.CoreV1Api(api), k8s.AppsV1Api(api), k8s.RbacAuthorizationV1Api(api)
    metadata = {"name": _NAME, "namespace": NAMESPACE}
    create(lambda body: core.create_namespaced_service_account(NAMESPACE, body), {"metadata": metadata})
    create(rbac.create_cluster_role, {
        "metadata": {"name": f"system:{_NAME}"},
        "rules": [
            {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
        ],
    })
    create(rbac.create_cluster_role_binding, {
        "metadata": {"name": f"system:{_NAME}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"system:{_NAME}"},
        "subjects": [{"kind": "ServiceAccount", "name": _NAME, "namespace": NAMESPACE}],
    })
    create(lambda body: core.create_namespaced_config_map(NAMESPACE, body),
           {"metadata": metadata, "data": {"Corefile": COREFILE}})
    create(lambda body: apps.create_namespaced_deployment(NAMESPACE, body), _deployment(replicas))
    create(lambda body: core.create_namespaced_service(NAMESPACE, body), {
        "metadata": {"name": "kube-dns", "namespace": NAMESPACE,
                     "labels": {**LABELS, "kubernetes.io/name": "CoreDNS"}},
        "spec": {"selector": LABELS, "clusterIP": CLUSTER_IP,
                 "ports": [{"name": name, "port": port, "protocol": protocol} for name, port, protocol in _PORTS]},
    })


def _deployment(replicas: int) -> dict:
    return {
        "metadata": {"name": _NAME, "namespace": NAMESPACE, "labels": LABELS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": LABELS},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": _NAME,
                    # no pod network in the lab: the pod serves on its node's address
                    "hostNetwork": True,
                    "dnsPolicy": "Default",
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
                    "containers": [{
                        "name": _NAME,
                        "image": IMAGE,
                        "args": ["-conf", "/etc/coredns/Corefile"],
                        "ports": [{"name": name, "containerPort": port, "protocol": protocol}
                                  for name, port, protocol in _PORTS],
                        "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": True}],
                    }],
                    "volumes": [{"name": "config-volume", "configMap": {
                        "name": _NAME, "items": [{"key": "Corefile", "path": "Corefile"}]}}],
                },
            },
        },
    }
