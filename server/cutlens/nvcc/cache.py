"""Content-addressed cache of compile results: diagnostics, resource usage and artifacts.
(Over 450 lines: the store, its integrity checks and its size bound share one layout.)

Layout (one directory per *unit*, shared by the three modes so that every mode's messages
name the same translation-unit path)::

    <root>/<key[:2]>/<key>/<name>.cu         the rendered TU, as nvcc saw it
    <root>/<key[:2]>/<key>/<companion>       files #included by the TU ("config.inc")
    <root>/<key[:2]>/<key>/<mode>.json       a finished compile: messages, resources, ...
    <root>/<key[:2]>/<key>/<name>.o / .so    FULL / BUILD artifacts

The key is a sha256 over: the TU name and text, the companions (names and texts), nvcc's flags
for the unit (every mode-independent flag: arch, std, defines, include dirs, extras; plus each
mode's fixed flags), the full ``nvcc --version`` text and nvcc's path, the host compiler's
identity (path, size, mtime), a fingerprint of the include directories
(:func:`include_fingerprint`), and the environment nvcc reads (:data:`NVCC_ENV`: its search
paths and flag variables, with the include dirs they name fingerprinted too). Mode
flags are fixed per mode, so ``(key, mode)`` decides a result. Paths of the TU and the output
are not in the key (the TU's path derives from it). The timeout is not either: timeouts,
crashes and cancellations are never stored. Every file is written to a temporary name and
renamed, so several processes can share the directory.

Integrity: a record carries a sha256 of its own content and of its artifact (the artifact is
renamed into place first, the record written last, so a record vouches only for a complete
artifact). :meth:`BuildCache.load` verifies both; a truncated, corrupt or checksum-less entry
is logged, its record deleted and answered as a miss, so the compile runs again.
Directories are created ``0o700``.

Size: past ``max_bytes`` (the project's ``[cache] max_size``, 4 GB by default) the least
recently used units are evicted, down to :data:`LOW_WATER` of the bound (:meth:`evict`; the
compile pool calls :meth:`after_store` when it stores a result). A unit's directory mtime is
its last use: writing it, storing a record and every cache hit touch it. Never evicted: a
unit this process pins (:meth:`in_use`: a compile running, a build a benchmark will load),
one another live process pins (a ``.in-use.<pid>`` file in the unit), one the caller names,
and one used within :attr:`BuildCache.keep_recent_s` (another process may be about to load
it). A unit goes by renaming it out of the way first, so a reader sees it whole or not at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from cutlens.nvcc import toolchain as nv

log = logging.getLogger(__name__)

#: The default bound of a build cache (the project config's ``[cache] max_size``).
DEFAULT_MAX_BYTES = 4 * 10**9
#: Eviction stops once the cache is this fraction of its bound (room for the next builds).
LOW_WATER = 0.8
#: A unit used this recently is not evicted (seconds).
KEEP_RECENT_S = 120.0
#: A process's pin on a unit: this file, suffixed with its pid.
PIN_PREFIX = ".in-use."
#: A project include dir with more files than this is fingerprinted by its top level only.
MAX_WALK_FILES = 5000
#: Seconds a directory fingerprint is reused within one process (a batch of variants).
FINGERPRINT_TTL_S = 2.0

#: Environment nvcc reads: search paths, flags it adds, the host compiler, which nvcc.
NVCC_ENV = ("CPATH", "CPLUS_INCLUDE_PATH", "C_INCLUDE_PATH", "LIBRARY_PATH",
            "NVCC_PREPEND_FLAGS", "NVCC_APPEND_FLAGS", "NVCC_CCBIN", "CUDA_PATH", "CUDA_HOME",
            "CUDACXX")
_PATH_VARS = ("CPATH", "CPLUS_INCLUDE_PATH", "C_INCLUDE_PATH")

_fp_memo: dict[str, tuple[float, str]] = {}


def _stat_line(path: str, name: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{name}\0missing\n"
    return f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n"


def _dir_fingerprint(d: str) -> str:
    """Hash of (relative path, size, mtime) of every file below ``d``; past
    ``MAX_WALK_FILES`` files, of its top-level entries only."""
    h = hashlib.sha256(d.encode())
    if not os.path.isdir(d):
        return h.hexdigest() + ":missing"
    n = 0
    for root, dirs, files in os.walk(d):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            h.update(_stat_line(p, os.path.relpath(p, d)).encode())
            n += 1
        if n > MAX_WALK_FILES:
            h = hashlib.sha256(d.encode() + b"\0top")
            with os.scandir(d) as it:
                for e in sorted(it, key=lambda e: e.name):
                    h.update(_stat_line(e.path, e.name).encode())
            break
    return h.hexdigest()


def include_fingerprint(dirs: Iterable[str]) -> str:
    """Fingerprint of the include directories a compile searches.

    The ``nvidia-cutlass`` wheel's directories count as its version plus the stats of their
    top-level entries (a reinstall rewrites them; nobody edits an installed wheel). Any other
    directory is walked: every file's relative path, size and mtime, so that editing a
    project header invalidates results. Walks are reused for ``FINGERPRINT_TTL_S`` seconds.
    Measured: ~0.05 ms for the CUTLASS dirs, ~10-20 ms for a full walk of them (871 files).
    """
    cutlass = set(nv.cutlass_include_dirs())
    h = hashlib.sha256()
    now = time.monotonic()
    for d in dirs:
        memo = _fp_memo.get(d)
        if memo and now - memo[0] < FINGERPRINT_TTL_S:
            fp = memo[1]
        elif d in cutlass:
            top = hashlib.sha256(f"nvidia-cutlass=={nv.cutlass_version()}".encode())
            with os.scandir(d) as it:
                for e in sorted(it, key=lambda e: e.name):
                    top.update(_stat_line(e.path, e.name).encode())
            fp = top.hexdigest()
        else:
            fp = _dir_fingerprint(d)
        _fp_memo[d] = (now, fp)
        h.update(f"{d}\0{fp}\n".encode())
    return h.hexdigest()


def _env_include_dirs(env: Mapping[str, str]) -> list[str]:
    """Include dirs the environment adds: ``CPATH``..., ``-I`` in ``NVCC_*_FLAGS``."""
    dirs = [d for var in _PATH_VARS for d in env.get(var, "").split(os.pathsep) if d]
    for var in ("NVCC_PREPEND_FLAGS", "NVCC_APPEND_FLAGS"):
        words = env.get(var, "").split()
        for i, w in enumerate(words):
            if w in ("-I", "-isystem", "--include-path") and i + 1 < len(words):
                dirs.append(words[i + 1])
            elif w.startswith(("-I", "--include-path=")) and len(w) > 2:
                dirs.append(w.split("=", 1)[1] if w.startswith("--") else w[2:])
    return [os.path.abspath(d) for d in dirs]


def environment_key(nvcc: str, env: Mapping[str, str] | None = None) -> str:
    """Every :data:`NVCC_ENV` variable, the resolved nvcc, and a fingerprint of the include
    dirs the environment names (setting ``CPATH`` for a missing header recompiles)."""
    env = os.environ if env is None else env
    lines = [f"{var}={env.get(var, '')}" for var in NVCC_ENV if var in env]
    lines.append(f"nvcc={os.path.realpath(nvcc)}")
    dirs = _env_include_dirs(env)
    if dirs:
        lines.append(f"env-includes={include_fingerprint(dirs)}")
    return "\n".join(lines)


def _host_compiler_identity(flags: Iterable[str]) -> str:
    """The host compiler (``-ccbin``, ``$NVCC_CCBIN`` or ``gcc`` on PATH): path and stat."""
    flags = list(flags)
    ccbin = os.environ.get("NVCC_CCBIN") or "gcc"
    for i, f in enumerate(flags):
        if f in ("-ccbin", "--compiler-bindir") and i + 1 < len(flags):
            ccbin = flags[i + 1]
        elif f.startswith(("-ccbin=", "--compiler-bindir=")):
            ccbin = f.split("=", 1)[1]
    path = shutil.which(ccbin) or ccbin
    real = os.path.realpath(path)
    return _stat_line(real, real)


def unit_key(name: str, source: str, companions: Mapping[str, str],
             options: nv.CompileOptions) -> str:
    """The cache key of a translation unit under ``options`` (all modes share it)."""
    nvcc = nv.find_nvcc(options.nvcc)
    flags = nv.common_flags(options)
    include_dirs = [f[2:] for f in flags if f.startswith("-I")]
    h = hashlib.sha256()

    def part(label: str, value: str) -> None:
        data = value.encode()
        h.update(f"{label}:{len(data)}:".encode())
        h.update(data)

    part("format", "cutlens-build-cache-1")
    part("name", name)
    part("source", source)
    for cname in sorted(companions):
        part("companion-name", cname)
        part("companion", companions[cname])
    part("flags", "\0".join(flags))
    # Every mode's own flags: changing how a mode compiles invalidates stored results.
    part("modes", repr(sorted((m.value, f) for m, f in nv.MODE_FLAGS.items())))
    part("nvcc", nv.nvcc_version_text(nvcc))
    part("host", _host_compiler_identity(flags))
    part("includes", include_fingerprint(include_dirs))
    part("environment", environment_key(nvcc))
    return h.hexdigest()


def check_relative(name: str) -> str:
    """A companion or TU name must stay inside its unit directory."""
    p = Path(name)
    if not name or p.is_absolute() or ".." in p.parts:
        raise ValueError(f"file name {name!r} must be relative, without '..'")
    return name


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``mkdir -p`` creating each missing directory ``0o700`` (existing ones are left as
    they are); the path."""
    path = Path(path)
    missing = []
    for d in [path, *path.parents]:
        if d.is_dir():
            break
        missing.append(d)
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=0o700)
    return path


