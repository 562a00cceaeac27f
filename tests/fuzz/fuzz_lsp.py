"""Fuzz target: the language server's message handlers under random edit sequences.

A real :class:`CutlensServer` is driven in-process: JSON-RPC messages go in through pygls's
own deserialization and dispatch (``protocol.handle_message``), everything the server sends
is captured from its writer. A sequence opens a template, then interleaves incremental and
full edits (Jinja and TOML fragments, unicode, line ends) with hover, completion, document
symbol, code lens and definition requests, saves, configuration changes, a reopen, edits of
an included partial and waits of random length. Afterwards nothing may have failed, and the
diagnostics published last must be those of the final text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from lsprotocol import types as lsp
from pygls.protocol import default_converter
from pygls.workspace import TextDocument

from cutlens import config as config_mod
from cutlens.check.jinja_tier import jinja_check
from cutlens.lsp.app import create_server
from cutlens.lsp.convert import path_to_uri, to_lsp
from cutlens.lsp.server import CutlensServer
from cutlens.render.renderer import Renderer
from cutlens.template.loader import load

from fuzz_common import count

TEMPLATE = """\
{#- cutlens
kind = "cuda"
[samples.small]
X = { dtype = "float32", size = [1024] }
Y = { dtype = "float32", size = ["M"] }
hints = { M = 1024 }
[variants]
block = [128, 256]
-#}
{% import "macros.cuh.jinja" as m %}
#include <cstdint>
{{ template.header() }}
__global__ void scale_kernel(const float* x, float* y, int64_t n) {
  int64_t i = blockIdx.x * (int64_t){{ block }} + threadIdx.x;
  if (i < n) y[i] = 2.0f * x[i];
}
extern "C" {
{{ kernel.def_kernel(inputs=[X], outputs=[Y], names_str="X, Y") }} {
{%- for k in range(2) %}
  int v{{ k }} = {{ kernel.size(X, 0) }};
{%- endfor %}
{{ m.launch("scale_kernel", block, kernel.size(X, 0)) }}
  return 0;
}
}
"""
MACROS = """\
{% macro launch(name, block, n) %}
  {{ name }}<<<({{ n }} + {{ block }} - 1) / {{ block }}, {{ block }}, 0, stream>>>(X, Y);
{% endmacro %}
"""
SEEDS = [TEMPLATE, TEMPLATE.replace("{{ block }} +", "{{ blok }} +"),
         TEMPLATE.replace("[variants]", "[variants"), "plain C++ without Jinja\n", "",
         "{% if %}\n", "{#- cutlens\nkind = 1\n-#}\n{{ x }}\n"]
FRAGMENTS = [
    "{{", "}}", "{%", "%}", "{#", "#}", "-#}", "{{ block }}", "{{ blok }}", "{{ X }}",
    "{% if block > 128 %}", "{% endif %}", "{% for i in range(3) %}", "{% endfor %}",
    "{{ kernel.size(X, 0) }}", "{{ kernel.stride(Y, 1) }}", "{{ m.launch(1, 2, 3) }}",
    '{% include "macros.cuh.jinja" %}', '{% include "nope.jinja" %}', "{{ 1/0 }}",
    "{{ template.header() }}", "{{ kernel.def_kernel(inputs=[X], outputs=[Y]) }}",
    "[samples.big]\n", "Z = { dtype = \"bfloat16\", size = [8, 8] }\n", "kind = \"cutlass\"\n",
    "block = [64]\n", 'skip_if = "block > 64"\n', "[[variant]]\nblock = 32\n", "= =\n",
    "\n", "\r\n", "  ", "\t", "é", "\U0001d11e", "中", "\u2028", "\x00", "'", '"', "\\",
    "int x = 0;\n", "}", "{",
]


def _utf16_offsets(line: str) -> list[int]:
    """UTF-16 offsets of the code point boundaries of ``line`` (valid LSP characters)."""
    out, pos = [0], 0
    for ch in line:
        pos += 2 if ord(ch) > 0xFFFF else 1
        out.append(pos)
    return out


@dataclass
class Outcome:
    """What the server sent and logged during a sequence."""

    sent: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)


class _Errors(logging.Handler):
    def __init__(self, out: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        self.out.append(f"{record.name}: {record.getMessage()}"
                        + (f"\n{logging.Formatter().formatException(record.exc_info)}"
                           if record.exc_info else ""))


#: One cattrs converter for every in-process server: a fresh one (pygls makes one per server)
#: generates its (un)structure functions again on first use, most of a short sequence's time.
CONVERTER = default_converter()


class InProcessClient:
    """A cutlens server in this process; messages go through pygls's real dispatch."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.server: CutlensServer = create_server()
        self.protocol = self.server.protocol
        self.protocol._converter = self.protocol.fm.converter = CONVERTER
        self.protocol.set_writer(self, include_headers=False)
        self.converter = CONVERTER
        self.out = Outcome()
        self._next_id = 0

    # the writer pygls sends through
    def write(self, data: bytes) -> None:
        self.out.sent.append(json.loads(data))

    def close(self) -> None:
        pass

    def _handle(self, msg: dict) -> None:
        self.protocol.handle_message(self.protocol.structure_message(msg))

    def notify(self, method: str, params: Any) -> None:
        self._handle({"jsonrpc": "2.0", "method": method,
                      "params": self.converter.unstructure(params)})

    def request(self, method: str, params: Any) -> int:
        self._next_id += 1
        self._handle({"jsonrpc": "2.0", "id": self._next_id, "method": method,
                      "params": self.converter.unstructure(params)})
        return self._next_id

    def responses(self) -> dict[Any, dict]:
        return {m["id"]: m for m in self.out.sent if "id" in m and "method" not in m}

    def published(self, uri: str) -> dict | None:
        """The last publishDiagnostics for ``uri``."""
        for m in reversed(self.out.sent):
            if m.get("method") == "textDocument/publishDiagnostics" \
                    and m["params"]["uri"] == uri:
                return m["params"]
        return None

    async def settle(self) -> None:
        """Wait until no tier is pending and the render thread is idle."""
        for _ in range(100):
            tasks = [t for t in self.server.debouncer._tasks.values() if not t.done()]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.get_running_loop().run_in_executor(self.server.render_pool, int)
            await asyncio.sleep(0)
            if not any(not t.done() for t in self.server.debouncer._tasks.values()):
                return
        raise AssertionError("the server never settled")

    def text(self, uri: str) -> str:
        return self.server.workspace.get_text_document(uri).source


def expected_diagnostics(root: Path, settings: dict, path: Path, text: str,
                         overlays: dict[str, str]) -> list[dict]:
    """The diagnostics of ``text`` computed from scratch (fresh config and renderer), as
    the server would publish them for ``path``."""
    cfg = config_mod.load(root)
    config_mod.apply_settings(cfg, settings)
    t = load(path, cfg, text)
    jc = jinja_check(t, Renderer(dict(overlays)))
    lines = text.splitlines()
    seen: set[tuple] = set()
    out = []
    for d in jc.diagnostics:
        k = (*d.key(), tuple(d.samples), tuple(d.variants))
        if d.file == str(path) and k not in seen:
            seen.add(k)
            out.append(CONVERTER.unstructure(to_lsp(d, lines)))
    return out


async def run_sequence(data: st.DataObject, root: Path, max_ops: int = 12,
                       target: str = "lsp_sequences", seed: str | None = None) -> Outcome:
    """Open a template (``seed``, else one of :data:`SEEDS`), apply random operations,
    settle, and check the properties (counted once checked: hypothesis may stop a sequence
    midway when it runs out of choices)."""
    (root / "cutlens.toml").write_text("jobs = 1\n")
    (root / "macros.cuh.jinja").write_text(MACROS)
    path = (root / "t.cu.jinja").resolve()
    path.write_text(TEMPLATE)
    partial = (root / "macros.cuh.jinja").resolve()
    uri, puri = path_to_uri(path), path_to_uri(partial)
    logger = logging.getLogger()
    handler = _Errors((client := InProcessClient(root)).out.errors)
    logger.addHandler(handler)
    draw = data.draw
    try:
        client.request(lsp.INITIALIZE, lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), root_uri=root.as_uri(),
            workspace_folders=[lsp.WorkspaceFolder(uri=root.as_uri(), name="ws")],
            initialization_options={"checkOn": "off",
                                    "jinjaDebounceMs": draw(st.sampled_from([0, 0, 2]))}))
        version = 1
        text = seed if seed is not None else draw(st.sampled_from(SEEDS))
        client.notify(lsp.TEXT_DOCUMENT_DID_OPEN, lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="cuda-jinja",
                                               version=version, text=text)))
        open_docs = {uri: version}
        if draw(st.booleans()):  # requests find the template loaded (else: not yet)
            await client.settle()
        for _ in range(_uniform(draw, 1, max_ops)):
            op = draw(st.sampled_from([
                "insert", "insert", "delete", "replace", "full", "multi", "hover", "hover",
                "completion", "symbols", "lens", "definition", "save", "wait", "wait",
                "yield", "config", "reopen", "partial"]))
            client.out.ops.append(op)
            target_uri = uri
            if op == "partial":
                target_uri = puri
                if puri not in open_docs:
                    open_docs[puri] = 1
                    client.notify(lsp.TEXT_DOCUMENT_DID_OPEN, lsp.DidOpenTextDocumentParams(
                        text_document=lsp.TextDocumentItem(
                            uri=puri, language_id="cuda-jinja", version=1,
                            text=partial.read_text())))
                op = draw(st.sampled_from(["insert", "delete", "full"]))
            if op in ("insert", "delete", "replace", "full", "multi"):
                # later changes of one notification apply to the text the earlier ones made
                probe = TextDocument(target_uri, client.text(target_uri))
                changes = []
                for _ in range(draw(st.integers(2, 4)) if op == "multi" else 1):
                    changes.append(_change(draw, probe.source, op))
                    probe.apply_change(changes[-1])
                open_docs[target_uri] += 1
                client.notify(lsp.TEXT_DOCUMENT_DID_CHANGE, lsp.DidChangeTextDocumentParams(
                    text_document=lsp.VersionedTextDocumentIdentifier(
                        uri=target_uri, version=open_docs[target_uri]),
                    content_changes=changes))
            elif op in ("hover", "completion", "definition"):
                pos = _position(draw, client.text(uri))
                method = {"hover": lsp.TEXT_DOCUMENT_HOVER,
                          "completion": lsp.TEXT_DOCUMENT_COMPLETION,
                          "definition": lsp.TEXT_DOCUMENT_DEFINITION}[op]
                cls = {"hover": lsp.HoverParams, "completion": lsp.CompletionParams,
                       "definition": lsp.DefinitionParams}[op]
                client.request(method, cls(text_document=lsp.TextDocumentIdentifier(uri=uri),
                                           position=pos))
            elif op == "symbols":
                client.request(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL, lsp.DocumentSymbolParams(
                    text_document=lsp.TextDocumentIdentifier(uri=uri)))
            elif op == "lens":
                client.request(lsp.TEXT_DOCUMENT_CODE_LENS, lsp.CodeLensParams(
                    text_document=lsp.TextDocumentIdentifier(uri=uri)))
            elif op == "save":
                client.notify(lsp.TEXT_DOCUMENT_DID_SAVE, lsp.DidSaveTextDocumentParams(
                    text_document=lsp.TextDocumentIdentifier(uri=uri)))
            elif op == "wait":
                await client.settle()
            elif op == "yield":
                for _ in range(draw(st.integers(1, 5))):
                    await asyncio.sleep(0)
            elif op == "config":
                client.notify(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION,
                              lsp.DidChangeConfigurationParams(settings={"cutlens": {
                                  "checkOn": "off",
                                  "jinjaDebounceMs": draw(st.sampled_from([0, 1, 5]))}}))
            elif op == "reopen":
                current = client.text(uri)
                client.notify(lsp.TEXT_DOCUMENT_DID_CLOSE, lsp.DidCloseTextDocumentParams(
                    text_document=lsp.TextDocumentIdentifier(uri=uri)))
                open_docs[uri] += 1
                client.notify(lsp.TEXT_DOCUMENT_DID_OPEN, lsp.DidOpenTextDocumentParams(
                    text_document=lsp.TextDocumentItem(
                        uri=uri, language_id="cuda-jinja", version=open_docs[uri],
                        text=current)))
        await client.settle()
        check_outcome(client, path, uri, open_docs, puri, partial)
        count(target)
        client.request(lsp.SHUTDOWN, None)
        await client.settle()
    finally:
        logger.removeHandler(handler)
        client.server.debouncer.cancel_all()
        await asyncio.sleep(0)
        client.server.render_pool.shutdown(wait=True)
    return client.out


