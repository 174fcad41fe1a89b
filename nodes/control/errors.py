"""What the control layer raises when the cluster cannot do what was asked."""


class ClusterError(RuntimeError):
    """A node could not be started or controlled; the message says which and why."""
