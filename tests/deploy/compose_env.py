#!/usr/bin/python3
"""deploy.compose_env: the shipped compose file, its Dockerfiles and HAProxy config agree
with the sidecar and with each other. No container engine needed: the YAML is parsed.

* Every COMET_* variable given to a sidecar is one `comet-sidecar --help` lists, every
  COMET_* given to the PHP app one the PHP client reads (php-client/src/ClientOptions.php),
  and no secret has a fixed value (a ${VAR:?...} reference instead); flags given to a
  sidecar (command:) are ones `comet-sidecar --help` lists.
* Every service is built (nothing pulled from another registry) FROM ${BASE_IMAGE}, a
  build argument defaulting to debian:12-slim, and restarts (unless-stopped).
* The allowed origins and the page's sidecar URL follow from one host setting.
* Nothing publishes the keyless publish listener (8081) or Redis to the host.
* The "scaled" profile has HAProxy whose servers are the profile's sidecars' public
  listeners, health-checked.
* .dockerignore keeps build trees, .git, node_modules and tests out of the context, and
  does not hide anything the Dockerfiles COPY.

usage: compose_env.py SOURCE_DIR COMET_SIDECAR_BINARY
"""
import fnmatch
import os
import re
import subprocess
import sys

import yaml

src, binary = sys.argv[1], sys.argv[2]
docker_dir = f"{src}/deploy/docker"
help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
sidecar_env = set(re.findall(r"\[(COMET_[A-Z0-9_]+)\]", help_text))
sidecar_flags = set(re.findall(r"^\s+(--[a-z0-9-]+)", help_text, re.M))
client_options = open(f"{src}/php-client/src/ClientOptions.php", encoding="utf-8").read()
client_env = set(re.findall(r"'(COMET_[A-Z0-9_]+)'", client_options))
secrets = {"COMET_PUBLISH_KEY", "COMET_TOKEN_SECRET"}
SIDECAR_DOCKERFILE = "deploy/docker/Dockerfile"
APP_DOCKERFILE = "deploy/docker/app/Dockerfile"
HAPROXY_DOCKERFILE = "deploy/docker/haproxy/Dockerfile"
# The variables the shipped HAProxy recipe reads ("${NAME-default}").
haproxy_env = set(re.findall(r"\$\{(COMET_[A-Z0-9_]+)-", open(f"{src}/deploy/haproxy/comet.cfg", encoding="utf-8").read()))

problems = []
compose = yaml.safe_load(open(f"{docker_dir}/docker-compose.yml", encoding="utf-8"))
services = compose["services"]


def env_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def build_of(service):
    """(context dir relative to the repository, Dockerfile path relative to it) or None."""
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        build = {"context": build}
    context = os.path.normpath(os.path.join("deploy/docker", build.get("context", ".")))
    dockerfile = os.path.normpath(os.path.join(context, build.get("dockerfile", "Dockerfile")))
    return context, dockerfile, build.get("args") or {}


