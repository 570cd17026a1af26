#!/usr/bin/env bash
# Checks the Kubernetes manifests without a cluster:
#   1. every YAML file parses (python3 + PyYAML) and each document has apiVersion, kind and
#      metadata.name/namespace; the expected kinds are all there;
#   2. the manifests agree with each other and with the gate's config: probes on /readyz and
#      /healthz at the admin port, ports match [proxy] listen and [admin] listen, the config,
#      secrets, overrides (a directory mount the kubelet updates) and last_good paths are mounted (last_good on a writable volume, seeded by the
#      init container from an optional ConfigMap), terminationGracePeriodSeconds covers
#      preStop + grace_period + shutdown_timeout, non-root and read-only root filesystem,
#      selectors of Service/PDB/HPA match the Deployment;
#   3. schema validation with kubernetes-validate (PyPI; strict, two Kubernetes versions) and
#      yamllint, installed with pip when missing (reported, not failed, when impossible);
#   4. `poortwachter check` accepts the ConfigMap's config (paths mapped to a temp dir), when
#      the binary is built, with the overrides of examples/overrides-configmap.yaml.
# Run from the repository root: bash deploy/kubernetes/check.sh
set -euo pipefail

ORIG_PWD=$PWD
cd "$(dirname "$0")/../.."
ROOT=$PWD
KIT=$ROOT/deploy/kubernetes
K8S_VERSIONS=${K8S_VERSIONS:-"1.30.0 1.34.0"}
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir=$ORIG_PWD/$target_dir ;; esac
BIN=$target_dir/debug/poortwachter

say() { printf 'kubernetes check: %s\n' "$*"; }
command -v python3 >/dev/null || { say "FAIL: python3 is needed"; exit 1; }

pip_install() { # quietly, bounded; false when impossible
  timeout 300 python3 -m pip install -q --disable-pip-version-check "$@" >/dev/null 2>&1 ||
    timeout 300 python3 -m pip install -q --disable-pip-version-check --break-system-packages "$@" >/dev/null 2>&1
}

