"""Fixtures for the Dask engine tests: one small LocalCluster shared by the session."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(scope="session")
def dask_cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def dask_client(dask_cluster):
    from distributed import Client

    with Client(dask_cluster, set_as_default=False) as client:
        yield client
