"""Packaging beyond pyproject.toml: ``conf/`` travels inside the package as ``app/conf`` (package data),
so an installed pipeline (a cluster node without the project checkout) composes the same config."""
from setuptools import find_namespace_packages, find_packages, setup

CONF = ["app." + name for name in find_namespace_packages(include=["conf", "conf.*"])]

setup(
    packages=find_packages(include=["app*"]) + CONF,
    package_dir={"app.conf": "conf"},  # app.conf.<group> follows: conf/<group>
    package_data={name: ["*.yaml"] for name in CONF},
)