if ! python3 -c 'import yaml' 2>/dev/null; then
  say "PyYAML missing: installing"
  pip_install pyyaml ||
    { [ "$(id -u)" -eq 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml >/dev/null 2>&1; } ||
    true
  python3 -c 'import yaml' 2>/dev/null || { say "FAIL: PyYAML cannot be installed; nothing checked"; exit 1; }
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/poortwachter-k8s.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# ------------------------------------------------------------------ 1 + 2: parse, consistency
python3 - "$KIT" "$TMP" <<'EOF'
import glob, os, re, sys
import yaml
try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

kit, tmp = sys.argv[1], sys.argv[2]
problems, notes = [], []
def check(cond, msg):
    if not cond:
        problems.append(msg)
    return cond

files = sorted(glob.glob(f"{kit}/*.yaml") + glob.glob(f"{kit}/examples/*.yaml"))
docs = {}
for f in files:
    rel = os.path.relpath(f, kit)
    for d in yaml.safe_load_all(open(f)):
        if d is None:
            continue
        meta = d.get("metadata") or {}
        ok = all([check(d.get("apiVersion"), f"{rel}: apiVersion missing"),
                  check(d.get("kind"), f"{rel}: kind missing"),
                  check(meta.get("name"), f"{rel}: metadata.name missing")])
        if ok and d["kind"] != "Namespace":
            check(meta.get("namespace") == "poortwachter", f"{rel}: {d['kind']} not in namespace poortwachter")
        if ok:
            docs[(d["kind"], meta["name"])] = d
print(f"kubernetes check: parsed {len(files)} files, {len(docs)} resources: "
      + ", ".join(f"{k}/{n}" for k, n in sorted(docs)))

need = [("Namespace", "poortwachter"), ("ConfigMap", "poortwachter-config"),
        ("Deployment", "poortwachter"), ("Service", "poortwachter"),
        ("PodDisruptionBudget", "poortwachter"), ("HorizontalPodAutoscaler", "poortwachter"),
        ("Secret", "poortwachter-secrets"), ("ConfigMap", "poortwachter-seed"),
        ("ConfigMap", "poortwachter-overrides")]
for k in need:
    check(k in docs, f"missing {k[0]}/{k[1]}")
if problems:
    print("\n".join("kubernetes check: FAIL " + p for p in problems)); sys.exit(1)

dep = docs[("Deployment", "poortwachter")]
pod = dep["spec"]["template"]["spec"]
labels = dep["spec"]["template"]["metadata"]["labels"]
check(dep["spec"]["selector"]["matchLabels"].items() <= labels.items(), "Deployment selector does not match its pod labels")
main = next(c for c in pod["containers"] if c["name"] == "poortwachter")
ports = {p["name"]: p["containerPort"] for p in main["ports"]}
toml_text = docs[("ConfigMap", "poortwachter-config")]["data"]["poortwachter.toml"]
open(f"{tmp}/poortwachter.toml", "w").write(toml_text)
if tomllib:
    cfg = tomllib.loads(toml_text)
else:  # enough for the keys used below
    cfg = {"proxy": {}, "admin": {}, "allowlist": {}}
    for sect, key in [("proxy", "grace_period"), ("proxy", "shutdown_timeout"), ("admin", "listen"),
                      ("admin", "token_file"), ("allowlist", "token_file"), ("allowlist", "last_good")]:
        m = re.search(rf'^{key}\s*=\s*"([^"]*)"', toml_text.split(f"[{sect}]", 1)[1], re.M)
        cfg[sect][key] = m.group(1) if m else None
    m = re.search(r'^listen\s*=\s*\["([^"]*)"', toml_text.split("[proxy]", 1)[1], re.M)
    cfg["proxy"]["listen"] = [m.group(1)] if m else []
    cfg["proxy"]["listener"] = [{"addr": a} for a in re.findall(r'^addr\s*=\s*"([^"]*)"', toml_text, re.M)]
    m = re.search(r'^overrides\s*=\s*"([^"]*)"', toml_text, re.M)
    if m:
        cfg["allowlist"]["overrides"] = m.group(1)

def port_of(addr): return int(addr.rsplit(":", 1)[1])
def secs(v): return int(re.fullmatch(r"(\d+)s", v).group(1))

# Probes on the admin port.
rp, lp = main.get("readinessProbe", {}).get("httpGet", {}), main.get("livenessProbe", {}).get("httpGet", {})
check(rp.get("path") == "/readyz" and rp.get("port") == "admin", "readinessProbe must be GET /readyz on port admin")
check(lp.get("path") == "/healthz" and lp.get("port") == "admin", "livenessProbe must be GET /healthz on port admin")
check(ports.get("admin") == port_of(cfg["admin"]["listen"]), f"container port admin {ports.get('admin')} != [admin] listen {cfg['admin']['listen']}")
proxy_addrs = cfg["proxy"].get("listen", []) + [l["addr"] for l in cfg["proxy"].get("listener", [])]
check(ports.get("http") in [port_of(a) for a in proxy_addrs], f"container port http {ports.get('http')} not in [proxy] listen / [[proxy.listener]] {proxy_addrs}")
check(not cfg["admin"]["listen"].startswith("127."), "[admin] listen must not be loopback: the kubelet probes the pod IP")

# Graceful termination budget.
pre = main.get("lifecycle", {}).get("preStop", {})
pre_s = 0
if "exec" in pre:
    cmd = pre["exec"]["command"]
    pre_s = int(cmd[-1]) if cmd[0].endswith("sleep") else 0
elif "sleep" in pre:
    pre_s = int(pre["sleep"]["seconds"])
grace, shut = secs(cfg["proxy"].get("grace_period", "5s")), secs(cfg["proxy"].get("shutdown_timeout", "5s"))
tgps = pod.get("terminationGracePeriodSeconds", 30)
check(tgps >= pre_s + grace + shut,
      f"terminationGracePeriodSeconds {tgps} < preStop {pre_s} + grace_period {grace} + shutdown_timeout {shut}")
notes.append(f"termination: preStop {pre_s}s + grace_period {grace}s + shutdown_timeout {shut}s <= terminationGracePeriodSeconds {tgps}s")

# Mounts: config, secrets, writable state for last_good, seed.
vols = {v["name"]: v for v in pod["volumes"]}
mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
def mount_for(path):
    best = None
    for mp, m in mounts.items():
        if path.startswith(mp.rstrip("/") + "/") and (best is None or len(mp) > len(best[0])):
            best = (mp, m)
    return best
args = main.get("args", [])
conf_path = args[args.index("--config") + 1] if "--config" in args else None
mc = conf_path and mount_for(conf_path)
check(mc and "configMap" in vols[mc[1]["name"]] and vols[mc[1]["name"]]["configMap"]["name"] == "poortwachter-config"
      and os.path.basename(conf_path) in docs[("ConfigMap", "poortwachter-config")]["data"],
      f"--config {conf_path} is not a key of ConfigMap poortwachter-config mounted there")
secret = docs[("Secret", "poortwachter-secrets")]
secret_keys = set((secret.get("stringData") or {}) | (secret.get("data") or {}))
for key in [("admin", "token_file"), ("allowlist", "token_file")]:
    p = cfg[key[0]].get(key[1])
    m = p and mount_for(p)
    check(m and "secret" in vols[m[1]["name"]] and vols[m[1]["name"]]["secret"]["secretName"] == "poortwachter-secrets"
          and os.path.basename(p) in secret_keys,
          f"[{key[0]}] {key[1]} = {p} is not a key of Secret poortwachter-secrets mounted there")
lg = cfg["allowlist"].get("last_good")
m = lg and mount_for(lg)
check(m and "emptyDir" in vols[m[1]["name"]] and not m[1].get("readOnly"),
      f"[allowlist] last_good = {lg} must be on a writable emptyDir (or volume) mount")
ov = cfg["allowlist"].get("overrides")
if ov:
    mo = mount_for(ov)
    vol = mo and vols[mo[1]["name"]]
    check(mo and "configMap" in vol and vol["configMap"]["name"] == "poortwachter-overrides"
          and os.path.basename(ov) in docs[("ConfigMap", "poortwachter-overrides")]["data"]
          and "subPath" not in mo[1] and not vol["configMap"].get("optional"),
          f"[allowlist] overrides = {ov} must be a key of ConfigMap poortwachter-overrides, mounted as a "
          "directory (no subPath: the kubelet never updates one) and not optional")
seed_ok = False
for ic in pod.get("initContainers", []):
    ic_mounts = {x["name"]: x["mountPath"] for x in ic.get("volumeMounts", [])}
    script = " ".join(ic.get("command", []) + ic.get("args", []))
    if m and m[1]["name"] in ic_mounts and "seed" in ic_mounts and lg.replace(m[0], ic_mounts[m[1]["name"]]) in script:
        seed_ok = vols["seed"].get("configMap", {}).get("name") == "poortwachter-seed" and vols["seed"]["configMap"].get("optional") is True
check(seed_ok, "an init container must copy the optional ConfigMap poortwachter-seed to last_good")

# Security.
psc = pod.get("securityContext", {})
check(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) > 0, "pod must run as a non-root uid")
check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccompProfile RuntimeDefault expected")
for c in pod["containers"] + pod.get("initContainers", []):
    sc = c.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True, f"{c['name']}: readOnlyRootFilesystem must be true")
    check(sc.get("allowPrivilegeEscalation") is False, f"{c['name']}: allowPrivilegeEscalation must be false")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{c['name']}: capabilities must drop ALL")
    check("memory" in c.get("resources", {}).get("limits", {}), f"{c['name']}: memory limit missing")