sidecars, apps = [], []
for name, service in services.items():
    built = build_of(service)
    if built is None:
        problems.append(f"service {name}: not built here ({service.get('image')} would be pulled)")
        continue
    context, dockerfile, args = built
    if not os.path.isfile(f"{src}/{dockerfile}"):
        problems.append(f"service {name}: {dockerfile} does not exist")
    if "BASE_IMAGE" not in args or not re.fullmatch(r"\$\{BASE_IMAGE:-debian:12-slim\}", str(args["BASE_IMAGE"])):
        problems.append(f"service {name}: build arg BASE_IMAGE must be ${{BASE_IMAGE:-debian:12-slim}}")
    if service.get("restart") != "unless-stopped":
        problems.append(f"service {name}: restart is {service.get('restart')!r}, want unless-stopped")
    is_sidecar = dockerfile == SIDECAR_DOCKERFILE
    if is_sidecar:
        sidecars.append(name)
    elif dockerfile == APP_DOCKERFILE:
        apps.append(name)
    for key, value in env_of(service).items():
        if not key.startswith("COMET_"):
            continue
        is_haproxy = dockerfile == HAPROXY_DOCKERFILE
        known = sidecar_env if is_sidecar else haproxy_env if is_haproxy else client_env
        if key not in known:
            who = ("comet-sidecar --help" if is_sidecar else
                   "deploy/haproxy/comet.cfg" if is_haproxy else "the PHP client")
            problems.append(f"service {name}: {key} is not a setting of {who}")
        if key in secrets and not re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", value):
            problems.append(f"service {name}: {key} has a fixed value; use ${{{key}:?...}}")
    command = service.get("command") or []
    if isinstance(command, str):
        command = command.split()
    for word in command if is_sidecar else []:
        flag = str(word).split("=", 1)[0]
        if flag.startswith("--") and flag not in sidecar_flags:
            problems.append(f"service {name}: {flag} is not a flag of comet-sidecar --help")
    for port in service.get("ports") or []:
        target = str(port).rsplit(":", 1)[-1].split("/")[0]
        if target in ("8081", "6379"):
            problems.append(f"service {name}: publishes container port {target} (publish listener / Redis)")
        if not str(port).startswith("${BIND_ADDRESS:-127.0.0.1}:"):
            problems.append(f"service {name}: port {port} not bound to ${{BIND_ADDRESS:-127.0.0.1}}")

if not sidecars:
    problems.append(f"no service builds {SIDECAR_DOCKERFILE}")
if len(apps) != 1:
    problems.append(f"want one service building {APP_DOCKERFILE}, got {apps}")

# Origins and the page's URL follow from one host setting.
host_ref = re.compile(r"\$\{PUBLIC_HOST(:-[^}]*)?\}")
for name in sidecars:
    origins = env_of(services[name]).get("COMET_ALLOWED_ORIGINS", "")
    if not host_ref.search(origins) or "*" in origins:
        problems.append(f"service {name}: COMET_ALLOWED_ORIGINS ({origins!r}) must follow ${{PUBLIC_HOST}}")
for name in apps:
    url = env_of(services[name]).get("SIDECAR_URL", "")
    if not host_ref.search(url):
        problems.append(f"service {name}: SIDECAR_URL ({url!r}) must follow ${{PUBLIC_HOST}}")
defaults = {m.group(1) for text in (yaml.safe_dump(services),) for m in host_ref.finditer(text)}
if len(defaults) > 1:
    problems.append(f"PUBLIC_HOST has different defaults: {sorted(defaults)}")

# Dockerfiles: FROM ${BASE_IMAGE} (or an earlier stage), ARG BASE_IMAGE=debian:12-slim
# first, COMET_* ENV settings that exist.
dockerfiles = sorted({build_of(s)[1] for s in services.values() if build_of(s)})
for dockerfile in dockerfiles:
    try:
        text = open(f"{src}/{dockerfile}", encoding="utf-8").read()
    except OSError:
        continue
    if not re.search(r"^ARG BASE_IMAGE=debian:12-slim$", text, re.M):
        problems.append(f"{dockerfile}: no 'ARG BASE_IMAGE=debian:12-slim' before FROM")
    stages = set()
    for m in re.finditer(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I):
        if m.group(1) not in ("${BASE_IMAGE}",) and m.group(1) not in stages:
            problems.append(f"{dockerfile}: FROM {m.group(1)} (want ${{BASE_IMAGE}})")
        if m.group(2):
            stages.add(m.group(2))
    for key in re.findall(r"\b(COMET_[A-Z0-9_]+)=", text):
        if key not in sidecar_env:
            problems.append(f"{dockerfile}: {key} is not a setting of comet-sidecar --help")
    if re.search(r"^\s*(RUN|CMD|ENTRYPOINT).*(curl|wget)\s.*\|\s*(sh|bash)", text, re.M):
        problems.append(f"{dockerfile}: pipes a download into a shell")

