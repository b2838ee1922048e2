"""CallPlatform operator: runs a calls backend, Jitsi Meet and coturn on Kubernetes."""

__version__ = "0.1.0"

API_GROUP = "callplatform.io"
API_VERSION = "v1alpha1"
KIND = "CallPlatform"
PLURAL = "callplatforms"
