"""A Jupyter server extension (``make lab`` loads it): the course docs inside JupyterLab.

The notebooks' concept links point at ``/labkit-docs/<page>/#anchor``. A
root-relative link is not a file to JupyterLab, so the browser opens it in a
new tab, on JupyterLab's own server, whatever port that runs on: this
extension serves the built site there. It also serves the site on a loopback
port of its own, recorded for the grader's links (``labkit.docs``); both stop
with JupyterLab.
"""
from __future__ import annotations

from tornado.web import StaticFileHandler

from . import docs

PATH = "/labkit-docs/"  # the notebooks' concept links start with this (labkit.authoring.notebooks)


def _jupyter_server_extension_points():
    return [{"module": "labkit.jupyter"}]


def _load_jupyter_server_extension(serverapp):
    from jupyter_server.utils import url_path_join

    base = url_path_join(serverapp.web_app.settings["base_url"], PATH)
    serverapp.web_app.add_handlers(".*$", [(base + "(.*)", StaticFileHandler,
                                             {"path": str(docs.SITE), "default_filename": "index.html"})])
    if not (docs.SITE / "index.html").exists():
        serverapp.log.warning("labkit: the course docs are not built (make docs); concept links will not open.")
        return
    server = docs.serve_in_thread()
    serverapp.log.info(f"labkit: course docs at {base} and http://127.0.0.1:{server.server_address[1]}/")

    import atexit

    atexit.register(docs.forget)