def _uniform(draw: st.DrawFn, lo: int, hi: int) -> int:
    """An integer in ``[lo, hi]`` spread over the range (hypothesis favours small numbers:
    positions would cluster on the first line); it still shrinks towards ``lo``."""
    return lo + draw(st.integers(0, 2**32)) % (hi - lo + 1)


def _position(draw: st.DrawFn, text: str) -> lsp.Position:
    lines = text.splitlines(True) or [""]
    ln = _uniform(draw, 0, len(lines))
    if ln == len(lines):
        return lsp.Position(line=ln, character=0)
    offsets = _utf16_offsets(lines[ln].rstrip("\r\n"))
    return lsp.Position(line=ln, character=offsets[_uniform(draw, 0, len(offsets) - 1)])


def _change(draw: st.DrawFn, text: str, op: str) -> Any:
    if op == "full":
        base = draw(st.sampled_from([*SEEDS, text]))
        k = _uniform(draw, 0, len(base))
        return lsp.TextDocumentContentChangeWholeDocument(
            text=base[:k] + draw(st.sampled_from(FRAGMENTS)) + base[k:])
    start = _position(draw, text)
    end = start
    if op in ("delete", "replace", "multi") and draw(st.booleans()):
        end = _position(draw, text)
        if (end.line, end.character) < (start.line, start.character):
            start, end = end, start
    new = "" if op == "delete" else "".join(
        draw(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3)),
                      min_size=1, max_size=3)))
    return lsp.TextDocumentContentChangePartial(range=lsp.Range(start=start, end=end),
                                                text=new)


