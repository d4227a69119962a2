#!/usr/bin/env python3
"""Drives `ocellus serve` with the official OpenAI client library (npm "openai", pinned in
tests/serve/openai/package.json), so that a real client proves the API compatible.

The package is looked for in tests/serve/openai/node_modules (scripts/install-deps.sh
installs it there), then in BUILD/openai-client/node_modules; when neither has it, `npm ci`
installs it into the latter. The test is skipped (exit 77), saying why, only when node or
npm is missing or that install fails.

    openai_test.py --cli build/ocellus --model models/ocellus-shapes --examples examples --build build
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_test  # noqa: E402

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openai")


def skip(why):
    print("SKIP: " + why)
    sys.exit(77)


def find_client(build):
    for d in (HERE, os.path.join(build, "openai-client")):
        if os.path.isfile(os.path.join(d, "node_modules", "openai", "package.json")):
            return d
    npm = shutil.which("npm")
    if not npm:
        skip("npm is not installed, so the openai client package cannot be (apt-get install npm)")
    d = os.path.join(build, "openai-client")
    os.makedirs(d, exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(HERE, f), d)
    try:
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=d, capture_output=True,
                           text=True, timeout=180)
    except subprocess.TimeoutExpired:
        skip("npm ci of the openai package timed out (no registry?)")
    if r.returncode != 0:
        skip("npm ci of the openai package failed: " + (r.stderr or r.stdout).strip()[-300:])
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--examples", required=True)
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    node = shutil.which("node")
    if not node:
        skip("node is not installed (apt-get install nodejs)")
    client_dir = find_client(args.build)
    serve_test.ARGS = args
    serve_test.load_captions()
    cases = [{"image": p, "caption": serve_test.CAPTIONS[p]} for p in serve_test.examples()[:2]]
    with serve_test.Server("--api-key", "test-key") as s:
        env = dict(os.environ, OCELLUS_BASE_URL="http://127.0.0.1:%d/v1" % s.port,
                   OCELLUS_API_KEY="test-key", OCELLUS_CASES=json.dumps(cases),
                   NODE_PATH=os.path.join(client_dir, "node_modules"))
        script = os.path.join(client_dir, "client.mjs")
        if client_dir != HERE:
            shutil.copy(os.path.join(HERE, "client.mjs"), script)
        r = subprocess.run([node, script], env=env, timeout=300)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
