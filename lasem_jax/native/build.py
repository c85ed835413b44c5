"""Compiles the oneDNN convolution handlers once per source and toolchain, into a user cache.

The `native` extra (`pip install -e ".[native]"`) installs oneDNN's CPU-only wheels, which put
`libdnnl.so` under `<prefix>/lib` and `dnnl.hpp` under `<prefix>/include`; the handlers also
need a C++17 compiler and the XLA FFI headers that ship with jaxlib. Anything missing raises
`NativeUnavailable` with what to install, and the caller falls back to the XLA path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import jax

SOURCE = Path(__file__).with_name("onednn_conv.cc")
_INSTALL = 'pip install -e ".[native]" (oneDNN\'s CPU wheels) and a C++ compiler (g++)'


class NativeUnavailable(RuntimeError):
    """The native path cannot be built or loaded here; the message says why and the fix."""


def onednn_prefix() -> Path:
    """The installation prefix holding `include/dnnl.hpp` and `lib/libdnnl.so*`.

    Looks in $LASEM_JAX_ONEDNN_ROOT, then this Python's prefix (a virtualenv) and the user base.

    Raises:
      NativeUnavailable: oneDNN's headers or library are in none of them.
    """
    roots = [os.environ.get("LASEM_JAX_ONEDNN_ROOT", ""), sys.prefix, site.getuserbase()]
    for root in filter(None, roots):
        prefix = Path(root)
        libs = list((prefix / "lib").glob("libdnnl.so*"))
        if (prefix / "include" / "dnnl.hpp").is_file() and libs:
            return prefix
    raise NativeUnavailable(f"oneDNN not found under {[r for r in roots if r]}; {_INSTALL}.")


def compiler() -> str:
    """The C++ compiler: $CXX, else g++ or c++ on PATH.

    Raises:
      NativeUnavailable: none is installed.
    """
    for name in (os.environ.get("CXX", ""), "g++", "c++"):
        if name and shutil.which(name):
            return shutil.which(name) or name
    raise NativeUnavailable(f"no C++ compiler ($CXX, g++, c++) on PATH; {_INSTALL}.")


def cache_dir() -> Path:
    """Where built libraries go: $LASEM_JAX_NATIVE_CACHE, else ~/.cache/lasem_jax/native."""
    default = Path.home() / ".cache" / "lasem_jax" / "native"
    return Path(os.environ.get("LASEM_JAX_NATIVE_CACHE") or default)


def target() -> Path:
    """Where the library for this source, jaxlib, oneDNN and compiler is (or will be) built.

    The file name hashes the source, jaxlib's version, the oneDNN library and the compiler, so a
    change to any of them builds anew.

    Raises:
      NativeUnavailable: oneDNN or the compiler is missing.
    """
    prefix, cxx = onednn_prefix(), compiler()
    lib = next(iter(sorted((prefix / "lib").glob("libdnnl.so*"))))
    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), jax.__version__.encode(), str(lib.resolve()).encode()):
        key.update(part)
    key.update(f"{lib.stat().st_size} {cxx}".encode())
    return cache_dir() / f"lasem_onednn_conv_{key.hexdigest()[:16]}.so"


def library(*, rebuild: bool = False) -> Path:
    """The compiled handlers' shared library, built on first use (or with `rebuild`), then reused.

    Built into a temporary file and renamed into place, so concurrent processes (pytest
    workers) never load a half-written library.

    Raises:
      NativeUnavailable: a piece is missing or the compiler fails (its output is in the message).
    """
    prefix, cxx, path = onednn_prefix(), compiler(), target()
    if path.is_file() and not rebuild:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    include = jax.ffi.include_dir()
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        out = Path(tmp) / path.name
        command = [cxx, "-O2", "-std=c++17", "-shared", "-fPIC", f"-I{include}"]
        command += [f"-I{prefix / 'include'}", str(SOURCE), f"-L{prefix / 'lib'}", "-ldnnl"]
        command += [f"-Wl,-rpath,{prefix / 'lib'}", "-o", str(out)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise NativeUnavailable(f"compiling {SOURCE.name} failed:\n{done.stderr[-2000:]}")
        os.replace(out, path)
    return path
