"""Language server: keystroke -> Jinja-tier diagnostics latency over 200 edits of a 300-line
template, and the server's idle RSS; with ``--flood``, how fast requests (hover, document
symbols) are answered during a flood of 1,000 edits in about a second (the figure
tests/lsp/test_faults_lsp.py used to assert, which flaked on a loaded machine).

The server runs as a real subprocess over stdio (``python -m cutlens lsp``), driven by a
pygls client. Each edit changes one literal line (a keystroke), and the clock runs from
sending ``didChange`` to receiving ``publishDiagnostics`` for that version. Two settings:
``debounce 0`` measures the server's work (render every sample × variant, map, publish);
the default 150 ms debounce adds a fixed wait after the last keystroke, reported apart.

Usage: python benchmarks/lsp_latency.py [--edits 200] [--out docs/bench/lsp_latency.json]
       python benchmarks/lsp_latency.py --flood [--out docs/bench/lsp_latency.json]
       (--flood adds/replaces the "flood" entry of --out, keeping the rest)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

sys.path.insert(0, str(Path(__file__).parent))
from render_bench import make_template


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def run(edits: int, debounce_ms: float, dense: bool) -> dict:
    root = Path(tempfile.mkdtemp())
    path = make_template(root, dense=dense)
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    target = next(i for i, ln in enumerate(lines) if "static_assert" in ln or "int64_t m" in ln)
    got: dict[int, float] = {}
    client = LanguageClient("bench", "1")

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diag(params: lsp.PublishDiagnosticsParams) -> None:
        if params.version is not None and params.version not in got:
            got[params.version] = time.perf_counter()

    @client.feature("cutlens/status")
    def on_status(params: object) -> None:
        return None

    await client.start_io(sys.executable, "-m", "cutlens", "lsp")
    server_pid = client._server.pid  # type: ignore[attr-defined]
    await client.initialize_async(lsp.InitializeParams(
        capabilities=lsp.ClientCapabilities(), root_uri=root.as_uri(),
        initialization_options={"checkOn": "off", "jinjaDebounceMs": debounce_ms}))
    client.initialized(lsp.InitializedParams())
    uri = path.as_uri()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        lsp.TextDocumentItem(uri, "cuda-jinja", 1, text)))
    while 1 not in got:
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)
    idle_rss = rss_kib(server_pid)
    lat = []
    for k in range(edits):
        version = k + 2
        lines[target] = f"  // edit {k}\n"
        sent = time.perf_counter()
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [lsp.TextDocumentContentChangeWholeDocument("".join(lines))]))
        while version not in got:
            await asyncio.sleep(0.0005)
        lat.append((got[version] - sent) * 1e3)
        await asyncio.sleep(0.02)
    peak_rss = rss_kib(server_pid)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    lat.sort()
    return {"edits": edits, "debounce_ms": debounce_ms,
            "template": "dense" if dense else "typical",
            "template_lines": len(text.splitlines()),
            "p50_ms": round(statistics.median(lat), 2),
            "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 2),
            "max_ms": round(lat[-1], 2),
            "idle_rss_mib": round(idle_rss / 1024, 1),
            "rss_after_edits_mib": round(peak_rss / 1024, 1)}


FLOOD_TEMPLATE = """\
{#- cutlens
kind = "cuda"
[samples.s]
X = { dtype = "float32", size = [256] }
Y = { dtype = "float32", size = [256] }
[variants]
block = [64, 128]
-#}
#include <cstdint>
__global__ void k(const float* x, float* y) {
  y[threadIdx.x] = x[threadIdx.x] * {{ v_0 }};
}
"""


async def flood(edits: int = 1000, flood_s: float = 1.0) -> dict:
    """Request latencies (hover and document symbols, one at a time) while ``edits``
    incremental edits arrive over ``flood_s`` seconds, in batches of 10."""
    root = Path(tempfile.mkdtemp())
    path = root / "t.cu.jinja"
    path.write_text(FLOOD_TEMPLATE)
    client = LanguageClient("bench", "1")

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diag(params: lsp.PublishDiagnosticsParams) -> None:
        return None

    @client.feature("cutlens/status")
    def on_status(params: object) -> None:
        return None

    await client.start_io(sys.executable, "-m", "cutlens", "lsp")
    await client.initialize_async(lsp.InitializeParams(
        capabilities=lsp.ClientCapabilities(), root_uri=root.as_uri(),
        initialization_options={"checkOn": "off"}))
    client.initialized(lsp.InitializedParams())
    uri = path.as_uri()
    tid = lsp.TextDocumentIdentifier(uri)
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        lsp.TextDocumentItem(uri, "cuda-jinja", 1, FLOOD_TEMPLATE)))
    line_no = next(i for i, ln in enumerate(FLOOD_TEMPLATE.splitlines()) if "v_0" in ln)
    col = FLOOD_TEMPLATE.splitlines()[line_no].index("v_0") + 2
    pos = lsp.Position(line_no, col)
    await client.text_document_hover_async(lsp.HoverParams(tid, pos))  # warm
    await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(tid))
    lat: list[float] = []
    done = asyncio.Event()

    async def ask() -> None:
        i = 0
        while not done.is_set():
            t0 = time.perf_counter()
            if i % 2:
                await client.text_document_hover_async(lsp.HoverParams(tid, pos))
            else:
                await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(tid))
            lat.append((time.perf_counter() - t0) * 1e3)
            i += 1
            await asyncio.sleep(0.02)

    asker = asyncio.create_task(ask())
    old, t0 = "0", time.perf_counter()
    for i in range(1, edits + 1):
        new = str(i)
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(uri=uri, version=i + 1),
            [lsp.TextDocumentContentChangePartial(range=lsp.Range(
                lsp.Position(line_no, col), lsp.Position(line_no, col + len(old))),
                text=new)]))
        old = new
        if i % 10 == 0:
            await asyncio.sleep(max(0.0, t0 + flood_s * i / edits - time.perf_counter()))
    took = time.perf_counter() - t0
    done.set()
    await asker
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    lat.sort()
    return {"edits": edits, "flood_s": round(took, 2), "requests": len(lat),
            "p50_ms": round(statistics.median(lat), 2),
            "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 2),
            "max_ms": round(lat[-1], 2), "target_max_ms": 200.0}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edits", type=int, default=200)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--flood", action="store_true",
                    help="only the flood measurement, merged into --out")
    args = ap.parse_args()
    if args.flood:
        result = asyncio.run(flood())
        doc = json.loads(args.out.read_text()) if args.out and args.out.exists() else {}
        doc["flood"] = {"benchmark": "hover/document-symbol latency during 1,000 edits in "
                                     "about a second (server subprocess over stdio)",
                        "machine": f"{platform.machine()}, {platform.python_implementation()} "
                                   f"{platform.python_version()}", **result}
        text = json.dumps(doc, indent=2)
        print(json.dumps(doc["flood"], indent=2))
        if args.out:
            args.out.write_text(text + "\n")
        return 0
    results = [asyncio.run(run(args.edits, 0, False)),
               asyncio.run(run(args.edits, 150, False)),
               asyncio.run(run(args.edits, 0, True))]
    doc = {"benchmark": "keystroke -> Jinja-tier diagnostics (server subprocess over stdio)",
           "machine": f"{platform.machine()}, {platform.python_implementation()} "
                      f"{platform.python_version()}",
           "target_p95_ms": 50.0, "runs": results}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
