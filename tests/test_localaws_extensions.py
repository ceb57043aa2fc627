"""The extension protocol: a runtime is one module plus its name, and hears what it asked for."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from labkit.config import REPO_ROOT

SCRIPT = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import boto3
    from werkzeug.test import Client
    from labkit.localaws import extensions
    from labkit.localaws.app import build_app

    journal = Path(sys.argv[1])
    app = build_app(journal, "http://localhost:1", extensions.REGISTERED + ("tests.echo_extension",))
    client = Client(app)
    auth = "AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=x"
    def ssm(action, body):
        return client.post("/", data=json.dumps(body), headers={"X-Amz-Target": f"AmazonSSM.{action}",
                           "Content-Type": "application/x-amz-json-1.1", "Authorization": auth}).status_code
    out = {}
    out["put"] = ssm("PutParameter", {"Name": "/ada/x", "Value": "1", "Type": "String"})
    out["get"] = ssm("GetParameter", {"Name": "/ada/x"})  # a read: not heard
    out["bad"] = ssm("PutParameter", {"Name": "/ada/x", "Value": "2", "Type": "String"})  # exists: rejected
    out["keep"] = client.post("/_echo/keep", data=b"kept-1").status_code
    out["echo"] = json.loads(client.get("/_echo/look").data)
    out["journal_lines"] = len(journal.read_bytes().splitlines())
    echo = app.extension("echo")
    Path(sys.argv[2]).write_bytes(journal.read_bytes())
    app.reset_all()
    out["after_reset"] = list(echo.heard)
    replayed = app.replay(Path(sys.argv[2]).read_bytes())
    out["replayed"] = replayed
    out["after_replay"] = {"heard": list(echo.heard), "kept": list(echo.kept)}
    print(json.dumps(out))
''')


def test_an_extension_module_claims_requests_hears_writes_resets_and_replays(tmp_path):
    journal, saved = tmp_path / "journal.ndjson", tmp_path / "saved.ndjson"
    # In its own process: building the app patches moto for the whole process.
    first = subprocess.run([sys.executable, "-c", SCRIPT, str(journal), str(saved)],
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    out = json.loads(first.stdout.strip().splitlines()[-1])
    assert (out["put"], out["get"], out["bad"], out["keep"]) == (200, 200, 400, 200)
    # The write to its service was heard; the read and the rejected write were not.
    assert out["echo"]["heard"] == ["ssm:PutParameter"]
    assert out["echo"]["kept"] == ["kept-1"]
    # The journal holds the accepted write and the extension's own write, not the rejected one.
    assert out["journal_lines"] == 2
    assert out["after_reset"][-1] == "reset"
    # Replaying rebuilds moto's state and the extension's, and tells it so.
    assert out["replayed"] == 2
    assert out["after_replay"]["kept"] == ["kept-1"]
    assert out["after_replay"]["heard"][-2:] == ["ssm:PutParameter", "restored"]
