"""Build hook: setuptools builds the C engine through cffi (out-of-line API mode)."""

from setuptools import setup

setup(cffi_modules=["native/build_engine.py:ffibuilder"])
