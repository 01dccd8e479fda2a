#!/usr/bin/python3
"""deploy.compose_env: the shipped compose file and Dockerfile only set settings that
exist. Every COMET_* variable given to a sidecar must be one `comet-sidecar --help` lists,
every COMET_* given to the PHP app one the PHP client reads (php-client/src/
ClientOptions.php), and no secret has a fixed value (a ${VAR:?...} reference instead).
No container engine needed: the YAML is parsed.

usage: compose_env.py SOURCE_DIR COMET_SIDECAR_BINARY
"""
import re
import subprocess
import sys

import yaml

src, binary = sys.argv[1], sys.argv[2]
help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
sidecar_env = set(re.findall(r"\[(COMET_[A-Z0-9_]+)\]", help_text))
client_options = open(f"{src}/php-client/src/ClientOptions.php", encoding="utf-8").read()
client_env = set(re.findall(r"'(COMET_[A-Z0-9_]+)'", client_options))
secrets = {"COMET_PUBLISH_KEY", "COMET_TOKEN_SECRET"}

problems = []
compose = yaml.safe_load(open(f"{src}/deploy/docker/docker-compose.yml", encoding="utf-8"))
for name, service in compose["services"].items():
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    builds_sidecar = "build" in service and "Dockerfile" in str(service["build"])
    known = sidecar_env if builds_sidecar else client_env
    for key, value in env.items():
        if not key.startswith("COMET_"):
            continue
        if key not in known:
            who = "comet-sidecar --help" if builds_sidecar else "the PHP client"
            problems.append(f"service {name}: {key} is not a setting of {who}")
        if key in secrets and not re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", str(value)):
            problems.append(f"service {name}: {key} has a fixed value; use ${{{key}:?...}}")

dockerfile = open(f"{src}/deploy/docker/Dockerfile", encoding="utf-8").read()
for key in re.findall(r"\b(COMET_[A-Z0-9_]+)=", dockerfile):
    if key not in sidecar_env:
        problems.append(f"Dockerfile: {key} is not a setting of comet-sidecar --help")

if problems:
    print("compose_env: FAIL:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"compose_env: {len(compose['services'])} services checked against "
      f"{len(sidecar_env)} sidecar and {len(client_env)} PHP client settings")