def _tree_size(path: str) -> int:
    """Bytes of the files below ``path``."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def record_checksum(record: Mapping[str, Any]) -> str:
    """sha256 of a record's canonical JSON, without its ``checksum`` key."""
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


class CorruptEntry(ValueError):
    """A cache entry failed its integrity check."""


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclasses.dataclass(frozen=True)
class Unit:
    """One unit directory of the cache, as :meth:`BuildCache.units` found it."""

    key: str
    path: Path
    size: int
    last_used: float


@dataclasses.dataclass
class Eviction:
    """What one :meth:`BuildCache.evict` did."""

    before: int = 0  # bytes in the cache when it started
    after: int = 0
    evicted: list[str] = dataclasses.field(default_factory=list)
    kept_in_use: int = 0  # units over the bound that were in use (left in place)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class BuildCache:
    """The on-disk store. Safe for several processes: every write is a rename."""

    def __init__(self, root: str | os.PathLike[str],
                 max_bytes: int | None = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root).expanduser().resolve()
        try:
            private_dir(self.root)
        except OSError as e:  # read-only workspace...: each compile will say so
            log.warning("build cache: cannot create %s: %s", self.root, e)
        #: Entries found corrupt and discarded (tests and logs read it).
        self.discarded = 0
        #: (path, inode, size, mtime_ns) -> sha256 of artifacts verified by this process.
        self._verified: dict[tuple[str, int, int, int], str] = {}
        #: The size bound in bytes (0 or None: unbounded).
        self.max_bytes = max_bytes or 0
        #: Units used this recently are never evicted (seconds).
        self.keep_recent_s = KEEP_RECENT_S
        #: Units evicted by this process (tests and logs read it).
        self.evicted = 0
        self._pins: dict[str, int] = {}
        self._pin_lock = threading.Lock()
        self._evict_lock = threading.RLock()
        self._over_in_use = False  # the last scan left the cache over its bound: units in use
        self._stored_since_scan: int | None = None  # None: never scanned
        self._warned_over = False

    def unit_dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    def write_unit(self, key: str, name: str, source: str,
                   companions: Mapping[str, str]) -> tuple[Path, dict[str, str]]:
        """Write the TU and its companions (unless already there); their paths."""
        d = self.unit_dir(key)
        tu = d / check_relative(name + ".cu" if not name.endswith(".cu") else name)
        paths: dict[str, str] = {}
        for path, text in [(tu, source)] + [
                (d / check_relative(c), t) for c, t in sorted(companions.items())]:
            if not (path.is_file() and path.read_text() == text):
                atomic_write(path, text)
        for c in companions:
            paths[c] = str(d / c)
        self.touch(key)
        return tu, paths

    def record_path(self, key: str, mode: nv.Mode | str) -> Path:
        return self.unit_dir(key) / f"{nv.Mode(mode).value}.json"

    def load(self, key: str, mode: nv.Mode | str) -> dict[str, Any] | None:
        """The stored record of ``(key, mode)``, or None. An entry that fails its integrity
        check (unreadable or truncated record, checksum mismatch, artifact missing or not the
        one stored) is deleted and treated as missing. Paths inside it are rebased if the
        cache directory moved."""
        path = self.record_path(key, mode)
        try:
            with open(path, "rb") as f:
                seen = os.fstat(f.fileno())
                data = f.read()
        except FileNotFoundError:
            return None
        except OSError as e:
            log.warning("build cache: cannot read %s: %s", path, e)
            return None
        try:
            rec = self._verify(data)
        except CorruptEntry as e:
            self._discard(key, mode, path, seen, str(e))
            return None
        here = str(self.unit_dir(key))
        there = rec.get("unit_dir", here)
        if there != here:
            rec = json.loads(json.dumps(rec).replace(json.dumps(there)[1:-1],
                                                     json.dumps(here)[1:-1]))
        art = rec.get("artifact")
        if art:
            problem = self._check_artifact(art, rec.get("artifact_sha256"))
            if problem:
                self._discard(key, mode, path, seen, problem)
                return None
        self.touch(key)
        return rec

    @staticmethod
    def _verify(data: bytes) -> dict[str, Any]:
        try:
            rec = json.loads(data)
        except ValueError as e:
            raise CorruptEntry(f"unreadable record ({e})") from None
        if not isinstance(rec, dict):
            raise CorruptEntry("record is not an object")
        want = rec.get("checksum")
        if not want:
            raise CorruptEntry("record has no checksum")
        if record_checksum(rec) != want:
            raise CorruptEntry("record checksum mismatch")
        return rec

    def _check_artifact(self, art: str, want: str | None) -> str | None:
        """Why the artifact can't be used, or None."""
        try:
            st = os.stat(art)
        except OSError:
            return "artifact missing"
        memo = (art, st.st_ino, st.st_size, st.st_mtime_ns)
        got = self._verified.get(memo)
        if got is None:
            try:
                got = file_sha256(art)
            except OSError as e:
                return f"artifact unreadable ({e})"
        if not want or got != want:
            return "artifact checksum mismatch"
        self._verified[memo] = got
        return None

    def _discard(self, key: str, mode: nv.Mode | str, path: Path, seen: os.stat_result,
                 why: str) -> None:
        """Delete a corrupt entry's record so that it gets rebuilt, unless another process
        replaced it since it was read. (The artifact is left: without a record vouching for
        it, it is never used, and the rebuild replaces it.)"""
        self.discarded += 1
        log.warning("build cache: discarding %s/%s: %s; it will be rebuilt",
                    key[:12], nv.Mode(mode).value, why)
        with contextlib.suppress(OSError):
            now = os.stat(path)
            if (now.st_ino, now.st_mtime_ns, now.st_size) == (
                    seen.st_ino, seen.st_mtime_ns, seen.st_size):
                os.unlink(path)

    def store(self, key: str, mode: nv.Mode | str, record: dict[str, Any]) -> None:
        """Store a finished compile's record (artifact already renamed into place) with the
        checksums :meth:`load` verifies. Raises OSError (disk full...) leaving no partial
        record behind."""
        rec = dict(record, unit_dir=str(self.unit_dir(key)), stored_at=time.time())
        rec.pop("checksum", None)
        art = rec.get("artifact")
        if art:
            rec["artifact_sha256"] = file_sha256(art)
        rec["checksum"] = record_checksum(rec)
        atomic_write(self.record_path(key, mode), json.dumps(rec, indent=1))

    # ---------------------------------------------------------------- size and use

    def touch(self, key: str) -> None:
        """Mark a unit used now (its directory's mtime is its last use)."""
        with contextlib.suppress(OSError):
            os.utime(self.unit_dir(key))

    def pin(self, key: str) -> None:
        """Keep a unit from eviction, by this process and (a pin file) by others, until
        :meth:`unpin` is called as often."""
        with self._pin_lock:
            n = self._pins.get(key, 0)
            self._pins[key] = n + 1
            if n == 0:
                with contextlib.suppress(OSError):
                    d = private_dir(self.unit_dir(key))
                    (d / f"{PIN_PREFIX}{os.getpid()}").touch()

    def unpin(self, key: str) -> None:
        with self._pin_lock:
            n = self._pins.get(key, 0) - 1
            if n > 0:
                self._pins[key] = n
                return
            self._pins.pop(key, None)
            with contextlib.suppress(OSError):
                (self.unit_dir(key) / f"{PIN_PREFIX}{os.getpid()}").unlink()

    @contextlib.contextmanager
    def in_use(self, key: str) -> Iterator[None]:
        """``with cache.in_use(key):`` the unit is pinned inside the block."""
        self.pin(key)
        try:
            yield
        finally:
            self.unpin(key)

    def pinned(self, unit: Unit) -> bool:
        """Pinned by this process or by another live one."""
        if unit.key in self._pins:
            return True
        try:
            names = os.listdir(unit.path)
        except OSError:
            return False
        for name in names:
            if name.startswith(PIN_PREFIX):
                pid = name[len(PIN_PREFIX):]
                if pid.isdigit() and _pid_alive(int(pid)):
                    return True
        return False

    def units(self) -> list[Unit]:
        """Every unit directory, with its size and last use."""
        out = []
        try:
            shards = [e for e in os.scandir(self.root) if e.is_dir() and len(e.name) == 2]
        except OSError:
            return []
        for shard in shards:
            try:
                entries = [e for e in os.scandir(shard.path)
                           if e.is_dir() and e.name.startswith(shard.name)
                           and len(e.name) == 64]
            except OSError:
                continue
            for e in entries:
                try:
                    last = e.stat().st_mtime
                except OSError:
                    continue
                out.append(Unit(e.name, Path(e.path), _tree_size(e.path), last))
        return out

    def size(self) -> int:
        """Bytes in the cache's units."""
        return sum(u.size for u in self.units())

    def evict(self, protect: Iterable[str] = (), now: float | None = None) -> Eviction:
        """Evict the least recently used units until the cache is within
        ``LOW_WATER * max_bytes``, skipping units in use (pinned here or by a live process,
        in ``protect``, or used within ``keep_recent_s``). Nothing when unbounded."""
        with self._evict_lock:
            units = self.units()
            report = Eviction(before=sum(u.size for u in units))
            report.after = report.before
            if not self.max_bytes or report.before <= self.max_bytes:
                self._stored_since_scan, self._over_in_use = 0, False
                return report
            now = time.time() if now is None else now
            keep = set(protect)
            target = int(self.max_bytes * LOW_WATER)
            for u in sorted(units, key=lambda u: u.last_used):
                if report.after <= target:
                    break
                if u.key in keep or now - u.last_used < self.keep_recent_s or \
                        self.pinned(u):
                    report.kept_in_use += 1
                    continue
                if self._remove(u):
                    report.after -= u.size
                    report.evicted.append(u.key)
            self.evicted += len(report.evicted)
            self._stored_since_scan = 0
            self._over_in_use = report.after > self.max_bytes
            if report.evicted:
                log.info("build cache: evicted %d unit(s), %d -> %d bytes (bound %d)",
                         len(report.evicted), report.before, report.after, self.max_bytes)
            if report.after > self.max_bytes and not self._warned_over:
                self._warned_over = True  # once: every store of a sweep would say it again
                log.warning("build cache: %d bytes, over its bound of %d: %d unit(s) over "
                            "it are in use", report.after, self.max_bytes, report.kept_in_use)
            return report

    def release(self, key: str) -> Eviction | None:
        """Unpin a unit, then scan again if the last scan was left over the bound by units in
        use (this one, maybe). Both under the scan's lock: no scan sees a stale pin last."""
        with self._evict_lock:
            self.unpin(key)
            return self.evict() if self._over_in_use else None

    def after_store(self, key: str, protect: Iterable[str] = ()) -> Eviction | None:
        """A unit was stored: evict if the cache may be past its bound (a full scan the
        first time, then once the units stored since the last scan add up to 5 % of the
        bound)."""
        if not self.max_bytes:
            return None
        added = _tree_size(str(self.unit_dir(key)))
        if self._stored_since_scan is not None:
            self._stored_since_scan += added
            if self._stored_since_scan < self.max_bytes * 0.05:
                return None
        return self.evict(protect)

    def _remove(self, u: Unit) -> bool:
        """Remove a unit: renamed away first (readers see it whole or not at all)."""
        gone = u.path.with_name(f".evicted-{u.key}-{os.getpid()}")
        try:
            os.rename(u.path, gone)
        except OSError as e:
            log.warning("build cache: cannot evict %s: %s", u.key[:12], e)
            return False
        shutil.rmtree(gone, ignore_errors=True)
        return True

    def artifact_path(self, key: str, name: str, mode: nv.Mode | str) -> Path:
        stem = name[:-3] if name.endswith(".cu") else name
        return self.unit_dir(key) / (stem + nv.MODE_SUFFIX[nv.Mode(mode)])

    def temp_output(self, key: str, final: Path) -> Path:
        """A private name beside ``final`` for nvcc's ``-o`` (renamed on success)."""
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part",
                                   dir=self.unit_dir(key))
        os.close(fd)
        return Path(tmp)