def check_outcome(client: InProcessClient, path: Path, uri: str, open_docs: dict[str, int],
                  puri: str, partial: Path) -> None:
    """Nothing failed; the server tracks the final text; the diagnostics published last for
    the template are those of its final text, at its final version."""
    out = client.out
    assert not out.errors, "\n".join(out.errors)
    for rid, resp in client.responses().items():
        assert "error" not in resp, (rid, resp)
    final = client.text(uri)
    ses = client.server.session
    assert ses.overlays.get(str(path)) == final
    overlays = {str(path): final}
    if puri in open_docs:
        overlays[str(partial)] = client.text(puri)
        assert ses.overlays.get(str(partial)) == overlays[str(partial)]
    pub = client.published(uri)
    assert pub is not None, "no diagnostics were published"
    assert pub["version"] == open_docs[uri], (pub["version"], open_docs[uri])
    expected = expected_diagnostics(client.root, dict(client.server.session.settings.project),
                                    path, final, overlays)
    assert pub["diagnostics"] == expected, (final, pub["diagnostics"], expected)


def new_root() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="cutlens-fuzz-lsp-")


# --------------------------------------------------------------------------- over stdio

STDIO_SETTINGS = {"checkOn": "off", "jinjaDebounceMs": 0}


class StdioServer:
    """``cutlens lsp`` in a subprocess, driven by a pytest-lsp client on a private loop."""

    def __init__(self, root: Path) -> None:
        import sys

        from pytest_lsp import LanguageClient

        self.root = root
        self.log = root / "server.log"
        self.loop = asyncio.new_event_loop()
        self.client = LanguageClient(converter_factory=default_converter)
        self.published: dict[str, lsp.PublishDiagnosticsParams] = {}
        self.sequences = 0

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_publish(params: lsp.PublishDiagnosticsParams) -> None:
            self.published[params.uri] = params

        @self.client.feature("cutlens/status")
        def on_status(params: Any) -> None:
            pass

        (root / "cutlens.toml").write_text("jobs = 1\n")
        (root / "macros.cuh.jinja").write_text(MACROS)
        self.loop.run_until_complete(self.client.start_io(
            sys.executable, "-m", "cutlens", "lsp", "--log-file", str(self.log)))
        self.loop.run_until_complete(self.client.initialize_session(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), root_uri=root.as_uri(),
            workspace_folders=[lsp.WorkspaceFolder(uri=root.as_uri(), name="ws")],
            initialization_options=STDIO_SETTINGS)))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.shutdown_session())
        self.loop.close()

    def errors(self) -> list[str]:
        """ERROR lines (with their tracebacks) the server logged."""
        text = self.log.read_text() if self.log.exists() else ""
        return [ln for ln in text.splitlines() if " ERROR " in ln or "Traceback" in ln]


