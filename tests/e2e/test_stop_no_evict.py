"""A stopping MDS evicts no client (issue 5).

Cluster of its own: a DLM whose callback timeout (CALLBACK_TIMEOUT) is
longer than the MDS client lease (CLIENT_LEASE, both through the
environment `stripefs cluster up` hands its servers). Mount A holds a file
open (its writes fsynced) and its daemon is stopped (SIGSTOP); then the
MDS is restarted with a controlled stop. The stop waits for the EX on its
active lock until the DLM evicts the silent A, i.e. longer than A's lease:
an MDS that still checked leases while stopping would evict A and delete
the open handle the next instance keeps for A, so A's descriptor would
fail after SIGCONT (the reopen answers ESTALE). It must instead keep
reading and writing.
"""

import pytest

from helpers import two_mount_cluster
from test_failover import check_stopped_mount_keeps_fsynced_open

# Seconds. The lease is two keepalive periods (5 s) so the live mounts are
# not evicted while the test runs; the callback timeout outlasts it, so the
# controlled stop lasts longer than the lease.
CLIENT_LEASE = 10
CALLBACK_TIMEOUT = 16


@pytest.fixture
def stop_cluster():
    with two_mount_cluster(
            "stripefs-stopnoevict-e2e-", CALLBACK_TIMEOUT,
            env={"STRIPEFS_MDS_CLIENT_LEASE": str(CLIENT_LEASE)},
            restart=("mdt0",)) as c:
        yield c


def test_stopping_mds_does_not_evict_a_silent_mount(stop_cluster):
    check_stopped_mount_keeps_fsynced_open(stop_cluster)
