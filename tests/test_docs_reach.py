"""The docs are reachable from where the learner is: the notebooks' concept links open the rendered page,
and the grader's docs links follow the docs server that is running (its recorded port), else the default."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import checks
from labkit import docs, jupyter
from labkit.authoring import notebooks

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_docs_url_reads_the_recorded_port_and_falls_back_to_the_default(monkeypatch, free_port):
    monkeypatch.delenv("LABS_DOCS_URL", raising=False)
    assert checks.docs_url("labs/01-static-front-end.md#oac") == f"{checks.DEFAULT_DOCS_URL}labs/01-static-front-end/#oac"
    docs.record(f"http://127.0.0.1:{free_port}/")  # this process is alive: the record holds
    assert checks.docs_url("labs/01-static-front-end.md#oac") == f"http://127.0.0.1:{free_port}/labs/01-static-front-end/#oac"
    assert checks.docs_url("index.md") == f"http://127.0.0.1:{free_port}/"
    docs.record(f"http://127.0.0.1:{free_port}/", pid=_dead_pid())  # its server is gone
    assert checks.docs_url("index.md") == checks.DEFAULT_DOCS_URL
    docs.record_path().write_text("{not json")
    assert checks.docs_url("index.md") == checks.DEFAULT_DOCS_URL
    monkeypatch.setenv("LABS_DOCS_URL", "http://127.0.0.1:9999")
    assert checks.docs_url("index.md") == "http://127.0.0.1:9999/"


def test_a_docs_server_records_its_port_and_serves_the_built_site(tmp_path, free_port, monkeypatch):
    monkeypatch.delenv("LABS_DOCS_URL", raising=False)
    site = tmp_path / "site"
    (site / "labs" / "01-static-front-end").mkdir(parents=True)
    (site / "labs" / "01-static-front-end" / "index.html").write_text("<h1>Lab 01</h1>")
    server = docs.serve_in_thread(site, free_port)
    try:
        url = checks.docs_url("labs/01-static-front-end.md")
        assert url == f"http://127.0.0.1:{free_port}/labs/01-static-front-end/"
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert answer.status == 200 and b"Lab 01" in answer.read()
    finally:
        server.shutdown()
        server.server_close()
        docs.forget()
    assert not docs.record_path().exists()


def test_serving_the_docs_on_a_taken_port_says_so_in_one_sentence_and_offers_a_free_one():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "labkit.docs", "serve-live", "--port", str(port)],
                             cwd=ROOT, capture_output=True, text=True, timeout=120, env=os.environ)
    assert run.returncode == 2 and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Port {port} is taken"), run.stderr
    offered = int(re.search(r"DOCS_PORT=(\d+)", lines[0]).group(1))
    assert offered != port and docs.port_free(offered)


def test_concept_links_in_the_notebooks_open_rendered_pages():
    assert jupyter.PATH == notebooks.DOCS_PATH
    seen = 0
    for folder in (notebooks.LABS_DIR, notebooks.SOLUTIONS_DIR):
        for path in folder.glob("*.ipynb"):
            for cell in json.loads(path.read_text())["cells"]:
                if cell["cell_type"] != "markdown":
                    continue
                for target in LINK.findall("".join(cell["source"])):
                    if target.startswith(("http://", "https://", "#")) or target.endswith(".ipynb"):
                        continue
                    assert not target.split("#")[0].endswith(".md"), f"{path.name}: {target} opens raw Markdown"
                    assert target.startswith(notebooks.DOCS_PATH), f"{path.name}: {target}"
                    page = target[len(notebooks.DOCS_PATH):].split("#")[0].rstrip("/") or "index"
                    assert (ROOT / "site" / f"{page}.md").exists(), f"{path.name}: {target} names no docs page"
                    seen += 1
    assert seen > 20


def test_jupyterlab_serves_the_docs_for_the_concept_links_and_records_their_port(tmp_path, free_port):
    """The real Jupyter server with the extension `make lab` loads: /labkit-docs/ answers, and so does the
    recorded docs port; the record goes when the server stops."""
    site = tmp_path / "site"
    (site / "labs" / "02-api-first").mkdir(parents=True)
    (site / "labs" / "02-api-first" / "index.html").write_text("<h1>Lab 02</h1>")
    (site / "index.html").write_text("<h1>Home</h1>")
    home = tmp_path / "labkit-home"
    env = {**os.environ, "LABKIT_HOME": str(home), "LABKIT_DOCS_SITE": str(site), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
                               f"--ServerApp.port={free_port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={tmp_path}",
                               "--IdentityProvider.token=", "--ServerApp.jpserver_extensions={'labkit.jupyter': True}"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        record = home / "docs.json"
        for line in server.stderr:  # the extensions are loaded when the server says where it runs
            if "is running at" in line:
                break
        assert server.poll() is None and record.exists()
        page = f"http://127.0.0.1:{free_port}{notebooks.DOCS_PATH}labs/02-api-first/"
        with _when_listening(server, page) as answer:
            assert answer.status == 200 and b"Lab 02" in answer.read()
        url = json.loads(record.read_text())["url"]
        with urllib.request.urlopen(url + "labs/02-api-first/", timeout=60) as answer:
            assert b"Lab 02" in answer.read()
    finally:
        server.terminate()
        server.wait(timeout=120)
    assert not record.exists()


def _when_listening(server, url):
    """The answer to ``url`` once the server listens (it binds its port just after saying where it runs)."""
    import time

    for _ in range(600):
        try:
            return urllib.request.urlopen(url, timeout=60)
        except urllib.error.URLError as exc:
            if not isinstance(exc.reason, ConnectionRefusedError) or server.poll() is not None:
                raise
            time.sleep(0.1)
    raise AssertionError(f"nothing listened at {url}")