async def run_stdio_sequence(srv: StdioServer, data: st.DataObject, max_ops: int = 8,
                             target: str = "lsp_stdio_sequences") -> None:
    """One random edit sequence over stdio on a new document; the same properties."""
    draw, client = data.draw, srv.client
    srv.sequences += 1
    path = (srv.root / f"t{srv.sequences}.cu.jinja").resolve()
    path.write_text(TEMPLATE)
    uri = path_to_uri(path)
    version = 1
    mirror = TextDocument(uri, draw(st.sampled_from(SEEDS)))
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
        uri=uri, language_id="cuda-jinja", version=version, text=mirror.source)))
    doc_id = lsp.TextDocumentIdentifier(uri=uri)
    for _ in range(_uniform(draw, 1, max_ops)):
        op = draw(st.sampled_from(["insert", "insert", "delete", "replace", "full", "multi",
                                   "hover", "completion", "symbols", "lens", "definition",
                                   "sleep"]))
        if op in ("insert", "delete", "replace", "full", "multi"):
            changes = []
            for _ in range(draw(st.integers(2, 4)) if op == "multi" else 1):
                changes.append(_change(draw, mirror.source, op))
                mirror.apply_change(changes[-1])
            version += 1
            client.text_document_did_change(lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=changes))
        elif op == "hover":
            await client.text_document_hover_async(lsp.HoverParams(
                text_document=doc_id, position=_position(draw, mirror.source)))
        elif op == "completion":
            assert await client.text_document_completion_async(lsp.CompletionParams(
                text_document=doc_id, position=_position(draw, mirror.source))) is not None
        elif op == "definition":
            assert await client.text_document_definition_async(lsp.DefinitionParams(
                text_document=doc_id, position=_position(draw, mirror.source))) is not None
        elif op == "symbols":
            assert await client.text_document_document_symbol_async(
                lsp.DocumentSymbolParams(text_document=doc_id)) is not None
        elif op == "lens":
            assert await client.text_document_code_lens_async(
                lsp.CodeLensParams(text_document=doc_id)) is not None
        else:
            await asyncio.sleep(draw(st.sampled_from([0, 0.001, 0.02])))
    deadline = asyncio.get_running_loop().time() + 60
    while (pub := srv.published.get(uri)) is None or pub.version != version:
        assert asyncio.get_running_loop().time() < deadline, "no diagnostics for the last version"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # nothing newer may follow
    pub = srv.published[uri]
    assert pub.version == version
    expected = expected_diagnostics(srv.root, STDIO_SETTINGS, path, mirror.source,
                                    {str(path): mirror.source})
    assert CONVERTER.unstructure(pub.diagnostics) == expected, mirror.source
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(text_document=doc_id))
    assert not srv.errors(), "\n".join(srv.errors())
    count(target)
