"""The `fake-salesforce` binary as a test counterpart: start it, and drive it through its
`/__admin/` endpoints (records, fields, clock, tokens, authorization codes, faults, counters).

The binary comes from `FAKE_SALESFORCE_BIN`, else `$CARGO_TARGET_DIR/debug/fake-salesforce`
(built with `cargo build -p sluice-fake-salesforce` when missing).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]


def fake_binary() -> Path:
    explicit = os.environ.get("FAKE_SALESFORCE_BIN")
    if explicit:
        return Path(explicit)
    target = os.environ.get("CARGO_TARGET_DIR")
    target_dir = Path(target).expanduser() if target else REPO_ROOT / "target"
    binary = target_dir / "debug" / "fake-salesforce"
    if not binary.exists():
        command = ["cargo", "build", "--quiet", "-p", "sluice-fake-salesforce"]
        subprocess.run([*command, "--bin", "fake-salesforce"], cwd=REPO_ROOT, check=True)
    return binary


class FakeSalesforce:
    """A running `fake-salesforce` process; `stop()` closes its stdin, which ends it."""

    def __init__(self, accounts: int = 0):
        self.process = subprocess.Popen(
            [str(fake_binary()), "--accounts", str(accounts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        if not line:
            self.process.kill()
            raise RuntimeError("fake-salesforce exited before printing its address")
        ready = json.loads(line)
        self.url: str = ready["url"]
        self.client_id: str = ready["client_id"]
        self.client_secret: str = ready["client_secret"]
        self.admin: str = ready["admin"]

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def _call(self, method: str, path: str, body=None, expected: tuple[int, ...] = (200, 204)):
        response = requests.request(method, f"{self.admin}{path}", json=body, timeout=30)
        assert response.status_code in expected, (
            f"{method} /__admin{path}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else None

    def insert(self, object_name: str, records: list[dict]) -> list[str]:
        return self._call("POST", f"/records/{object_name}", {"records": records})["ids"]

    def update(self, object_name: str, record_id: str, fields: dict) -> None:
        self._call("PATCH", f"/records/{object_name}/{record_id}", fields)

    def delete(self, object_name: str, record_id: str) -> None:
        self._call("DELETE", f"/records/{object_name}/{record_id}")

    def records(self, object_name: str) -> list[dict]:
        return self._call("GET", f"/records/{object_name}")["records"]

    def add_field(self, object_name: str, name: str, kind: str, **options) -> None:
        body = {"name": name, "type": kind, **options}
        self._call("POST", f"/objects/{object_name}/fields", body)

    def set_now(self, moment: dt.datetime | None) -> None:
        now = None if moment is None else moment.astimezone(dt.timezone.utc).isoformat()
        self._call("POST", "/clock", {"now": now})

    def set_page_size(self, rows: int) -> None:
        self._call("POST", "/page-size", {"rows": rows})

    def issue_token(self, kind: str) -> str:
        return self._call("POST", "/tokens", {"kind": kind})["token"]

    def issue_auth_code(self, redirect_uri: str) -> str:
        body = {"clientId": self.client_id, "redirectUri": redirect_uri}
        return self._call("POST", "/auth-codes", body)["code"]

    def expire_tokens(self, after_requests: int | None = None) -> None:
        body = {} if after_requests is None else {"afterRequests": after_requests}
        self._call("POST", "/tokens/expire", body, expected=(202, 204))

    def revoke(self, refresh_token: str) -> None:
        self._call("POST", "/tokens/revoke", {"refreshToken": refresh_token})

    def inject(self, faults: list[dict]) -> None:
        self._call("POST", "/faults", {"faults": faults})

    def stats(self) -> dict:
        return self._call("GET", "/stats")

    def grants(self, grant_type: str) -> int:
        return self.stats()["grants"].get(grant_type, 0)
