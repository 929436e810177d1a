"""kube-monkey: deploy it, enrol workloads as its victims, tell what it did, remove it.

kube-monkey (github.com/asobti/kube-monkey) deletes pods of the workloads that opted in with
``kube-monkey/*`` labels, on a schedule read from ``/etc/kube-monkey/config.toml``. These
activities write that configuration and those labels exactly as kube-monkey reads them, and
undo them: every object ``deploy_kube_monkey`` creates carries
``app.kubernetes.io/managed-by: chaosali`` so that ``remove_kube_monkey`` deletes exactly those.
"""
