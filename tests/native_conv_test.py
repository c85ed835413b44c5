"""The oneDNN convolution path (`lasem_jax.native`) against XLA's, and its fallback."""

import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util

from lasem_jax.native import build
from lasem_jax.native import conv as native_conv
from lasem_jax.networks import layers

# CI installs the `native` extra and runs these; a plain install skips them with the reason.
needs_native = pytest.mark.skipif(
    native_conv.unavailable_reason() is not None,
    reason=f"native path unavailable: {native_conv.unavailable_reason()}",
)


def _xla(x, w):
    return layers.conv2d(x, w, impl="xla")


def _inputs(seed, x_shape, w_shape):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal(x_shape), jnp.float32)
    w = jnp.asarray(0.3 * rng.standard_normal(w_shape), jnp.float32)
    return x, w


@needs_native
@pytest.mark.parametrize(
    ("x_shape", "k", "c_out"), [((2, 9, 10, 3), 3, 4), ((1, 5, 7, 2), 1, 3), ((3, 8, 6, 4), 2, 5)]
)
def test_forward_and_gradients_equal_xla(x_shape, k, c_out):
    """Values and both gradients equal XLA's convolution to float rounding (odd, even, 1x1)."""
    x, w = _inputs(k, x_shape, (k, k, x_shape[-1], c_out))
    weights = jnp.asarray(np.random.default_rng(9).standard_normal((*x_shape[:-1], c_out)))

    def loss(conv):
        return lambda x, w: jnp.sum(weights * jnp.tanh(conv(x, w)))

    chex.assert_trees_all_close(native_conv.conv(x, w), _xla(x, w), atol=1e-5, rtol=1e-5)
    got = jax.jit(jax.grad(loss(native_conv.conv), (0, 1)))(x, w)
    chex.assert_trees_all_close(got, jax.grad(loss(_xla), (0, 1))(x, w), atol=1e-4, rtol=1e-4)


@needs_native
def test_second_order_gradients_equal_xla_and_finite_differences():
    """Gradients of gradients run natively and agree with XLA's and with finite differences."""
    x, w = _inputs(1, (2, 6, 6, 2), (3, 3, 2, 3))

    def outer(conv):
        inner = jax.grad(lambda x, w: jnp.sum(jnp.sin(conv(x, w))), (0, 1))
        return jax.grad(lambda x, w: sum(jnp.sum(g**2) for g in inner(x, w)), (0, 1))

    chex.assert_trees_all_close(outer(native_conv.conv)(x, w), outer(_xla)(x, w), rtol=1e-4)
    x64, w64 = 0.5 * x[:1, :4, :4], w
    test_util.check_grads(native_conv.conv, (x64, w64), order=2, modes=["rev"], eps=1e-2)


@needs_native
def test_vmap_scan_and_jit():
    """Under vmap (both or one argument batched) and in a jitted scan, as XLA's."""
    x, w = _inputs(2, (3, 2, 6, 6, 3), (3, 3, 3, 4))
    ws = jnp.stack([w, -w, 2 * w])
    for axes, args in (((0, 0), (x, ws)), ((0, None), (x, w)), ((None, 0), (x[0], ws))):
        got = jax.vmap(native_conv.conv, axes)(*args)
        chex.assert_trees_all_close(got, jax.vmap(_xla, axes)(*args), atol=1e-5, rtol=1e-5)

    def epoch(conv):
        def step(w, xb):
            return w - 0.01 * jax.grad(lambda v: jnp.mean(conv(xb, v) ** 2))(w), None

        return jax.jit(lambda w: jax.lax.scan(step, w, x)[0])

    chex.assert_trees_all_close(epoch(native_conv.conv)(w), epoch(_xla)(w), atol=1e-5, rtol=1e-5)
    batched = jax.vmap(epoch(native_conv.conv))(ws)
    chex.assert_trees_all_close(batched, jax.vmap(epoch(_xla))(ws), atol=1e-5, rtol=1e-5)


