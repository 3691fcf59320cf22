"""Project rules for the manifests in boards/k8s/ that a schema cannot express.

Run by boards/k8s/validate (after the schema check) as `policy.py ROOT [MANIFEST_DIR]`
(MANIFEST_DIR defaults to ROOT/boards/k8s); prints one PASS/FAIL line per rule and object and exits 1 on any failure.
The rules tie the manifests to the rest of the project: the ECHO_* options in
src/config.rs, the image's USER in boards/Containerfile, the crate version in Cargo.toml,
and issue 12's requirements (gRPC probes, drain before SIGKILL, hardening, resources).
"""

import pathlib
import re
import sys

import yaml

FAILURES = []


def check(ok, what):
    """Prints PASS or FAIL for one rule and remembers failures."""
    print(("PASS: " if ok else "FAIL: ") + what)
    if not ok:
        FAILURES.append(what)


def seconds(text):
    """A server duration ('10s', '5m', '2h', '500ms') in seconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def mebibytes(text):
    """A Kubernetes memory quantity in MiB (Ki, Mi, Gi suffixes or plain bytes)."""
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", str(text))
    if not m:
        raise ValueError(f"unsupported quantity: {text!r}")
    return int(m.group(1)) * {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, None: 1 / 2**20}[m.group(2)]


def server_options(root):
    """ECHO_* variable -> default, from src/config.rs's OPTIONS table."""
    text = " ".join((root / "src/config.rs").read_text().split())
    pairs = re.findall(r'env: "(ECHO_[A-Z_]+)", value: "[^"]*", default: "([^"]*)"', text)
    return dict(pairs)


def image_user(root):
    """The numeric UID of the Containerfile's USER line."""
    m = re.search(r"^USER (\d+)(?::\d+)?$", (root / "boards/Containerfile").read_text(), re.M)
    return int(m.group(1)) if m else None


def crate_version(root):
    """The package version in Cargo.toml."""
    return re.search(r'^version = "([^"]+)"', (root / "Cargo.toml").read_text(), re.M).group(1)


def main(root, manifests):
    """Loads every manifest in MANIFESTS and applies the rules; returns the exit code."""
    docs = {}
    for path in sorted(manifests.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.setdefault(doc["kind"], []).append((path.name, doc))
    options = server_options(root)
    check(bool(options), f"src/config.rs OPTIONS read ({len(options)} ECHO_* options)")
    uid = image_user(root)
    version = crate_version(root)

    (cm_file, cm), = docs["ConfigMap"]
    config = dict(options)
    unknown = sorted(k for k in cm["data"] if k not in options)
    check(not unknown, f"{cm_file}: every key is an echo-server option (unknown: {unknown or 'none'})")
    config.update(cm["data"])
    listen_port = int(config["ECHO_LISTEN"].rsplit(":", 1)[1])
    drain = seconds(config["ECHO_DRAIN_TIMEOUT"])
    namespaces = {d["metadata"].get("namespace") for kind, ds in docs.items() if kind != "Namespace" for _, d in ds}
    (ns_file, ns), = docs["Namespace"]
    check(namespaces == {ns["metadata"]["name"]}, f"every object is in namespace {ns['metadata']['name']} ({sorted(map(str, namespaces))})")

    (svc_file, svc), = docs["Service"]
    workloads = docs.get("DaemonSet", []) + docs.get("Deployment", [])
    check({"DaemonSet", "Deployment"} <= docs.keys(), "a DaemonSet and a Deployment variant exist")
    for name, w in workloads:
        what = f"{name} ({w['kind']})"
        pod = w["spec"]["template"]["spec"]
        labels = w["spec"]["template"]["metadata"]["labels"]
        (c,) = pod["containers"]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        tls = "ECHO_TLS_CERT" in env
        unknown = sorted(k for k in env if k not in options)
        check(not unknown, f"{what}: env names are echo-server options (unknown: {unknown or 'none'})")
        check(any(r.get("configMapRef", {}).get("name") == cm["metadata"]["name"] for r in c.get("envFrom", [])),
              f"{what}: configuration comes from ConfigMap {cm['metadata']['name']}")
        psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
        check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == uid and uid and uid > 0,
              f"{what}: runs as non-root UID {psc.get('runAsUser')} (image USER {uid})")
        check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{what}: seccomp RuntimeDefault")
        check(csc.get("allowPrivilegeEscalation") is False and csc.get("readOnlyRootFilesystem") is True
              and csc.get("capabilities", {}).get("drop") == ["ALL"] and not csc.get("capabilities", {}).get("add"),
              f"{what}: no privilege escalation, read-only root, all capabilities dropped")
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        check(list(ports.values()) == [listen_port], f"{what}: containerPort {list(ports.values())} = ECHO_LISTEN port {listen_port}")
        for probe in ("readinessProbe", "livenessProbe"):
            p = c.get(probe, {})
            kind = "tcpSocket" if tls else "grpc"
            check(p.get(kind, {}).get("port") == listen_port,
                  f"{what}: {probe} is {kind} on port {listen_port}" + (" (TLS: the kubelet's gRPC probe is plaintext)" if tls else ""))
        pre = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        grace = pod.get("terminationGracePeriodSeconds", 30)
        check(grace > pre + drain, f"{what}: terminationGracePeriodSeconds {grace} > preStop sleep {pre} + ECHO_DRAIN_TIMEOUT {drain:g}s")
        res = c.get("resources", {})
        req, lim = res.get("requests", {}), res.get("limits", {})
        budget = 32  # MiB: the server's default memory budget (--memory-budget, ECHO_MEMORY_BUDGET)
        ok = "memory" in req and "memory" in lim and mebibytes(req["memory"]) <= mebibytes(lim["memory"])
        check(ok and mebibytes(lim["memory"]) > budget and "cpu" in req,
              f"{what}: requests {req}, limits {lim} (memory limit above the {budget} MiB budget)")
        image = c["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        want = re.compile(re.escape(version) + r"-(tokio|runtime-free)" + ("-tls" if tls else "") + "$")
        check(bool(want.match(tag)), f"{what}: image tag '{tag}' is VERSION-FLAVOUR{'-tls' if tls else ''} for version {version}")
        if tls:
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            secret_vols = [v for v in pod.get("volumes", []) if "secret" in v]
            check(any(str(pathlib.PurePosixPath(env["ECHO_TLS_CERT"]).parent) == m for m in mounts) and secret_vols,
                  f"{what}: TLS certificate and key come from Secret {[v['secret']['secretName'] for v in secret_vols]}")
        if w["kind"] == "DaemonSet":
            terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            arches = {v for t in terms for e in t["matchExpressions"] if e["key"] == "kubernetes.io/arch" for v in e["values"]}
            check({"arm64", "arm"} <= arches, f"{what}: scheduled on kubernetes.io/arch {sorted(arches)}")
        sel = svc["spec"]["selector"]
        check(all(labels.get(k) == v for k, v in sel.items()), f"{what}: pods match Service {svc['metadata']['name']}'s selector")
        check(all(p["targetPort"] in ports or p["targetPort"] in ports.values() for p in svc["spec"]["ports"]),
              f"{what}: Service targetPort names a container port")

    print(f"policy: {len(FAILURES)} failure(s)" if FAILURES else "policy: all rules pass")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    ROOT = pathlib.Path(sys.argv[1])
    sys.exit(main(ROOT, pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "boards/k8s"))
