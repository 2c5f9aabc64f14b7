"""The pod side: ``envelope init`` (an init container or native sidecar that decrypts a
service's secrets into a memory-backed volume) and ``envelope exec`` (decrypt into the
environment and exec the app). Needs the ``k8s`` extra (pydantic, PyYAML)."""