@needs_native
def test_implementation_names_and_bad_dtype():
    """The implementation oneDNN picks has a name; other dtypes than float32 are refused clearly."""
    assert native_conv.implementation("fwd", (2, 8, 8, 3), (3, 3, 3, 4))
    x, w = _inputs(3, (1, 4, 4, 1), (3, 3, 1, 1))
    with pytest.raises(TypeError, match="float32"):
        native_conv.conv(x.astype(jnp.bfloat16), w)


def test_path_follows_the_environment(monkeypatch):
    """$LASEM_JAX_CONV picks the path; a wrong value or an unavailable `onednn` says the fix."""
    for name in ("xla", "cpu"):
        monkeypatch.setenv("LASEM_JAX_CONV", name)
        assert native_conv.path() == name
    monkeypatch.setenv("LASEM_JAX_CONV", "fft")
    with pytest.raises(ValueError, match=r"LASEM_JAX_CONV='fft'.*'onednn'"):
        native_conv.path()
    monkeypatch.setattr(native_conv, "unavailable_reason", lambda: "oneDNN not found")
    monkeypatch.setenv("LASEM_JAX_CONV", "onednn")
    with pytest.raises(ValueError, match="unavailable: oneDNN not found"):
        native_conv.path()
    monkeypatch.delenv("LASEM_JAX_CONV")
    assert native_conv.path() == "cpu"  # Without oneDNN the CPU default falls back.


def test_build_reports_what_is_missing(monkeypatch, tmp_path):
    """Without oneDNN or a compiler, building raises NativeUnavailable naming the fix."""
    monkeypatch.setenv("LASEM_JAX_ONEDNN_ROOT", str(tmp_path))
    monkeypatch.setattr(build.sys, "prefix", str(tmp_path))
    monkeypatch.setattr(build.site, "getuserbase", lambda: str(tmp_path))
    with pytest.raises(build.NativeUnavailable, match=r"oneDNN not found.*\[native\]"):
        build.library()
    monkeypatch.setenv("CXX", "no-such-compiler")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(build.NativeUnavailable, match="no C\\+\\+ compiler"):
        build.compiler()


def test_plain_block_uses_the_plain_path(monkeypatch):
    """Inside `plain()` (GSPMD data-parallel steps) the path is the plain-JAX one, then not."""
    monkeypatch.delenv("LASEM_JAX_CONV", raising=False)
    outside = native_conv.path()
    with native_conv.plain():
        assert native_conv.path() == "cpu"
        monkeypatch.setenv("LASEM_JAX_CONV", "onednn")
        assert native_conv.path() == "cpu"
    monkeypatch.delenv("LASEM_JAX_CONV")
    assert native_conv.path() == outside


def test_tiny_convolutions_take_the_plain_path_by_default(monkeypatch):
    """By default convolutions under MIN_FLOPS run plain; LASEM_JAX_CONV=onednn forces all."""
    monkeypatch.delenv("LASEM_JAX_CONV", raising=False)
    monkeypatch.setattr(native_conv, "path", lambda: "onednn")
    tiny, kernel = (10, 8, 8, 16), (3, 3, 16, 16)  # 2.9 MFLOP: a digits layer at batch 10.
    assert native_conv.path_for(tiny, kernel) == "cpu"
    assert native_conv.path_for((160, 8, 8, 16), kernel) == "onednn"
    monkeypatch.setenv("LASEM_JAX_CONV", "onednn")
    assert native_conv.path_for(tiny, kernel) == "onednn"
    monkeypatch.setattr(native_conv, "path", lambda: "xla")
    assert native_conv.path_for((160, 8, 8, 16), kernel) == "xla"


@needs_native
def test_a_damaged_cached_library_is_rebuilt(monkeypatch, tmp_path):
    """A cached library that does not load (truncated, overwritten) is compiled again.

    In a new process: a process registers the handlers once.
    """
    monkeypatch.setenv("LASEM_JAX_NATIVE_CACHE", str(tmp_path))
    build.target().write_bytes(b"not a shared library")
    code = "from lasem_jax.native import conv; print(conv.path(), conv.unavailable_reason())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.split() == ["onednn", "None"], proc.stderr[-2000:]
    assert build.target().stat().st_size > 1000