check(pod.get("automountServiceAccountToken") is False, "the gate needs no service account token")

# Service, PDB, HPA.
svc = docs[("Service", "poortwachter")]
check(svc["spec"]["selector"].items() <= labels.items(), "Service selector does not match the pods")
for p in svc["spec"]["ports"]:
    check(p["targetPort"] in ports or p["targetPort"] in ports.values(), f"Service targetPort {p['targetPort']} is not a container port")
check(all(p["targetPort"] != "admin" and p["targetPort"] != ports.get("admin") for p in svc["spec"]["ports"]),
      "the Service must not expose the admin port")
pdb = docs[("PodDisruptionBudget", "poortwachter")]
check(pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), "PDB selector does not match the pods")
hpa = docs[("HorizontalPodAutoscaler", "poortwachter")]
ref = hpa["spec"]["scaleTargetRef"]
check(ref["kind"] == "Deployment" and ref["name"] == dep["metadata"]["name"], "HPA does not target the Deployment")
check(hpa["spec"]["minReplicas"] >= 2, "HPA minReplicas must be at least 2")
if "minAvailable" in pdb["spec"]:
    check(int(pdb["spec"]["minAvailable"]) < hpa["spec"]["minReplicas"], "PDB minAvailable blocks every drain at minReplicas")