# Scaled profile: HAProxy in front of the profile's sidecars, on their public port.
scaled = {n for n, s in services.items() if "scaled" in (s.get("profiles") or [])}
scaled_sidecars = sorted(n for n in scaled if n in sidecars)
haproxies = [n for n in scaled if "haproxy" in str(services[n].get("build"))]
if len(scaled_sidecars) < 2 or not haproxies:
    problems.append(f"profile scaled: want HAProxy and two sidecars, got {sorted(scaled)}")
for name in haproxies:
    # The image runs the shipped recipe unchanged; its servers come from the environment.
    dockerfile = f"{src}/{build_of(services[name])[1]}"
    if "COPY deploy/haproxy/comet.cfg" not in open(dockerfile, encoding="utf-8").read():
        problems.append(f"{name}: the image does not run the shipped deploy/haproxy/comet.cfg")
    cfg = open(f"{src}/deploy/haproxy/comet.cfg", encoding="utf-8").read()
    env = services[name].get("environment") or {}
    servers = []
    for var in re.findall(r'^\s*server\s+\S+\s+"\$\{(\w+)-[^}]*\}"', cfg, re.M):
        host, _, port = str(env.get(var, "")).partition(":")
        servers.append((host, port))
    if sorted(host for host, _ in servers) != scaled_sidecars:
        problems.append(f"{name}: servers {servers}, want {scaled_sidecars} on 8080")
    if any(port != "8080" for _, port in servers):
        problems.append(f"{name}: a server is not a sidecar's public listener (8080)")
    if not re.search(r"^\s*option httpchk GET /healthz", cfg, re.M) or not re.search(r"\bcheck\b", cfg):
        problems.append("deploy/haproxy/comet.cfg: servers are not health-checked on /healthz")
    if not re.search(r"deny.*\^/pub", cfg):
        problems.append("deploy/haproxy/comet.cfg: does not refuse /pub")

# .dockerignore: small contexts, but nothing a Dockerfile needs left out.
try:
    ignore = [line.strip() for line in open(f"{src}/.dockerignore", encoding="utf-8")
              if line.strip() and not line.startswith("#")]
except OSError:
    ignore = []
    problems.append(".dockerignore is missing")


def ignored(path):
    parts = path.split("/")
    for pattern in ignore:
        bare = pattern[3:] if pattern.startswith("**/") else pattern
        for i in range(len(parts)):
            prefix = "/".join(parts[: i + 1])
            if fnmatch.fnmatch(prefix, pattern) or (pattern.startswith("**/") and fnmatch.fnmatch(parts[i], bare)):
                return True
    return False


for must in (".git", "build", "build-asan", "tests/artifacts", "js-client/node_modules", "tests/browser/node_modules"):
    if not ignored(must):
        problems.append(f".dockerignore does not exclude {must}")
for dockerfile in dockerfiles:
    context = next(build_of(s)[0] for s in services.values() if build_of(s) and build_of(s)[1] == dockerfile)
    if context != ".":
        continue
    text = open(f"{src}/{dockerfile}", encoding="utf-8").read()
    for m in re.finditer(r"^COPY\s+(?!--from)(.+?)\s+\S+\s*$", text, re.M):
        for source in m.group(1).split():
            if not os.path.exists(f"{src}/{source}"):
                problems.append(f"{dockerfile}: COPY {source}: no such file")
            elif ignored(source):
                problems.append(f"{dockerfile}: COPY {source} is excluded by .dockerignore")

if problems:
    print("compose_env: FAIL:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"compose_env: {len(services)} services ({len(sidecars)} sidecars, profile scaled: "
      f"{len(scaled)}) and {len(dockerfiles)} Dockerfiles checked against "
      f"{len(sidecar_env)} sidecar and {len(client_env)} PHP client settings")
