"""Argument marshalling from a recorded signature, and the workspace protocol in-process."""

from __future__ import annotations

import ctypes

import pytest

torch = pytest.importorskip("torch")

from cutlens.bench.marshal import (  # noqa: E402
    SignatureError,
    load_kernel,
    marshal,
    storage_numel,
    torch_dtype,
    unload,
)

SIG = {
    "kernel": "k", "library": "/nonexistent.so",
    "args": [
        {"name": "X", "kind": "input", "dtype": "bfloat16", "size": [4, 6], "stride": [6, 1],
         "offset": 0},
        {"name": "W", "kind": "input", "dtype": "float16", "size": [6, 3], "stride": [1, 6],
         "offset": 5},
        {"name": "Bias", "kind": "input", "dtype": None, "none": True},
        {"name": "I", "kind": "input", "dtype": "int8", "size": [16], "stride": [1]},
        {"name": "U", "kind": "input", "dtype": "uint8", "size": [16], "stride": [1]},
        {"name": "B", "kind": "input", "dtype": "bool", "size": [16], "stride": [1]},
        {"name": "Y", "kind": "output", "dtype": "float32", "size": [4, 3], "stride": [8, 2],
         "offset": 3},
        {"name": "L", "kind": "output", "dtype": "int64", "size": [2], "stride": [1]},
        {"name": "M", "kind": "size", "value": 4},
        {"name": "Big", "kind": "size", "value": 2**33 + 5},
    ],
}


def test_dtype_names():
    assert torch_dtype("bfloat16") is torch.bfloat16
    assert torch_dtype("float8_e4m3fn") is torch.float8_e4m3fn
    assert torch_dtype("half") is torch.float16
    with pytest.raises(SignatureError):
        torch_dtype("float7")


def test_storage_numel():
    assert storage_numel([4, 6], [6, 1], 0) == 24
    assert storage_numel([6, 3], [1, 6], 5) == 5 + 5 + 12 + 1
    assert storage_numel([4, 3], [8, 2], 3) == 3 + 24 + 4 + 1
    assert storage_numel([0, 3], [3, 1], 2) == 2
    assert storage_numel([], [], 0) == 1  # a 0-d tensor
    with pytest.raises(SignatureError):
        storage_numel([2], [1, 1], 0)


def test_marshal_buffers_and_sizes():
    m = marshal(SIG, "cpu", seed=0)
    t = m.by_name()
    x, w, y = t["X"], t["W"], t["Y"]
    assert x.dtype is torch.bfloat16 and tuple(x.shape) == (4, 6) and x.stride() == (6, 1)
    assert w.dtype is torch.float16 and w.stride() == (1, 6) and w.storage_offset() == 5
    assert y.dtype is torch.float32 and y.stride() == (8, 2) and y.storage_offset() == 3
    assert t["Bias"] is None and t["M"] == 4 and t["Big"] == 2**33 + 5
    # data: floats standard normal, small ints, bools; outputs poisoned
    assert 0.5 < float(x.float().std()) < 2.0 and abs(float(x.float().mean())) < 1.0
    i = t["I"]
    assert int(i.min()) >= -8 and int(i.max()) < 8
    assert int(t["U"].min()) >= 0 and int(t["U"].max()) < 16
    assert t["B"].dtype is torch.bool
    assert bool(torch.isnan(y).all())
    assert int(t["L"].min()) == torch.iinfo(torch.int64).min
    # ctypes: base pointers (offset not applied), null for None, int64 sizes
    args = m.data_args()
    arg_w = next(a for a in m.args if a.name == "W")
    assert args[1].value == arg_w.storage.data_ptr()
    assert args[1].value != w.data_ptr()  # the view's pointer includes the offset
    assert args[2].value is None
    assert isinstance(args[-1], ctypes.c_int64) and args[-1].value == 2**33 + 5
    assert all(a.value is None for a in m.data_args(null_buffers=True)[:8])
    types = m.argtypes()
    assert types[:3] == [ctypes.c_void_p] * 3 and types[8] is ctypes.c_int64
    assert types[-3:] == [ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p, ctypes.c_void_p]


def test_marshal_is_deterministic():
    a, b, c = marshal(SIG, "cpu", 0), marshal(SIG, "cpu", 0), marshal(SIG, "cpu", 1)
    assert torch.equal(a.by_name()["X"], b.by_name()["X"])
    assert not torch.equal(a.by_name()["X"], c.by_name()["X"])


@pytest.mark.parametrize("bad", [
    {"name": "X", "kind": "weird", "dtype": "float32", "size": [1]},
    {"name": "Y", "kind": "output", "dtype": None, "none": True},
    {"name": "M", "kind": "size"},
])
def test_bad_arguments(bad):
    with pytest.raises(SignatureError):
        marshal({"kernel": "k", "library": "x", "args": [bad]}, "cpu")


def test_call_passes_pointers_and_int64(lib):
    sig = {"kernel": "fake_record", "library": str(lib), "args": [
        {"name": "A", "kind": "input", "dtype": "float32", "size": [3, 3], "stride": [3, 1],
         "offset": 2},
        {"name": "B", "kind": "input", "dtype": None, "none": True},
        {"name": "C", "kind": "output", "dtype": "float16", "size": [3], "stride": [1]},
        {"name": "s0", "kind": "size", "value": 2**40 + 3},
        {"name": "s1", "kind": "size", "value": -7},
    ]}
    m = marshal(sig, "cpu")
    handle, fn = load_kernel(m.library, m.kernel, m.argtypes())
    try:
        ws = ctypes.c_size_t(0)
        assert fn(*m.data_args(null_buffers=True), ctypes.byref(ws), None, None) == 0
        assert ws.value == 64
        workspace = torch.zeros(ws.value, dtype=torch.uint8)
        assert fn(*m.data_args(), None, ctypes.c_void_p(workspace.data_ptr()), None) == 0
        ptrs = (ctypes.c_void_p * 3)()
        sizes = (ctypes.c_int64 * 2)()
        handle.fake_recorded(ptrs, sizes)
        assert ptrs[0] == m.args[0].storage.data_ptr()
        assert ptrs[1] is None
        assert ptrs[2] == m.args[2].storage.data_ptr()
        assert list(sizes) == [2**40 + 3, -7]
    finally:
        unload(handle)


def test_load_errors(lib, tmp_path):
    with pytest.raises(SignatureError, match="cannot load"):
        load_kernel(str(tmp_path / "missing.so"), "k", [])
    with pytest.raises(SignatureError, match="exports no"):
        load_kernel(str(lib), "no_such_kernel", [])
