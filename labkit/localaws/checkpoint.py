"""Checkpoints: moto's whole state at sequence ``n``, so a start replays only the lines after it.

Replaying runs every change through moto again (about a millisecond each), so
a learner's 50,000th change would cost a minute at every ``labkit up``. A
checkpoint is the state itself: every moto backend in use, pickled, with the
sequence number and the random generator's state. The journal then starts
with a header line naming its checkpoint, followed by the changes made since.

A checkpoint also carries the journal lines it replaces (compressed), so the
plain journal can always be rebuilt: for a snapshot, and for a checkpoint
that no longer loads (moto was upgraded) -- then the lines are replayed, slowly
but faithfully. The file's outer layer holds only plain Python values, so
reading the lines never needs the pickled backends to load.
"""
from __future__ import annotations

import collections
import copy
import functools
import importlib
import io
import pickle
import sys
import threading
import weakref
import zlib

MAGIC = b"LABKIT-CHECKPOINT 1\n"
_LOCKS = (type(threading.Lock()), type(threading.RLock()))
# State the local AWS keeps outside moto's backends: (module, attribute) of dicts, restored in place.
EXTRA = (("labkit.localaws.fidelity.apigateway", "DEPLOYED"),)


class Unusable(Exception):
    """The checkpoint cannot be loaded into this process (another moto version, a damaged file)."""


def _moto_version() -> str:
    import moto

    return moto.__version__


def _backend_dicts() -> dict[int, tuple[str, str]]:
    """Every BackendDict moto has imported, by id, named by (module, attribute) so a load finds it again."""
    from moto.core.base_backend import BackendDict

    names: dict[int, tuple[str, str]] = {}
    for module_name, module in list(sys.modules.items()):
        if module is None or not module_name.startswith("moto."):
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, BackendDict):
                names.setdefault(id(value), (module_name, attr))
    return names


def _live_backend_dict(name: tuple[str, str]):
    return getattr(importlib.import_module(name[0]), name[1])


# -- what plain pickle cannot take, rebuilt equivalently ------------------------------

def _fresh(sample):
    return copy.deepcopy(sample)


def _defaultdict(cls, factory):
    made = cls.__new__(cls)  # subclasses (SSM's ParameterDict) take other __init__ arguments
    made.default_factory = factory
    return made


def _private_key(pem: bytes):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem, None)


def _public_key(pem: bytes):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_public_key(pem)


class _Pickler(pickle.Pickler):
    def __init__(self, file, names):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.names = names

    def persistent_id(self, obj):
        from moto.core.base_backend import AccountSpecificBackend, BackendDict

        # Backends refer to other services' BackendDicts: point at the live ones, never copies.
        if isinstance(obj, BackendDict) and id(obj) in self.names:
            return ("backends", *self.names[id(obj)])
        if isinstance(obj, AccountSpecificBackend):
            for owner_id, name in self.names.items():
                owner = _live_backend_dict(name)
                if dict.get(owner, obj.account_id) is obj:
                    return ("account", *name, obj.account_id)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, _LOCKS):  # taken under the app's lock: no moto lock is held
            return (threading.RLock if "RLock" in type(obj).__name__ else threading.Lock, ())
        if isinstance(obj, collections.defaultdict):
            factory = obj.default_factory
            if factory is not None and "<" in getattr(factory, "__qualname__", ""):  # a lambda: keep what it makes
                factory = functools.partial(_fresh, factory())
            return (_defaultdict, (type(obj), factory), getattr(obj, "__dict__", None) or None, None, iter(obj.items()))
        if type(obj) in (weakref.WeakValueDictionary, weakref.WeakKeyDictionary):
            return (type(obj), (), None, None, iter(list(obj.items())))
        if type(obj).__module__.startswith("cryptography."):
            from cryptography.hazmat.primitives import serialization as ser

            if hasattr(obj, "private_bytes"):
                return (_private_key, (obj.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                                         ser.NoEncryption()),))
            if hasattr(obj, "public_bytes"):
                return (_public_key, (obj.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo),))
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid):
        kind, module, attr, *rest = pid
        live = _live_backend_dict((module, attr))
        if kind == "backends":
            return live
        live._create_account_specific_backend(rest[0])
        return dict.__getitem__(live, rest[0])


# -- the file ----------------------------------------------------------------------------

def capture(number: int, random_state, history: list[bytes], changes: int, extensions: dict | None = None) -> bytes:
    """The file for the current state at sequence ``number``; ``history``: its journal lines, compressed chunks;
    ``extensions``: the state extensions keep outside moto, by name."""
    from moto.core.base_backend import BackendDict

    names = _backend_dicts()
    state = {"backends": {names[id(b)]: {account: dict(regions) for account, regions in b.items()}
                          for b in BackendDict._instances if id(b) in names},
             "extra": {name: dict(getattr(importlib.import_module(name[0]), name[1])) for name in EXTRA},
             "extensions": dict(extensions or {})}
    inner = io.BytesIO()
    _Pickler(inner, names).dump(state)
    outer = {"n": number, "moto": _moto_version(), "random": random_state, "history": list(history), "changes": changes,
             "state": inner.getvalue()}
    return MAGIC + pickle.dumps(outer, protocol=pickle.HIGHEST_PROTOCOL)


def _outer(data: bytes) -> dict:
    if not data.startswith(MAGIC):
        raise Unusable("not a checkpoint")
    try:
        outer = pickle.loads(data[len(MAGIC):])
    except Exception as exc:  # a damaged file
        raise Unusable(f"damaged ({type(exc).__name__})") from None
    if not isinstance(outer, dict) or "n" not in outer:
        raise Unusable("damaged")
    return outer


def history(data: bytes) -> list[bytes]:
    """The compressed chunks of journal lines a checkpoint replaces."""
    return list(_outer(data)["history"])


def lines(chunks: list[bytes]) -> bytes:
    return b"".join(zlib.decompress(chunk) for chunk in chunks)


def compress(lines_: bytes) -> bytes:
    return zlib.compress(lines_, 1)


def restore(data: bytes) -> dict:
    """Load the state into moto's (already reset) backends; returns the file's n, random, history and changes."""
    from moto.core.base_backend import BackendDict

    outer = _outer(data)
    if outer.get("moto") != _moto_version():
        raise Unusable(f"written by moto {outer.get('moto')}, this is moto {_moto_version()}")
    try:
        state = _Unpickler(io.BytesIO(outer["state"])).load()
    except Exception as exc:
        raise Unusable(f"its state does not load ({type(exc).__name__}: {exc})") from None
    for name, accounts in state["backends"].items():
        live = _live_backend_dict(name)
        for account, regions in accounts.items():
            live._create_account_specific_backend(account)
            holder = dict.__getitem__(live, account)
            for region, backend in regions.items():
                dict.__setitem__(holder, region, backend)
        if live not in BackendDict._instances:
            BackendDict._instances.append(live)
    for name, values in state["extra"].items():
        target = getattr(importlib.import_module(name[0]), name[1])
        target.clear()
        target.update(values)
    outer["extensions"] = state.get("extensions", {})
    return outer