check("cpu" in main.get("resources", {}).get("requests", {}), "HPA on CPU needs a CPU request")

if problems:
    print("\n".join("kubernetes check: FAIL " + p for p in problems))
    sys.exit(1)
for n in notes:
    print("kubernetes check: " + n)
print("kubernetes check: ok   consistency: probes, ports, mounts, seed, termination budget, security context, selectors")
EOF

# ------------------------------------------------------------------ 3: schema validation, lint
manifests=("$KIT"/*.yaml "$KIT"/examples/*.yaml)
command -v kubernetes-validate >/dev/null || python3 -c 'import kubernetes_validate' 2>/dev/null ||
  { say "kubernetes-validate missing: installing from PyPI"; pip_install kubernetes-validate || true; }
if python3 -c 'import kubernetes_validate' 2>/dev/null; then
  for v in $K8S_VERSIONS; do
    python3 -m kubernetes_validate --strict --quiet -k "$v" "${manifests[@]}" ||
      { say "FAIL: schema validation against Kubernetes $v"; exit 1; }
    say "ok   kubernetes-validate --strict (Kubernetes $v schemas): ${#manifests[@]} files"
  done
else
  say "NOT RUN: kubernetes-validate could not be installed (no PyPI): schema validation skipped"
fi

command -v yamllint >/dev/null || python3 -c 'import yamllint' 2>/dev/null ||
  { say "yamllint missing: installing from PyPI"; pip_install yamllint || true; }
if python3 -c 'import yamllint' 2>/dev/null; then
  python3 -m yamllint -d '{extends: default, rules: {line-length: {max: 130}, document-start: disable, comments: {min-spaces-from-content: 1}}}' \
    "${manifests[@]}" || { say "FAIL: yamllint"; exit 1; }
  say "ok   yamllint: ${#manifests[@]} files"
else
  say "NOT RUN: yamllint could not be installed"
fi

# ------------------------------------------------------------------ 4: the gate's own judgement
if [ -x "$BIN" ]; then
  mkdir -p "$TMP/secrets" "$TMP/state"
  echo "dummy-admin-token-0123456789" >"$TMP/secrets/admin-token"
  echo "dummy-admin-store-token-0123456789" >"$TMP/secrets/admin-store-token"
  cp "$ROOT/config/allowlist.json" "$TMP/state/allowlist.json"
  mkdir -p "$TMP/overrides"
  python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["data"]["overrides.json"])' \
    "$KIT/examples/overrides-configmap.yaml" >"$TMP/overrides/overrides.json"
  sed -e "s#/run/secrets/poortwachter#$TMP/secrets#g" -e "s#/var/lib/poortwachter#$TMP/state#g" \
    -e "s#/etc/poortwachter/overrides#$TMP/overrides#g" \
    "$TMP/poortwachter.toml" >"$TMP/mapped.toml"
  if out=$("$BIN" check --config "$TMP/mapped.toml" 2>&1); then
    say "ok   poortwachter check accepts the ConfigMap's poortwachter.toml"
  else
    say "FAIL: poortwachter check rejects the ConfigMap's poortwachter.toml: $out"; exit 1
  fi
else
  say "NOT RUN: $BIN not built: the ConfigMap's config was not checked by the gate"
fi
say "OK"
